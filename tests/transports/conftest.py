"""Fixtures for the socket transport tests: real sockets, short paths, cleanup of everything."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import anyipc

Opened = tuple[anyipc.Listener, anyipc.Channel, anyipc.Channel]


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A fresh directory with a short path (pytest's tmp_path may not fit sun_path)."""
    path = Path(tempfile.mkdtemp(prefix="anyipc-t-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(params=["tcp", "unix", "unix-abstract"])
def stream_uri(request: pytest.FixtureRequest, short_dir: Path) -> str:
    """A URI to listen on, for each socket transport and kind of unix name."""
    if request.param == "tcp":
        return "tcp://127.0.0.1:0"
    if request.param == "unix":
        return f"unix://{short_dir}/s.sock"
    return f"unix://@anyipc-test-{uuid.uuid4().hex}"


@pytest.fixture
def open_pair() -> Iterator[Callable[..., Opened]]:
    """``open_pair(uri, **options)``: a listener, a client and the accepted server end.

    Everything opened is closed at the end of the test.
    """
    with contextlib.ExitStack() as stack:

        def opener(uri: str, **options: object) -> Opened:
            listener = stack.enter_context(anyipc.listen(uri, **options))
            client = stack.enter_context(anyipc.connect(listener.address))
            server = stack.enter_context(listener.accept(timeout=5))
            return listener, client, server

        yield opener


@pytest.fixture
def raw_connect() -> Iterator[Callable[[str], socket.socket]]:
    """``raw_connect(uri)``: a plain blocking socket connected to a tcp:// or unix:// listener."""
    with contextlib.ExitStack() as stack:

        def connector(uri: str) -> socket.socket:
            address = anyipc.Address.parse_syntax(uri)
            if address.scheme == "tcp":
                host, _, port = address.location.rpartition(":")
                sock = socket.create_connection((host.strip("[]"), int(port)), timeout=5)
            else:
                location = address.location
                name = "\0" + location[1:] if location.startswith("@") else location
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.settimeout(5)
                sock.connect(name)
            return stack.enter_context(sock)

        yield connector


@pytest.fixture
def recv_exactly() -> Callable[[anyipc.Channel, int], bytes]:
    """``recv_exactly(channel, n)``: exactly ``n`` stream bytes (5 s per recv)."""

    def receive(channel: anyipc.Channel, size: int) -> bytes:
        data = bytearray()
        while len(data) < size:
            data += channel.recv(timeout=5)
        assert len(data) == size
        return bytes(data)

    return receive


def open_fds() -> set[str]:
    """The descriptors this process has open now."""
    return {path.name for path in Path("/proc/self/fd").iterdir()}


@pytest.fixture
def no_new_fds() -> Iterator[None]:
    """Fail the test if it leaves a descriptor open."""
    before = open_fds()
    yield
    assert not open_fds() - before, "descriptors left open"


class Children:
    """Child processes of one test: stdout and stderr are pipes unless given; all are reaped."""

    def __init__(self) -> None:
        self._started: list[subprocess.Popen[bytes]] = []

    def run(self, argv: list[str], **options: Any) -> subprocess.Popen[bytes]:
        """Start ``argv`` (with ``subprocess.Popen`` ``options`` such as ``pass_fds``)."""
        options.setdefault("stdout", subprocess.PIPE)
        options.setdefault("stderr", subprocess.PIPE)
        child = subprocess.Popen(argv, cwd=tempfile.gettempdir(), **options)
        self._started.append(child)
        return child

    def python(self, code: str, *args: str, **options: Any) -> subprocess.Popen[bytes]:
        """Run ``code`` in a fresh interpreter; ``sys.argv[1:]`` are ``args``."""
        return self.run([sys.executable, "-c", code, *args], **options)

    def reap(self) -> None:
        """Kill what still runs and wait for every child."""
        for child in self._started:
            if child.poll() is None:
                child.kill()
            child.communicate(timeout=10)


@pytest.fixture
def children() -> Iterator[Children]:
    """Start child processes; each is killed if still running and reaped when the test ends."""
    started = Children()
    yield started
    started.reap()


class TLSFiles:
    """Certificates for the ``tls+`` tests, made with trustme, as PEM files.

    ``authority`` (whose certificate is the file ``ca``) issued ``server``
    (certificate chain and key in one file; also as ``server_cert`` and
    ``server_key``) for localhost, 127.0.0.1 and ::1, and ``client`` (chain
    and key) for a client.  ``other_ca`` is a CA that trusts none of them,
    and ``stranger`` a client certificate it issued.  ``server_leaf`` is
    trustme's object for ``server`` (``configure_cert`` fills an SSLContext).
    """

    def __init__(self, directory: Path) -> None:
        import trustme

        self.authority = trustme.CA()
        other = trustme.CA()
        self.server_leaf = self.authority.issue_cert("localhost", "127.0.0.1", "::1")
        self.ca = directory / "ca.pem"
        self.other_ca = directory / "other-ca.pem"
        self.server = directory / "server.pem"
        self.server_cert = directory / "server-chain.pem"
        self.server_key = directory / "server-key.pem"
        self.client = directory / "client.pem"
        self.stranger = directory / "stranger.pem"
        self.authority.cert_pem.write_to_path(str(self.ca))
        other.cert_pem.write_to_path(str(self.other_ca))
        self.server_leaf.private_key_and_cert_chain_pem.write_to_path(str(self.server))
        self.server_cert.write_bytes(b"".join(p.bytes() for p in self.server_leaf.cert_chain_pems))
        self.server_leaf.private_key_pem.write_to_path(str(self.server_key))
        client = self.authority.issue_cert("client@example.org")
        client.private_key_and_cert_chain_pem.write_to_path(str(self.client))
        stranger = other.issue_cert("stranger@example.org")
        stranger.private_key_and_cert_chain_pem.write_to_path(str(self.stranger))


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    """The session's certificates for the ``tls+`` tests (see :class:`TLSFiles`)."""
    return TLSFiles(tmp_path_factory.mktemp("tls"))
