"""The raw equivalent of the shared-memory transports: a naive ring that busy-polls.

What a programmer writes by hand with ``mmap``: one file in ``/dev/shm``
holding two rings (one per direction), each a head and a tail counter
(8-byte words, stored through a ``memoryview.cast("Q")``) and a data area
of the mirrored transport's size.  A message is an 8-byte length and its
bytes; the writer waits for room and the reader for a message by polling
the counters in a loop, never sleeping, so this is the latency floor of
pure Python shared memory, and it burns a CPU while it waits.  The
measuring process creates the file (readable by this user only) and
removes it at once after the peer mapped it.
"""

from __future__ import annotations

import mmap
import os
import secrets
import time
from typing import Any

from anyipc._channel import BytesLike
from anyipc.cli._bench_link import check_size
from anyipc.cli._bench_process import CommandPeer
from anyipc.cli._bench_session import Plan, Stack

__all__ = ["RingLink", "join", "prepare"]

_COUNTERS = 64  #: bytes before each data area: head at word 0, tail at word 4 (own cache lines)
_DEFAULT_LARGEST = (4 << 20) - 8


def _capacity(largest: int | None) -> int:
    """The data area that holds a message of ``largest`` bytes, a power of two."""
    need = (largest or _DEFAULT_LARGEST) + 8
    return 1 << (need - 1).bit_length()


class _Ring:
    """One direction: the counters and the data area, as views into the mapping."""

    def __init__(self, memory: memoryview, capacity: int) -> None:
        self.words = memory[:_COUNTERS].cast("Q")
        self.data = memory[_COUNTERS : _COUNTERS + capacity]
        self.capacity = capacity

    def release(self) -> None:
        self.words.release()
        self.data.release()


def _deadline_check(deadline: float, what: str) -> None:
    if time.monotonic() > deadline:
        raise TimeoutError(f"{what} timed out")


class RingLink:
    """A link over two busy-polled rings: ``out`` is written, ``into`` read.

    Batches publish the head once for all the records that fit, and take
    every record there is (up to the batch) before publishing the tail.
    With views, ``recv`` hands out the message where it lies (a copy only
    when it wraps around the end of the data area) and gives its space back
    on the next ``recv``.
    """

    def __init__(self, mapping: mmap.mmap, capacity: int, first: bool) -> None:
        self._mapping = mapping
        self._memory = memoryview(mapping)
        size = _COUNTERS + capacity
        rings = [_Ring(self._memory[i * size : (i + 1) * size], capacity) for i in (0, 1)]
        self._out, self._in = rings if first else rings[::-1]
        self._views = False
        self._consumed: int | None = None  # the tail to publish once a view is done with
        self._lent: memoryview | None = None  # the view handed out last

    def receive_views(self, on: bool) -> bool:
        self._give_back()
        self._views = on
        return on

    def _wait_for_room(self, head: int, need: int, timeout: float) -> None:
        words, capacity = self._out.words, self._out.capacity
        deadline = time.monotonic() + timeout
        spins = 0
        while head + need - words[4] > capacity:
            spins += 1
            if spins % 100_000 == 0:
                _deadline_check(deadline, "send")

    def _write(self, head: int, data: BytesLike) -> int:
        """Write a record at ``head`` (without publishing it); the head after it."""
        ring, size = self._out, len(data)
        capacity = ring.capacity
        start = head % capacity
        ring.data[start : start + 8] = size.to_bytes(8, "little")
        begin = (start + 8) % capacity
        first = min(size, capacity - begin)
        ring.data[begin : begin + first] = memoryview(data)[:first]
        if first < size:
            ring.data[: size - first] = memoryview(data)[first:]
        return head + 8 + ((size + 7) & ~7)

    def send(self, data: BytesLike, timeout: float) -> None:
        head = self._out.words[0]
        self._wait_for_room(head, 8 + ((len(data) + 7) & ~7), timeout)
        self._out.words[0] = self._write(head, data)

    def send_batch(self, data: BytesLike, count: int, timeout: float) -> None:
        words = self._out.words
        need = 8 + ((len(data) + 7) & ~7)
        head = words[0]
        for _ in range(count):
            if head + need - words[4] > self._out.capacity:
                words[0] = head  # publish what is written, then wait for room
                self._wait_for_room(head, need, timeout)
            head = self._write(head, data)
        words[0] = head

    def _wait_for_message(self, tail: int, timeout: float) -> None:
        words = self._in.words
        deadline = time.monotonic() + timeout
        spins = 0
        while words[0] == tail:
            spins += 1
            if spins % 100_000 == 0:
                _deadline_check(deadline, "recv")

    def _read(self, tail: int, view: bool) -> tuple[BytesLike, int]:
        """The record at ``tail`` (a view of it, if asked and it does not wrap); the next tail."""
        ring = self._in
        capacity = ring.capacity
        start = tail % capacity
        length = int.from_bytes(ring.data[start : start + 8], "little")
        begin = (start + 8) % capacity
        end = begin + length
        message: BytesLike
        if end > capacity:
            message = bytes(ring.data[begin:]) + bytes(ring.data[: end - capacity])
        elif view:
            message = ring.data[begin:end]
        else:
            message = bytes(ring.data[begin:end])
        return message, tail + 8 + ((length + 7) & ~7)

    def _give_back(self) -> None:
        if self._lent is not None:
            self._lent.release()
            self._lent = None
        if self._consumed is not None:
            self._in.words[4], self._consumed = self._consumed, None

    def recv(self, size: int, timeout: float) -> BytesLike:
        self._give_back()
        tail = self._in.words[4]
        self._wait_for_message(tail, timeout)
        message, tail = self._read(tail, self._views)
        if self._views:
            self._consumed = tail
            if isinstance(message, memoryview):
                self._lent = message
        else:
            self._in.words[4] = tail
        check_size(len(message), size)
        return message

    def recv_batch(self, size: int, most: int, timeout: float) -> int:
        self._give_back()
        words = self._in.words
        tail = words[4]
        self._wait_for_message(tail, timeout)
        head = words[0]
        received = 0
        while tail != head and received < most:
            message, tail = self._read(tail, False)
            check_size(len(message), size)
            received += 1
        words[4] = tail
        return received

    def close(self) -> None:
        self._give_back()
        for ring in (self._out, self._in):
            ring.release()
        self._memory.release()
        self._mapping.close()


def _mapped(path: str, capacity: int, *, create: bool) -> mmap.mmap:
    flags = os.O_RDWR | os.O_CLOEXEC | (os.O_CREAT | os.O_EXCL if create else 0)
    fd = os.open(path, flags, 0o600)
    try:
        size = 2 * (_COUNTERS + capacity)
        if create:
            os.ftruncate(fd, size)
        return mmap.mmap(fd, size)
    finally:
        os.close(fd)


def prepare(stack: Stack, timeout: float, largest: int | None) -> Plan:
    """This side of the two rings: it writes the first and reads the second."""
    capacity = _capacity(largest)
    path = f"/dev/shm/anyipc-bench-{os.getpid()}-{secrets.token_hex(8)}"
    mapping = _mapped(path, capacity, create=True)
    stack.callback(mapping.close)
    stack.callback(_unlink, path)
    spec: dict[str, Any] = {"kind": "memory", "path": path, "capacity": capacity}
    return Plan(
        start=lambda: CommandPeer(spec, timeout),
        finish=lambda ready: _finish(mapping, capacity, path),
    )


def _finish(mapping: mmap.mmap, capacity: int, path: str) -> RingLink:
    _unlink(path)  # both ends have it mapped: the name is no longer needed
    return RingLink(mapping, capacity, first=True)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def join(spec: dict[str, Any], timeout: float) -> tuple[RingLink, dict[str, Any]]:
    """The peer's side: map the file (it reads the first ring and writes the second)."""
    capacity = int(spec["capacity"])
    return RingLink(_mapped(str(spec["path"]), capacity, create=False), capacity, first=False), {}
