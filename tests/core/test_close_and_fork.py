"""close() returns once released, whoever else is closing; a forked copy's close stays its own."""

from __future__ import annotations

import os
import threading

import anyipc
from anyipc._address import Address
from anyipc._channel import Channel
from anyipc._deadline import Deadline
from anyipc._registry import registry


class _SlowToRelease(Channel):
    """A channel whose release takes until the test lets it finish."""

    def __init__(self) -> None:
        super().__init__(registry().capabilities(Address.parse("mem://slow")), address=None)
        self.releasing = threading.Event()
        self.may_finish = threading.Event()
        self.released = False

    def _send(self, data: memoryview, deadline: Deadline) -> None:
        raise AssertionError("never sent on")

    def _recv(self, deadline: Deadline) -> bytes:
        raise AssertionError("never received on")

    def _close(self) -> None:
        self.releasing.set()
        self.may_finish.wait(timeout=10)
        self.released = True


def test_a_second_close_returns_only_once_the_first_has_released() -> None:
    channel = _SlowToRelease()
    first = threading.Thread(target=channel.close)
    first.start()
    assert channel.releasing.wait(timeout=10)
    threading.Timer(0.1, channel.may_finish.set).start()
    channel.close()  # from this thread, while the first is still releasing
    assert channel.released
    first.join(timeout=10)


def test_closing_a_forked_copy_does_not_wake_the_parents_wait() -> None:
    mine, theirs = anyipc.pair("socketpair://")
    with mine, theirs:
        received: list[bytes | BaseException] = []

        def receive() -> None:
            try:
                received.append(mine.recv(timeout=10))
            except BaseException as exc:  # reported by the assertion below
                received.append(exc)

        waiting = threading.Thread(target=receive)
        mine._waker.fileno()  # the eventfd the waiting thread polls exists before the fork
        waiting.start()
        child = os.fork()
        if child == 0:  # the child closes its copy and leaves
            mine.close()
            os._exit(0)
        _, status = os.waitpid(child, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        theirs.send(b"still open")
        waiting.join(timeout=10)
    assert received == [b"still open"]
