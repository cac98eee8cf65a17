"""tcp:// specifics: addresses, IPv6, port 0, SO_REUSEADDR, TCP_NODELAY, resets."""

from __future__ import annotations

import os
import re
import select
import socket

import pytest

import anyipc


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


def _nodelay(channel: anyipc.Channel) -> int:
    with socket.socket(fileno=os.dup(channel.fileno())) as sock:
        return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


def test_port_zero_is_resolved_and_addresses_are_uris(open_pair) -> None:
    listener, client, server = open_pair("tcp://127.0.0.1:0")
    match = re.fullmatch(r"tcp://127\.0\.0\.1:(\d+)", listener.address)
    assert match and int(match.group(1)) != 0
    assert client.peer == server.address == listener.address
    assert server.peer == client.address
    assert re.fullmatch(r"tcp://127\.0\.0\.1:\d+", client.address or "")
    assert anyipc.Address.parse(listener.address) == anyipc.Address.parse_syntax(listener.address)


def test_listener_address_keeps_the_options_given() -> None:
    with anyipc.listen("tcp://127.0.0.1:0", nodelay=False) as listener:
        assert re.fullmatch(r"tcp://127\.0\.0\.1:\d+\?nodelay=false", listener.address)
        with anyipc.connect(listener.address) as client, listener.accept(timeout=5) as server:
            assert _nodelay(client) == 0
            assert _nodelay(server) == 0


def test_nodelay_is_on_by_default(open_pair) -> None:
    _, client, server = open_pair("tcp://127.0.0.1:0")
    assert _nodelay(client) != 0
    assert _nodelay(server) != 0


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="this machine has no IPv6 loopback")
def test_ipv6(open_pair, recv_exactly) -> None:
    listener, client, server = open_pair("tcp://[::1]:0")
    assert re.fullmatch(r"tcp://\[::1\]:\d+", listener.address)
    assert client.peer == listener.address
    client.send(b"six")
    assert recv_exactly(server, 3) == b"six"
    server.send(b"four")
    assert recv_exactly(client, 4) == b"four"


def test_host_names_are_resolved_at_connect(open_pair) -> None:
    listener, _, _ = open_pair("tcp://127.0.0.1:0")
    port = listener.address.rpartition(":")[2]
    # localhost may resolve to ::1 first, which refuses: the next address is tried.
    with anyipc.connect(f"tcp://localhost:{port}") as client, listener.accept(timeout=5):
        assert client.peer == listener.address


@pytest.mark.parametrize(
    ("uri", "problem"),
    [
        ("tcp://127.0.0.1", "missing port"),
        ("tcp://:80", "empty host"),
        ("tcp://h:99999", "out of range 0..65535"),
        ("tcp://h:x", "not a number"),
        ("tcp://h:", "missing port number"),
        ("tcp://h:-1", "not a number"),
        ("tcp://h:80/path", "not a number"),
        ("tcp://a b:80", "not a host name"),
        ("tcp://::1:80", "brackets"),
        ("tcp://[::1:80", "unclosed"),
        ("tcp://[::1]80", "missing ':port'"),
        ("tcp://[::1]", "missing ':port'"),
        ("tcp://[127.0.0.1]:80", "not an IPv6 address"),
    ],
)
@pytest.mark.parametrize("verb", ["listen", "connect"])
def test_malformed_addresses_are_rejected_before_any_system_call(
    uri: str, problem: str, verb: str, no_new_fds: None
) -> None:
    with pytest.raises(anyipc.InvalidAddress, match=re.escape(problem)):
        getattr(anyipc, verb)(uri)


@pytest.mark.parametrize("value", [-1, "soon"])
def test_connect_timeout_is_validated(value: object) -> None:
    with pytest.raises(anyipc.InvalidAddress, match="connect_timeout"):
        anyipc.connect("tcp://127.0.0.1:1", connect_timeout=value)


def test_listening_on_an_address_this_host_lacks_is_invalid() -> None:
    with pytest.raises(anyipc.InvalidAddress, match="192.0.2.1"):
        anyipc.listen("tcp://192.0.2.1:0")  # TEST-NET-1: assigned to no host


def test_a_port_in_time_wait_can_be_listened_on_again(open_pair) -> None:
    listener, client, server = open_pair("tcp://127.0.0.1:0")
    address = listener.address
    server.close()  # the side that closes first keeps the port in TIME_WAIT
    with pytest.raises(anyipc.EndOfChannel):
        client.recv(timeout=5)
    client.close()
    listener.close()
    with anyipc.listen(address) as again:
        assert again.address == address


def test_a_peer_closing_with_unread_data_is_a_reset(raw_connect) -> None:
    with anyipc.listen("tcp://127.0.0.1:0") as listener:
        raw = raw_connect(listener.address)
        with listener.accept(timeout=5) as server:
            server.send(b"never read" * 100)
            assert select.select([raw], [], [], 5)[0]  # it is in the peer's receive buffer
            raw.close()  # with unread data the kernel sends RST, not FIN
            with pytest.raises(anyipc.ConnectionLost) as caught:
                server.recv(timeout=5)
            assert isinstance(caught.value.__cause__, ConnectionResetError)
            with pytest.raises(anyipc.ConnectionLost):
                server.recv(timeout=1)  # and stays reported, not turned into an end


def test_a_peer_closing_with_nothing_unread_is_an_orderly_end(raw_connect) -> None:
    with anyipc.listen("tcp://127.0.0.1:0") as listener:
        raw = raw_connect(listener.address)
        with listener.accept(timeout=5) as server:
            raw.sendall(b"bye")
            raw.close()
            assert b"".join(server) == b"bye"
