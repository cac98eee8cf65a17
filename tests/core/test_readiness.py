"""Waiting on descriptors: FdWaiter and wait_for_fd, with deadlines and the waker of close()."""

from __future__ import annotations

import os
import select
import threading
import time
from collections.abc import Iterator

import pytest

import anyipc
from anyipc._deadline import Deadline
from anyipc._readiness import READABLE, WRITABLE, FdWaiter, Waker, wait_for_fd


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    read_fd, write_fd = os.pipe()
    yield read_fd, write_fd
    os.close(read_fd)
    os.close(write_fd)


@pytest.fixture
def waker() -> Iterator[Waker]:
    waker = Waker()
    yield waker
    waker.release()


def test_one_waiter_serves_wait_after_wait(pipe: tuple[int, int], waker: Waker) -> None:
    read_fd, write_fd = pipe
    waiter = FdWaiter(read_fd, READABLE, waker)
    for round_ in range(3):
        started = time.monotonic()
        with pytest.raises(anyipc.Timeout, match="recv timed out"):
            waiter.wait(Deadline(0.05), "recv")
        assert time.monotonic() - started >= 0.05, "never early"
        os.write(write_fd, b"x")
        assert waiter.wait(Deadline(5), "recv") & READABLE
        assert os.read(read_fd, 1) == b"x", f"round {round_}"


def test_a_waiter_also_reports_the_error_it_was_not_asked_for(waker: Waker) -> None:
    read_fd, write_fd = os.pipe()
    try:
        waiter = FdWaiter(write_fd, WRITABLE, waker)
        assert waiter.wait(Deadline(5), "send") == WRITABLE
        os.close(read_fd)
        assert waiter.wait(Deadline(5), "send") & select.POLLERR, "nobody reads any more"
    finally:
        os.close(write_fd)


def test_the_waker_stops_waits_during_and_after_them(pipe: tuple[int, int], waker: Waker) -> None:
    read_fd, _ = pipe
    waiter = FdWaiter(read_fd, READABLE, waker)
    waking = threading.Timer(0.1, waker.wake)
    waking.start()
    started = time.monotonic()
    try:
        with pytest.raises(anyipc.ChannelClosed):
            waiter.wait(Deadline(10), "recv")
    finally:
        waking.join(5)
    assert time.monotonic() - started < 2
    with pytest.raises(anyipc.ChannelClosed):
        waiter.wait(Deadline(10), "recv")
    with pytest.raises(anyipc.ChannelClosed):
        wait_for_fd(read_fd, READABLE, Deadline(10), waker, "recv")
