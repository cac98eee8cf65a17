"""anyipc.wait: readiness over channels and listeners, with and without descriptors."""

from __future__ import annotations

import threading
import time

import pytest

import anyipc


@pytest.mark.parametrize("uri", ["mem", "tcp://127.0.0.1:0", "framed+unix:///"])
def test_wait_reports_only_the_ready_channels(uri: str, tmp_path: object) -> None:
    if uri == "mem":
        first, second = anyipc.pair("mem://w")
        third, fourth = anyipc.pair("mem://v")
        ends = [first, second, third, fourth]
    else:
        if uri.startswith("framed+unix"):
            uri = f"framed+unix://{tmp_path}/w.sock"
        with anyipc.listen(uri) as listener:
            first = anyipc.connect(listener.address)
            second = listener.accept(timeout=5)
            third = anyipc.connect(listener.address)
            fourth = listener.accept(timeout=5)
        ends = [first, second, third, fourth]
    try:
        assert anyipc.wait([second, fourth], timeout=0.05) == []
        first.send(b"ping", timeout=5)
        assert anyipc.wait([second, fourth], timeout=5) == [second]
        assert anyipc.wait([second, fourth], timeout=5) == [second], "wait consumes nothing"
        assert second.recv(timeout=5) == b"ping"
        third.close()
        assert anyipc.wait([second, fourth], timeout=5) == [fourth], "the peer's end is ready"
    finally:
        for end in ends:
            end.close()


def test_wait_on_a_listener_reports_a_pending_connection() -> None:
    with anyipc.listen("mem://") as listener:
        assert anyipc.wait([listener], timeout=0.05) == []
        client = anyipc.connect(listener.address)
        assert anyipc.wait([listener], timeout=5) == [listener]
        server = listener.accept(timeout=5)
        client.close()
        server.close()


def test_wait_is_woken_by_data_from_another_thread_and_never_returns_early() -> None:
    first, second = anyipc.pair("mem://t")
    with first, second:
        timer = threading.Timer(0.1, first.send, (b"late",))
        timer.start()
        started = time.monotonic()
        assert anyipc.wait([second], timeout=5) == [second]
        assert time.monotonic() - started >= 0.09
        timer.join()
        started = time.monotonic()
        second.recv()
        assert anyipc.wait([second], timeout=0.2) == []
        assert time.monotonic() - started >= 0.2


def test_a_closed_channel_is_ready_so_that_recv_reports_it() -> None:
    first, second = anyipc.pair("mem://c")
    first.close()
    second.close()
    assert anyipc.wait([first], timeout=0) == [first]


class _Silent(anyipc.Channel):
    """A channel fed from outside that cannot notify anyone: wait() must poll it."""

    poll_interval = 0.005

    def __init__(self) -> None:
        caps = anyipc.Capabilities(
            direction=anyipc.Direction.SIMPLEX,
            boundaries=anyipc.Boundaries.MESSAGE,
            connection=anyipc.Connection.ORIENTED,
            lossless=True,
            ordered=True,
            intact=True,
            duplicate_free=True,
            scope=anyipc.Scope.HOST,
            addressing=anyipc.Addressing.NAMED,
        )
        super().__init__(caps, can_send=False)
        self.arrived = threading.Event()

    def _send(self, data: memoryview, deadline: object) -> None:
        raise AssertionError("receive-only")

    def _recv(self, deadline: object) -> bytes:
        return b"x"

    def _ready(self) -> bool:
        return self.arrived.is_set()


def test_wait_polls_endpoints_that_cannot_notify() -> None:
    silent = _Silent()
    with silent:
        assert anyipc.wait([silent], timeout=0.05) == []
        threading.Timer(0.05, silent.arrived.set).start()
        started = time.monotonic()
        assert anyipc.wait([silent], timeout=5) == [silent]
        assert time.monotonic() - started < 1.0
