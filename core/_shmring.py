"""A single-producer, single-consumer ring of whole messages in shared memory.

One ring carries messages in one direction between two processes that map
the same memory.  It is a *control block* followed by a *data area*::

    control block (256 bytes, four 64-byte cache lines, 8-byte words):
      word  0  head       bytes ever written (the producer's, only it stores)
      word  8  tail       bytes ever consumed (the consumer's)
      word 16  waiting    1 while the consumer sleeps or is about to (the consumer's)
      word 24  blocked    1 while the producer sleeps for room (the producer's)
      word 25  closed     1 once the producer closed in order (the producer's)
    data area (capacity bytes, a power of two)

A record is an 8-byte length word followed by the payload, padded to a
multiple of 8 bytes; records follow each other at ``head`` modulo the
capacity, and a payload may wrap around the end of the data area (the
length word never does: positions and the capacity are multiples of 8).

Publication.  The producer writes the record, then publishes it by storing
the new ``head``; the consumer reads records up to the ``head`` it loaded,
then releases their space by storing the new ``tail``.  Every control word
is stored and loaded as one aligned 8-byte access through a
``memoryview.cast("Q")`` item (``struct.pack_into`` writes byte by byte
and can expose half a value).  On x86-64 the processor never makes a store
visible before an earlier one (total store order), so a consumer that sees
a ``head`` also sees the record below it: ``head`` is the commit marker.  A
producer killed in the middle of a record never published it, so a
consumer never sees a torn message.  :data:`LOCK_FREE` says whether this
machine gives that ordering: this is the *lock-free protocol*.

Other processors may make the head visible before the record under it, so
there the *locked protocol* runs (:class:`anyipc._shmlock.LockedRing`, also
selectable on x86-64): the same records, layout and code, with the control
words exchanged under a lock both processes take, whose release and acquire
order the record before the head on any processor.

Sleeping without losing a wake-up.  A consumer that found the ring empty
stores ``waiting = 1``, issues a full memory fence, and loads ``head``
again before it sleeps; a producer stores ``head``, fences, and loads
``waiting`` to decide whether to ring the doorbell.  One of the two then
sees the other's store (the store-load order that total store order alone
does not give is what the fences provide; see :func:`fence`).  ``blocked``
works the same way for a producer waiting for room.
"""

from __future__ import annotations

import platform
import threading
from collections.abc import Callable, Sequence

__all__ = [
    "CONSUMER_WORDS",
    "CONTROL_BYTES",
    "CorruptRing",
    "LOCK_FREE",
    "LOCK_FREE_MACHINES",
    "PRODUCER_WORDS",
    "RECORD_HEADER",
    "Ring",
    "capacity_problem",
    "fence",
    "ring_bytes",
]

CONTROL_BYTES = 256
RECORD_HEADER = 8
_HEAD, _TAIL, _WAITING, _BLOCKED, _CLOSED = 0, 8, 16, 24, 25
#: the control words only the producer stores, its position (head) first
PRODUCER_WORDS = (_HEAD, _BLOCKED, _CLOSED)
#: the control words only the consumer stores, its position (tail) first
CONSUMER_WORDS = (_TAIL, _WAITING)
MIN_CAPACITY = 4096
MAX_CAPACITY = 1 << 30

#: The machines (``uname -m``) whose stores become visible in program order (x86-64's
#: total store order).
LOCK_FREE_MACHINES = ("x86_64", "amd64")
#: True where the lock-free protocol holds: this is one of :data:`LOCK_FREE_MACHINES`.
LOCK_FREE = platform.machine().lower() in LOCK_FREE_MACHINES

_FENCE = threading.Lock()


def fence() -> None:
    """A full memory fence: stores before it are visible to loads after it.

    CPython's lock takes and releases a semaphore with an atomic
    read-modify-write instruction, which on x86-64 orders every earlier
    store before every later load (a ``lock``-prefixed instruction).
    """
    _FENCE.acquire()
    _FENCE.release()


def ring_bytes(capacity: int) -> int:
    """The bytes one ring of ``capacity`` takes (control block and data area)."""
    return CONTROL_BYTES + capacity


def capacity_problem(capacity: int) -> str | None:
    """Why ``capacity`` cannot be a ring's data area, or ``None``."""
    if capacity < MIN_CAPACITY or capacity > MAX_CAPACITY or capacity & (capacity - 1):
        return f"must be a power of two from {MIN_CAPACITY} to {MAX_CAPACITY} bytes"
    return None


class CorruptRing(Exception):
    """The ring's control words or a length word are impossible: the peer broke the protocol.

    The consumer raises it for a tail that is not 8-byte aligned, a head
    more than the capacity past the tail (or behind it), and a length word
    larger than the largest message or reaching past the head: so a
    scribbled ring yields this error, or records of at most
    ``max_message`` bytes, and never more records than the ring can hold.
    """


def _padded(size: int) -> int:
    return (size + 7) & ~7


class Ring:
    """One direction of a shared-memory channel; see the module docstring.

    ``memory`` is a writable view of exactly :func:`ring_bytes` bytes,
    aligned to 8 bytes.  Each process uses a ring either as its producer or
    as its consumer, never both; calls are not thread-safe (the channel
    serialises them).
    """

    __slots__ = (
        "_cached",
        "_data",
        "_lent",
        "_mask",
        "_slots",
        "_words",
        "capacity",
        "max_message",
    )

    def __init__(self, memory: memoryview, capacity: int) -> None:
        self.capacity = capacity
        self.max_message = capacity - RECORD_HEADER  #: the largest payload that fits
        self._mask = capacity - 1
        self._words = memory[:CONTROL_BYTES].cast("Q")
        self._data = memory[CONTROL_BYTES : CONTROL_BYTES + capacity]
        self._slots = self._data.cast("Q")  # the data area as 8-byte words, for length words
        # the producer's last tail, or the consumer's last head (the tail: nothing known yet)
        self._cached = self._words[_TAIL]
        self._lent: tuple[memoryview, int] | None = None  # a view handed out, and its end

    def release(self) -> None:
        """Drop the views into the shared memory (before it is unmapped)."""
        self.release_view()
        self._words.release()
        self._slots.release()
        self._data.release()

    # -- the producer -----------------------------------------------------------------
    def try_write(
        self, payload: bytes | memoryview, before_publishing: Callable[[], None] | None = None
    ) -> bool:
        """Write and publish one record; ``False`` when the ring has no room for it yet.

        ``before_publishing``, if given, runs between writing the record and
        publishing it (to write a file-backed record back first).
        """
        return self.try_write_many((payload,), before_publishing) == 1

    def try_write_many(
        self,
        payloads: Sequence[bytes | memoryview],
        before_publishing: Callable[[], None] | None = None,
    ) -> int:
        """Write as many of ``payloads`` as fit, in order, and publish them at once.

        Returns how many were written (0: no room for the first yet).
        """
        words = self._words
        head = start = words[_HEAD]
        for payload in payloads:
            placed = self._place(head, payload)
            if placed is None:
                break
            head = placed
        if head != start:
            if before_publishing is not None:
                before_publishing()
            words[_HEAD] = head
        return self._count(start, head, payloads)

    def _place(self, head: int, payload: bytes | memoryview) -> int | None:
        """Write a record of ``payload`` at ``head`` (unpublished); the next head, or ``None``."""
        size = len(payload)
        need = RECORD_HEADER + _padded(size)
        if head + need - self._cached > self.capacity:
            self._cached = self._words[_TAIL]
            if head + need - self._cached > self.capacity:
                return None
        data = self._data
        start = head & self._mask
        self._slots[start >> 3] = size
        begin = start + RECORD_HEADER
        if begin == self.capacity:
            begin = 0
        first = min(size, self.capacity - begin)
        data[begin : begin + first] = payload[:first]
        if first < size:
            data[: size - first] = payload[first:]
        return head + need

    @staticmethod
    def _count(start: int, head: int, payloads: Sequence[bytes | memoryview]) -> int:
        """How many of ``payloads`` the records from ``start`` to ``head`` hold."""
        count = 0
        for payload in payloads:
            if start == head:
                break
            start += RECORD_HEADER + _padded(len(payload))
            count += 1
        return count

    def has_room(self, size: int) -> bool:
        """True when a record of ``size`` payload bytes fits now."""
        words = self._words
        self._cached = words[_TAIL]
        return words[_HEAD] + RECORD_HEADER + _padded(size) - self._cached <= self.capacity

    def consumer_waiting(self) -> bool:
        """After publishing: whether the consumer sleeps (or is about to) and needs a wake-up."""
        fence()
        return bool(self._words[_WAITING])

    def set_blocked(self, blocked: bool) -> None:
        """Say that the producer is going to sleep until there is room (or that it is awake)."""
        self._words[_BLOCKED] = int(blocked)
        if blocked:
            fence()

    def close_in_order(self) -> None:
        """Mark that the producer closed after its last record (an orderly end)."""
        self._words[_CLOSED] = 1

    # -- the consumer -----------------------------------------------------------------
    def readable(self) -> bool:
        """True when a record is there to read (besides one lent by :meth:`try_read_view`)."""
        tail = self._words[_TAIL] if self._lent is None else self._lent[1]
        if self._cached != tail:
            return True
        self._cached = self._words[_HEAD]
        return self._cached != tail

    def try_read(self) -> bytes | None:
        """The next payload, copied out, with its space released; ``None`` when empty."""
        payloads = self.try_read_many(1)
        return payloads[0] if payloads else None

    def try_read_many(self, limit: int) -> list[bytes]:
        """Up to ``limit`` payloads that are there now, copied out; their space released at once."""
        self.release_view()
        payloads: list[bytes] = []
        tail = self._words[_TAIL]
        while len(payloads) < limit:
            found = self._next(tail)
            if found is None:
                break
            begin, size = found
            payloads.append(self._copy(begin, size))
            tail += RECORD_HEADER + _padded(size)
        if payloads:
            self._words[_TAIL] = tail
        return payloads

    def try_read_view(self) -> memoryview | None:
        """The next payload as a read-only view into the ring; ``None`` when empty.

        Its space is released by the next read (or :meth:`release_view`),
        which also releases the view; until then the producer cannot
        overwrite it.  A payload that wraps around the end of the ring is
        copied, and the view is over the copy.
        """
        self.release_view()
        tail = self._words[_TAIL]
        found = self._next(tail)
        if found is None:
            return None
        begin, size = found
        if begin + size <= self.capacity:
            view = self._data[begin : begin + size].toreadonly()
        else:
            view = memoryview(self._copy(begin, size))
        self._lent = (view, tail + RECORD_HEADER + _padded(size))
        return view

    def release_view(self) -> None:
        """Release the payload :meth:`try_read_view` lent, and its space in the ring."""
        if self._lent is None:
            return
        view, tail = self._lent
        self._lent = None
        try:
            view.release()
        except BufferError:
            pass  # the caller holds views derived from it: they see whatever comes next
        self._words[_TAIL] = tail

    def _next(self, tail: int) -> tuple[int, int] | None:
        """(payload offset, payload size) of the record at ``tail``; ``None`` when none is there."""
        if self._cached == tail:
            self._cached = self._words[_HEAD]
            if self._cached == tail:
                return None
        if tail & 7 or self._cached - tail > self.capacity:
            raise CorruptRing(
                f"tail {tail} and head {self._cached} cannot both be positions in a ring of "
                f"{self.capacity} bytes (8-byte aligned, at most the capacity apart)"
            )
        start = tail & self._mask
        size = self._slots[start >> 3]
        if size > self.max_message or tail + RECORD_HEADER + _padded(size) > self._cached:
            raise CorruptRing(
                f"a record of {size} bytes at {tail} does not fit below head {self._cached}"
            )
        begin = start + RECORD_HEADER
        return 0 if begin == self.capacity else begin, size

    def _copy(self, begin: int, size: int) -> bytes:
        data = self._data
        end = begin + size
        if end <= self.capacity:
            return bytes(data[begin:end])
        return b"".join((data[begin:], data[: end - self.capacity]))  # one allocation

    def producer_blocked(self) -> bool:
        """After releasing space: whether the producer sleeps for room and needs a wake-up."""
        fence()
        return bool(self._words[_BLOCKED])

    def set_waiting(self, waiting: bool) -> None:
        """Say that the consumer is going to sleep until a record comes (or that it is awake)."""
        self._words[_WAITING] = int(waiting)
        if waiting:
            fence()

    @property
    def closed_in_order(self) -> bool:
        """True once the producer closed in order (check :meth:`readable` first)."""
        return bool(self._words[_CLOSED])
