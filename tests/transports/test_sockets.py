"""What every socket transport shares (anyipc._sockets): tcp, unix paths and abstract names."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import anyipc

# The child restores SIGPIPE's default action (Python ignores it at start-up), so
# a send without MSG_NOSIGNAL to a vanished peer would kill it.
_VANISHED_PEER = """
import signal, sys
import anyipc

signal.signal(signal.SIGPIPE, signal.SIG_DFL)
with anyipc.listen(sys.argv[1]) as listener, anyipc.connect(listener.address) as client:
    listener.accept(timeout=5).close()
    try:
        for _ in range(10000):
            client.send(b"x" * 65536, timeout=5)
    except anyipc.ConnectionLost as exc:
        print("lost", type(exc.__cause__).__name__)
"""

_OUT_OF_DESCRIPTORS = """
import os, resource, sys
import anyipc

with anyipc.listen(sys.argv[1]) as listener, anyipc.connect(listener.address) as client:
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    spare = []
    try:
        while True:
            spare.append(os.open(os.devnull, os.O_RDONLY))
    except OSError:
        pass
    try:
        listener.accept(timeout=5)
    except anyipc.TransportUnavailable as exc:
        print("unavailable:", exc)
    for fd in spare:
        os.close(fd)
    with listener.accept(timeout=5) as server:  # the connection waited in the queue
        client.send(b"x")
        print("accepted", server.recv(timeout=5))
"""

_CONNECT_AND_WAIT = """
import sys, time
import anyipc

channel = anyipc.connect(sys.argv[1])
print("connected", flush=True)
time.sleep(60)
"""


def test_round_trip_both_ways(
    open_pair: Callable[..., tuple[anyipc.Listener, anyipc.Channel, anyipc.Channel]],
    stream_uri: str,
    recv_exactly: Callable[[anyipc.Channel, int], bytes],
) -> None:
    _, client, server = open_pair(stream_uri)
    client.send(b"ping")
    assert recv_exactly(server, 4) == b"ping"
    server.send(bytearray(b"pong"))
    server.send(memoryview(b"!"))
    assert recv_exactly(client, 5) == b"pong!"
    assert client.capabilities.reliable


def test_orderly_close_ends_the_channel_after_all_data(open_pair, stream_uri) -> None:
    _, client, server = open_pair(stream_uri)
    payload = bytes(range(256)) * 40  # fits in every socket buffer: no reader needed yet
    client.send(payload)
    client.close()
    assert b"".join(server) == payload
    with pytest.raises(anyipc.EndOfChannel):
        server.recv(timeout=1)


def test_killed_peer_is_reported_within_bounded_time(stream_uri, short_dir: Path) -> None:
    with (
        anyipc.listen(stream_uri) as listener,
        subprocess.Popen(
            [sys.executable, "-P", "-c", _CONNECT_AND_WAIT, listener.address],
            cwd=short_dir,
            stdout=subprocess.PIPE,
            text=True,
        ) as child,
    ):
        try:
            assert child.stdout is not None
            assert child.stdout.readline() == "connected\n"
            with listener.accept(timeout=5) as server:
                child.kill()
                with pytest.raises((anyipc.EndOfChannel, anyipc.ConnectionLost)):
                    server.recv(timeout=10)
        finally:
            child.kill()


def test_recv_timeout_is_not_early_and_the_channel_stays_usable(
    open_pair, stream_uri, recv_exactly
) -> None:
    _, client, server = open_pair(stream_uri)
    start = time.monotonic()
    with pytest.raises(anyipc.Timeout):
        server.recv(timeout=0.2)
    assert time.monotonic() - start >= 0.2
    client.send(b"after")
    assert recv_exactly(server, 5) == b"after"


def test_connected_descriptors_stay_in_blocking_mode(open_pair, stream_uri, recv_exactly) -> None:
    """Each call is non-blocking by its flags, so a child sharing the descriptor can block."""
    _, client, server = open_pair(stream_uri)
    with pytest.raises(anyipc.Timeout):
        server.recv(timeout=0.05)
    client.send(b"both")
    assert recv_exactly(server, 4) == b"both"
    assert os.get_blocking(client.fileno()) and os.get_blocking(server.fileno())


def test_close_from_another_thread_wakes_a_blocked_recv(open_pair, stream_uri) -> None:
    _, _, server = open_pair(stream_uri)
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


def test_close_from_another_thread_wakes_a_blocked_accept(stream_uri) -> None:
    listener = anyipc.listen(stream_uri)
    errors: list[BaseException] = []

    def accept() -> None:
        try:
            listener.accept()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=accept)
    thread.start()
    time.sleep(0.2)
    listener.close()
    thread.join(5)
    assert not thread.is_alive()
    assert [type(error) for error in errors] == [anyipc.ChannelClosed]


def test_accept_timeout(stream_uri) -> None:
    with anyipc.listen(stream_uri) as listener:
        start = time.monotonic()
        with pytest.raises(anyipc.Timeout):
            listener.accept(timeout=0.1)
        assert time.monotonic() - start >= 0.1


def test_send_timeout_says_how_many_bytes_went(open_pair, stream_uri) -> None:
    _, client, server = open_pair(stream_uri)
    data = bytes(range(256)) * (128 * 1024)  # 32 MiB: more than any socket buffer
    with pytest.raises(anyipc.Timeout) as caught:
        client.send(data, timeout=0.3)
    sent = caught.value.sent
    assert 0 < sent < len(data)
    received = bytearray()
    while True:
        try:
            received += server.recv(timeout=0.5)
        except anyipc.Timeout:
            break
    assert received == data[:sent]


def test_sending_to_a_vanished_peer_is_connection_lost_never_sigpipe(
    stream_uri, short_dir: Path
) -> None:
    result = subprocess.run(
        [sys.executable, "-P", "-c", _VANISHED_PEER, stream_uri],
        cwd=short_dir,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == "lost"
    assert result.stdout.split()[1] in ("BrokenPipeError", "ConnectionResetError")


def test_running_out_of_descriptors_is_reported_and_the_connection_waits(
    stream_uri, short_dir: Path
) -> None:
    result = subprocess.run(
        [sys.executable, "-P", "-c", _OUT_OF_DESCRIPTORS, stream_uri],
        cwd=short_dir,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    unavailable, accepted = result.stdout.splitlines()
    assert unavailable.startswith("unavailable:") and "ulimit -n" in unavailable
    assert accepted == "accepted b'x'"


def test_recv_into_fills_a_buffer(open_pair, stream_uri) -> None:
    _, client, server = open_pair(stream_uri)
    client.send(b"abcdef")
    buffer = bytearray(4)
    count = server.recv_into(buffer, timeout=5)
    assert 1 <= count <= 4
    assert buffer[:count] == b"abcdef"[:count]
    with pytest.raises(ValueError):
        server.recv_into(bytearray(), timeout=1)
    with pytest.raises(TypeError):
        server.recv_into(b"read-only", timeout=1)
    client.close()
    rest = bytearray()
    with pytest.raises(anyipc.EndOfChannel):
        while True:
            chunk = bytearray(64)
            rest += chunk[: server.recv_into(chunk, timeout=5)]
    assert bytes(buffer[:count]) + rest == b"abcdef"


def test_wait_and_fileno(open_pair, stream_uri) -> None:
    listener, client, server = open_pair(stream_uri)
    assert isinstance(server.fileno(), int)
    assert anyipc.wait([server, listener], timeout=0.05) == []
    client.send(b"x")
    assert anyipc.wait([server, listener], timeout=5) == [server]
    with anyipc.connect(listener.address):
        assert anyipc.wait([listener], timeout=5) == [listener]
        listener.accept(timeout=5).close()


def test_everything_raises_channel_closed_after_close(open_pair, stream_uri) -> None:
    listener, _, server = open_pair(stream_uri)
    server.close()
    server.close()
    for call in (lambda: server.send(b"x"), server.recv, server.fileno):
        with pytest.raises(anyipc.ChannelClosed):
            call()
    listener.close()
    with pytest.raises(anyipc.ChannelClosed):
        listener.accept(timeout=1)


def test_connecting_where_nobody_listens_is_connection_lost(stream_uri) -> None:
    target = stream_uri
    if stream_uri.startswith("tcp:"):
        with anyipc.listen(stream_uri) as listener:
            target = listener.address  # a port nobody listens on once closed
    with pytest.raises(anyipc.ConnectionLost, match="nobody is listening"):
        anyipc.connect(target)


def test_a_live_listener_is_never_taken_over(open_pair, stream_uri, recv_exactly) -> None:
    listener, client, server = open_pair(stream_uri)
    with pytest.raises(anyipc.AddressInUse) as caught:
        anyipc.listen(listener.address)
    assert isinstance(caught.value, OSError)
    client.send(b"still mine")
    assert recv_exactly(server, 10) == b"still mine"
