"""framed+: the wire format, limits checked before allocating, truncation, timeouts, readiness."""

from __future__ import annotations

import os
import socket
import struct
import threading
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest

import anyipc

MiB = 1 << 20


def frame(payload: bytes) -> bytes:
    """What a peer without anyipc writes: the length, big-endian, then the payload."""
    return struct.pack("!I", len(payload)) + payload


def read_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        assert chunk, "the stream ended early"
        data += chunk
    return data


@pytest.fixture(params=["tcp", "unix"])
def framed_uri(request: pytest.FixtureRequest, short_dir: Path) -> str:
    if request.param == "tcp":
        return "framed+tcp://127.0.0.1:0"
    return f"framed+unix://{short_dir}/f.sock"


@pytest.fixture
def raw_peer(raw_connect) -> Callable[[str], tuple[anyipc.Listener, socket.socket, anyipc.Channel]]:
    """``raw_peer(uri)``: a framed listener, a plain socket connected to it, the accepted end."""
    opened: list[anyipc.Listener | anyipc.Channel] = []

    def opener(uri: str) -> tuple[anyipc.Listener, socket.socket, anyipc.Channel]:
        listener = anyipc.listen(uri)
        opened.append(listener)
        raw = raw_connect(listener.address)
        server = listener.accept(timeout=5)
        opened.append(server)
        return listener, raw, server

    yield opener
    for endpoint in reversed(opened):
        endpoint.close()


def test_messages_keep_their_boundaries_both_ways(open_pair, framed_uri: str) -> None:
    _, client, server = open_pair(framed_uri)
    messages = [b"", b"a", b"\x00" * 4, os.urandom(1000), os.urandom(70000), b""]
    for message in messages:
        client.send(message)
    assert [server.recv(timeout=5) for _ in messages] == messages
    server.send(b"reply")
    server.send(b"")
    assert client.recv(timeout=5) == b"reply"
    assert client.recv(timeout=5) == b""


def test_capabilities_and_addresses(open_pair, framed_uri: str) -> None:
    listener, client, server = open_pair(framed_uri)
    inner_scheme = framed_uri.split("+")[1].split(":")[0]
    for endpoint in (listener, client, server):
        caps = endpoint.capabilities
        assert caps.boundaries is anyipc.Boundaries.MESSAGE
        assert caps.max_message_size == 16 * MiB
        assert caps.reliable
        expected = anyipc.Scope.NETWORK if inner_scheme == "tcp" else anyipc.Scope.HOST
        assert caps.scope is expected
    assert listener.address.startswith(f"framed+{inner_scheme}://")
    assert client.peer == server.address == listener.address
    assert isinstance(server.fileno(), int)


def test_listener_and_peer_addresses_carry_the_limit(open_pair) -> None:
    listener, client, _ = open_pair("framed+tcp://127.0.0.1:0?max_message_size=100")
    assert listener.address.endswith("?max_message_size=100")
    assert client.peer == listener.address
    assert client.capabilities.max_message_size == 100


@pytest.mark.parametrize("limit", [0, 1000])
def test_max_size_round_trips_and_one_more_is_refused(open_pair, limit: int) -> None:
    _, client, server = open_pair(f"framed+tcp://127.0.0.1:0?max_message_size={limit}")
    client.send(b"m" * limit)
    assert server.recv(timeout=5) == b"m" * limit
    with pytest.raises(anyipc.MessageTooLarge):
        client.send(b"m" * (limit + 1))
    with pytest.raises(anyipc.Timeout):
        server.recv(timeout=0.1)  # the peer saw nothing
    client.send(b"")
    assert server.recv(timeout=5) == b""


@pytest.mark.parametrize("value", [-1, 2**32])
def test_max_message_size_is_validated(value: int) -> None:
    with pytest.raises(anyipc.InvalidAddress, match="max_message_size"):
        anyipc.listen(f"framed+tcp://127.0.0.1:0?max_message_size={value}")


def test_the_largest_limit_is_accepted() -> None:
    with anyipc.listen(f"framed+tcp://127.0.0.1:0?max_message_size={2**32 - 1}") as listener:
        assert listener.capabilities.max_message_size == 2**32 - 1


def test_framed_needs_a_stream() -> None:
    with pytest.raises(anyipc.InvalidAddress, match="already keeps message boundaries"):
        anyipc.pair("framed+mem://x")


def test_a_16_mib_message_round_trips(open_pair, framed_uri: str) -> None:
    _, client, server = open_pair(framed_uri)
    message = os.urandom(16 * MiB)
    sender = threading.Thread(target=client.send, args=(message,), kwargs={"timeout": 30})
    sender.start()
    try:
        assert server.recv(timeout=30) == message
    finally:
        sender.join(30)


def test_wire_format_byte_for_byte(raw_peer, framed_uri: str) -> None:
    _, raw, server = raw_peer(framed_uri)
    server.send(b"hi")
    server.send(b"")
    assert read_exactly(raw, 10) == b"\x00\x00\x00\x02hi\x00\x00\x00\x00"

    def dribble() -> None:
        for byte in frame(b"one byte at a time"):
            raw.sendall(bytes([byte]))
            time.sleep(0.002)

    sender = threading.Thread(target=dribble)
    sender.start()
    try:
        assert server.recv(timeout=5) == b"one byte at a time"
    finally:
        sender.join(5)


@pytest.mark.parametrize("announced", [2**32 - 1, 2**31])
def test_an_oversize_length_is_refused_before_allocating(raw_peer, announced: int) -> None:
    _, raw, server = raw_peer("framed+tcp://127.0.0.1:0?max_message_size=1024")
    raw.sendall(struct.pack("!I", announced) + b"x" * 100)
    tracemalloc.start()
    try:
        with pytest.raises(anyipc.ConnectionLost, match="max_message_size of 1024 bytes"):
            server.recv(timeout=5)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < MiB
    # the stream cannot be resynchronised: the channel stays broken, and says so at once
    assert anyipc.wait([server], timeout=0) == [server]
    with pytest.raises(anyipc.ConnectionLost):
        server.recv(timeout=1)
    with pytest.raises(anyipc.ConnectionLost):
        server.send(b"x", timeout=1)


@pytest.mark.parametrize(
    "tail",
    [b"\x00\x00", struct.pack("!I", 5) + b"abc", struct.pack("!I", 200000) + b"x" * 100000],
    ids=["in-header", "in-payload", "in-large-payload"],
)
def test_the_stream_ending_inside_a_frame_is_a_truncated_frame(
    raw_peer, framed_uri: str, tail: bytes
) -> None:
    _, raw, server = raw_peer(framed_uri)
    raw.sendall(frame(b"whole") + tail)
    raw.close()
    assert server.recv(timeout=5) == b"whole"
    with pytest.raises(anyipc.ConnectionLost, match="truncated frame"):
        server.recv(timeout=5)


def test_the_stream_ending_between_frames_is_the_end(raw_peer, framed_uri: str) -> None:
    _, raw, server = raw_peer(framed_uri)
    raw.sendall(frame(b"one") + frame(b"") + frame(b"three"))
    raw.close()
    assert list(server) == [b"one", b"", b"three"]
    with pytest.raises(anyipc.EndOfChannel):
        server.recv(timeout=1)


@pytest.mark.parametrize("size", [10, 300000])
@pytest.mark.parametrize("cut", ["header", "payload"])
def test_a_recv_timeout_inside_a_frame_loses_nothing(
    raw_peer, framed_uri: str, size: int, cut: str
) -> None:
    _, raw, server = raw_peer(framed_uri)
    message = os.urandom(size)
    data = frame(message)
    split = 2 if cut == "header" else 4 + size // 2
    raw.sendall(data[:split])
    with pytest.raises(anyipc.Timeout):
        server.recv(timeout=0.2)
    sender = threading.Thread(target=raw.sendall, args=(data[split:] + frame(b"next"),))
    sender.start()
    try:
        assert server.recv(timeout=5) == message
        assert server.recv(timeout=5) == b"next"
    finally:
        sender.join(5)


def test_a_send_timeout_after_part_of_a_frame_commits_it(open_pair, short_dir: Path) -> None:
    _, client, server = open_pair(f"framed+unix://{short_dir}/f.sock?max_message_size={64 * MiB}")
    big = os.urandom(8 * MiB)  # far more than a unix socket buffers
    with pytest.raises(anyipc.Timeout) as caught:
        client.send(big, timeout=0.2)
    assert 0 < caught.value.sent < 4 + len(big)
    with pytest.raises(anyipc.Timeout) as refused:
        client.send(b"not sent", timeout=0.1)  # the stream is still full of the big one
    assert refused.value.sent == 0
    received: list[bytes] = []

    def receive() -> None:
        received.append(server.recv(timeout=10))
        received.append(server.recv(timeout=10))

    receiver = threading.Thread(target=receive)
    receiver.start()
    client.send(b"after", timeout=10)  # writes the rest of the big frame first
    receiver.join(15)
    assert received == [big, b"after"]
    with pytest.raises(anyipc.Timeout):
        server.recv(timeout=0.2)


def test_wait_sees_a_frame_already_buffered(raw_peer, framed_uri: str) -> None:
    _, raw, server = raw_peer(framed_uri)
    assert anyipc.wait([server], timeout=0.05) == []
    raw.sendall(frame(b"one") + frame(b"two"))
    assert anyipc.wait([server], timeout=5) == [server]
    assert server.recv(timeout=5) == b"one"
    # "two" arrived with "one" and sits in the layer: the socket has nothing left to read
    assert anyipc.wait([server], timeout=0) == [server]
    assert server.recv(timeout=0) == b"two"
    assert anyipc.wait([server], timeout=0.05) == []


def test_close_from_another_thread_wakes_a_blocked_recv(open_pair, framed_uri: str) -> None:
    _, _, server = open_pair(framed_uri)
    errors: list[BaseException] = []

    def receive() -> None:
        try:
            server.recv()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=receive)
    thread.start()
    time.sleep(0.2)
    server.close()
    thread.join(5)
    assert not thread.is_alive()
    assert [type(error) for error in errors] == [anyipc.ChannelClosed]


def test_over_a_stream_without_a_descriptor() -> None:
    first, second = anyipc.pair("framed+mem://framed-test?boundaries=stream")
    with first, second:
        assert second.capabilities.scope is anyipc.Scope.PROCESS
        for message in (b"", b"abc", os.urandom(200000)):
            first.send(message)
            assert second.recv(timeout=5) == message
        assert anyipc.wait([second], timeout=0.05) == []
        sender = threading.Timer(0.1, first.send, args=(b"later",))
        sender.start()
        try:
            assert anyipc.wait([second], timeout=5) == [second]
            assert second.recv(timeout=5) == b"later"
        finally:
            sender.join(5)
        first.close()
        with pytest.raises(anyipc.EndOfChannel):
            second.recv(timeout=5)


@pytest.mark.parametrize("uri", ["socketpair://", "pipe://"])
def test_recv_into_refuses_a_buffer_it_cannot_fill(uri: str) -> None:
    first, second = anyipc.pair(uri)
    receiver = second if uri == "pipe://" else first
    with first, second:
        with pytest.raises(TypeError, match="writable"):
            receiver.recv_into(memoryview(b"read-only"), timeout=1)
        with pytest.raises(ValueError, match="non-empty"):
            receiver.recv_into(bytearray(), timeout=1)
