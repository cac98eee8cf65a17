"""``pipe://`` — an anonymous pipe: a one-way byte stream to a related process.

Verbs:

* ``pair("pipe://")`` creates a pipe and returns ``(write end, read end)``:
  the first sends, the second receives (``recv`` on the write end and
  ``send`` on the read end raise :class:`~anyipc.NotSupported`).
* ``connect("pipe://fd/N")`` adopts descriptor ``N``, a pipe end this
  process inherited; whether it sends or receives comes from the
  descriptor's access mode.  The channel owns the descriptor from then on
  (closing it closes ``N``; nothing else in the process may use it).
  Errors: ``N`` not open here, :class:`~anyipc.ConnectionLost`; ``N`` not a
  pipe or FIFO, or open for both reading and writing,
  :class:`~anyipc.InvalidAddress` (the descriptor is then left as it was).

The hand-off.  Each end's ``address`` is ``pipe://fd/N`` and its ``fds``
is ``(N,)``: start a child with ``subprocess.Popen(..., pass_fds=end.fds)``
(or the ``fork`` start method), give it the address (argv, environment),
and close the parent's copy right away; the child calls
``anyipc.connect(address)``.  Descriptors are created close-on-exec, so
only children that are passed them inherit them, and an adopted descriptor
is made close-on-exec again, so that the child's own children do not keep
the pipe open by accident (a forgotten copy of the write end means the
reader never sees the end); the flag is the descriptor's own and changes
nothing for other processes.  Descriptors stay in blocking mode, so a
child that is not anyipc (``cat``, ``sh -c 'echo hi >&5'``) can use them
as plain descriptors; see :mod:`anyipc._fdstream` for how anyipc still
keeps timeouts.  From its first ``send`` on, a write end also holds a
second descriptor of its pipe, its own non-blocking one (Linux's
``/proc/self/fd/N`` reopened, close-on-exec, never handed on), so that a
large send fills the pipe in one write instead of 4 KiB at a time;
closing the end closes both.

Semantics: a lossless, ordered byte stream.  The end of all writers (every
copy of the write end closed) is :class:`~anyipc.EndOfChannel` after all
data; a writer that was killed looks the same.  Writing with nobody
reading is :class:`~anyipc.ConnectionLost`, never SIGPIPE.  Writes of up to
``PIPE_BUF`` (4096) bytes are atomic when several processes share the
write end; give each writer its own pipe when messages are longer
(``framed+pipe://`` frames above 4092 bytes could interleave).
``framed+pipe://`` carries messages.
"""

from __future__ import annotations

import fcntl
import os
import stat

from anyipc import hookimpl
from anyipc._address import Address
from anyipc._capabilities import Addressing, Boundaries, Capabilities, Connection, Direction, Scope
from anyipc._channel import Channel
from anyipc._errors import InvalidAddress, map_os_error
from anyipc._fdstream import FdStream
from anyipc._inherited import (
    check_fd_location,
    fd_address,
    fd_number,
    fd_verbs,
    inherited_stat,
    keep_to_ourselves,
)
from anyipc._records import TransportSpec

CAPABILITIES = Capabilities(
    direction=Direction.SIMPLEX,
    boundaries=Boundaries.STREAM,
    connection=Connection.ORIENTED,
    lossless=True,
    ordered=True,
    intact=True,
    duplicate_free=True,
    scope=Scope.HOST,
    addressing=Addressing.INHERITED,
)


class PipeEnd(FdStream):
    """One end of an anonymous pipe; ``fds`` is what a child must inherit to adopt it."""

    def __init__(self, fd: int, address: Address, *, sending: bool) -> None:
        super().__init__(fd, CAPABILITIES, sending=sending, address=fd_address(address, fd))
        self.fds = (fd,)


def pair(address: Address) -> tuple[Channel, Channel]:
    """A new pipe: (write end, read end)."""
    try:
        read_fd, write_fd = os.pipe()
    except OSError as exc:
        raise map_os_error(exc, "create a pipe") from exc
    return PipeEnd(write_fd, address, sending=True), PipeEnd(read_fd, address, sending=False)


def connect(address: Address) -> Channel:
    """Adopt the inherited pipe end ``pipe://fd/N``; see the module docstring."""
    fd = fd_number(address.location)
    assert fd is not None  # the bare address only pairs
    uri = str(address)
    info = inherited_stat(fd, uri)
    if not stat.S_ISFIFO(info.st_mode):
        raise InvalidAddress(f"{uri}: descriptor {fd} is not a pipe")
    access = fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE
    if access == os.O_RDWR:
        raise InvalidAddress(
            f"{uri}: descriptor {fd} is open for reading and writing; a pipe end does one"
        )
    keep_to_ourselves(fd)
    return PipeEnd(fd, address, sending=access == os.O_WRONLY)


@hookimpl
def anyipc_transports() -> list[TransportSpec]:
    return [
        TransportSpec(
            scheme="pipe",
            description="anonymous pipe, write end to read end (pipe:// pairs, pipe://fd/N adopts)",
            capabilities=lambda address: CAPABILITIES,
            check_location=check_fd_location,
            test_address=lambda: "pipe://",
            connect=connect,
            pair=pair,
            verbs_for=fd_verbs,
        )
    ]
