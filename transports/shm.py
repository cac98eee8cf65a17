"""``shm://name`` — POSIX shared memory: the fastest channel between two processes of one host.

``listen("shm://frames")`` accepts connections; ``connect("shm://frames")``
opens one.  Each connection has its own segment holding one ring per
direction (see :mod:`anyipc._shmring` for the ring and why a message is
never torn, :mod:`anyipc._shmchannel` for waiting and the end of a
connection, :mod:`anyipc._shmlink` for the rendezvous and who may connect).

Taxonomy: DUPLEX, MESSAGE, ORIENTED, lossless, ordered, intact,
duplicate-free, HOST, NAMED, with an end of channel: an orderly close is
:class:`~anyipc.EndOfChannel` after every message, a peer that died is
:class:`~anyipc.ConnectionLost` (at once: the kernel closes its socket).
There is no ``bind``: a ring has one writer, and several writers would need
a lock that a killed writer could leave held; for many senders and one
receiver use ``posixmq://``.

Segments.  ``connect`` creates the segment with ``shm_open`` under the name
``/anyipc-shm.<name>.<pid>.<random>`` (mode ``0600``), removes the name
at once (``shm_unlink``), and passes the descriptor to the listener over
the rendezvous socket.  So a segment has no name in ``/dev/shm`` beyond
that moment, and the kernel frees it when both ends have closed or died.
A process killed in that moment leaves its name behind: the next
``listen`` of the listener's name removes such names whose creator is dead
(never one of a live process).

A connection takes twice ``size`` (default 4 MiB) plus 4.5 KiB of
``/dev/shm``, touched as used.  A full ring makes ``send`` wait (or time
out) and lose nothing.  ``anyipc.wait`` works on these channels.

Names: 1 to 64 letters, digits, ``.``, ``_`` and ``-``; ``listen("shm://")``
picks a fresh one.  Options (``size``, ``spin_us``, ``mode``, ``protocol``,
``connect_timeout``): see :mod:`anyipc._shmspec`.

Protocols.  On x86-64 a message is published by one ordered store, with
no lock (``protocol=lockfree``, the default there); on other processors,
whose stores may become visible out of order, every control word of the
rings is exchanged under a lock the kernel frees if its holder dies
(``protocol=locked``, the default there, and selectable on x86-64 too).
Both ends must use the same protocol; see :mod:`anyipc._shmring` and
:mod:`anyipc._shmlock`.  The transport is available on every processor.
"""

from __future__ import annotations

import errno
import os
import re
import secrets

import posix_ipc

from anyipc import hookimpl
from anyipc._address import Address
from anyipc._errors import PermissionDenied, TransportUnavailable, map_os_error
from anyipc._owner import LOCK_DIR
from anyipc._records import TransportSpec
from anyipc._shmsetup import Handoff, Terms
from anyipc._shmspec import MappedFile, ShmFlavour, shm_transport

SCHEME = "shm"
NAME_MAX = 64
_NAME = re.compile(r"[A-Za-z0-9._-]+\Z")


def check_name(location: str) -> str | None:
    """Why ``location`` cannot name a shared-memory listener, or ``None`` (empty: pick one)."""
    if location and (len(location) > NAME_MAX or not _NAME.match(location)):
        return (
            f"a name is 1 to {NAME_MAX} characters of letters, digits, '.', '_' and '-' "
            f"(not {location!r})"
        )
    return None


def fresh_name() -> str:
    """A listener name no other process uses."""
    return f"anyipc-{os.getpid()}-{secrets.token_hex(8)}"


class PosixSegments:
    """Segments from ``shm_open``, unlinked as soon as they exist."""

    def create(self, tag: str, size: int) -> tuple[MappedFile, Handoff]:
        segment = f"/anyipc-shm.{tag}.{os.getpid()}.{secrets.token_hex(4)}"
        try:
            memory = posix_ipc.SharedMemory(segment, posix_ipc.O_CREX, mode=0o600, size=size)
        except posix_ipc.PermissionsError as exc:
            raise PermissionDenied(errno.EACCES, f"shm_open {segment}: permission denied") from exc
        except (posix_ipc.Error, OSError, ValueError) as exc:
            raise TransportUnavailable(f"cannot create a segment of {size} bytes: {exc}") from exc
        try:
            memory.unlink()
            fd = os.dup(memory.fd)
        finally:
            memory.close_fd()
        try:
            return MappedFile(fd, size), Handoff(fds=(fd,))
        except OSError as exc:
            os.close(fd)
            raise map_os_error(exc, f"mmap a segment of {size} bytes") from exc

    def attach(self, size: int, handoff: Handoff) -> MappedFile:
        if len(handoff.fds) != 1:
            raise ValueError("the client passed no segment descriptor")
        fd = handoff.fds[0]
        if os.fstat(fd).st_size != size:
            raise ValueError(f"the segment is not {size} bytes")
        return MappedFile(fd, size)

    def done(self, handoff: Handoff) -> None:
        for fd in handoff.fds:
            os.close(fd)

    def discard(self, handoff: Handoff) -> None:
        self.done(handoff)  # the descriptor was the segment's last reference

    def recovered(self, size: int) -> list[MappedFile]:
        return []  # a segment without a name is gone with its two ends


def _segments(address: Address) -> PosixSegments:
    return PosixSegments()


def _reclaim(terms: Terms) -> None:
    """Remove segment names of this listener's name left by processes that died."""
    prefix = f"anyipc-shm.{terms.name}."
    try:
        entries = os.listdir(LOCK_DIR)
    except OSError:
        return
    for entry in entries:
        if not entry.startswith(prefix):
            continue
        pid = entry[len(prefix) :].partition(".")[0]
        if pid.isdigit() and not _alive(int(pid)):
            try:
                posix_ipc.unlink_shared_memory("/" + entry)
            except posix_ipc.Error:
                pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process: alive
    return True


def _available() -> str | None:
    if not os.path.isdir(LOCK_DIR):
        return f"no POSIX shared memory here ({LOCK_DIR} is missing)"
    return None


@hookimpl
def anyipc_transports() -> list[TransportSpec]:
    return [
        shm_transport(
            ShmFlavour(
                scheme=SCHEME,
                description="POSIX shared memory rings: the fastest channel on one host",
                backend=_segments,
                check_location=check_name,
                fresh_name=fresh_name,
                reclaim=_reclaim,
                available=_available,
            )
        )
    ]
