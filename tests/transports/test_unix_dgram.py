"""unix-dgram:// specifics: datagrams, autobound replies, sizes, full queues, vanished peers.

Names and socket files (modes, stale and live sockets) are in test_unix_names.py.
"""

from __future__ import annotations

import re
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import anyipc

AUTOBOUND = re.compile(r"unix-dgram://@[0-9a-f]{5}\Z")

CHILD_ASKS = """
import sys, anyipc
with anyipc.connect(sys.argv[1]) as channel:
    channel.send(b"question", timeout=10)
    print(channel.address, flush=True)
    sys.stdout.buffer.write(channel.recv(timeout=10) + b"\\n")
"""

BOUND_UNTIL_KILLED = """
import sys, anyipc
channel = anyipc.bind(sys.argv[1])
print("bound", flush=True)
sys.stdin.read()
"""


@pytest.fixture(params=["{dir}/d.sock", "@anyipc-test-{name}"], ids=["path", "abstract"])
def uri(request: pytest.FixtureRequest, short_dir: Path) -> str:
    return "unix-dgram://" + request.param.format(dir=short_dir, name=uuid.uuid4().hex)


@pytest.fixture
def bound(uri: str) -> Iterator[anyipc.Channel]:
    with anyipc.bind(uri) as channel:
        yield channel


@pytest.fixture
def client(bound: anyipc.Channel) -> Iterator[anyipc.Channel]:
    assert bound.address is not None
    with anyipc.connect(bound.address) as channel:
        yield channel


def _raw(name: str = "") -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.settimeout(5)
    if name:
        sock.bind(name)
    return sock


def _sockaddr(uri: str) -> str:
    location = anyipc.Address.parse(uri).location
    return "\0" + location[1:] if location.startswith("@") else location


def _receives_exactly(receiver: anyipc.Channel, expected: list[bytes]) -> None:
    """``receiver`` gets ``expected``, in order, and then nothing more."""
    assert [receiver.recv(timeout=5) for _ in expected] == expected
    with pytest.raises(anyipc.Timeout):
        receiver.recv(timeout=0.05)


def test_addresses_and_claims(uri: str, bound: anyipc.Channel, client: anyipc.Channel) -> None:
    assert bound.address == uri and bound.peer is None
    assert client.peer == uri
    assert client.address is not None and AUTOBOUND.match(client.address)
    caps = client.capabilities
    assert caps.connection is anyipc.Connection.CONNECTIONLESS and not caps.reports_end
    assert caps.reliable and caps.max_message_size == 65536


def test_a_bound_channel_has_no_default_peer(bound: anyipc.Channel) -> None:
    with pytest.raises(anyipc.NotSupported, match="send_to"):
        bound.send(b"to whom?")


def test_an_autobound_client_in_another_process_gets_the_reply(
    bound: anyipc.Channel, children
) -> None:
    assert bound.address is not None
    child = children.python(CHILD_ASKS, bound.address)
    question, sender = bound.recv_from(timeout=10)
    assert question == b"question"
    assert AUTOBOUND.match(sender), sender
    bound.send_to(b"answer", sender, timeout=10)
    out, err = child.communicate(timeout=10)
    assert child.returncode == 0, err
    assert out.decode().splitlines() == [sender, "answer"]


def test_each_send_is_one_datagram_zero_length_included(
    bound: anyipc.Channel, client: anyipc.Channel
) -> None:
    messages = [b"one", b"", b"three" * 1000, b""]
    for message in messages:
        client.send(message, timeout=5)
    _receives_exactly(bound, messages)


def test_send_to_and_recv_from_work_on_a_connected_channel(
    bound: anyipc.Channel, client: anyipc.Channel
) -> None:
    assert bound.address is not None and client.address is not None
    client.send_to(b"explicit", bound.address, timeout=5)
    assert bound.recv_from(timeout=5) == (b"explicit", client.address)
    bound.send_to(b"back", client.address, timeout=5)
    assert client.recv_from(timeout=5) == (b"back", bound.address)


def test_a_connected_channel_hears_only_its_peer(uri: str, client: anyipc.Channel) -> None:
    assert client.address is not None
    with anyipc.bind(f"unix-dgram://@anyipc-stranger-{uuid.uuid4().hex}") as stranger:
        with pytest.raises(anyipc.PermissionDenied):
            stranger.send_to(b"psst", client.address, timeout=5)


def test_the_largest_message_fits_and_one_byte_more_sends_nothing(
    bound: anyipc.Channel, client: anyipc.Channel
) -> None:
    largest = bytes(range(256)) * 256
    assert len(largest) == client.capabilities.max_message_size
    with pytest.raises(anyipc.MessageTooLarge):
        client.send(largest + b"!", timeout=5)
    assert bound.address is not None
    with pytest.raises(anyipc.MessageTooLarge):
        client.send_to(largest + b"!", bound.address, timeout=5)
    client.send(largest, timeout=5)
    client.send(b"after", timeout=5)
    assert bound.recv(timeout=5) == largest
    assert bound.recv(timeout=5) == b"after"  # nothing of the refused ones arrived


def test_an_oversize_datagram_from_a_foreign_sender_is_refused_whole(
    bound: anyipc.Channel,
) -> None:
    assert bound.address is not None
    with _raw() as raw:
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 18)
        raw.sendto(b"x" * 70000, _sockaddr(bound.address))
        raw.sendto(b"next", _sockaddr(bound.address))
    with pytest.raises(anyipc.MessageTooLarge, match="discarded"):
        bound.recv(timeout=5)
    assert bound.recv(timeout=5) == b"next"


def test_a_program_without_anyipc_is_a_peer(bound: anyipc.Channel, short_dir: Path) -> None:
    assert bound.address is not None
    with _raw(str(short_dir / "raw.sock")) as raw:
        raw.sendto(b"plain bytes", _sockaddr(bound.address))
        data, sender = bound.recv_from(timeout=5)
        assert (data, sender) == (b"plain bytes", f"unix-dgram://{short_dir}/raw.sock")
        bound.send_to(b"no header", sender, timeout=5)
        assert raw.recv(100) == b"no header"


def test_an_unnamed_sender_is_reported_as_empty(bound: anyipc.Channel) -> None:
    assert bound.address is not None
    with _raw() as raw:
        raw.sendto(b"anonymous", _sockaddr(bound.address))
    assert bound.recv_from(timeout=5) == (b"anonymous", "")


def test_nobody_bound_is_connection_lost_and_the_channel_stays_usable(
    bound: anyipc.Channel, client: anyipc.Channel, short_dir: Path, no_new_fds: None
) -> None:
    nowhere = f"unix-dgram://{short_dir}/nobody.sock"
    with pytest.raises(anyipc.ConnectionLost, match="nobody is listening"):
        anyipc.connect(nowhere)
    with pytest.raises(anyipc.ConnectionLost, match="nobody is listening"):
        bound.send_to(b"lost", nowhere, timeout=5)
    assert client.address is not None
    bound.send_to(b"still here", client.address, timeout=5)
    assert client.recv(timeout=5) == b"still here"


@pytest.mark.parametrize(
    "target", ["unix:///tmp/x.sock", "tcp://127.0.0.1:1", "framed+unix:///tmp/x.sock", "nonsense"]
)
def test_send_to_needs_a_unix_dgram_address(bound: anyipc.Channel, target: str) -> None:
    with pytest.raises(anyipc.InvalidAddress):
        bound.send_to(b"x", target, timeout=5)


def test_a_stream_socket_is_not_a_datagram_peer(short_dir: Path) -> None:
    with anyipc.listen(f"unix://{short_dir}/stream.sock"):
        with pytest.raises(anyipc.ConnectionLost, match="wrong type"):
            anyipc.connect(f"unix-dgram://{short_dir}/stream.sock")


def _fill(send: Callable[[bytes], None]) -> list[bytes]:
    """Send numbered 4 KiB messages until one times out (a full queue); those that went."""
    accepted: list[bytes] = []
    for number in range(100_000):
        message = number.to_bytes(4, "big") * 1024
        try:
            send(message)
        except anyipc.Timeout:
            return accepted
        accepted.append(message)
    raise AssertionError("the queue never filled")


def _started(call: Callable[[], object]) -> tuple[threading.Thread, list[BaseException | None]]:
    """``call()`` running in a thread, and its outcome once it ends (``None``: it returned)."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            call()
        except BaseException as exc:
            outcome.append(exc)
        else:
            outcome.append(None)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


@pytest.mark.parametrize("how", ["send", "send_to"])
def test_a_full_queue_blocks_the_sender_and_loses_nothing(
    how: str, bound: anyipc.Channel, client: anyipc.Channel
) -> None:
    target = client.address
    assert target is not None
    if how == "send":
        accepted, receiver = _fill(lambda m: client.send(m, timeout=0.05)), bound
    else:
        accepted, receiver = _fill(lambda m: bound.send_to(m, target, timeout=0.05)), client
    _receives_exactly(receiver, accepted)


def test_a_waiting_sender_goes_on_as_soon_as_the_receiver_reads(
    bound: anyipc.Channel, client: anyipc.Channel
) -> None:
    target = client.address
    assert target is not None
    accepted = _fill(lambda m: bound.send_to(m, target, timeout=0))
    thread, outcome = _started(lambda: bound.send_to(b"last", target, timeout=10))
    received = [client.recv(timeout=5) for _ in range(len(accepted) + 1)]
    thread.join(10)
    assert outcome == [None]
    assert received == [*accepted, b"last"]


def test_close_wakes_a_sender_waiting_for_room(client: anyipc.Channel) -> None:
    _fill(lambda m: client.send(m, timeout=0))
    thread, outcome = _started(lambda: client.send(b"waits", timeout=30))
    time.sleep(0.1)
    client.close()
    thread.join(5)
    assert not thread.is_alive()
    assert len(outcome) == 1 and type(outcome[0]) is anyipc.ChannelClosed


def test_sending_to_a_vanished_peer_is_connection_lost(uri: str, children) -> None:
    child = children.python(BOUND_UNTIL_KILLED, uri, stdin=subprocess.PIPE)
    assert child.stdout.readline() == b"bound\n"
    with anyipc.connect(uri) as channel:
        channel.send(b"hello", timeout=5)
        child.kill()
        child.wait(10)
        for _ in range(2):  # the kernel reports it once (ECONNREFUSED), then ENOTCONN
            with pytest.raises(anyipc.ConnectionLost):
                channel.send(b"anyone?", timeout=5)
