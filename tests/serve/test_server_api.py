"""The Server's surface in this process: the thread model without signals, and every refusal."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import pytest

import anyipc


@pytest.mark.parametrize("uri", ["tcp://127.0.0.1:0", "mem://serve-{}", "framed+unix://@serve-{}"])
def test_the_thread_model_serves_any_connection_oriented_transport(uri: str) -> None:
    answered = []

    def shout(channel: anyipc.Channel) -> None:
        answered.append(channel.recv(timeout=5))
        channel.send(answered[-1].upper())
        server.stop()  # from the handler's thread

    with anyipc.Server(uri.format(uuid.uuid4().hex), shout, signals={}) as server:
        client = anyipc.connect(server.address)  # waits in the backlog until served
        client.send(b"hello")
        server.serve_forever()
        assert client.recv(timeout=5) == b"HELLO"
        client.close()
    assert answered == [b"hello"]
    with pytest.raises(anyipc.ConnectionLost):
        anyipc.connect(server.address)  # the server closed the listener it opened


def test_a_listener_given_to_the_server_stays_open_and_the_callers() -> None:
    with anyipc.listen("tcp://127.0.0.1:0") as listener:
        with anyipc.Server(listener, len, signals={}) as server:
            assert server.address == listener.address
            server.stop()
            server.serve_forever()  # stopped before it began: returns at once
        assert not listener.closed
        with anyipc.connect(listener.address) as client, listener.accept(timeout=5) as accepted:
            client.send(b"still mine")
            assert accepted.recv(timeout=5) == b"still mine"
    with pytest.raises(RuntimeError, match="serves once"):
        server.serve_forever()


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"model": "threads"}, ValueError, "model must be one of 'thread', 'fork', 'prefork'"),
        ({"workers": 0}, ValueError, "workers must be a whole number >= 1"),
        ({"workers": True}, ValueError, "workers must be a whole number >= 1"),
        ({"stop_timeout": -1}, ValueError, "stop_timeout must be finite and >= 0"),
        ({"stop_timeout": float("inf")}, ValueError, "stop_timeout must be finite and >= 0"),
        ({"stop_timeout": "5"}, TypeError, "stop_timeout must be a number"),
        ({"signals": {"TERM": "halt"}}, ValueError, "'stop', 'reload', 'restart'"),
        ({"signals": {"TREM": "stop"}}, ValueError, "'TREM' is not a signal name"),
        ({"signals": {"CHLD": "stop"}}, ValueError, "SIGCHLD cannot control a server"),
        ({"signals": {"KILL": "stop"}}, ValueError, "SIGKILL cannot control a server"),
    ],
)
def test_bad_arguments_are_refused_before_anything_is_opened(
    tmp_path: Path, arguments: dict[str, object], error: type[Exception], message: str
) -> None:
    path = tmp_path / "s.sock"
    with pytest.raises(error, match=message):
        anyipc.Server(f"unix://{path}", len, **arguments)  # type: ignore[arg-type]
    assert not path.exists()


def test_a_handler_must_be_callable() -> None:
    with pytest.raises(TypeError, match="handler must be callable"):
        anyipc.Server("tcp://127.0.0.1:0", "handler")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("uri", "model", "message"),
    [
        ("mem://serve", "fork", "model='fork' cannot serve mem://"),
        ("mem://serve", "prefork", "model='prefork' cannot serve mem://"),
        ("tls+tcp://127.0.0.1:0", "fork", "model='fork' cannot serve tls\\+tcp://: .* not tls\\+"),
        ("shm://serve", "prefork", "model='prefork' cannot serve shm://"),
        ("udp://127.0.0.1:0", "thread", "needs a connection-oriented transport"),
        ("unix-dgram://@serve", "thread", "unix-dgram://@serve is connectionless"),
    ],
)
def test_a_model_that_cannot_serve_the_transport_says_so(
    uri: str, model: str, message: str
) -> None:
    with pytest.raises(anyipc.NotSupported, match=message):
        anyipc.Server(uri, len, model=model, signals={})


def test_a_listener_given_to_a_model_that_cannot_serve_it_is_left_open() -> None:
    with anyipc.listen("mem://serve-given") as listener:
        with pytest.raises(anyipc.NotSupported, match="cannot serve mem://"):
            anyipc.Server(listener, len, model="prefork")
        assert not listener.closed


def test_signals_need_every_thread_to_block_them(tmp_path: Path) -> None:
    release = threading.Event()
    other = threading.Thread(target=release.wait, args=(10,))
    other.start()
    path = tmp_path / "s.sock"
    try:
        with pytest.raises(anyipc.TransportUnavailable, match="does not block"):
            anyipc.Server(f"unix://{path}", len)
    finally:
        release.set()
        other.join()
    assert not path.exists()
