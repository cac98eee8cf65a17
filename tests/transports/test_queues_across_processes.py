"""posixmq:// and sysvmq:// with the sender in a fresh interpreter: order, and a sender's death.

What the two queues share is tested here once, for each of them; what is
particular to one (names and keys, limits, owners) stays in its own file.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator

import pytest

import anyipc

from .conftest import Children

SENDS_TWENTY = """
import sys, anyipc
with anyipc.connect(sys.argv[1]) as channel:
    for n in range(20):
        channel.send(bytes([n]) * n, timeout=10)
"""

SENDS_FOREVER = """
import sys, anyipc
channel = anyipc.connect(sys.argv[1])
print("ready", flush=True)
n = 0
while True:
    channel.send(bytes([n % 251]) * int(sys.argv[2]), timeout=30)
    n += 1
"""


@pytest.fixture(params=["posixmq", "sysvmq"])
def bound(request: pytest.FixtureRequest) -> Iterator[anyipc.Channel]:
    if anyipc.transports()[request.param].unavailable is not None:
        pytest.skip(f"{request.param} is unavailable here")
    with anyipc.bind(f"{request.param}://") as channel:
        yield channel


def test_a_child_process_sends(bound: anyipc.Channel, children: Children) -> None:
    process = children.python(SENDS_TWENTY, bound.address or "")
    received = [bound.recv(timeout=10) for _ in range(20)]
    assert process.wait(30) == 0
    assert received == [bytes([n]) * n for n in range(20)]


def test_a_sender_killed_mid_stream_leaves_no_partial_message(
    bound: anyipc.Channel, children: Children
) -> None:
    size = bound.capabilities.max_message_size
    assert size is not None
    process = children.python(SENDS_FOREVER, bound.address or "", str(size))
    assert process.stdout is not None and process.stdout.readline() == b"ready\n"
    received = []
    deadline = time.monotonic() + 0.3
    while time.monotonic() < deadline:  # keep the queue moving while the child sends
        received.append(bound.recv(timeout=10))
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    while True:
        try:
            received.append(bound.recv(timeout=0.2))
        except anyipc.Timeout:
            break
    assert received, "nothing arrived before the kill"
    for number, message in enumerate(received):
        assert message == bytes([number % 251]) * size, f"message {number} is damaged"
    with anyipc.connect(bound.address or "") as sender:
        sender.send(b"still works")
        assert bound.recv(timeout=5) == b"still works"
