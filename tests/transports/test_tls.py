"""tls+: round trips, the handshake matrix, options, ends, timeouts and readiness.

Certificates come from the session's ``tls`` fixture (trustme, see conftest).
Every refused connection must show the documented error on both sides and
never pass on the application data that was sent over it.
"""

from __future__ import annotations

import contextlib
import ssl
import struct
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import anyipc
from anyipc import (
    ChannelClosed,
    ConnectionLost,
    EndOfChannel,
    InvalidAddress,
    PermissionDenied,
    Timeout,
)
from anyipc.transports.tls import CLOSE_TIMEOUT

Receive = Callable[[anyipc.Channel, int], bytes]


@pytest.fixture(params=["tcp", "unix"])
def tls_uri(request: pytest.FixtureRequest, tls: Any, short_dir: Path) -> str:
    """A URI to listen on with TLS, for tcp and unix (a listener's address suits a client)."""
    query = f"cert={tls.server}&ca={tls.ca}"
    if request.param == "tcp":
        return f"tls+tcp://127.0.0.1:0?{query}"
    return f"tls+unix://{short_dir}/t.sock?{query}&server_hostname=localhost"


@pytest.fixture
def opened() -> Iterator[contextlib.ExitStack]:
    """An exit stack for the endpoints a test opens by hand (closed newest first)."""
    with contextlib.ExitStack() as stack:
        yield stack


def client_uri(listener: anyipc.Listener, **options: object) -> str:
    """The listener's address with only ``options``: what a client of its own would write."""
    address = anyipc.Address.parse_syntax(listener.address)
    return str(address.replace(options={name: str(value) for name, value in options.items()}))


def host_options(listener: anyipc.Listener) -> dict[str, str]:
    """The server name a client must check for ``listener`` (none needed over tcp)."""
    return {} if listener.address.startswith("tls+tcp:") else {"server_hostname": "localhost"}


# -- round trips ---------------------------------------------------------------------------
def test_bytes_round_trip_both_ways(open_pair, tls_uri: str, recv_exactly: Receive) -> None:
    listener, client, server = open_pair(tls_uri)
    client.send(b"hello over TLS")
    assert recv_exactly(server, 14) == b"hello over TLS"
    payload = bytes(range(256)) * 160  # fits the socket buffers: nobody reads during the send
    server.send(payload, timeout=10)
    assert recv_exactly(client, len(payload)) == payload
    inner = anyipc.transports()[tls_uri.split("+")[1].split(":")[0]].capabilities
    assert listener.capabilities == client.capabilities == server.capabilities == inner
    for uri in (listener.address, server.address, client.peer):
        assert uri is not None and uri.startswith("tls+")


def test_framed_over_tls_keeps_message_boundaries(open_pair, tls: Any) -> None:
    _, client, server = open_pair(f"framed+tls+tcp://127.0.0.1:0?cert={tls.server}&ca={tls.ca}")
    messages = [b"", b"one", bytes(70000), b"last"]
    for message in messages:
        client.send(message)
    assert [server.recv(timeout=5) for _ in messages] == messages
    assert server.capabilities.boundaries is anyipc.Boundaries.MESSAGE
    assert client.address is not None and client.address.startswith("framed+tls+tcp://")


def test_a_pair_over_a_socketpair(tls: Any, recv_exactly: Receive) -> None:
    uri = f"tls+socketpair://?cert={tls.server}&ca={tls.ca}&server_hostname=localhost"
    first, second = anyipc.pair(uri)
    with first, second:
        second.send(b"from the client end")
        assert recv_exactly(first, 19) == b"from the client end"
        first.send(b"from the server end")
        assert recv_exactly(second, 19) == b"from the server end"
        # the handshake runs in this process: no end may be adopted by a child
        assert first.address is None and second.address is None


def test_a_client_peer_names_the_host_it_checked(opened, tls: Any, recv_exactly: Receive) -> None:
    listener = opened.enter_context(anyipc.listen(f"tls+tcp://127.0.0.1:0?cert={tls.server}"))
    port = listener.address.split("?")[0].rsplit(":", 1)[1]
    client = opened.enter_context(anyipc.connect(f"tls+tcp://localhost:{port}?ca={tls.ca}"))
    opened.enter_context(listener.accept(timeout=5))
    assert client.peer is not None and "server_hostname=localhost" in client.peer
    again = opened.enter_context(anyipc.connect(client.peer))  # 127.0.0.1, checked as localhost
    server = opened.enter_context(listener.accept(timeout=5))
    again.send(b"ok")
    assert recv_exactly(server, 2) == b"ok"


# -- the handshake matrix --------------------------------------------------------------------
# (changes to the server's and the client's options, which side refuses)
MATRIX = [
    pytest.param(
        lambda t: ({"require_client_cert": "true"}, {"client_cert": t.client}),
        None,
        id="client-certificate-required-and-given",
    ),
    pytest.param(
        lambda t: ({"require_client_cert": "true"}, {}),
        "server",
        id="client-certificate-required-not-given",
    ),
    pytest.param(
        lambda t: ({"require_client_cert": "true"}, {"client_cert": t.stranger}),
        "server",
        id="client-certificate-from-an-unknown-ca",
    ),
    pytest.param(lambda t: ({}, {"ca": t.other_ca}), "client", id="server-from-an-unknown-ca"),
    pytest.param(
        lambda t: ({}, {"server_hostname": "wrong.example"}), "client", id="wrong-host-name"
    ),
]


@pytest.mark.parametrize(("changes", "refuser"), MATRIX)
def test_handshake_matrix(
    opened, tls_uri: str, tls: Any, changes, refuser: str | None, recv_exactly: Receive
) -> None:
    server_changes, client_changes = changes(tls)
    query = "&".join(f"{name}={value}" for name, value in server_changes.items())
    listener = opened.enter_context(anyipc.listen(f"{tls_uri}&{query}" if query else tls_uri))
    options = {"ca": tls.ca, **host_options(listener), **client_changes}
    client = opened.enter_context(anyipc.connect(client_uri(listener, **options)))
    server = opened.enter_context(listener.accept(timeout=5))
    if refuser is None:
        client.send(b"secret")
        assert recv_exactly(server, 6) == b"secret"
        server.send(b"welcome")
        assert recv_exactly(client, 7) == b"welcome"
        return
    if refuser == "client":  # the client refuses the server: it never sends
        with pytest.raises(PermissionDenied, match="TLS authentication failed"):
            client.send(b"secret", timeout=10)
    else:  # TLS 1.3: the client completes its side before the server checks it
        client.send(b"secret", timeout=10)
    for _ in range(2):  # the refusing side never passes the bytes on, every time
        with pytest.raises(PermissionDenied, match="TLS authentication failed"):
            server.recv(timeout=10)
    with pytest.raises(PermissionDenied, match="TLS authentication failed"):
        client.recv(timeout=10)


CHILD = """
import sys
import anyipc

try:
    with anyipc.connect(sys.argv[1]) as channel:
        channel.send(b"from the child", timeout=10)
        print(channel.recv(timeout=10).decode())
except anyipc.IPCError as exc:
    print(type(exc).__name__, exc)
"""


@pytest.mark.parametrize("with_certificate", [True, False], ids=["accepted", "refused"])
def test_a_client_in_another_process(
    opened, children, tls: Any, with_certificate: bool, recv_exactly: Receive
) -> None:
    uri = f"tls+tcp://127.0.0.1:0?cert={tls.server}&ca={tls.ca}&require_client_cert=true"
    listener = opened.enter_context(anyipc.listen(uri))
    certificate = {"client_cert": tls.client} if with_certificate else {}
    child = children.python(CHILD, client_uri(listener, ca=tls.ca, **certificate))
    server = opened.enter_context(listener.accept(timeout=10))
    if with_certificate:
        assert recv_exactly(server, 14) == b"from the child"
        server.send(b"welcome\n")
    else:
        with pytest.raises(PermissionDenied, match="no certificate"):
            server.recv(timeout=10)
    out, err = child.communicate(timeout=30)
    expected = b"welcome" if with_certificate else b"PermissionDenied TLS authentication failed"
    assert out.startswith(expected), out + err


# -- options -----------------------------------------------------------------------------
def test_a_context_may_be_given_as_a_keyword(opened, tls: Any, recv_exactly: Receive) -> None:
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.server_leaf.configure_cert(server_context)
    client_context = ssl.create_default_context()
    tls.authority.configure_trust(client_context)
    listener = opened.enter_context(anyipc.listen("tls+tcp://127.0.0.1:0", context=server_context))
    assert "context" not in listener.address
    client = opened.enter_context(anyipc.connect(listener.address, context=client_context))
    server = opened.enter_context(listener.accept(timeout=5))
    client.send(b"via contexts")
    assert recv_exactly(server, 12) == b"via contexts"
    server.send(b"reply")
    assert recv_exactly(client, 5) == b"reply"
    client.close()  # its server's context sends session tickets; they were read with the reply
    with pytest.raises(EndOfChannel):
        server.recv(timeout=10)


def test_a_context_is_checked(tls: Any) -> None:
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.server_leaf.configure_cert(server_context)
    with pytest.raises(InvalidAddress, match="cannot be written in a URI"):
        anyipc.listen("tls+tcp://127.0.0.1:0?context=mine")
    with pytest.raises(InvalidAddress, match="must be a SSLContext, not dict"):
        anyipc.listen("tls+tcp://127.0.0.1:0", context={"cert": str(tls.server)})
    with pytest.raises(InvalidAddress, match="replaces cert"):
        anyipc.listen(f"tls+tcp://127.0.0.1:0?cert={tls.server}", context=server_context)
    with pytest.raises(InvalidAddress, match="PROTOCOL_TLS_CLIENT"):
        anyipc.connect("tls+tcp://127.0.0.1:1", context=server_context)
    old = ssl.create_default_context()
    old.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    with pytest.raises(InvalidAddress, match="before 1.2"):
        anyipc.connect("tls+tcp://127.0.0.1:1", context=old)


def test_the_key_may_be_a_file_of_its_own(open_pair, tls: Any, recv_exactly: Receive) -> None:
    uri = f"tls+tcp://127.0.0.1:0?cert={tls.server_cert}&key={tls.server_key}&ca={tls.ca}"
    _, client, server = open_pair(uri)
    client.send(b"ok")
    assert recv_exactly(server, 2) == b"ok"


def test_verify_false_encrypts_without_checking(opened, tls_uri: str, recv_exactly) -> None:
    listener = opened.enter_context(anyipc.listen(tls_uri))
    client = opened.enter_context(anyipc.connect(client_uri(listener, verify="false")))
    server = opened.enter_context(listener.accept(timeout=5))
    client.send(b"unchecked")
    assert recv_exactly(server, 9) == b"unchecked"


@pytest.mark.parametrize(
    ("verb", "uri", "match"),
    [
        ("listen", "tls+unix://{dir}/s.sock", "needs its certificate: cert=PATH"),
        (
            "listen",
            "tls+unix://{dir}/s.sock?cert={server}&require_client_cert=true",
            "require_client_cert=true needs ca=PATH",
        ),
        ("listen", "tls+unix://{dir}/s.sock?cert={dir}/missing.pem", "missing.pem: cannot be"),
        ("listen", "tls+unix://{dir}/s.sock?cert={ca}", "cannot be loaded"),
        ("connect", "tls+unix://{dir}/s.sock?ca={ca}", "give server_hostname=NAME.*verify=false"),
        ("connect", "tls+tcp://127.0.0.1:1?client_key={server}", "client_key= needs client_cert"),
        ("connect", "tls+tcp://127.0.0.1:1?handshake_timeout=0", "must be above 0"),
        ("connect", "tls+tcp://127.0.0.1:1?bogus=1", "it accepts: ca, cert, client_cert"),
        ("connect", "tls+framed+tcp://127.0.0.1:1", "byte stream"),
        ("pair", "tls+pipe://", "both ways"),
        ("pair", "tls+socketpair://?cert={server}&ca={ca}", "server_hostname=NAME"),
    ],
)
def test_bad_options_are_refused_before_anything_is_opened(
    verb: str, uri: str, match: str, tls: Any, short_dir: Path
) -> None:
    filled = uri.format(dir=short_dir, server=tls.server, ca=tls.ca)
    with pytest.raises(InvalidAddress, match=match):
        getattr(anyipc, verb)(filled)
    assert not (short_dir / "s.sock").exists()


# -- ends ----------------------------------------------------------------------------------
@pytest.fixture
def stdlib_client(
    opened, raw_connect, tls: Any
) -> Callable[..., tuple[ssl.SSLSocket, anyipc.Channel]]:
    """``stdlib_client(stack="tls+tcp")``: a TLS client made with the ssl module alone,
    and the server end that accepted it."""

    def connect(stack: str = "tls+tcp") -> tuple[ssl.SSLSocket, anyipc.Channel]:
        uri = f"{stack}://127.0.0.1:0?cert={tls.server}&ca={tls.ca}"
        listener = opened.enter_context(anyipc.listen(uri))
        raw = raw_connect(listener.address)
        server = opened.enter_context(listener.accept(timeout=5))
        context = ssl.create_default_context(cafile=str(tls.ca))
        return opened.enter_context(context.wrap_socket(raw, server_hostname="localhost")), server

    return connect


def test_close_notify_is_the_end_both_ways(stdlib_client, recv_exactly: Receive) -> None:
    client, server = stdlib_client()
    client.sendall(b"all of it")
    # unwrap sends close_notify, then waits for the server's (which its close sends)
    unwrapping = threading.Thread(target=client.unwrap)
    unwrapping.start()
    assert recv_exactly(server, 9) == b"all of it"
    for _ in range(2):
        with pytest.raises(EndOfChannel):
            server.recv(timeout=10)
    server.close()
    unwrapping.join(10)
    assert not unwrapping.is_alive()


def test_an_end_without_close_notify_is_a_truncation(stdlib_client, recv_exactly) -> None:
    client, server = stdlib_client()
    client.sendall(b"partial")
    client.close()  # no close_notify
    assert recv_exactly(server, 7) == b"partial"
    with pytest.raises(ConnectionLost, match="without TLS close_notify"):
        server.recv(timeout=10)


def test_wait_sees_messages_decrypted_with_an_earlier_one(stdlib_client) -> None:
    client, server = stdlib_client("framed+tls+tcp")
    frames = b"".join(struct.pack("!I", len(m)) + m for m in (b"one", b"two"))
    client.sendall(frames)  # one TLS record: decrypted whole by the first recv
    assert server.recv(timeout=10) == b"one"
    assert anyipc.wait([server], timeout=0) == [server]  # the socket has nothing more
    assert server.recv(timeout=10) == b"two"
    assert anyipc.wait([server], timeout=0.05) == []


def test_close_during_the_handshake_is_an_orderly_end(open_pair, tls_uri: str) -> None:
    _, client, server = open_pair(tls_uri)
    client.close()  # lets the handshake end, then says goodbye
    with pytest.raises(EndOfChannel):
        server.recv(timeout=10)


def test_close_without_an_accepting_server_returns(opened, tls_uri: str) -> None:
    listener = opened.enter_context(anyipc.listen(tls_uri))
    client = anyipc.connect(listener.address)
    started = time.monotonic()
    client.close()
    assert time.monotonic() - started < CLOSE_TIMEOUT + 5


def test_close_from_another_thread_wakes_a_blocked_recv(open_pair, tls_uri, recv_exactly) -> None:
    _, client, server = open_pair(tls_uri)
    client.send(b"x")
    assert recv_exactly(server, 1) == b"x"
    outcome: list[BaseException] = []

    def blocked() -> None:
        try:
            server.recv(timeout=30)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=blocked)
    thread.start()
    time.sleep(0.1)
    server.close()
    thread.join(10)
    assert not thread.is_alive()
    assert type(outcome[0]) is ChannelClosed


# -- handshake deadlines and strangers ----------------------------------------------------
def test_a_silent_client_costs_accept_nothing(opened, raw_connect, tls: Any) -> None:
    listener = opened.enter_context(
        anyipc.listen(f"tls+tcp://127.0.0.1:0?cert={tls.server}&handshake_timeout=0.3")
    )
    raw_connect(listener.address)  # connects and says nothing
    silent = opened.enter_context(listener.accept(timeout=5))
    with pytest.raises(ConnectionLost, match="handshake_timeout=0.3"):
        silent.recv(timeout=30)


@pytest.mark.parametrize("stack", ["tls+tcp", "framed+tls+tcp"])  # framed: the inner's interval
def test_wait_reports_a_handshake_that_timed_out(opened, raw_connect, tls: Any, stack: str) -> None:
    listener = opened.enter_context(
        anyipc.listen(f"{stack}://127.0.0.1:0?cert={tls.server}&handshake_timeout=0.3")
    )
    raw_connect(listener.address)  # connects and says nothing: the descriptor stays quiet
    silent = opened.enter_context(listener.accept(timeout=5))
    started = time.monotonic()
    assert anyipc.wait([silent], timeout=30) == [silent]
    assert time.monotonic() - started < 10  # re-checked (poll_interval), not found at the timeout
    with pytest.raises(ConnectionLost, match="handshake_timeout"):
        silent.recv(timeout=0)


def test_a_client_that_leaves_before_the_handshake_is_the_end(opened, raw_connect, tls) -> None:
    listener = opened.enter_context(anyipc.listen(f"tls+tcp://127.0.0.1:0?cert={tls.server}"))
    raw_connect(listener.address).close()  # connects and leaves, having sent nothing
    server = opened.enter_context(listener.accept(timeout=5))
    with pytest.raises(EndOfChannel, match="before the TLS handshake"):
        server.recv(timeout=10)
    with pytest.raises(ConnectionLost, match="before the TLS handshake"):
        server.send(b"anyone?", timeout=10)


def test_a_client_that_does_not_speak_tls_is_refused(opened, raw_connect, tls: Any) -> None:
    listener = opened.enter_context(anyipc.listen(f"tls+tcp://127.0.0.1:0?cert={tls.server}"))
    raw = raw_connect(listener.address)
    server = opened.enter_context(listener.accept(timeout=5))
    raw.sendall(b"GET / HTTP/1.0\r\n\r\n")
    with pytest.raises(ConnectionLost, match="TLS failed"):
        server.recv(timeout=10)


# -- timeouts --------------------------------------------------------------------------------
def test_a_recv_timeout_leaves_the_channel_usable(open_pair, tls_uri, recv_exactly) -> None:
    _, client, server = open_pair(tls_uri)
    with pytest.raises(Timeout):
        server.recv(timeout=0.05)
    client.send(b"after")
    assert recv_exactly(server, 5) == b"after"


def test_a_send_timeout_commits_what_sent_counts(open_pair, tls_uri, recv_exactly) -> None:
    _, client, server = open_pair(tls_uri)
    client.send(b"x")
    assert recv_exactly(server, 1) == b"x"
    accepted = bytearray()
    for number in range(100_000):
        payload = number.to_bytes(8, "big") * 8192
        try:
            client.send(payload, timeout=0.05)
        except Timeout as exc:
            accepted += payload[: exc.sent]
            break
        accepted += payload
    else:
        raise AssertionError("sends never blocked")
    received = bytearray()

    def drain() -> None:
        with contextlib.suppress(EndOfChannel):
            while True:
                received.extend(server.recv(timeout=30))

    reader = threading.Thread(target=drain)
    reader.start()
    client.send(b"tail", timeout=30)  # the rest of the committed bytes go first
    client.close()
    reader.join(60)
    assert not reader.is_alive()
    assert bytes(received) == bytes(accepted) + b"tail"


# -- readiness -----------------------------------------------------------------------------
def test_wait_reports_a_tls_channel_when_bytes_arrive(open_pair, tls_uri, recv_exactly) -> None:
    _, client, server = open_pair(tls_uri)
    client.send(b"first")
    assert recv_exactly(server, 5) == b"first"  # the handshake is over
    assert anyipc.wait([server], timeout=0.05) == []
    client.send(b"second")
    assert anyipc.wait([server], timeout=10) == [server]
    assert recv_exactly(server, 6) == b"second"


def test_wait_over_an_inner_channel_without_a_descriptor(open_pair, tls: Any) -> None:
    query = f"boundaries=stream&cert={tls.server}&ca={tls.ca}&server_hostname=localhost"
    _, client, server = open_pair(f"tls+mem://tls-wait?{query}")
    client.send(b"a")
    assert server.recv(timeout=10) == b"a"
    assert anyipc.wait([server], timeout=0.05) == []
    client.send(b"b")
    assert anyipc.wait([server], timeout=10) == [server]
    assert server.recv(timeout=10) == b"b"
