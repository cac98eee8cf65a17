"""What a shared-memory client tells the listener: the terms both ends share, and how it says so.

A connecting end makes the segment, marks its header (:data:`MAGIC`, then
the listener it is for: :func:`belongs_to`), and sends one setup line on the
rendezvous socket (see :mod:`anyipc._shmlink`)::

    anyipc-<scheme> 2 <capacity> <protocol> [<token>]

with descriptors attached (``SCM_RIGHTS``): the segment's, where the
backend has one (:class:`Handoff`), then, in the locked protocol, the
connection's ring lock file (:mod:`anyipc._shmlock`).  The token names a
segment that has no descriptor (a SysV id).

Both ends must agree on each ring's ``size`` (the capacity) and on the
``protocol`` that publishes its messages: the two protocols do not exclude
each other, so one end on each would tear messages.  A listener's address
names both unless they are the defaults, and :func:`parse_setup` refuses a
line that differs, saying what the listener uses.
"""

from __future__ import annotations

import array
import os
import socket

import attrs

from anyipc._capabilities import Capabilities
from anyipc._shmlock import LOCK_FREE_PROTOCOL, LOCKED_PROTOCOL

__all__ = [
    "MAGIC",
    "Handoff",
    "Terms",
    "belongs_to",
    "mark_segment",
    "parse_setup",
    "receive_setup",
    "send_setup",
]

MAGIC = b"anyipc-shm-segment\0\0\0\0\0\0\0\0\0\0\0\0\0\x01"  # 32 bytes, the last the version
_OWNER_BYTES = 96  #: the segment header's field naming its listener (scheme://name, NUL-padded)
_VERSION = "2"  #: of the setup line
_LINE_MAX = 256
_FDS_MAX = 4  #: descriptors a setup line may carry


@attrs.frozen
class Handoff:
    """What the connecting end tells the listener about the segment it made."""

    token: str = ""  #: a word naming the segment, where it has a name (a SysV id)
    fds: tuple[int, ...] = ()  #: descriptors to pass, where the segment has one


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
    protocol: str = LOCK_FREE_PROTOCOL  #: how the rings publish (see anyipc._shmlock)

    @property
    def locked(self) -> bool:
        """True when the rings run the locked protocol (with a ring lock file)."""
        return self.protocol == LOCKED_PROTOCOL

    @property
    def sockaddr(self) -> bytes:
        return os.fsencode(f"\0anyipc.{self.scheme}.{self.tag}")


def _owner(terms: Terms) -> bytes:
    """What a segment's header says after the magic: the listener it was made for."""
    return f"{terms.scheme}://{terms.tag}".encode().ljust(_OWNER_BYTES, b"\0")


def mark_segment(memory: memoryview, terms: Terms) -> None:
    """Write the header of a new segment for ``terms``' listener."""
    header = MAGIC + _owner(terms)
    memory[: len(header)] = header


def belongs_to(memory: memoryview, terms: Terms) -> bool:
    """True when the segment in ``memory`` is an anyipc segment made for ``terms``' listener."""
    end = len(MAGIC) + _OWNER_BYTES
    return len(memory) >= end and bytes(memory[:end]) == MAGIC + _owner(terms)


def send_setup(
    sock: socket.socket, terms: Terms, handoff: Handoff, lock_fd: int | None = None
) -> None:
    """Send the setup line with the segment's descriptors and the ring lock file's; ``OSError``."""
    words = (f"anyipc-{terms.scheme}", _VERSION, str(terms.capacity), terms.protocol, handoff.token)
    fds = (*handoff.fds, *([] if lock_fd is None else [lock_fd]))
    ancillary = (
        [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds).tobytes())] if fds else []
    )
    sock.sendmsg([(" ".join(words) + "\n").encode()], ancillary, socket.MSG_NOSIGNAL)


def receive_setup(client: socket.socket) -> tuple[bytes, list[int]]:
    """The setup line and the descriptors passed with it; ``BlockingIOError`` if not there yet."""
    fds = array.array("i")
    message, ancillary, _, _ = client.recvmsg(
        _LINE_MAX,
        socket.CMSG_SPACE(_FDS_MAX * fds.itemsize),
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


def parse_setup(line: bytes, fds: list[int], terms: Terms) -> tuple[Handoff, int | None]:
    """The client's handoff, and the ring lock file it passed last (locked protocol only).

    Raises ``ValueError`` saying why the client cannot be accepted.  Every
    descriptor in ``fds`` stays the caller's to close.
    """
    words = line.decode("ascii", "replace").split()
    if len(words) not in (4, 5) or words[0] != f"anyipc-{terms.scheme}" or words[1] != _VERSION:
        raise ValueError("not an anyipc setup line of this version")
    if words[2] != str(terms.capacity):
        raise ValueError(f"the listener's rings hold size={terms.capacity} bytes, not {words[2]}")
    if words[3] != terms.protocol:
        raise ValueError(f"the listener's rings use protocol={terms.protocol}, not {words[3]}")
    lock_fd = None
    if terms.locked:
        if not fds:
            raise ValueError("the client passed no ring lock file")
        lock_fd, fds = fds[-1], fds[:-1]
    return Handoff(token=words[4] if len(words) == 5 else "", fds=tuple(fds)), lock_fd
