"""socketpair:// specifics: stream and seqpacket pairs, ends handed to real children, adoption."""

from __future__ import annotations

import fcntl
import os
import signal
import socket
import termios
import time
from collections.abc import Iterator

import pytest

import anyipc

ECHO = """
import sys, anyipc
with anyipc.connect(sys.argv[1]) as end:
    for message in end:
        end.send(message, timeout=10)
"""
PLAIN_SEQPACKET_ECHO = """
import socket, sys
sock = socket.socket(fileno=int(sys.argv[1]))
assert sock.getblocking()
while True:
    message = sock.recv(65536)  # blocks: a non-blocking descriptor would raise here
    if not message:
        break
    sock.send(b"plain:" + message)
"""


@pytest.fixture(params=["stream", "seqpacket"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def ends(kind: str) -> Iterator[tuple[anyipc.Channel, anyipc.Channel]]:
    first, second = anyipc.pair(f"socketpair://?type={kind}")
    yield first, second
    first.close()
    second.close()


def _fd(end: anyipc.Channel) -> int:
    fds: tuple[int, ...] = end.fds  # type: ignore[attr-defined]
    assert len(fds) == 1
    return fds[0]


def _recv_exactly(end: anyipc.Channel, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        data += end.recv(timeout=5)
    return bytes(data)


def test_both_ends_send_and_receive(ends) -> None:
    first, second = ends
    first.send(b"ping")
    assert _recv_exactly(second, 4) == b"ping"
    second.send(b"pong")
    assert _recv_exactly(first, 4) == b"pong"


def test_each_end_names_its_descriptor_and_type(ends, kind: str) -> None:
    suffix = "" if kind == "stream" else "?type=seqpacket"
    for end in ends:
        fd = _fd(end)
        assert end.address == f"socketpair://fd/{fd}?type={kind}"
        assert end.peer is None
        assert not os.get_inheritable(fd)
        assert os.get_blocking(fd), "blocking mode, for a child that is not anyipc"
    plain, other = anyipc.pair(f"socketpair://{suffix}")  # the type given only where needed
    with plain, other:
        assert plain.address == f"socketpair://fd/{_fd(plain)}{suffix}"


def test_the_capabilities_follow_the_type(ends, kind: str) -> None:
    caps = ends[0].capabilities
    assert caps.direction is anyipc.Direction.DUPLEX
    assert caps.addressing is anyipc.Addressing.INHERITED
    if kind == "stream":
        assert caps.boundaries is anyipc.Boundaries.STREAM
        assert caps.max_message_size is None
    else:
        assert caps.boundaries is anyipc.Boundaries.MESSAGE
        assert caps.max_message_size == 65536


def test_seqpacket_keeps_boundaries_and_empty_messages() -> None:
    first, second = anyipc.pair("socketpair://?type=seqpacket")
    with first, second:
        for message in (b"one", b"", b"two", b""):
            first.send(message)
        assert [second.recv(timeout=5) for _ in range(4)] == [b"one", b"", b"two", b""]
        first.send(b"")
        first.close()
        assert second.recv(timeout=5) == b"", "an empty message, not the end"
        with pytest.raises(anyipc.EndOfChannel):
            second.recv(timeout=5)
        with pytest.raises(anyipc.EndOfChannel):
            second.recv(timeout=5)


def test_seqpacket_carries_its_maximum_and_refuses_one_byte_more() -> None:
    first, second = anyipc.pair("socketpair://?type=seqpacket")
    with first, second:
        largest = os.urandom(65536)
        with pytest.raises(anyipc.MessageTooLarge):
            first.send(largest + b"!")
        first.send(largest)
        assert second.recv(timeout=5) == largest


def test_a_small_send_buffer_is_raised_to_carry_the_maximum() -> None:
    raw, other = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    with other, anyipc.connect(f"socketpair://fd/{raw.detach()}?type=seqpacket") as end:
        end.send(b"m" * 65536, timeout=5)
        assert other.recv(70000) == b"m" * 65536


def test_an_oversize_message_from_a_plain_peer_breaks_the_channel() -> None:
    raw, other = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    with other, anyipc.connect(f"socketpair://fd/{raw.detach()}?type=seqpacket") as end:
        other.send(b"o" * 70000)
        other.send(b"after")
        with pytest.raises(anyipc.ConnectionLost, match="above this channel's max_message_size"):
            end.recv(timeout=5)
        with pytest.raises(anyipc.ConnectionLost):
            end.recv(timeout=5)


def test_a_peer_that_closes_with_our_data_unread_is_connection_lost(ends) -> None:
    first, second = ends
    first.send(b"never read")
    second.close()
    with pytest.raises(anyipc.ConnectionLost):
        first.recv(timeout=5)
    with pytest.raises(anyipc.ConnectionLost):
        first.send(b"more", timeout=5)


def test_a_recv_timeout_is_honoured_and_the_channel_stays_usable(ends) -> None:
    first, second = ends
    started = time.monotonic()
    with pytest.raises(anyipc.Timeout):
        second.recv(timeout=0.2)
    assert time.monotonic() - started >= 0.2
    first.send(b"after")
    assert _recv_exactly(second, 5) == b"after"


SIGPIPE_AT_DEFAULT = """
import signal, anyipc
signal.signal(signal.SIGPIPE, signal.SIG_DFL)
for kind in ("stream", "seqpacket"):
    first, second = anyipc.pair(f"socketpair://?type={kind}")
    second.close()
    try:
        first.send(b"into the void", timeout=5)
    except anyipc.ConnectionLost:
        print("lost")
    first.close()
print("alive")
"""


def test_sigpipe_at_its_default_never_kills_the_sender(children) -> None:
    child = children.python(SIGPIPE_AT_DEFAULT)
    out, err = child.communicate(timeout=20)
    assert child.returncode == 0, f"the child died: {child.returncode} {err.decode()}"
    assert out.split() == [b"lost", b"lost", b"alive"]


# -- adopting descriptors -------------------------------------------------------------------
def test_adopting_the_wrong_type_is_refused_naming_the_right_address(kind: str) -> None:
    other_kind = "seqpacket" if kind == "stream" else "stream"
    raw, other = socket.socketpair(socket.AF_UNIX, getattr(socket, f"SOCK_{other_kind.upper()}"))
    with raw, other:
        with pytest.raises(anyipc.InvalidAddress, match=f"is a {other_kind} socket.*fd/"):
            anyipc.connect(f"socketpair://fd/{raw.fileno()}?type={kind}")
        raw.send(b"still usable")
        assert other.recv(100) == b"still usable"


def test_adopting_what_is_not_a_unix_socket_is_refused() -> None:
    read_fd, write_fd = os.pipe()
    try:
        with pytest.raises(anyipc.InvalidAddress, match="is not a socket"):
            anyipc.connect(f"socketpair://fd/{read_fd}")
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as inet:
            with pytest.raises(anyipc.InvalidAddress, match="not a Unix domain"):
                anyipc.connect(f"socketpair://fd/{inet.fileno()}")
            assert inet.fileno() >= 0
    finally:
        os.close(read_fd)
        os.close(write_fd)


def test_adopting_a_closed_descriptor_is_connection_lost() -> None:
    raw, other = socket.socketpair()
    number = raw.fileno()
    raw.close()
    other.close()
    with pytest.raises(anyipc.ConnectionLost, match="not open"):
        anyipc.connect(f"socketpair://fd/{number}")


def test_each_address_form_has_its_verb() -> None:
    with pytest.raises(anyipc.NotSupported, match="supports: pair"):
        anyipc.connect("socketpair://")
    with pytest.raises(anyipc.NotSupported, match="supports: connect"):
        anyipc.pair("socketpair://fd/3")
    with pytest.raises(anyipc.InvalidAddress, match="stream, seqpacket"):
        anyipc.pair("socketpair://?type=dgram")


# -- hand-off to real children ----------------------------------------------------------------
def test_an_end_handed_to_an_anyipc_child(ends, children) -> None:
    first, second = ends
    child = children.python(ECHO, first.address, pass_fds=first.fds)
    first.close()  # the parent's copy goes at once
    for message in (b"one", b"two", b"three"):
        second.send(message, timeout=5)
        assert _recv_exactly(second, len(message)) == message
    second.close()
    _, err = child.communicate(timeout=10)
    assert (child.returncode, err) == (0, b"")


def test_a_plain_program_reads_seqpacket_messages_with_no_header(children) -> None:
    first, second = anyipc.pair("socketpair://?type=seqpacket")
    with first, second:
        child = children.python(PLAIN_SEQPACKET_ECHO, str(_fd(first)), pass_fds=first.fds)
        first.close()
        time.sleep(0.2)  # the child now waits in a blocking recv
        for message in (b"hello", b"world"):
            second.send(message, timeout=5)
            assert second.recv(timeout=5) == b"plain:" + message
        second.close()
        _, err = child.communicate(timeout=10)
        assert (child.returncode, err) == (0, b"")


def test_head_reads_an_inherited_stream_end_in_blocking_mode(children) -> None:
    first, second = anyipc.pair("socketpair://")
    with first, second:
        child = children.run(["head", "-c", "6"], stdin=_fd(first))
        first.close()
        time.sleep(0.2)  # head is now reading an empty socket: non-blocking would fail it
        second.send(b"hello\n", timeout=5)
        out, err = child.communicate(timeout=10)
        assert (child.returncode, out, err) == (0, b"hello\n", b"")


def _queued(fd: int) -> int:
    return int.from_bytes(fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"), "little")


KILLED_MID_STREAM = """
import sys, anyipc
with anyipc.connect(sys.argv[1]) as end:
    end.send(b"whole", timeout=10)
    print("sent", flush=True)
    end.send(b"x" * (8 << 20), timeout=60)  # nobody reads yet: blocks mid-message
"""


def test_a_peer_killed_mid_message_never_delivers_part_of_it(children) -> None:
    first, second = anyipc.pair("framed+socketpair://")
    with first, second:
        child = children.python(KILLED_MID_STREAM, first.address, pass_fds=first.fds)
        first.close()
        assert child.stdout is not None and child.stdout.readline() == b"sent\n"
        deadline = time.monotonic() + 10
        while _queued(_fd(second)) < 1 << 16 and time.monotonic() < deadline:
            time.sleep(0.01)  # until the child is well inside the big message
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        assert second.recv(timeout=5) == b"whole"
        started = time.monotonic()
        with pytest.raises(anyipc.ConnectionLost, match="truncated frame"):
            second.recv(timeout=5)
        assert time.monotonic() - started < 2
