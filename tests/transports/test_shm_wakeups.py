"""shm://: a producer waiting for room is woken by the receive that makes it.

The waits here have no backstop: the channel's periodic re-check
(``SLICE_S``) is set far beyond the test's timeouts, so a wake-up that is
not sent shows as a :class:`~anyipc.Timeout` instead of a short delay.
The consumer makes room only once the producer sleeps in ``poll`` (its
thread's kernel wait channel says so), not while it still checks for room.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest

import anyipc
from anyipc import _shmchannel

pytestmark = pytest.mark.skipif(
    anyipc.transports()["shm"].unavailable is not None, reason="shm:// is unavailable here"
)


@pytest.fixture
def pair(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[anyipc.Channel, anyipc.Channel]]:
    """(producer, consumer) over a 4096-byte ring that never spins, and no periodic re-check."""
    monkeypatch.setattr(_shmchannel, "SLICE_S", 600.0)
    with anyipc.listen("shm://?size=4096&spin_us=0") as listener:
        producer = anyipc.connect(listener.address)
        with producer, listener.accept(timeout=5) as consumer:
            yield producer, consumer


def _sending(producer: anyipc.Channel, messages: list[bytes]) -> tuple[threading.Thread, list]:
    """Send ``messages`` from a thread; the list receives the error, if one is raised."""
    errors: list[BaseException] = []

    def send_all() -> None:
        try:
            for message in messages:
                producer.send(message, timeout=5)
        except BaseException as exc:  # reported by the test
            errors.append(exc)

    thread = threading.Thread(target=send_all)
    thread.start()
    return thread, errors


def _asleep(thread: threading.Thread, consumer: anyipc.Channel) -> Callable[[], bool]:
    """Whether the producer said it waits for room and its thread sleeps in ``poll``."""

    def asleep() -> bool:
        with open(f"/proc/self/task/{thread.native_id}/wchan") as wchan:
            return consumer._in.producer_blocked() and "poll" in wchan.read()  # type: ignore[attr-defined]

    return asleep


def _until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 5
    while not condition():
        assert time.monotonic() < deadline, "the producer never slept waiting for room"
        time.sleep(0.001)


def test_releasing_a_view_wakes_the_producer(
    pair: tuple[anyipc.Channel, anyipc.Channel],
) -> None:
    producer, consumer = pair
    first, second = b"a" * 3000, b"b" * 3000  # one record fills the ring
    thread, errors = _sending(producer, [first, second])
    try:
        view = consumer.recv_view(timeout=5)
        assert view == first
        _until(_asleep(thread, consumer))  # the second waits for the first's space
        assert consumer.recv_view(timeout=5) == second  # releasing the first makes it
    finally:
        thread.join(timeout=10)
    assert not errors
