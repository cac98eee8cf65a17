"""The client against a peer played by hand over ``mem://``: ids, waiting, errors, ends."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

import anyipc
from anyipc import rpc

Ends = tuple[rpc.Client, anyipc.Channel]


@pytest.fixture
def ends() -> Iterator[Ends]:
    """A client, and the server's end of its channel (the test plays the server)."""
    mine, theirs = anyipc.pair("mem://")
    client = rpc.Client(mine)
    yield client, theirs
    client.close()
    theirs.close()


def _request(peer: anyipc.Channel) -> dict[str, Any]:
    request: dict[str, Any] = json.loads(peer.recv(timeout=5))
    return request


def _reply(peer: anyipc.Channel, **reply: object) -> None:
    peer.send(json.dumps(reply).encode(), timeout=5)


def test_the_request_on_the_wire(ends: Ends) -> None:
    client, peer = ends
    pending = client.submit("add", 2, [3])
    assert _request(peer) == {"id": pending.id, "method": "add", "params": [2, [3]]}
    _reply(peer, id=pending.id, result=5)
    assert pending.result(timeout=5) == 5
    assert pending.done()
    assert pending.result(timeout=0) == 5  # settled: the same outcome again


def test_replies_in_any_order_reach_their_waiters(ends: Ends) -> None:
    client, peer = ends
    pending = [client.submit("echo", n) for n in range(4)]
    requests = [_request(peer) for _ in pending]
    results: dict[int, Any] = {}
    waiters = [
        threading.Thread(target=lambda p=p: results.update({p.id: p.result(timeout=10)}))
        for p in pending
    ]
    for waiter in waiters:
        waiter.start()
    for request in reversed(requests):
        _reply(peer, id=request["id"], result=request["params"][0] * 10)
    for waiter in waiters:
        waiter.join(10)
    assert results == {p.id: n * 10 for n, p in enumerate(pending)}


def test_a_late_reply_is_discarded_and_never_taken_for_another(ends: Ends) -> None:
    client, peer = ends
    abandoned = client.submit("slow")
    with pytest.raises(anyipc.Timeout, match="no reply to 'slow'"):
        abandoned.result(timeout=0.05)
    dropped = client.submit("dropped")
    dropped_id = dropped.id
    del dropped  # nobody awaits its reply any more
    awaited = client.submit("next")
    for request in (_request(peer) for _ in range(3)):
        _reply(peer, id=request["id"], result=request["method"])
    assert awaited.result(timeout=5) == "next"
    assert dropped_id != awaited.id
    with pytest.raises(anyipc.Timeout):
        abandoned.result(timeout=5)  # abandoned for good


def test_a_reply_is_matched_by_id_and_kind_of_id(ends: Ends) -> None:
    client, peer = ends
    pending = client.submit("m")
    peer.recv(timeout=5)
    peer.send(b"not json at all", timeout=5)  # dropped: it names no request
    _reply(peer, id=str(pending.id), result="a string id is another id")
    _reply(peer, id=pending.id + 1000, result="nobody's")
    _reply(peer, id=pending.id, result="mine")
    assert pending.result(timeout=5) == "mine"


@pytest.mark.parametrize(
    "reply",
    [
        {"result": 1, "error": {"type": "X", "message": ""}},
        {},
        {"error": "text"},
        {"error": {"type": 3, "message": "m"}},
    ],
)
def test_a_malformed_reply_to_a_request_is_a_protocol_error(
    ends: Ends, reply: dict[str, object]
) -> None:
    client, peer = ends
    pending = client.submit("m")
    peer.recv(timeout=5)
    _reply(peer, id=pending.id, **reply)
    with pytest.raises(rpc.ProtocolError, match="the reply to 'm' is malformed"):
        pending.result(timeout=5)


def test_error_replies_become_typed_errors(ends: Ends) -> None:
    client, peer = ends
    kinds = {
        "KeyError": rpc.RemoteError,
        "MethodNotFound": rpc.MethodNotFound,
        "InvalidParams": rpc.InvalidParams,
        "InvalidRequest": rpc.InvalidRequest,
        "InvalidResult": rpc.InvalidResult,
    }
    for name, kind in kinds.items():
        pending = client.submit("m")
        peer.recv(timeout=5)
        _reply(peer, id=pending.id, error={"type": name, "message": "why"})
        with pytest.raises(kind) as caught:
            pending.result(timeout=5)
        assert type(caught.value) is kind
        assert (caught.value.type, caught.value.message, str(caught.value)) == (
            name,
            "why",
            f"{name}: why",
        )


def test_params_json_cannot_carry_are_refused_before_sending(ends: Ends) -> None:
    client, peer = ends
    with pytest.raises(TypeError, match="parameters of 'echo'.*set"):
        client.submit("echo", {1, 2})
    with pytest.raises(ValueError, match="parameters of 'echo'"):
        client.submit("echo", float("nan"))
    looped: list[object] = []
    looped.append(looped)
    with pytest.raises(ValueError, match="parameters of 'echo'"):
        client.submit("echo", looped)
    with pytest.raises(TypeError, match="method must be a non-empty string"):
        client.submit("")
    with pytest.raises(anyipc.Timeout):
        peer.recv(timeout=0)  # nothing was sent


def test_the_server_ending_fails_waiting_and_later_calls(ends: Ends) -> None:
    client, peer = ends
    pending = client.submit("m")
    peer.close()
    with pytest.raises(anyipc.ConnectionLost, match="the server closed the connection"):
        pending.result(timeout=5)
    with pytest.raises(anyipc.ConnectionLost):
        client.call("m", timeout=5)


def test_closing_the_client_fails_a_call_waiting_in_another_thread(ends: Ends) -> None:
    client, _ = ends
    pending = client.submit("m")
    outcome: list[BaseException] = []

    def wait() -> None:
        try:
            pending.result(timeout=10)
        except anyipc.IPCError as exc:
            outcome.append(exc)

    waiter = threading.Thread(target=wait)
    waiter.start()
    client.close()
    waiter.join(10)
    assert [type(exc) for exc in outcome] == [anyipc.ChannelClosed]
    assert client.closed
    with pytest.raises(anyipc.ChannelClosed):
        client.call("m", timeout=5)
    client.close()  # idempotent


def test_a_byte_stream_uri_is_refused_before_connecting() -> None:
    # nobody listens on port 1: connecting would raise ConnectionLost instead
    with pytest.raises(anyipc.NotSupported, match=r"use framed\+tcp://"):
        rpc.Client("tcp://127.0.0.1:1")
    with pytest.raises(anyipc.NotSupported, match=r"use framed\+unix://"):
        rpc.Client("unix:///nonexistent/rpc.sock")
    with pytest.raises(anyipc.InvalidAddress):
        rpc.Client("nosuchscheme://x")


def test_channels_a_client_cannot_use() -> None:
    with anyipc.listen("tcp://127.0.0.1:0") as listener:
        with anyipc.connect(listener.address) as stream:
            with pytest.raises(anyipc.NotSupported, match=r"framed\+tcp://"):
                rpc.Client(stream)
            listener.accept(timeout=5).close()
    with anyipc.bind("posixmq://") as inbox:
        with pytest.raises(anyipc.NotSupported, match="receiving end"):
            rpc.Client(inbox)
    with anyipc.bind(f"unix-dgram://@anyipc-rpc-{uuid.uuid4().hex}") as endpoint:
        with pytest.raises(anyipc.NotSupported, match="no default peer"):
            rpc.Client(endpoint)
    mine, theirs = anyipc.pair("mem://")
    with mine, theirs:
        with pytest.raises(ValueError, match="reply_to is for channels that cannot receive"):
            rpc.Client(mine, reply_to="posixmq://")


def test_a_queue_client_binds_its_reply_queue_and_removes_it() -> None:
    with anyipc.bind("posixmq://") as inbox:
        with rpc.Client(inbox.address or "") as client:
            assert client.reply_to is not None and client.reply_to.startswith("posixmq://")
            client.submit("m", 1)
            request = json.loads(inbox.recv(timeout=5))
            assert request["reply_to"] == client.reply_to
        with pytest.raises(anyipc.ConnectionLost):
            anyipc.connect(client.reply_to)  # removed on close
