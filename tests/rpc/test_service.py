"""The service: registering methods, answering one message, and serving channels in threads."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

import anyipc
from anyipc import rpc


def _divide(a: float, b: float) -> float:
    return a / b


@pytest.fixture
def service() -> rpc.Service:
    service = rpc.Service({"divide": _divide})

    @service.register
    def greet(name: str, *, greeting: str = "hello") -> str:
        return f"{greeting} {name}"

    service.register(lambda: {1, 2}, name="unsendable")
    return service


def _answer(service: rpc.Service, request: object, max_size: int | None = None) -> Any:
    reply = service.answer(json.dumps(request).encode(), max_size=max_size)
    return None if reply is None else json.loads(reply)


def test_methods_by_position_and_by_name(service: rpc.Service) -> None:
    assert service.method_names == ["divide", "greet", "unsendable"]
    assert _answer(service, {"id": 1, "method": "divide", "params": [6, 3]}) == {
        "id": 1,
        "result": 2.0,
    }
    request = {"id": "x", "method": "greet", "params": {"name": "you", "greeting": "hi"}}
    assert _answer(service, request) == {"id": "x", "result": "hi you"}
    assert _answer(service, {"id": 2, "method": "greet", "params": ["you"], "jsonrpc": "2.0"}) == {
        "id": 2,
        "result": "hello you",
    }


@pytest.mark.parametrize(
    ("request_", "error_type"),
    [
        ({"id": 1, "method": "divide", "params": [1, 0]}, "ZeroDivisionError"),
        ({"id": 1, "method": "nope"}, "MethodNotFound"),
        ({"id": 1, "method": "divide", "params": [1]}, "InvalidParams"),
        ({"id": 1, "method": "greet", "params": {"nom": "you"}}, "InvalidParams"),
        ({"id": 1, "method": "unsendable"}, "InvalidResult"),
        ({"id": 1, "method": 3}, "InvalidRequest"),
        ({"id": 1, "method": "greet", "params": "you"}, "InvalidRequest"),
    ],
)
def test_failures_are_error_replies(
    service: rpc.Service, request_: dict[str, object], error_type: str
) -> None:
    reply = _answer(service, request_)
    assert reply["id"] == 1 and set(reply) == {"id", "error"}
    assert reply["error"]["type"] == error_type
    assert isinstance(reply["error"]["message"], str) and reply["error"]["message"]


@pytest.mark.parametrize(
    "message",
    [
        b"",
        b"\xc3\x28",
        b"{",
        b"null",
        b'"text"',
        b'{"id": null, "method": "greet"}',
        b'{"id": [1], "method": "greet"}',
        b'{"id": false, "method": "greet"}',
        b"[" * 5000,
        b'{"id": ' + b"1" * 5000 + b"}",
        b'{"id": 1, "method": "greet", "params": [Infinity]}',
    ],
)
def test_messages_naming_no_id_are_dropped(
    service: rpc.Service, message: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    assert service.answer(message) is None
    assert "dropped a message" in caplog.text


def test_a_reply_larger_than_the_channel_back_becomes_an_error(service: rpc.Service) -> None:
    request = {"id": 1, "method": "greet", "params": ["x" * 1000]}
    reply = _answer(service, request, max_size=200)
    assert reply["error"]["type"] == "InvalidResult"
    assert "at most 200" in reply["error"]["message"]
    assert service.answer(json.dumps(request).encode(), max_size=10) is None  # not even that


def test_registering_methods() -> None:
    service = rpc.Service()
    with pytest.raises(ValueError, match="already registered"):
        service.register(_divide)
        service.register(_divide)
    with pytest.raises(ValueError, match="non-empty string"):
        service.register(_divide, name="")
    with pytest.raises(TypeError, match="callable"):
        rpc.Service({"x": 3})  # type: ignore[dict-item]
    for timeout in (0, -1, None):
        with pytest.raises(ValueError, match="send_timeout"):
            rpc.Service(send_timeout=timeout)  # type: ignore[arg-type]


def test_channels_a_service_cannot_serve(service: rpc.Service) -> None:
    with anyipc.listen("tcp://127.0.0.1:0") as listener:
        with anyipc.connect(listener.address), listener.accept(timeout=5) as stream:
            with pytest.raises(anyipc.NotSupported, match=r"framed\+tcp://"):
                service.handle(stream)
    with anyipc.bind("posixmq://") as inbox:
        with pytest.raises(anyipc.NotSupported, match="serve_bound"):
            service.handle(inbox)
    mine, theirs = anyipc.pair("mem://")
    with mine, theirs:
        with pytest.raises(anyipc.NotSupported, match="handle"):
            service.serve_bound(mine)


@pytest.fixture
def datagram_server(service: rpc.Service) -> Iterator[anyipc.Channel]:
    """``service`` serving a bound ``unix-dgram://`` endpoint in a thread."""
    endpoint = anyipc.bind(f"unix-dgram://@anyipc-rpc-{uuid.uuid4().hex}")
    worker = threading.Thread(target=service.serve_bound, args=(endpoint,))
    worker.start()
    yield endpoint
    endpoint.close()
    worker.join(10)


def test_a_datagram_endpoint_answers_each_sender(datagram_server: anyipc.Channel) -> None:
    address = datagram_server.address or ""
    with rpc.Client(address) as first, rpc.Client(address) as second:
        assert first.call("divide", 1, 4, timeout=5) == 0.25
        assert second.call("greet", "two", timeout=5) == "hello two"


def test_a_reply_to_of_another_transport_is_refused(datagram_server: anyipc.Channel) -> None:
    with anyipc.connect(datagram_server.address or "") as raw:
        request = {"id": 1, "method": "greet", "params": ["x"], "reply_to": "tcp://10.0.0.1:9"}
        raw.send(json.dumps(request).encode(), timeout=5)
        reply = json.loads(raw.recv(timeout=5))  # to the sender, and nowhere else
    assert reply["error"]["type"] == "InvalidRequest"
    assert "unix-dgram://" in reply["error"]["message"]


def test_a_queue_server_never_replies_outside_its_transport(service: rpc.Service) -> None:
    inbox = anyipc.bind("posixmq://")
    worker = threading.Thread(target=service.serve_bound, args=(inbox,))
    worker.start()
    try:
        with (
            anyipc.bind(f"unix-dgram://@anyipc-rpc-{uuid.uuid4().hex}") as elsewhere,
            anyipc.connect(inbox.address or "") as raw,
        ):
            request = {"id": 1, "method": "greet", "params": ["x"], "reply_to": elsewhere.address}
            raw.send(json.dumps(request).encode(), timeout=5)
            with rpc.Client(inbox.address or "") as client:
                assert client.call("greet", "y", timeout=5) == "hello y"  # served after it
            with pytest.raises(anyipc.Timeout):
                elsewhere.recv(timeout=0)
    finally:
        inbox.close()
        worker.join(10)
