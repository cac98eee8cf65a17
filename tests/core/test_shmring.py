"""The shared-memory ring on its own, in both protocols: a model check, a hostile peer, the lock.

The ring is a decoder of memory another process writes, so both properties
run many examples in every profile (they take a few seconds), each drawing
its protocol too.  The locked protocol's two ends hold their lock through
two open file descriptions of one lock file, as two processes do.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anyipc._shmlock import LOCK_FREE_PROTOCOL, LOCKED_PROTOCOL, PATIENCE_S, LockedRing, RingLock
from anyipc._shmring import CONTROL_BYTES, RECORD_HEADER, CorruptRing, Ring, ring_bytes

CAPACITY = 4096
EXAMPLES = 10_000
PROTOCOLS = [LOCK_FREE_PROTOCOL, LOCKED_PROTOCOL]

operations = st.lists(
    st.one_of(
        st.tuples(st.just("write"), st.integers(min_value=0, max_value=CAPACITY - RECORD_HEADER)),
        st.tuples(st.just("read"), st.booleans()),
    ),
    max_size=60,
)


@contextmanager
def two_ends(protocol: str, memory: memoryview | None = None) -> Iterator[tuple[Ring, Ring]]:
    """(producer, consumer) of one ring in ``memory`` (a fresh one by default)."""
    memory = memoryview(bytearray(ring_bytes(CAPACITY))) if memory is None else memory
    if protocol == LOCK_FREE_PROTOCOL:
        yield Ring(memory, CAPACITY), Ring(memory, CAPACITY)
        return
    with locks() as (mine, theirs):
        producer = LockedRing(memory, CAPACITY, mine, 0, producing=True)
        consumer = LockedRing(memory, CAPACITY, theirs, 0, producing=False)
        yield producer, consumer
        for ring in (producer, consumer):
            ring.release()


@contextmanager
def locks() -> Iterator[tuple[RingLock, RingLock]]:
    """A lock file's creator's hold, and a second end's, closed at the end."""
    created = RingLock.create()
    joined = RingLock.join(created.fileno())
    try:
        yield created, joined
    finally:
        created.close()
        joined.close()


@settings(max_examples=EXAMPLES)
@given(st.sampled_from(PROTOCOLS), operations)
def test_the_ring_is_a_fifo_of_whole_messages(protocol: str, steps: list[tuple[str, int]]) -> None:
    with two_ends(protocol) as (producer, consumer):
        model: deque[bytes] = deque()
        counter = 0
        for action, argument in steps:
            if action == "write":
                counter += 1
                payload = bytes([counter % 256]) * argument
                if producer.try_write(payload):
                    model.append(payload)
                else:
                    assert not producer.has_room(argument)
            else:
                got = consumer.try_read_view() if argument else consumer.try_read()
                expected = model.popleft() if model else None
                assert (None if got is None else bytes(got)) == expected
        consumer.release_view()
        assert [consumer.try_read() for _ in model] == list(model)
        assert consumer.try_read() is None


@settings(max_examples=EXAMPLES)
@given(
    st.sampled_from(PROTOCOLS),
    st.lists(
        st.tuples(st.integers(0, CONTROL_BYTES + CAPACITY - 8), st.integers(0, 2**64 - 1)),
        min_size=1,
        max_size=8,
    ),
    st.lists(st.binary(max_size=500), max_size=6),
)
def test_a_peer_scribbling_on_the_ring_gets_only_corrupt_ring(
    protocol: str, scribbles: list[tuple[int, int]], messages: list[bytes]
) -> None:
    memory = memoryview(bytearray(ring_bytes(CAPACITY)))
    with two_ends(protocol, memory) as (producer, consumer):
        for message in messages:
            producer.try_write(message)
        words = memory.cast("Q")
        for offset, value in scribbles:
            words[offset // 8] = value
        for _ in range(len(messages) + 2):
            try:
                payload = consumer.try_read()
            except CorruptRing:
                break
            if payload is None:
                break
            assert len(payload) <= CAPACITY - RECORD_HEADER
        words.release()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_torn_record_is_never_published(protocol: str) -> None:
    memory = memoryview(bytearray(ring_bytes(CAPACITY)))
    with two_ends(protocol, memory) as (producer, consumer):
        assert producer.try_write(b"whole")
        data_area = memory[CONTROL_BYTES:]
        data_area[16:24] = (100).to_bytes(8, "little")  # a writer stopped after a length word...
        data_area[24:74] = b"y" * 50  # ...and half its payload, before publishing the head
        assert consumer.try_read() == b"whole"
        assert consumer.try_read() is None, "an unpublished record was read"
        data_area.release()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_new_ends_on_a_used_ring_go_on_where_the_old_ones_stood(protocol: str) -> None:
    memory = memoryview(bytearray(ring_bytes(CAPACITY)))
    with two_ends(protocol, memory) as (producer, consumer):
        for number in range(5):
            assert producer.try_write(b"%d" % number * 300)
        assert consumer.try_read_many(3) == [b"%d" % number * 300 for number in range(3)]
    with two_ends(protocol, memory) as (producer, consumer):  # as after a crash of both
        assert [consumer.try_read(), consumer.try_read(), consumer.try_read()] == [
            b"3" * 300,
            b"4" * 300,
            None,
        ]
        assert producer.try_write(b"next") and consumer.try_read() == b"next"


def test_a_lock_kept_by_the_peer_means_not_now_and_loses_nothing() -> None:
    memory = memoryview(bytearray(ring_bytes(CAPACITY)))
    with locks() as (mine, theirs):
        keeper = RingLock.join(mine.fileno())  # a third hold on the file: another process's
        producer = LockedRing(memory, CAPACITY, mine, 0, producing=True)
        consumer = LockedRing(memory, CAPACITY, theirs, 0, producing=False)
        assert producer.try_write(b"first")
        assert keeper.acquire(0)
        started = time.monotonic()
        assert not producer.try_write(b"second"), "published without the lock"
        assert consumer.try_read() is None, "read without the lock"
        assert not consumer.readable()
        assert time.monotonic() - started < 10 * PATIENCE_S, "waited for the lock too long"
        keeper.release(0)
        assert producer.try_write(b"second")
        assert [consumer.try_read(), consumer.try_read(), consumer.try_read()] == [
            b"first",
            b"second",
            None,
        ]
        for ring in (producer, consumer):
            ring.release()
        keeper.close()


def test_two_threads_of_one_end_never_hold_a_ring_lock_at_once() -> None:
    with locks() as (mine, _):
        assert mine.acquire(0)
        taken: list[bool] = []
        thread = threading.Thread(target=lambda: taken.append(mine.acquire(0)))
        thread.start()
        thread.join(5)
        assert taken == [False], "a second thread took a lock this end holds"
        assert mine.acquire(1), "the other ring's lock is not this one"
        mine.release(1)
        mine.release(0)


def test_a_lock_file_must_be_a_memory_file() -> None:
    with open(__file__, "rb") as source, pytest.raises(ValueError, match="no ring lock file"):
        RingLock.join(source.fileno())
