"""How two processes set up a shared-memory connection: a listener, a rendezvous, a segment.

A shared-memory listener is a Unix stream socket in Linux's abstract
namespace, ``@anyipc.<scheme>.<name>``: it has no file to leave behind, and
the kernel frees the name when its owner dies, so a listener killed with
SIGKILL never blocks the next ``listen`` on its name (while a live one
always does: :class:`~anyipc.AddressInUse`).

``connect`` creates the connection's segment itself (through the
transport's :class:`Backend`), connects to the listener, and sends one
line, ``anyipc-<scheme> 1 <capacity> <token>``, with the segment's
descriptor attached (``SCM_RIGHTS``) where the backend has one.  It does
not wait for ``accept``: like a TCP connection in a backlog, the channel is
usable at once, and what it sends waits in the rings.  ``accept`` maps the
segment and checks its header.  The socket then stays open beside the
segment for wake-ups and the peer's life (see :mod:`anyipc._shmchannel`).

Who may connect.  Abstract sockets have no permission bits, so the
listener checks each client's credentials (``SO_PEERCRED``) against its
``mode`` option: the owner's uid always, the owner's group with ``06x0``
bits, anyone with ``0x06``; root is always allowed.  A refused client is
told why in one line and disconnected; its ``recv`` or ``send`` then
raises :class:`~anyipc.ConnectionLost` naming the reason.

A client that connects and says nothing never holds up ``accept``: clients
whose setup line has not arrived wait in a pending set, ``accept`` returns
the first that completes, and one that has not completed within
:data:`SETUP_TIMEOUT_S` is dropped.
"""

from __future__ import annotations

import array
import errno
import os
import select
import socket
import struct
import time
from collections.abc import Callable, Sequence
from typing import Protocol

import attrs

from anyipc._capabilities import Capabilities
from anyipc._channel import Channel, Listener
from anyipc._deadline import Deadline
from anyipc._errors import (
    AddressInUse,
    ChannelClosed,
    ConnectionLost,
    IPCError,
    Timeout,
    map_os_error,
)
from anyipc._readiness import READABLE
from anyipc._shmchannel import Mapping, ShmChannel, segment_bytes
from anyipc._sockets import connect_stream, listen_error

__all__ = [
    "MAGIC",
    "SETUP_TIMEOUT_S",
    "Backend",
    "Handoff",
    "ShmListener",
    "Terms",
    "belongs_to",
    "segment_owner",
    "shm_connect",
    "shm_listen",
]

SETUP_TIMEOUT_S = 5.0  #: how long a connected client may take to send its setup line
MAGIC = b"anyipc-shm-segment\0\0\0\0\0\0\0\0\0\0\0\0\0\x01"  # 32 bytes, the last the version
_LINE_MAX = 256
_OWNER_BYTES = 96  #: the segment header's field naming its listener (scheme://name, NUL-padded)
_CREDENTIALS = struct.Struct("3i")  # struct ucred: pid, uid, gid


@attrs.frozen
class Handoff:
    """What the connecting end tells the listener about the segment it made."""

    token: str = ""  #: a word naming the segment, where it has a name (a SysV id)
    fds: tuple[int, ...] = ()  #: descriptors to pass, where the segment has one


class Backend(Protocol):
    """Where a transport's segments come from."""

    def create(self, tag: str, size: int) -> tuple[Mapping, Handoff]:
        """A new segment of ``size`` bytes for a connection to the listener ``tag`` names."""

    def attach(self, size: int, handoff: Handoff) -> Mapping:
        """Map the segment the connecting end handed over; ``ValueError`` if it is unfit."""

    def done(self, handoff: Handoff) -> None:
        """The connecting end handed ``handoff`` over: release what it holds for that."""

    def discard(self, handoff: Handoff) -> None:
        """The listener closes without accepting ``handoff``'s connection: free its segment."""

    def recovered(self, size: int) -> Sequence[Mapping]:
        """Segments of conversations whose two ends died, for the listener to accept first."""


@attrs.frozen
class Terms:
    """What both ends of one listener's connections agree on."""

    scheme: str
    name: str
    tag: str  #: a short word for the name, in the rendezvous socket's and the segments' names
    capacity: int
    spin: float
    mode: int
    capabilities: Capabilities
    uri: str  #: the listener's URI, with the options a connecting end must share
    sync: bool = False  #: write each sent message back to its file before publishing it

    @property
    def sockaddr(self) -> bytes:
        return os.fsencode(f"\0anyipc.{self.scheme}.{self.tag}")


def segment_owner(terms: Terms) -> bytes:
    """What a segment's header says after the magic: the listener it was made for."""
    return f"{terms.scheme}://{terms.tag}".encode().ljust(_OWNER_BYTES, b"\0")


def belongs_to(memory: memoryview, terms: Terms) -> bool:
    """True when the segment in ``memory`` is an anyipc segment made for ``terms``' listener."""
    end = len(MAGIC) + _OWNER_BYTES
    return len(memory) >= end and bytes(memory[:end]) == MAGIC + segment_owner(terms)


def _setup_line(terms: Terms, handoff: Handoff) -> bytes:
    return f"anyipc-{terms.scheme} 1 {terms.capacity} {handoff.token}\n".encode()


class ShmListener(Listener):
    """Accepts shared-memory connections; see the module docstring."""

    def __init__(
        self,
        terms: Terms,
        backend: Backend,
        sock: socket.socket,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(terms.capabilities, terms.uri)
        self._on_close = on_close
        self._terms = terms
        self._backend = backend
        self._sock = sock
        self._pending: dict[int, tuple[socket.socket, float]] = {}
        self._recovered = list(backend.recovered(segment_bytes(terms.capacity)))

    def _accept(self, deadline: Deadline) -> Channel:
        if self._recovered:
            return self._orphan(self._recovered.pop(0))
        while True:
            self._take_new_clients()
            for fd in list(self._pending):
                channel = self._try_setup(fd)
                if channel is not None:
                    return channel
            self._wait(deadline)

    def _take_new_clients(self) -> None:
        while True:
            try:
                client, _ = self._sock.accept()
            except BlockingIOError:
                return
            except OSError as exc:
                raise map_os_error(exc, f"accept on {self.address}") from exc
            client.setblocking(False)
            self._pending[client.fileno()] = (client, time.monotonic())

    def _try_setup(self, fd: int) -> Channel | None:
        """The channel of pending client ``fd`` once its setup line came; drop it if it failed."""
        client, since = self._pending[fd]
        try:
            line, fds = _receive_setup(client)
        except BlockingIOError:
            if time.monotonic() - since > SETUP_TIMEOUT_S:
                self._drop(fd, "no setup line in time")
            return None
        except OSError:
            self._drop(fd, None)
            return None
        try:
            channel = self._channel(client, line, fds)
        except ValueError as exc:
            self._drop(fd, str(exc))
            return None
        finally:
            for passed in fds:
                os.close(passed)
        del self._pending[fd]
        return channel

    def _channel(self, client: socket.socket, line: bytes, fds: list[int]) -> Channel:
        refusal = _refusal(client, self._terms.mode)
        if refusal:
            raise ValueError(refusal)
        handoff = _parse_setup(line, fds, self._terms)
        mapping = self._backend.attach(segment_bytes(self._terms.capacity), handoff)
        if not belongs_to(mapping.memory, self._terms):
            mapping.close()
            raise ValueError("the segment is not an anyipc segment of this version for us")
        return self._make_channel(mapping, client)

    def _orphan(self, mapping: Mapping) -> Channel:
        """A channel on a recovered segment: what its dead client sent, then its end."""
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        theirs.close()  # the client is gone: this end reads its end of file at once
        return self._make_channel(mapping, mine)

    def _make_channel(self, mapping: Mapping, sock: socket.socket) -> Channel:
        try:
            return ShmChannel(
                self._terms.capabilities,
                mapping,
                sock,
                capacity=self._terms.capacity,
                accepting=True,
                spin=self._terms.spin,
                sync=self._terms.sync,
                address=self.address,
                peer=None,
            )
        except BaseException:
            mapping.close()
            sock.close()
            raise

    def _drop(self, fd: int, reason: str | None) -> None:
        client, _ = self._pending.pop(fd)
        if reason:
            try:
                client.send(f"refused: {reason}\n".encode(), socket.MSG_DONTWAIT)
            except OSError:
                pass
        client.close()

    def _wait(self, deadline: Deadline) -> None:
        """Sleep until a client connects or a pending one speaks (or a pending one expires)."""
        poller = select.poll()
        for fd in (self._sock.fileno(), *self._pending, self._waker.fileno()):
            poller.register(fd, READABLE)
        step = deadline
        if self._pending:
            oldest = min(since for _, since in self._pending.values())
            expiry = Deadline(max(0.0, oldest + SETUP_TIMEOUT_S - time.monotonic()))
            if deadline.infinite or (expiry.remaining() or 0.0) < (deadline.remaining() or 0.0):
                step = expiry
        ready = poller.poll(step.poll_ms())
        if self._waker.woken:
            raise ChannelClosed("the listener was closed while accepting")
        if not ready and deadline.expired():
            raise Timeout("accept timed out")

    def _wait_fd(self) -> int:
        return self._sock.fileno()

    def _ready(self) -> bool:
        return bool(self._recovered)

    def _close(self) -> None:
        """Refuse every client not accepted yet, freeing the segments they made."""
        try:
            self._take_new_clients()
        except IPCError:
            pass  # the listening socket failed: the pending clients are all there is
        for fd in list(self._pending):
            client, _ = self._pending[fd]
            try:
                line, fds = _receive_setup(client)
            except OSError:
                fds = None  # it never said which segment it made
            if fds is not None:
                try:
                    self._backend.discard(_parse_setup(line, fds, self._terms))
                except ValueError:
                    for passed in fds:
                        os.close(passed)
            self._drop(fd, "the listener closed")
        for mapping in self._recovered:
            mapping.close()  # left for the next listener
        self._sock.close()
        if self._on_close is not None:
            self._on_close()


def _receive_setup(client: socket.socket) -> tuple[bytes, list[int]]:
    """The setup line and the descriptors passed with it; ``BlockingIOError`` if not there yet."""
    fds = array.array("i")
    message, ancillary, _, _ = client.recvmsg(
        _LINE_MAX,
        socket.CMSG_SPACE(4 * fds.itemsize),
        socket.MSG_DONTWAIT | socket.MSG_CMSG_CLOEXEC,
    )
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
    if not message:
        for fd in fds:
            os.close(fd)
        raise ConnectionResetError("the client left before its setup line")
    return message, list(fds)


def _parse_setup(line: bytes, fds: list[int], terms: Terms) -> Handoff:
    words = line.decode("ascii", "replace").split()
    if len(words) not in (3, 4) or words[0] != f"anyipc-{terms.scheme}" or words[1] != "1":
        raise ValueError("not an anyipc setup line of this version")
    if words[2] != str(terms.capacity):
        raise ValueError(f"the listener's rings hold size={terms.capacity} bytes, not {words[2]}")
    return Handoff(token=words[3] if len(words) == 4 else "", fds=tuple(fds))


def _refusal(client: socket.socket, mode: int) -> str | None:
    """Why the client on ``client`` may not connect under ``mode``, or ``None``."""
    _, uid, gid = _CREDENTIALS.unpack(
        client.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _CREDENTIALS.size)
    )
    if uid in (0, os.geteuid()) or mode & 0o006:
        return None
    if mode & 0o060 and gid == os.getegid():
        return None
    return f"uid {uid} may not connect (the listener's mode is {mode:03o})"


def shm_listen(
    terms: Terms, backend: Backend, on_close: Callable[[], None] | None = None
) -> ShmListener:
    """Listen on ``terms.sockaddr``; :class:`~anyipc.AddressInUse` when a live listener has it."""
    context = f"listen on {terms.uri}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        sock.setblocking(False)
        sock.bind(terms.sockaddr)
        sock.listen(socket.SOMAXCONN)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise AddressInUse(exc.errno, f"{context}: a live listener has that name") from exc
        raise listen_error(exc, context) from exc
    try:
        return ShmListener(terms, backend, sock, on_close)
    except BaseException:
        sock.close()
        raise


def shm_connect(terms: Terms, backend: Backend, deadline: Deadline) -> Channel:
    """Make a segment, connect to the listener and hand it over; see the module docstring."""
    context = f"connect to {terms.uri}"
    sock = connect_stream(socket.AF_UNIX, terms.sockaddr, deadline, context)
    try:
        mapping, handoff = backend.create(terms.tag, segment_bytes(terms.capacity))
    except BaseException:
        sock.close()
        raise
    try:
        mapping.memory[: len(MAGIC)] = MAGIC
        owner = segment_owner(terms)
        mapping.memory[len(MAGIC) : len(MAGIC) + len(owner)] = owner
        line = _setup_line(terms, handoff)
        ancillary = (
            [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", handoff.fds).tobytes())]
            if handoff.fds
            else []
        )
        try:
            sock.sendmsg([line], ancillary, socket.MSG_NOSIGNAL)
        except OSError as exc:
            raise ConnectionLost(f"{context}: the listener went away ({exc.strerror})") from exc
        finally:
            backend.done(handoff)
        return ShmChannel(
            terms.capabilities,
            mapping,
            sock,
            capacity=terms.capacity,
            accepting=False,
            spin=terms.spin,
            sync=terms.sync,
            address=None,
            peer=terms.uri,
        )
    except BaseException:
        mapping.close()
        sock.close()
        raise
