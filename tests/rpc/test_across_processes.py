"""One service in another process, over every transport of ``TRANSPORTS``, by URI alone.

Each test runs once per transport (the ``transport`` fixture); nothing in
a test depends on which: the client is made from the server's address.
"""

from __future__ import annotations

import json
import threading
import time

import pytest

import anyipc
from anyipc import rpc

from ..transports.conftest import Children
from .conftest import ServerProcess

DEATH_BOUND = 3.0  #: how soon a client must report a server killed while it waits

CALLER = """
import json, os, sys, anyipc
from anyipc import rpc
with rpc.Client(sys.argv[1]) as client:
    pending = [client.submit("echo", [os.getpid(), n]) for n in range(10)]
    results = [p.result(timeout=20) for p in pending]
    results += [client.call("echo", [os.getpid(), n], timeout=20) for n in range(10, 20)]
print(json.dumps({"pid": os.getpid(), "results": results}))
"""


def test_a_call_returns_the_result(server: ServerProcess) -> None:
    value = {"text": "é\\n", "numbers": [1, -2, 2.5, 10**30], "none": None, "yes": True}
    with rpc.Client(server.address) as client:
        assert client.call("add", 2, 3, timeout=10) == 5
        assert client.call("echo", value, timeout=10) == value
        assert client.call("echo", (1, 2), timeout=10) == [1, 2]  # JSON has no tuples
        assert client.call("pid", timeout=10) == server.process.pid


def test_several_threads_share_one_client(server: ServerProcess) -> None:
    failures: list[BaseException] = []

    def calls(thread: int, client: rpc.Client) -> None:
        try:
            pending = [client.submit("echo", [thread, n]) for n in range(8)]
            for n, request in enumerate(pending):
                assert request.result(timeout=20) == [thread, n]
            for n in range(8, 16):
                assert client.call("echo", [thread, n], timeout=20) == [thread, n]
        except BaseException as exc:
            failures.append(exc)

    with rpc.Client(server.address) as client:
        threads = [threading.Thread(target=calls, args=(t, client)) for t in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    assert not failures, failures


def test_many_requests_in_flight_before_any_result_is_collected(server: ServerProcess) -> None:
    # More than a queue holds: the server waits for room for its replies while
    # the client waits for room for its requests, unless the client receives meanwhile.
    with rpc.Client(server.address) as client:
        pending = [client.submit("echo", n, timeout=20) for n in range(60)]
        assert [p.result(timeout=20) for p in pending] == list(range(60))


def test_several_client_processes_call_at_once(server: ServerProcess, children: Children) -> None:
    callers = [children.python(CALLER, server.address) for _ in range(3)]
    with rpc.Client(server.address) as client:
        for n in range(20):
            assert client.call("add", n, 1, timeout=20) == n + 1
    for caller in callers:
        out, err = caller.communicate(timeout=60)
        assert caller.returncode == 0, err.decode()
        answer = json.loads(out)
        assert answer["results"] == [[answer["pid"], n] for n in range(20)]


def test_a_timeout_leaves_the_client_usable_and_its_late_reply_is_discarded(
    server: ServerProcess,
) -> None:
    with rpc.Client(server.address) as client:
        started = time.monotonic()
        with pytest.raises(anyipc.Timeout, match="no reply to 'sleep'"):
            client.call("sleep", 1.0, timeout=0.2)
        assert time.monotonic() - started < 0.9
        # the late reply (1.0) arrives first, and must not be taken for this one
        assert client.call("echo", "next", timeout=10) == "next"
        assert client.call("echo", "and the next", timeout=10) == "and the next"


def test_a_remote_exception_comes_back_with_its_type_and_message(server: ServerProcess) -> None:
    with rpc.Client(server.address) as client:
        with pytest.raises(rpc.RemoteError) as caught:
            client.call("fail", "ValueError", "bad input", timeout=10)
        assert type(caught.value) is rpc.RemoteError
        assert (caught.value.type, caught.value.message) == ("ValueError", "bad input")
        assert isinstance(caught.value, anyipc.IPCError)
        assert client.call("add", 1, 1, timeout=10) == 2


def test_unknown_methods_and_unfit_params_run_nothing(server: ServerProcess) -> None:
    with rpc.Client(server.address) as client:
        with pytest.raises(rpc.MethodNotFound, match="no method 'nope'.*add, echo, fail"):
            client.call("nope", timeout=10)
        with pytest.raises(rpc.InvalidParams, match="add"):
            client.call("add", 1, timeout=10)
        assert client.call("add", 1, 2, timeout=10) == 3


def test_messages_too_large_for_the_transport(server: ServerProcess) -> None:
    with rpc.Client(server.address) as client:
        limit = client.channel.capabilities.max_message_size
        assert limit is not None
        with pytest.raises(anyipc.MessageTooLarge):
            client.call("echo", "x" * limit, timeout=10)
        with pytest.raises(rpc.InvalidResult, match="at most"):
            client.call("text", limit, timeout=30)
        assert client.call("echo", "still here", timeout=10) == "still here"


def test_a_killed_server_is_reported_while_a_call_waits(own_server: ServerProcess) -> None:
    with rpc.Client(own_server.address) as client:
        assert client.call("pid", timeout=10) == own_server.process.pid
        waiting = client.submit("sleep", 60)
        time.sleep(0.2)  # the request is in the server's hands
        own_server.kill()
        started = time.monotonic()
        with pytest.raises(anyipc.ConnectionLost):
            waiting.result(timeout=30)
        assert time.monotonic() - started < DEATH_BOUND
        with pytest.raises(anyipc.ConnectionLost):
            client.call("pid", timeout=10)


MALFORMED = [
    b"\xff\xfe not UTF-8",
    b"not JSON",
    b"[1, 2]",
    b'{"id": true, "method": "echo"}',
    b'{"id": 1.5, "method": "echo"}',
    b'{"method": "echo", "params": [1]}',
    b"[" * 8000,  # deeper than the decoder recurses
    b'{"id": ' + b"9" * 5000 + b"}",
    b'{"id": 1, "method": "echo", "params": [NaN]}',
]
#: requests that name their id but are otherwise malformed: each gets an InvalidRequest
INVALID = {
    "no method": {"params": []},
    "empty method": {"method": ""},
    "params not a container": {"method": "echo", "params": 5},
    "reply_to not a string": {"method": "echo", "reply_to": 7},
}


def test_malformed_requests_from_a_raw_peer_do_not_stop_the_server(
    server: ServerProcess,
) -> None:
    with _RawPeer(server.address) as peer:
        for message in MALFORMED:
            peer.send(message)
        for request_id, request in INVALID.items():
            peer.send_request({"id": request_id, **request})
        peer.send_request({"id": "last", "method": "echo", "params": ["still serving"]})
        replies = peer.replies_until("last")
    assert replies.pop("last") == {"id": "last", "result": "still serving"}
    assert set(replies) <= set(INVALID)
    assert set(replies) >= set(INVALID) - {"reply_to not a string"}  # no reply_to: no route
    for reply in replies.values():
        assert reply["error"]["type"] == "InvalidRequest"
    with rpc.Client(server.address) as client:
        assert client.call("add", 2, 2, timeout=10) == 4


class _RawPeer:
    """A peer that speaks the wire format by hand over a plain channel."""

    def __init__(self, address: str) -> None:
        self.channel = anyipc.connect(address)
        self.replies = self.channel
        self.reply_to: str | None = None
        if not self.channel.can_recv:  # a message queue: replies come to a queue of our own
            try:
                self.replies = anyipc.bind(f"{anyipc.Address.parse(address).scheme}://")
            except BaseException:
                self.channel.close()
                raise
            self.reply_to = self.replies.address

    def send(self, message: bytes) -> None:
        self.channel.send(message, timeout=10)

    def send_request(self, request: dict[str, object]) -> None:
        if self.reply_to is not None:
            request = {"reply_to": self.reply_to, **request}
        self.send(json.dumps(request).encode())

    def replies_until(self, last: str) -> dict[str, dict[str, object]]:
        replies: dict[str, dict[str, object]] = {}
        while last not in replies:
            reply = json.loads(self.replies.recv(timeout=10))
            replies[reply["id"]] = reply
        return replies

    def __enter__(self) -> _RawPeer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.channel.close()
        self.replies.close()
