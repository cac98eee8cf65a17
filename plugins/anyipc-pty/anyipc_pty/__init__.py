"""``pty://`` — a pseudo-terminal as a one-way byte stream; the example anyipc plugin.

``anyipc.pair("pty://")`` opens a new pseudo-terminal and returns two ends.
The first is the terminal side: it sends, and to the kernel it is a real
terminal, the one a program would have as its stdout.  The second is the
master side, the terminal emulator's: it receives what was written.  By
default the terminal is in raw mode, so bytes pass unchanged; ``raw=false``
keeps the kernel's output processing (``\\n`` arrives as ``\\r\\n``), and the
channel then no longer claims to be intact.

Only this direction is offered: a pseudo-terminal discards what its
terminal side has not read yet when the master side closes, so the other
direction could not keep the promise of a lossless stream.  This one does:
after the terminal side closes, the master side reads everything that was
written, then :class:`anyipc.EndOfChannel`.  The ends are inherited by
forked children (``os.fork``, the ``fork`` start method); there is no name
by which another process could open them.
"""

from __future__ import annotations

import errno
import functools
import os
import termios

import anyipc
from anyipc import (
    Address,
    Addressing,
    Boundaries,
    Capabilities,
    Channel,
    Connection,
    Direction,
    Option,
    Scope,
    TransportSpec,
    hookimpl,
)
from anyipc.kit import READABLE, WRITABLE, Deadline, map_os_error, wait_for_fd

__all__ = ["PtyChannel", "anyipc_transports", "capabilities", "pair"]

CHUNK = 65536

RAW = Option(
    name="raw",
    kind=bool,
    default=True,
    doc="raw mode: bytes pass unchanged (false: the terminal's output processing applies)",
)


def capabilities(address: Address) -> Capabilities:
    """The claims for ``address``: a lossless one-way stream, intact in raw mode only."""
    return Capabilities(
        direction=Direction.SIMPLEX,
        boundaries=Boundaries.STREAM,
        connection=Connection.ORIENTED,
        lossless=True,
        ordered=True,
        intact=bool(address.get(RAW)),
        duplicate_free=True,
        scope=Scope.HOST,
        addressing=Addressing.INHERITED,
    )


class PtyChannel(Channel):
    """One end of a ``pty://`` pair: the terminal side sends, the master side receives.

    The descriptor is non-blocking; every wait goes through anyipc's
    readiness helper, so timeouts hold and ``close()`` from another thread
    wakes a blocked call.  The terminal side's ``address`` (``pty://fd/N``)
    and ``fds`` hand it to a child process (``pass_fds=end.fds``), which
    opens it with ``anyipc.connect(address)``; being non-blocking, it suits
    anyipc children (or programs that poll) rather than plain blocking ones.
    """

    def __init__(self, fd: int, capabilities: Capabilities, *, sending: bool) -> None:
        # The terminal side can be handed to a child: it opens pty://fd/N.
        address = f"pty://fd/{fd}" if sending else None
        super().__init__(capabilities, address=address, can_send=sending, can_recv=not sending)
        self._fd = fd
        self.fds = (fd,) if sending else ()

    def _send(self, data: memoryview, deadline: Deadline) -> None:
        sent = 0
        while sent < len(data):
            try:
                sent += os.write(self._fd, data[sent:])
            except BlockingIOError:
                try:
                    wait_for_fd(self._fd, WRITABLE, deadline, self._waker, "send")
                except anyipc.Timeout as exc:
                    raise anyipc.Timeout(str(exc), sent=sent) from None
            except OSError as exc:
                if exc.errno == errno.EIO:  # the master side is closed: nobody reads any more
                    raise anyipc.ConnectionLost("pty://: the receiving end is closed") from exc
                raise map_os_error(exc, "send on pty://") from exc

    def _recv(self, deadline: Deadline) -> bytes:
        while True:
            try:
                data = os.read(self._fd, CHUNK)
            except BlockingIOError:
                wait_for_fd(self._fd, READABLE, deadline, self._waker, "recv")
                continue
            except OSError as exc:
                # Linux reports EIO once the terminal side is closed and all it wrote was read.
                if exc.errno != errno.EIO:
                    raise map_os_error(exc, "recv on pty://") from exc
                data = b""
            if not data:
                raise anyipc.EndOfChannel("pty://: the terminal side was closed")
            return data

    def _wait_fd(self) -> int | None:
        return self._fd if self.can_recv else None

    def _close(self) -> None:
        os.close(self._fd)


def _make_raw(fd: int) -> None:
    """Put the terminal ``fd`` in raw mode, as ``cfmakeraw(3)`` does."""
    iflag, oflag, cflag, lflag, ispeed, ospeed, cc = termios.tcgetattr(fd)
    iflag &= ~(
        termios.IGNBRK
        | termios.BRKINT
        | termios.PARMRK
        | termios.ISTRIP
        | termios.INLCR
        | termios.IGNCR
        | termios.ICRNL
        | termios.IXON
    )
    oflag &= ~termios.OPOST
    lflag &= ~(termios.ECHO | termios.ECHONL | termios.ICANON | termios.ISIG | termios.IEXTEN)
    cflag = (cflag & ~(termios.CSIZE | termios.PARENB)) | termios.CS8
    cc[termios.VMIN] = 1
    cc[termios.VTIME] = 0
    termios.tcsetattr(fd, termios.TCSANOW, [iflag, oflag, cflag, lflag, ispeed, ospeed, cc])


def pair(address: Address) -> tuple[Channel, Channel]:
    """A new pseudo-terminal: (terminal side, which sends; master side, which receives)."""
    try:
        master, terminal = os.openpty()
    except OSError as exc:
        raise map_os_error(exc, "open a pseudo-terminal") from exc
    try:
        if address.get(RAW):
            _make_raw(terminal)
        for fd in (master, terminal):
            os.set_blocking(fd, False)
    except OSError as exc:
        os.close(master)
        os.close(terminal)
        raise map_os_error(exc, "set up a pseudo-terminal") from exc
    claims = capabilities(address)
    return PtyChannel(terminal, claims, sending=True), PtyChannel(master, claims, sending=False)


@functools.cache
def _available() -> str | None:
    """Why pseudo-terminals cannot be opened here (e.g. no ``/dev/pts``), or None."""
    try:
        fds = os.openpty()
    except OSError as exc:
        return f"cannot open a pseudo-terminal: {exc.strerror}"
    for fd in fds:
        os.close(fd)
    return None


def connect(address: Address) -> Channel:
    """Adopt an inherited terminal side, ``pty://fd/N``: the sending end, owned from now on."""
    fd = int(address.location.removeprefix("fd/"))
    try:
        if not os.isatty(fd):
            raise anyipc.InvalidAddress(f"{address}: descriptor {fd} is not a terminal")
        os.set_blocking(fd, False)
    except OSError as exc:
        raise map_os_error(exc, f"adopt {address}") from exc
    return PtyChannel(fd, capabilities(address), sending=True)


def _check_location(location: str) -> str | None:
    if not location:
        return None
    number = location.removeprefix("fd/")
    if location.startswith("fd/") and number.isascii() and number.isdigit():
        return None
    return "pty:// takes no location (pair() opens a pseudo-terminal) or fd/N (an inherited end)"


def _verbs_for(address: Address) -> tuple[str, ...]:
    return ("connect",) if address.location else ("pair",)


@hookimpl
def anyipc_transports() -> list[TransportSpec]:
    """The one transport of this plugin: ``pty://``."""
    return [
        TransportSpec(
            scheme="pty",
            description="pseudo-terminal, terminal side to master side",
            capabilities=capabilities,
            check_location=_check_location,
            test_address=lambda: "pty://",
            options=(RAW,),
            pair=pair,
            connect=connect,
            verbs_for=_verbs_for,
            available=_available,
        )
    ]
