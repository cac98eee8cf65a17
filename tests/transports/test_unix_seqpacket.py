"""unix-seqpacket:// specifics: messages over a connection, ends, sizes, peers in other processes.

Names and socket files (modes, stale and live sockets) are in test_unix_names.py.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import anyipc

Opened = tuple[anyipc.Listener, anyipc.Channel, anyipc.Channel]

CHILD_SENDS = """
import sys, anyipc
channel = anyipc.connect(sys.argv[1])
for message in (b"first", b"", b"x" * 65536, b"last"):
    channel.send(message, timeout=10)
if sys.argv[2] == "close":
    channel.close()
else:
    print("sent", flush=True)
    sys.stdin.read()  # killed here
"""

# SIGPIPE at its default action (Python ignores it): a send that raised it would kill the child.
CHILD_WRITES_TO_A_CLOSED_PEER = """
import signal, sys, anyipc
signal.signal(signal.SIGPIPE, signal.SIG_DFL)
channel = anyipc.connect(sys.argv[1])
print("connected", flush=True)
assert channel.recv(timeout=10) == b"gone"
try:
    while True:
        channel.send(b"anyone?", timeout=10)
except anyipc.ConnectionLost as exc:
    print(type(exc).__name__, flush=True)
"""


@pytest.fixture(params=["{dir}/p.sock", "@anyipc-test-{name}"], ids=["path", "abstract"])
def uri(request: pytest.FixtureRequest, short_dir: Path) -> str:
    return "unix-seqpacket://" + request.param.format(dir=short_dir, name=uuid.uuid4().hex)


@pytest.fixture
def opened(uri: str) -> Iterator[Opened]:
    """A listener on ``uri``, a client connected to it and the accepted server end."""
    with contextlib.ExitStack() as stack:
        listener = stack.enter_context(anyipc.listen(uri))
        client = stack.enter_context(anyipc.connect(listener.address))
        server = stack.enter_context(listener.accept(timeout=5))
        yield listener, client, server


def _raw_client(uri: str, name: str = "") -> socket.socket:
    """A plain seqpacket socket (bound to ``name`` if given) connected to ``uri``."""
    location = anyipc.Address.parse(uri).location
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    sock.settimeout(5)
    if name:
        sock.bind(name)
    sock.connect("\0" + location[1:] if location.startswith("@") else location)
    return sock


def test_addresses_and_claims(uri: str, opened: Opened) -> None:
    listener, client, server = opened
    assert listener.address == uri
    assert client.peer == server.address == uri
    assert client.address is None and server.peer is None
    caps = client.capabilities
    assert caps.boundaries is anyipc.Boundaries.MESSAGE
    assert caps.connection is anyipc.Connection.ORIENTED
    assert caps.reliable and caps.reports_end and caps.max_message_size == 65536


def test_a_client_that_bound_a_name_is_the_accepted_peer(uri: str, short_dir: Path) -> None:
    with anyipc.listen(uri) as listener, _raw_client(uri, str(short_dir / "client.sock")):
        with listener.accept(timeout=5) as server:
            assert server.peer == f"unix-seqpacket://{short_dir}/client.sock"


def test_messages_keep_their_boundaries_and_the_end_follows_them(opened: Opened) -> None:
    _, client, server = opened
    messages = [b"one", b"", b"three" * 1000, b""]
    for message in messages:
        client.send(message, timeout=5)
    client.close()
    assert list(server) == messages
    with pytest.raises(anyipc.EndOfChannel):
        server.recv(timeout=5)


def test_the_largest_message_fits_and_one_byte_more_sends_nothing(opened: Opened) -> None:
    _, client, server = opened
    largest = bytes(range(256)) * 256
    with pytest.raises(anyipc.MessageTooLarge):
        client.send(largest + b"!", timeout=5)
    client.send(largest, timeout=5)
    client.send(b"after", timeout=5)
    assert server.recv(timeout=5) == largest
    assert server.recv(timeout=5) == b"after"


def test_a_program_without_anyipc_is_a_peer(uri: str) -> None:
    with anyipc.listen(uri) as listener, _raw_client(uri) as raw:
        # queued before accept, the empty message is still told from the end
        raw.send(b"plain")
        raw.send(b"")
        with listener.accept(timeout=5) as server:
            assert server.recv(timeout=5) == b"plain"
            assert server.recv(timeout=5) == b""
            server.send(b"no header", timeout=5)
            assert raw.recv(100) == b"no header"
            raw.close()
            with pytest.raises(anyipc.EndOfChannel):
                server.recv(timeout=5)


def test_an_oversize_message_from_a_foreign_peer_is_connection_lost(uri: str) -> None:
    with anyipc.listen(uri) as listener, _raw_client(uri) as raw:
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 18)
        raw.send(b"x" * 70000)
        with listener.accept(timeout=5) as server:
            for _ in range(2):
                with pytest.raises(anyipc.ConnectionLost, match="max_message_size"):
                    server.recv(timeout=5)


@pytest.mark.parametrize(
    ("end", "reported"),
    [
        ("close", anyipc.EndOfChannel),
        ("kill", anyipc.EndOfChannel),  # nothing unread: the kernel closes it like an orderly end
        ("kill with our message unread", anyipc.ConnectionLost),
    ],
)
def test_a_peer_in_another_process(
    uri: str, children, end: str, reported: type[anyipc.ChannelClosed]
) -> None:
    with anyipc.listen(uri) as listener:
        child = children.python(CHILD_SENDS, listener.address, end, stdin=subprocess.PIPE)
        with listener.accept(timeout=10) as server:
            if end.endswith("unread"):
                server.send(b"never read", timeout=5)
            received = [server.recv(timeout=10) for _ in range(4)]
            assert received == [b"first", b"", b"x" * 65536, b"last"]
            if end != "close":
                assert child.stdout.readline() == b"sent\n"
                child.kill()
            for _ in range(2):
                with pytest.raises(reported):
                    server.recv(timeout=10)
        child.wait(10)


def test_a_send_after_the_peer_closed_is_connection_lost_never_sigpipe(uri: str, children) -> None:
    with anyipc.listen(uri) as listener:
        child = children.python(
            CHILD_WRITES_TO_A_CLOSED_PEER, listener.address, stdin=subprocess.PIPE
        )
        assert child.stdout.readline() == b"connected\n"
        with listener.accept(timeout=10) as server:
            server.send(b"gone", timeout=5)
        out, err = child.communicate(timeout=10)
    assert (child.returncode, out) == (0, b"ConnectionLost\n"), err


def test_connecting_where_nobody_listens_is_connection_lost(
    uri: str, short_dir: Path, no_new_fds: None
) -> None:
    with pytest.raises(anyipc.ConnectionLost, match="nobody is listening"):
        anyipc.connect(uri)
    with anyipc.listen(f"unix://{short_dir}/stream.sock"):
        with pytest.raises(anyipc.ConnectionLost, match="wrong type"):
            anyipc.connect(f"unix-seqpacket://{short_dir}/stream.sock")


def test_the_framed_layer_is_refused_it_keeps_boundaries_already(uri: str) -> None:
    with pytest.raises(anyipc.InvalidAddress, match="already keeps message boundaries"):
        anyipc.listen(f"framed+{uri}")
