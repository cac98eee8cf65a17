"""The locked ring protocol: control words travel under a lock the kernel frees with its holder.

The lock-free protocol of :mod:`anyipc._shmring` needs x86-64's store
order: elsewhere a consumer may see a ring's ``head`` before the record
under it.  The locked protocol keeps the ring's layout, records and code
(:class:`LockedRing` is a :class:`~anyipc._shmring.Ring`) and changes only
how the control words travel between the two processes.

The exchange.  A locked ring works on a private copy of the control block.
Every exchange of that copy with the shared one happens under the ring's
lock: this end stores the words it owns (the producer's ``head``,
``blocked`` and ``closed``; the consumer's ``tail`` and ``waiting``) and
loads the peer's.  The producer writes a record into its copy's free space,
then publishes it in one exchange, which also brings back ``tail`` and
``waiting``; the consumer exchanges to learn ``head`` when it knows of no
record, reads the records, and exchanges again to release their space,
which brings back ``blocked``.  Announcing a sleep (``waiting``,
``blocked``) and an orderly close are exchanges too.  So every publication
and every load that decides what is visible is under the lock, whose
release and acquire order the record's bytes before the ``head`` that
covers them, and the consumer's reads before the ``tail`` that frees them,
on any processor; and of "store my flag, then load your position" and
"store my position, then load your flag", one always sees the other's
store, so no wake-up is lost (the fences of the lock-free protocol then
have nothing left to order).

The lock.  Each connection has a lock file, an anonymous memory file
(``memfd_create``) that the connecting end makes and passes to the listener
beside the segment, the same for all three transports.  Each end opens it
as an open file description of its own (the listener reopens it through
``/proc/self/fd``: the passed descriptor shares the connecting end's, whose
locks would not exclude ours) and holds ring ``n`` with an
open-file-description write lock (``F_OFD_SETLK``) on byte ``n``.  The
kernel drops such a lock when the last descriptor of its description
closes, so also when its holder is killed inside the exchange: the
survivor takes it at once, and learns of the death from the socket as
before (a forked child's copy of the descriptor keeps the description, and
a lock it holds, alive, as it keeps the socket open).  Two ends in one
process exclude each other too.

Measured on x86-64 (CPython 3.11, a quiet machine), a lock and unlock
costs about 1.6 µs as two ``fcntl`` calls and 1.3 µs as a SysV semaphore
with ``SEM_UNDO``, which the kernel also releases for a dead holder.  The
semaphore was not chosen: it outlives a crash of both ends (it cannot be
removed while in use, unlike a segment) and would need reclaiming.  A
message costs one exchange to publish and one or two to receive: a few
microseconds each.

Waiting for the lock.  An exchange never sleeps in the kernel for the lock
(a stopped holder would hang it): it polls, yielding and then napping, for
at most :data:`PATIENCE_S`.  A lock still held then makes the operation
report "not now", which the channel handles as it handles an empty or full
ring: a record is not published (``try_write`` writes nothing), a record is
not seen, a sleep is not announced (the channel's sleeps are sliced, so
that costs one slice at most), and released space stays unpublished until
the next exchange.  Nothing is lost, torn or duplicated.
"""

from __future__ import annotations

import errno
import fcntl
import functools
import os
import struct
import threading
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

from anyipc._shmring import CONSUMER_WORDS, CONTROL_BYTES, PRODUCER_WORDS, Ring

__all__ = ["LOCKED_PROTOCOL", "LOCK_FREE_PROTOCOL", "PATIENCE_S", "LockedRing", "RingLock"]

LOCK_FREE_PROTOCOL = "lockfree"  #: the ``protocol`` option's name for :mod:`anyipc._shmring` alone
LOCKED_PROTOCOL = "locked"  #: the ``protocol`` option's name for this module's protocol
PATIENCE_S = 0.05  #: the longest an exchange waits for a lock the peer holds
_NAP_S = 0.001  #: the longest pause between two attempts to take the lock
_FLOCK = struct.Struct("@hhqqi0q")  # struct flock: l_type, l_whence, l_start, l_len, l_pid
_TAKE = tuple(_FLOCK.pack(fcntl.F_WRLCK, os.SEEK_SET, ring, 1, 0) for ring in (0, 1))
_GIVE = tuple(_FLOCK.pack(fcntl.F_UNLCK, os.SEEK_SET, ring, 1, 0) for ring in (0, 1))
_BUSY = (errno.EAGAIN, errno.EACCES)
_HEAD, _TAIL = PRODUCER_WORDS[0], CONSUMER_WORDS[0]
_Taken = TypeVar("_Taken")


class RingLock:
    """This end's hold on a connection's lock file: byte ``n`` is ring ``n``'s lock.

    Owns its descriptor (an open file description of this end's own) and
    closes it in :meth:`close`.  A description's locks do not exclude each
    other, so a thread lock beside each byte keeps this end's threads out
    of each other's exchanges (``anyipc.wait`` looks at a ring beside
    ``recv``).
    """

    __slots__ = ("_fd", "_threads")

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._threads = (threading.Lock(), threading.Lock())

    @classmethod
    def create(cls) -> RingLock:
        """A new lock file, for the connecting end, which passes :meth:`fileno` to the listener."""
        return cls(os.memfd_create("anyipc-ring-lock", os.MFD_CLOEXEC))

    @classmethod
    def join(cls, passed: int) -> RingLock:
        """This end's own hold on the lock file the peer passed as ``passed`` (still the caller's).

        Raises ``ValueError`` when ``passed`` is not a memory file (only
        those have seals) or cannot be opened again.
        """
        try:
            fcntl.fcntl(passed, fcntl.F_GET_SEALS)
            return cls(os.open(f"/proc/self/fd/{passed}", os.O_RDWR | os.O_CLOEXEC))
        except OSError as exc:
            raise ValueError(f"the client passed no ring lock file ({exc.strerror})") from exc

    def fileno(self) -> int:
        return self._fd

    def acquire(self, ring: int) -> bool:
        """Take ring ``ring``'s lock; ``False`` when it stayed held for :data:`PATIENCE_S`."""
        threads = self._threads[ring]
        if not threads.acquire(timeout=PATIENCE_S):
            return False
        if self._attempt(ring) or self._wait(ring):
            return True
        threads.release()
        return False

    def release(self, ring: int) -> None:
        """Give back ring ``ring``'s lock."""
        try:
            fcntl.fcntl(self._fd, fcntl.F_OFD_SETLK, _GIVE[ring])
        finally:
            self._threads[ring].release()

    def close(self) -> None:
        """Close the descriptor (dropping any lock it holds); idempotent."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def _attempt(self, ring: int) -> bool:
        try:
            fcntl.fcntl(self._fd, fcntl.F_OFD_SETLK, _TAKE[ring])
        except OSError as exc:
            if exc.errno in _BUSY:
                return False
            raise
        return True

    def _wait(self, ring: int) -> bool:
        """Try again, yielding to the holder at first, then napping, until the patience ends."""
        give_up = time.monotonic() + PATIENCE_S
        pause = 0.0
        while time.monotonic() < give_up:
            time.sleep(pause)
            if self._attempt(ring):
                return True
            pause = min(2 * pause + 1e-5, _NAP_S)
        return False


class LockedRing(Ring):
    """A :class:`~anyipc._shmring.Ring` on the locked protocol (see the module docstring).

    ``lock`` guards ring ``number`` (0 or 1: the same for both ends of the
    ring); ``producing`` says whether this end is the ring's producer.  The
    methods and their meaning are the ring's; when the peer holds the lock
    too long they report "not now" (no room, no record) as described above.
    :meth:`consumer_waiting` and :meth:`producer_blocked` need no exchange
    of their own: they read the flag that the exchange publishing the
    records, or releasing their space, brought back.  The ring does not own
    ``lock``.
    """

    __slots__ = ("_lock", "_mine", "_number", "_shared", "_theirs")

    def __init__(
        self, memory: memoryview, capacity: int, lock: RingLock, number: int, *, producing: bool
    ) -> None:
        super().__init__(memory, capacity)
        self._lock = lock
        self._number = number
        self._mine: tuple[int, ...] = PRODUCER_WORDS if producing else CONSUMER_WORDS
        self._theirs: tuple[int, ...] = CONSUMER_WORDS if producing else PRODUCER_WORDS
        self._shared = self._words
        private = memoryview(bytearray(CONTROL_BYTES)).cast("Q")
        for index in self._mine:
            private[index] = self._shared[index]  # only this end stores them: exact without a lock
        if not producing:
            private[_HEAD] = private[_TAIL]  # no record known until the first exchange
        self._words = private
        self._exchange()
        self._cached = private[_TAIL]

    def release(self) -> None:
        super().release()
        self._shared.release()

    def _exchange(self) -> bool:
        """Publish this end's words and load the peer's under the lock; ``False`` if it was held."""
        if not self._lock.acquire(self._number):
            return False
        shared, private = self._shared, self._words
        try:
            for index in self._mine:
                shared[index] = private[index]
            for index in self._theirs:
                private[index] = shared[index]
        finally:
            self._lock.release(self._number)
        return True

    # -- the producer -----------------------------------------------------------------
    def try_write_many(
        self,
        payloads: Sequence[bytes | memoryview],
        before_publishing: Callable[[], None] | None = None,
    ) -> int:
        start = self._words[_HEAD]
        written = super().try_write_many(payloads, before_publishing)
        if written and not self._exchange():
            self._words[_HEAD] = start  # never published: as if there had been no room
            return 0
        return written

    def _place(self, head: int, payload: bytes | memoryview) -> int | None:
        placed = super()._place(head, payload)
        if placed is None and self._exchange():  # the tail last seen may be old: look again
            placed = super()._place(head, payload)
        return placed

    def has_room(self, size: int) -> bool:
        self._exchange()
        return super().has_room(size)

    def set_blocked(self, blocked: bool) -> None:
        super().set_blocked(blocked)
        self._exchange()

    def close_in_order(self) -> None:
        super().close_in_order()
        self._exchange()

    # -- the consumer -----------------------------------------------------------------
    def readable(self) -> bool:
        return super().readable() or (self._exchange() and super().readable())

    def try_read_many(self, limit: int) -> list[bytes]:
        return self._consume(functools.partial(super().try_read_many, limit))

    def try_read_view(self) -> memoryview | None:
        return self._consume(super().try_read_view)

    def _consume(self, take: Callable[[], _Taken]) -> _Taken:
        """``take()``, learning ``head`` first if no record is known, publishing ``tail`` after."""
        if not super().readable():
            self._exchange()
        tail = self._words[_TAIL]
        taken = take()
        if self._words[_TAIL] != tail:
            self._exchange()
        return taken

    def set_waiting(self, waiting: bool) -> None:
        super().set_waiting(waiting)
        self._exchange()

    @property
    def closed_in_order(self) -> bool:
        self._exchange()
        return super().closed_in_order
