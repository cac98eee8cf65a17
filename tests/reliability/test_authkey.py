"""``auth+``: a shared key proven both ways before any data (§6 P6, and B4's slow clients).

The layer is transparent: the whole conformance suite runs over
``auth+tcp`` (a byte stream) and ``auth+unix-seqpacket`` (messages).

The server is this process; its clients are processes of their own: an
``auth+`` client with the right key, one with a wrong key, a plain client
that does not authenticate, and raw sockets that play a hostile peer
(silent, garbage, a replayed answer, a server that does not hold the key).
Only the right key exchanges data; every other case is
:class:`~anyipc.AuthenticationError` on the side that found out, and
nothing the other side sent is delivered.  A server reads at most 64 bytes
of a client before it decides, and silent clients never hold up
``accept``.

Figures: checked messages per authenticated connection; silent clients
held open while a good client is served (the issue's 100; 500 in the long
profile).
"""

from __future__ import annotations

import array
import fcntl
import hashlib
import hmac
import os
import socket
import subprocess
import termios
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

import anyipc
from anyipc._authkey import MAGIC
from anyipc.testing import TransportConformance

from ..transports.conftest import Children
from ._access import checked, verified
from .conftest import figure

MESSAGES = figure(50, 10_000)  #: checked messages echoed per authenticated connection
SILENT = figure(100, 500)  #: clients that connect and say nothing, while a good one is served
KEY = b"the shared key of these tests"
ENV = "ANYIPC_TEST_AUTHKEY"
STACKS = {  # auth over a byte stream (framed+ on top carries messages) and over messages
    "tcp": "framed+auth+tcp://127.0.0.1:0",
    "unix": "framed+auth+unix://@anyipc-auth-{tag}",
    "unix-seqpacket": "auth+unix-seqpacket://@anyipc-auth-{tag}",
    "shm": "auth+shm://",
}
STREAMS = {"tcp": "auth+tcp://127.0.0.1:0", "unix": "auth+unix://@anyipc-auth-{tag}"}

_CLIENT = f"""
import sys, anyipc
try:
    with anyipc.connect(sys.argv[1], authkey_env={ENV!r}, auth_timeout=float(sys.argv[2])) as ch:
        for message in map(bytes.fromhex, sys.argv[3:]):
            ch.send(message, timeout=20)
            assert ch.recv(timeout=20) == message
except anyipc.AuthenticationError as error:
    print(error)
    sys.exit(3)
"""
_RAW_CLIENT = """
import socket, sys
family, where, payload = sys.argv[1], sys.argv[2], bytes.fromhex(sys.argv[3])
if family == "tcp":
    host, port = where.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=20)
else:
    sock = socket.socket(socket.AF_UNIX)
    sock.settimeout(20)
    sock.connect("\\0" + where[1:])
sock.sendall(payload)
received = b""
try:
    while chunk := sock.recv(4096):
        received += chunk
except ConnectionResetError:
    pass  # the server closed with our bytes unread: what it sent came first
print(received.hex())
"""
_SILENT_CLIENTS = """
import socket, sys
host, port = sys.argv[1].rsplit(":", 1)
socks = [socket.create_connection((host, int(port)), timeout=20) for _ in range(int(sys.argv[2]))]
print("connected", flush=True)
sys.stdin.read()
"""


@pytest.fixture
def children() -> Iterator[Children]:
    started = Children()
    yield started
    started.reap()


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "key"
    path.write_bytes(KEY + b"\n")  # one trailing newline is not part of the key
    path.chmod(0o600)
    return path


def _uri(template: str) -> str:
    return template.format(tag=os.urandom(8).hex())


def _location(address: str) -> str:
    return anyipc.Address.parse_syntax(address).location


def _client(children: Children, address: str, key: bytes, *messages: bytes, patience: float = 10):
    env = {**os.environ, ENV: key.decode()}
    return children.python(_CLIENT, address, str(patience), *(m.hex() for m in messages), env=env)


@pytest.mark.timeout(600)
@pytest.mark.parametrize("stack", STACKS, ids=str)
def test_the_same_key_lets_both_ends_talk(stack: str, key_file: Path, children: Children) -> None:
    with anyipc.listen(_uri(STACKS[stack]), authkey_file=str(key_file)) as listener:
        assert "authkey_file" in listener.address and "shared key" not in listener.address
        messages = [checked(seq) for seq in range(MESSAGES)]
        client = _client(children, listener.address, KEY, *messages)
        with listener.accept(timeout=20) as server:
            for seq in range(MESSAGES):
                message = server.recv(timeout=20)
                assert verified(message) == seq
                server.send(message, timeout=20)
            with pytest.raises(anyipc.EndOfChannel):
                server.recv(timeout=20)
        assert client.wait(timeout=20) == 0, client.communicate(timeout=10)


@pytest.mark.parametrize("stack", ["tcp", "unix", "unix-seqpacket"])
def test_a_wrong_key_is_refused_on_both_sides(stack: str, key_file: Path, children: Children):
    with anyipc.listen(_uri(STACKS[stack]), authkey_file=str(key_file)) as listener:
        client = _client(children, listener.address, b"another key", checked(0))
        with listener.accept(timeout=20) as server:
            with pytest.raises(anyipc.AuthenticationError, match="does not hold this key"):
                server.recv(timeout=20)
            with pytest.raises(anyipc.AuthenticationError):  # and every later call
                server.send(b"anything", timeout=20)
        out, _ = client.communicate(timeout=20)
        assert client.returncode == 3 and b"the two keys differ" in out


def _unread(channel: anyipc.Channel) -> int:
    """Bytes waiting unread in the receive queue of the socket beneath ``channel``."""
    count = array.array("i", [0])
    fcntl.ioctl(channel.fileno(), termios.FIONREAD, count)
    return count[0]


@pytest.mark.parametrize("family", STREAMS)
def test_a_client_without_the_layer_is_refused_after_64_bytes(
    family: str, key_file: Path, children: Children
) -> None:
    garbage = b"GET / HTTP/1.0\r\n" * 256  # 4 KiB of what a stranger might send
    with anyipc.listen(_uri(STREAMS[family]), authkey_file=str(key_file)) as listener:
        stranger = children.python(_RAW_CLIENT, family, _location(listener.address), garbage.hex())
        with listener.accept(timeout=20) as server:
            with pytest.raises(anyipc.AuthenticationError, match="proof is wrong"):
                server.recv(timeout=20)
            deadline = time.monotonic() + 10
            while _unread(server) < len(garbage) - 64 and time.monotonic() < deadline:
                time.sleep(0.01)  # the kernel may still be moving the stranger's last bytes
            assert _unread(server) == len(garbage) - 64  # read before deciding: 64 bytes, no more
        out, _ = stranger.communicate(timeout=20)
        told = bytes.fromhex(out.decode())  # the challenge, then the refusal
        assert told[: len(MAGIC)] == MAGIC and told[48:] == bytes(33)


def test_a_silent_client_fails_after_auth_timeout(key_file: Path, children: Children) -> None:
    with anyipc.listen(
        "auth+tcp://127.0.0.1:0", authkey_file=str(key_file), auth_timeout=0.5
    ) as listener:
        stranger = children.python(_RAW_CLIENT, "tcp", _location(listener.address), "6869")
        with listener.accept(timeout=20) as server:
            began = time.monotonic()
            with pytest.raises(anyipc.AuthenticationError, match="within auth_timeout=0.5"):
                server.recv(timeout=20)
            assert time.monotonic() - began < 0.5 + 1.0
        stranger.communicate(timeout=20)


@pytest.mark.parametrize("greeting", [b"", b"220 a server that speaks first\r\n" * 2])
def test_a_server_without_the_layer_is_refused_by_the_client(
    greeting: bytes, children: Children
) -> None:
    with anyipc.listen("tcp://127.0.0.1:0") as plain:
        client = _client(children, f"auth+{plain.address}", KEY, checked(0), patience=0.5)
        with plain.accept(timeout=20) as server:
            server.send(greeting, timeout=20)
            out, _ = client.communicate(timeout=20)
            assert client.returncode == 3, out
            assert (b"does not speak auth+" if greeting else b"within auth_timeout") in out
            with pytest.raises((anyipc.EndOfChannel, anyipc.ConnectionLost)):  # it sent nothing
                server.recv(timeout=20)  # (reset, if it left some of the greeting unread)


def _fake_server(sock: socket.socket, challenge: bytes, verdict: bytes | None) -> bytes:
    """Play a server: send ``challenge``, read the 64-byte answer, send ``verdict``."""
    connection, _ = sock.accept()
    with connection:
        connection.settimeout(20)
        connection.sendall(MAGIC + challenge)
        answer = b""
        while len(answer) < 64:
            answer += connection.recv(64 - len(answer))
        if verdict is not None:
            connection.sendall(verdict)
            assert connection.recv(4096) == b"", "the client sent data to an unproven server"
    return answer


@pytest.fixture
def raw_listener() -> Iterator[socket.socket]:
    with socket.create_server(("127.0.0.1", 0)) as sock:
        sock.settimeout(20)
        yield sock


def test_a_server_that_does_not_hold_the_key_is_refused(
    raw_listener: socket.socket, children: Children
) -> None:
    port = raw_listener.getsockname()[1]
    client = _client(children, f"auth+tcp://127.0.0.1:{port}", KEY, checked(0))
    answer = _fake_server(raw_listener, os.urandom(32), b"\x01" + os.urandom(32))
    expected = hmac.new(KEY, MAGIC + b"client" + answer[32:], hashlib.sha256).digest()
    assert answer[:32] != expected  # it answered the fake's challenge, not another
    out, _ = client.communicate(timeout=20)
    assert client.returncode == 3 and b"the server's proof is wrong" in out


def test_a_replayed_answer_is_refused(
    raw_listener: socket.socket, key_file: Path, children: Children
) -> None:
    port = raw_listener.getsockname()[1]
    challenge = os.urandom(32)
    client = _client(children, f"auth+tcp://127.0.0.1:{port}", KEY, checked(0))
    recorded = _fake_server(raw_listener, challenge, None)  # a valid answer to that challenge
    proof = hmac.new(KEY, MAGIC + b"client" + challenge, hashlib.sha256).digest()
    assert recorded[:32] == proof
    client.communicate(timeout=20)
    with anyipc.listen("auth+tcp://127.0.0.1:0", authkey_file=str(key_file)) as listener:
        where = _location(listener.address)
        replay = children.python(_RAW_CLIENT, "tcp", where, recorded.hex())
        with listener.accept(timeout=20) as server:
            with pytest.raises(anyipc.AuthenticationError, match="proof is wrong"):
                server.recv(timeout=20)
        out, _ = replay.communicate(timeout=20)
        assert bytes.fromhex(out.decode())[48:] == bytes(33)  # refused


@pytest.mark.timeout(600)
def test_silent_clients_never_hold_up_accept(key_file: Path, children: Children) -> None:
    timeout = 2.0
    with anyipc.listen(
        "framed+auth+tcp://127.0.0.1:0", authkey_file=str(key_file), auth_timeout=timeout
    ) as listener:
        where = _location(listener.address)
        silent = children.python(_SILENT_CLIENTS, where, str(SILENT), stdin=subprocess.PIPE)
        assert silent.stdout is not None and silent.stdout.readline() == b"connected\n"
        began = time.monotonic()
        waiting, slowest = [], 0.0
        for _ in range(SILENT):  # accept returns at once: it never waits for a handshake
            accepting = time.monotonic()
            waiting.append(listener.accept(timeout=20))
            slowest = max(slowest, time.monotonic() - accepting)
        try:
            assert slowest < timeout / 4, f"an accept took {slowest:.2f} s"
            good = _client(children, listener.address, KEY, checked(0))
            with listener.accept(timeout=20) as server:
                accepted = time.monotonic()
                message = server.recv(timeout=20)
                served = time.monotonic() - accepted
                server.send(message, timeout=20)
            assert verified(message) == 0 and served < 1.0, f"served after {served:.2f} s"
            assert good.wait(timeout=20) == 0, good.communicate(timeout=10)
            for channel in waiting:
                with pytest.raises(anyipc.AuthenticationError, match="within auth_timeout"):
                    channel.recv(timeout=timeout + 10)
            assert time.monotonic() - began < timeout + 2.0, "a silent client outlived its timeout"
        finally:
            for channel in waiting:
                channel.close()


def test_keys_are_never_written_in_a_uri(key_file: Path) -> None:
    with pytest.raises(anyipc.InvalidAddress, match="cannot be written in a URI"):
        anyipc.listen("auth+tcp://127.0.0.1:0?authkey=secret")
    with anyipc.listen("auth+tcp://127.0.0.1:0", authkey=KEY) as listener:
        assert "authkey" not in listener.address and KEY.decode() not in repr(listener)
        with anyipc.connect(listener.address, authkey=KEY) as client:
            with listener.accept(timeout=20) as server:
                client.send(b"ping", timeout=20)
                assert server.recv(timeout=20) == b"ping"
            assert client.peer is not None and "authkey" not in client.peer


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({}, "needs a key"),
        ({"authkey": b""}, "must not be empty"),
        ({"authkey_env": "ANYIPC_TEST_UNSET_VARIABLE"}, "not set"),
        ({"authkey_file": "/nonexistent/key"}, "cannot open"),
    ],
)
def test_a_missing_or_unusable_key_is_refused_before_anything_opens(
    options: dict[str, object], problem: str
) -> None:
    with pytest.raises(anyipc.InvalidAddress, match=problem):
        anyipc.listen("auth+unix:///tmp/anyipc-never-made.sock", **options)
    assert not os.path.exists("/tmp/anyipc-never-made.sock")


def test_a_key_file_others_may_read_is_refused(key_file: Path) -> None:
    key_file.chmod(0o644)
    with pytest.raises(anyipc.InvalidAddress, match="chmod o-rwx"):
        anyipc.connect("auth+tcp://127.0.0.1:9", authkey_file=str(key_file))


@pytest.fixture(scope="module")
def shared_key_file(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("authkey") / "key"
    path.write_bytes(KEY)
    path.chmod(0o600)
    return str(path)


class _AuthConformance(TransportConformance):
    """The conformance suite over ``stack``; the key file's path travels in the URI."""

    stack: ClassVar[str] = ""

    @pytest.fixture(scope="class")
    @classmethod
    def conformance_uri(cls, shared_key_file: str) -> str:
        return f"{cls.stack}?authkey_file={shared_key_file}"


class TestAuthTcp(_AuthConformance):
    stack = "auth+tcp"


class TestAuthUnixSeqpacket(_AuthConformance):
    stack = "auth+unix-seqpacket"


def test_a_key_of_the_wrong_type_is_refused_without_showing_it() -> None:
    with pytest.raises(anyipc.InvalidAddress, match="must be a bytes, not bytearray") as raised:
        anyipc.connect("auth+tcp://127.0.0.1:9", authkey=bytearray(b"hush-hush-key"))
    assert "hush" not in str(raised.value)
