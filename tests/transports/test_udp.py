"""udp:// specifics: addresses, IPv6, sizes, replies, ICMP refusals, options, multicast."""

from __future__ import annotations

import random
import re
import select
import socket
import struct
import subprocess
import time

import pytest

import anyipc
from anyipc.transports.udp import MAX_IPV4, MAX_IPV6


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


needs_ipv6 = pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback here")


def _ipv6_multicast_interface() -> str | None:
    """An interface that loops IPv6 multicast back to this host (Linux's lo does not)."""
    group = "ff12::a1:1"
    for index, name in socket.if_nameindex():
        try:
            with (
                socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as member,
                socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sender,
            ):
                member.bind((group, 0, 0, index))
                membership = socket.inet_pton(socket.AF_INET6, group) + struct.pack("@I", index)
                member.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, membership)
                sender.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, index)
                sender.sendto(b"probe", (group, member.getsockname()[1], 0, index))
                member.settimeout(0.5)
                member.recv(16)
        except OSError:
            continue
        return name
    return None


def _group() -> str:
    """A random IPv4 group of the administratively scoped local range (239.255.0.0/16)."""
    return f"239.255.{random.randrange(256)}.{random.randrange(1, 255)}"


def _line(process: subprocess.Popen[bytes], timeout: float = 30) -> bytes:
    """The next line the child writes on stdout, waiting at most ``timeout`` seconds."""
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    assert ready, "the child wrote nothing in time"
    return process.stdout.readline()


# -- addresses and replies ------------------------------------------------------------------
def test_port_zero_is_resolved_and_addresses_are_uris() -> None:
    with anyipc.bind("udp://127.0.0.1:0") as bound, anyipc.connect(bound.address) as client:
        assert re.fullmatch(r"udp://127\.0\.0\.1:[1-9]\d*", bound.address)
        assert bound.peer is None
        assert client.peer == bound.address
        assert re.fullmatch(r"udp://127\.0\.0\.1:[1-9]\d*", client.address or "")
        client.send(b"hello")
        data, source = bound.recv_from(timeout=5)
        assert (data, source) == (b"hello", client.address)
        bound.send_to(b"reply", source)
        assert client.recv_from(timeout=5) == (b"reply", bound.address)


def test_two_bound_channels_talk_with_send_to() -> None:
    with anyipc.bind("udp://127.0.0.1:0") as one, anyipc.bind("udp://127.0.0.1:0") as two:
        one.send_to(bytearray(b"one"), two.address)
        assert two.recv_from(timeout=5) == (b"one", one.address)
        two.send_to(memoryview(b"two"), one.address)
        assert one.recv(timeout=5) == b"two"


def test_a_bound_channel_without_a_peer_cannot_send() -> None:
    with anyipc.bind("udp://127.0.0.1:0") as bound:
        with pytest.raises(anyipc.NotSupported, match="send_to"):
            bound.send(b"to whom?")


def test_a_plain_udp_socket_is_a_peer_and_a_datagram_carries_no_header() -> None:
    with (
        anyipc.bind("udp://127.0.0.1:0") as bound,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as plain,
    ):
        port = int(bound.address.rpartition(":")[2])
        plain.settimeout(5)
        plain.sendto(b"raw", ("127.0.0.1", port))
        data, source = bound.recv_from(timeout=5)
        assert (data, source) == (b"raw", f"udp://127.0.0.1:{plain.getsockname()[1]}")
        bound.send_to(b"back", source)
        assert plain.recvfrom(16) == (b"back", ("127.0.0.1", port))


def test_a_connected_channel_receives_from_its_peer_only() -> None:
    with (
        anyipc.bind("udp://127.0.0.1:0") as peer,
        anyipc.bind("udp://127.0.0.1:0") as stranger,
        anyipc.connect(peer.address) as client,
    ):
        assert client.address is not None
        stranger.send_to(b"not for you", client.address)  # dropped by the kernel
        peer.send_to(b"mine", client.address)
        assert client.recv(timeout=5) == b"mine"
        with pytest.raises(anyipc.Timeout):
            client.recv(timeout=0.1)


def test_a_zero_length_datagram_is_a_message() -> None:
    with anyipc.bind("udp://127.0.0.1:0") as bound, anyipc.connect(bound.address) as client:
        client.send(b"")
        client.send(b"after")
        assert bound.recv(timeout=5) == b""
        assert bound.recv(timeout=5) == b"after"


def test_wait_reports_a_channel_with_a_datagram_queued() -> None:
    with anyipc.bind("udp://127.0.0.1:0") as bound, anyipc.connect(bound.address) as client:
        assert anyipc.wait([bound], timeout=0) == []
        client.send(b"ready")
        assert anyipc.wait([bound], timeout=5) == [bound]


@needs_ipv6
def test_ipv6() -> None:
    with anyipc.bind("udp://[::1]:0") as bound, anyipc.connect(bound.address) as client:
        assert re.fullmatch(r"udp://\[::1\]:[1-9]\d*", bound.address)
        assert re.fullmatch(r"udp://\[::1\]:[1-9]\d*", client.address or "")
        assert client.peer == bound.address
        client.send(b"six")
        data, source = bound.recv_from(timeout=5)
        assert (data, source) == (b"six", client.address)
        bound.send_to(b"four", source)
        assert client.recv(timeout=5) == b"four"


@needs_ipv6
def test_an_ipv6_channel_is_ipv6_only() -> None:
    with anyipc.bind("udp://[::]:0") as six, anyipc.bind("udp://127.0.0.1:0") as four:
        with pytest.raises(anyipc.InvalidAddress, match="speaks IPv6"):
            six.send_to(b"x", four.address)
        with pytest.raises(anyipc.InvalidAddress, match="speaks IPv4"):
            four.send_to(b"x", six.address)


# -- sizes -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("uri", "limit"),
    [("udp://127.0.0.1:0", MAX_IPV4), pytest.param("udp://[::1]:0", MAX_IPV6, marks=needs_ipv6)],
)
def test_the_largest_datagram_arrives_and_one_byte_more_is_refused(uri: str, limit: int) -> None:
    with anyipc.bind(uri) as bound, anyipc.connect(bound.address) as client:
        assert client.capabilities.max_message_size == limit
        largest = random.Random(limit).randbytes(limit)
        with pytest.raises(anyipc.MessageTooLarge, match=f"maximum of {limit} bytes"):
            client.send(largest + b"!")
        with pytest.raises(anyipc.MessageTooLarge):
            bound.send_to(largest + b"!", client.address or "")
        client.send(largest)
        assert bound.recv(timeout=5) == largest  # the oversize one was never sent
        client.send(b"still usable")
        assert bound.recv(timeout=5) == b"still usable"


@pytest.mark.parametrize(
    ("family", "host", "limit"),
    [
        (socket.AF_INET, "127.0.0.1", MAX_IPV4),
        pytest.param(socket.AF_INET6, "::1", MAX_IPV6, marks=needs_ipv6),
    ],
)
def test_the_kernel_refuses_one_byte_above_the_claimed_limit(
    family: int, host: str, limit: int
) -> None:
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.connect((host, 9))
        with pytest.raises(OSError, match="too long"):
            sock.send(bytes(limit + 1))


def test_a_host_name_claims_the_ipv4_limit_which_holds_for_both_families() -> None:
    with anyipc.bind("udp://localhost:0") as bound:
        assert bound.capabilities.max_message_size == MAX_IPV4


# -- ICMP refusals -----------------------------------------------------------------------------
def test_a_refused_datagram_is_lost_and_the_channel_stays_usable() -> None:
    with anyipc.bind("udp://127.0.0.1:0") as gone:
        address = gone.address
    with anyipc.connect(address) as client:
        client.send(b"first")  # refused: the ICMP report waits on the socket
        client.send(b"second")  # takes the report, then is sent (and refused) too
        with pytest.raises(anyipc.Timeout, match="not delivered .nobody was bound"):
            client.recv(timeout=0.2)
        client.send(b"third")  # no ConnectionLost: UDP has no connection to lose


# -- options and invalid addresses --------------------------------------------------------------
@pytest.mark.parametrize(
    ("uri", "problem"),
    [
        ("udp://127.0.0.1", "missing port"),
        ("udp://::1:5", r"in brackets: udp://\[::1\]"),
        ("udp://h:70000", "out of range"),
        ("udp://127.0.0.1:0?ttl=2", "ttl applies only to multicast groups"),
        ("udp://127.0.0.1:0?interface=lo&ttl=2", "interface and ttl apply only to multicast"),
        ("udp://239.1.2.3:0?ttl=256", "above its maximum 255"),
        ("udp://239.1.2.3:0?ttl=-1", "below its minimum 0"),
        ("udp://239.1.2.3:0?ttl=x", "must be int"),
        ("udp://239.1.2.3:0?interface=a/b", "IPv4 address of a local interface .* interface name"),
        ("udp://239.1.2.3:0?loop=1", "unknown option 'loop'.*interface, ttl"),
        ("udp://[ff02::1]:0", "link-local group: say on which interface"),
        ("udp://[ff15::1]:0?interface=127.0.0.1", "by its name"),
        ("udp://[ff02::1%25lo]:0?interface=lo", "both name the interface"),
    ],
)
def test_invalid_addresses_say_what_is_valid(uri: str, problem: str) -> None:
    for verb in (anyipc.bind, anyipc.connect):
        with pytest.raises(anyipc.InvalidAddress, match=problem):
            verb(uri)


def test_an_unknown_interface_names_the_ones_this_host_has() -> None:
    with pytest.raises(anyipc.InvalidAddress, match=r"no interface 'nosuch9' \(it has: .*lo"):
        anyipc.bind(f"udp://{_group()}:0?interface=nosuch9")


def test_an_address_this_host_does_not_have_cannot_be_bound() -> None:
    with pytest.raises(anyipc.InvalidAddress, match="bind udp://192.0.2.254:0"):
        anyipc.bind("udp://192.0.2.254:0")  # TEST-NET-1: documentation only


def test_binding_a_live_unicast_address_twice_is_address_in_use() -> None:
    with anyipc.bind("udp://127.0.0.1:0") as first:
        with pytest.raises(anyipc.AddressInUse):
            anyipc.bind(first.address)


@pytest.mark.parametrize(
    ("target", "problem"),
    [
        ("tcp://127.0.0.1:9", "takes a udp:// address"),
        ("udp://localhost:9", "takes an IP address"),
        ("udp://239.1.2.3:9?ttl=3", "without options"),
        ("udp://127.0.0.1", "missing port"),
    ],
)
def test_send_to_takes_what_recv_from_reports(target: str, problem: str) -> None:
    with anyipc.bind("udp://127.0.0.1:0") as bound, anyipc.connect(bound.address) as client:
        with pytest.raises(anyipc.InvalidAddress, match=problem):
            client.send_to(b"x", target)
        client.send(b"usable")
        assert bound.recv(timeout=5) == b"usable"


# -- multicast ---------------------------------------------------------------------------------
RECEIVER = """
import sys
import anyipc

with anyipc.bind(sys.argv[1]) as member:
    print("joined", flush=True)
    data, source = member.recv_from(timeout=20)
    print(data.decode(), source, flush=True)
"""


def test_one_datagram_to_a_loopback_group_reaches_two_processes(children) -> None:
    # This process joins first, with port 0, to choose the port; it is a member too.
    with anyipc.bind(f"udp://{_group()}:0?interface=127.0.0.1") as member:
        assert re.fullmatch(
            r"udp://239\.255\.\d+\.\d+:[1-9]\d*\?interface=127\.0\.0\.1", member.address
        )
        receivers = [children.python(RECEIVER, member.address) for _ in range(2)]
        for receiver in receivers:
            assert _line(receiver) == b"joined\n"
        with anyipc.connect(member.address) as sender:
            sender.send(b"one datagram")  # sent once
            expected = f"one datagram {sender.address}\n".encode()
            for receiver in receivers:
                assert _line(receiver) == expected
                assert receiver.wait(timeout=30) == 0
            assert member.recv_from(timeout=5) == (b"one datagram", sender.address)


def test_group_members_share_the_port_and_replies_reach_the_sender() -> None:
    with (
        anyipc.bind(f"udp://{_group()}:0?interface=127.0.0.1&ttl=0") as first,
        anyipc.bind(first.address) as second,
        anyipc.connect(first.address) as sender,
    ):
        assert second.address == first.address
        assert sender.peer == first.address.partition("?")[0]
        sender.send(b"to all")
        data, source = first.recv_from(timeout=5)
        assert (data, source, second.recv(timeout=5)) == (b"to all", sender.address, b"to all")
        first.send_to(b"reply", source)
        assert sender.recv(timeout=5) == b"reply"


def test_an_interface_may_be_named() -> None:
    with (
        anyipc.bind(f"udp://{_group()}:0?interface=lo") as member,
        anyipc.connect(member.address) as sender,
    ):
        sender.send(b"by name")
        assert member.recv(timeout=5) == b"by name"


def test_a_member_receives_its_own_group_only() -> None:
    with anyipc.bind(f"udp://{_group()}:0?interface=127.0.0.1") as member:
        port = member.address.partition("?")[0].rpartition(":")[2]
        other = f"udp://239.254.{random.randrange(256)}.{random.randrange(1, 255)}:{port}"
        with (
            anyipc.bind(f"{other}?interface=127.0.0.1") as other_member,
            anyipc.connect(other_member.address) as elsewhere,
            anyipc.connect(member.address) as sender,
        ):
            elsewhere.send(b"other group")
            assert other_member.recv(timeout=5) == b"other group"
            sender.send(b"this group")
            assert member.recv(timeout=5) == b"this group"


def test_ipv6_groups() -> None:
    interface = _ipv6_multicast_interface()
    if interface is None:
        pytest.skip("no interface here loops IPv6 multicast back (lo has no MULTICAST flag)")
    group = f"ff12::{random.randrange(1, 0xFFFF):x}:1"
    with (
        anyipc.bind(f"udp://[{group}]:0?interface={interface}") as first,
        anyipc.bind(first.address) as second,
        anyipc.connect(first.address) as sender,
    ):
        assert first.capabilities.max_message_size == MAX_IPV6
        assert sender.peer == first.address.partition("?")[0].replace("]", f"%25{interface}]")
        sender.send(b"six")
        data, source = first.recv_from(timeout=5)
        assert (data, second.recv(timeout=5)) == (b"six", b"six")
        first.send_to(b"reply", source)  # a link-local source: its zone comes with it
        assert sender.recv(timeout=5) == b"reply"


def test_closing_leaves_the_group() -> None:
    member = anyipc.bind(f"udp://{_group()}:0?interface=127.0.0.1")
    address = member.address
    group = address.partition("//")[2].partition(":")[0]
    member.close()
    deadline = time.monotonic() + 5
    while _joined(group) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not _joined(group)


def _joined(group: str) -> bool:
    """True when this host is a member of the IPv4 ``group`` on any interface."""
    wanted = socket.inet_aton(group)[::-1].hex().upper()  # /proc/net/igmp: little-endian hex
    with open("/proc/net/igmp") as table:
        return any(line.split()[0] == wanted for line in table if line.startswith("\t"))
