"""``sysvshm://key`` — the shared-memory channel over System V segments (``shmget``/``shmat``).

The same channel as ``shm://`` (rings and their protocols, waiting, ends,
who may connect: see :mod:`anyipc.transports.shm` and
:mod:`anyipc._shmspec`), with each connection's segment made the classic
way: ``connect`` calls ``shmget(IPC_PRIVATE, ..., mode)`` and ``shmat``,
and tells the listener the segment's id; the listener attaches it (the
kernel checks ``mode``, default ``600``, against its user) and at once
marks it for removal (``shmctl(IPC_RMID)``), so the kernel frees it when
both ends have detached, also after a crash.  A SysV segment has no
descriptor: in the locked protocol the connection's lock is a memory file
passed beside its id, as for the other transports (:mod:`anyipc._shmlock`).

The key names the listener (``sysvshm://0x1234abcd`` or decimal, a 32-bit
number other than 0; ``listen("sysvshm://")`` picks a random one): the
rendezvous socket is ``@anyipc.sysvshm.<key as 8 hex digits>``.

Segments never accepted.  Until the listener has attached it, a segment is
not marked for removal, so that a client may send and close before the
listener accepts and nothing is lost (like data in a TCP backlog).  A
listener that closes removes the segments of the clients it did not
accept; one that was killed leaves them (``ipcs -m`` shows them,
unattached), and the next ``listen`` of the key removes every unattached
segment of this user whose header names that listener, and no other.
"""

from __future__ import annotations

import errno
import os
import re
import secrets

import sysv_ipc

from anyipc import hookimpl
from anyipc._address import Address
from anyipc._errors import PermissionDenied, TransportUnavailable
from anyipc._owner import mode_bits
from anyipc._records import TransportSpec
from anyipc._shmsetup import Handoff, Terms, belongs_to
from anyipc._shmspec import MODE, ShmFlavour, shm_transport

SCHEME = "sysvshm"
KEY_MAX = 0xFFFFFFFF
_KEY = re.compile(r"(0[xX][0-9a-fA-F]{1,8}|[0-9]{1,10})\Z")
_SHM_DEST = 0o1000  #: the mode bit of a segment marked for removal
_TABLE = "/proc/sysvipc/shm"


def _check_location(location: str) -> str | None:
    if not location:
        return None  # listen picks a random key
    if not _KEY.match(location):
        return f"{location!r} is not a key: write a number, decimal or 0x-hex (sysvshm://0x1234)"
    key = int(location, 0) if location[:2].lower() == "0x" else int(location)
    if not 0 < key <= KEY_MAX:
        return f"a key is a 32-bit number other than 0 (IPC_PRIVATE), not {location}"
    return None


def _fresh_key() -> str:
    return f"{secrets.randbelow(KEY_MAX) + 1:#010x}"


class AttachedSegment:
    """A SysV segment attached to this process (:class:`~anyipc._shmchannel.Mapping`)."""

    def __init__(self, segment: sysv_ipc.SharedMemory) -> None:
        self._segment = segment
        self.memory = memoryview(segment)

    def sync(self) -> None:
        """Nothing: memory that no file backs needs no writing back."""

    def close(self) -> None:
        self.memory.release()
        try:
            self._segment.detach()
        except sysv_ipc.Error:
            pass  # detached already


class SysvSegments:
    """Segments from ``shmget(IPC_PRIVATE)``, removed once the listener has them."""

    def __init__(self, mode: int) -> None:
        self._mode = mode

    def create(self, tag: str, size: int) -> tuple[AttachedSegment, Handoff]:
        try:
            segment = sysv_ipc.SharedMemory(
                sysv_ipc.IPC_PRIVATE,
                sysv_ipc.IPC_CREX,
                mode=self._mode,
                size=size,
                init_character=b"\0",
            )
        except sysv_ipc.PermissionsError as exc:
            raise PermissionDenied(errno.EACCES, f"shmget of {size} bytes: {exc}") from exc
        except (sysv_ipc.Error, OSError, ValueError) as exc:
            raise TransportUnavailable(
                f"cannot create a SysV segment of {size} bytes ({exc}); see kernel.shmmax, "
                "kernel.shmall and kernel.shmmni"
            ) from exc
        return AttachedSegment(segment), Handoff(token=str(segment.id))

    def attach(self, size: int, handoff: Handoff) -> AttachedSegment:
        if not handoff.token.isdigit():
            raise ValueError("the client named no segment")
        try:
            segment = sysv_ipc.attach(int(handoff.token))
        except sysv_ipc.Error as exc:
            raise ValueError(f"cannot attach segment {handoff.token}: {exc}") from exc
        try:
            if segment.size != size:
                raise ValueError(f"segment {handoff.token} is not {size} bytes")
            segment.remove()
        except BaseException:
            segment.detach()
            raise
        return AttachedSegment(segment)

    def done(self, handoff: Handoff) -> None:
        """Nothing: the segment stays until the listener has attached it (see the module)."""

    def recovered(self, size: int) -> list[AttachedSegment]:
        return []  # what a dead client sent to a dead listener is not kept (see the module)

    def discard(self, handoff: Handoff) -> None:
        if handoff.token.isdigit():
            try:
                sysv_ipc.remove_shared_memory(int(handoff.token))
            except sysv_ipc.Error:
                pass  # gone already


def _segments(address: Address) -> SysvSegments:
    return SysvSegments(mode_bits(address.get(MODE)))


def _reclaim(terms: Terms) -> None:
    """Remove this user's unattached segments made for ``terms``' listener (see the module)."""
    for shmid in _unattached_segments():
        try:
            segment = sysv_ipc.attach(shmid)
        except sysv_ipc.Error:
            continue
        try:
            ours = not segment.mode & _SHM_DEST and belongs_to(memoryview(segment), terms)
            if ours and segment.number_attached == 1:
                segment.remove()
        finally:
            segment.detach()


def _unattached_segments() -> list[int]:
    """Ids of IPC_PRIVATE segments this user created that no process has attached."""
    try:
        with open(_TABLE) as table:
            rows = [line.split() for line in table.readlines()[1:]]
    except OSError:
        return []
    uid = str(os.geteuid())
    # columns: key shmid perms size cpid lpid nattch uid gid cuid ...
    return [int(row[1]) for row in rows if row[0] == "0" and row[6] == "0" and row[9] == uid]


def _available() -> str | None:
    if not os.path.exists(_TABLE):
        return "the kernel has no System V shared memory (CONFIG_SYSVIPC)"
    return None


@hookimpl
def anyipc_transports() -> list[TransportSpec]:
    return [
        shm_transport(
            ShmFlavour(
                scheme=SCHEME,
                description="System V shared memory rings (shmget/shmat), one segment per "
                "connection",
                backend=_segments,
                check_location=_check_location,
                fresh_name=_fresh_key,
                reclaim=_reclaim,
                available=_available,
            )
        )
    ]
