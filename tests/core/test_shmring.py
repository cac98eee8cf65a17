"""The shared-memory ring on its own: a model check, and a hostile peer's control words.

The ring is a decoder of memory another process writes, so both properties
run many examples in every profile (they take a few seconds).
"""

from __future__ import annotations

from collections import deque

from hypothesis import given, settings
from hypothesis import strategies as st

from anyipc._shmring import CONTROL_BYTES, RECORD_HEADER, CorruptRing, Ring, ring_bytes

CAPACITY = 4096
EXAMPLES = 10_000

operations = st.lists(
    st.one_of(
        st.tuples(st.just("write"), st.integers(min_value=0, max_value=CAPACITY - RECORD_HEADER)),
        st.tuples(st.just("read"), st.booleans()),
    ),
    max_size=60,
)


def two_ends() -> tuple[Ring, Ring, memoryview]:
    memory = memoryview(bytearray(ring_bytes(CAPACITY)))
    return Ring(memory, CAPACITY), Ring(memory, CAPACITY), memory


@settings(max_examples=EXAMPLES)
@given(operations)
def test_the_ring_is_a_fifo_of_whole_messages(steps: list[tuple[str, object]]) -> None:
    producer, consumer, _ = two_ends()
    model: deque[bytes] = deque()
    counter = 0
    for action, argument in steps:
        if action == "write":
            assert isinstance(argument, int)
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
    st.lists(
        st.tuples(st.integers(0, CONTROL_BYTES + CAPACITY - 8), st.integers(0, 2**64 - 1)),
        min_size=1,
        max_size=8,
    ),
    st.lists(st.binary(max_size=500), max_size=6),
)
def test_a_peer_scribbling_on_the_ring_gets_only_corrupt_ring(
    scribbles: list[tuple[int, int]], messages: list[bytes]
) -> None:
    producer, consumer, memory = two_ends()
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
