"""``anyipc serve URI --exec CMD``: real commands served to concurrent clients, clear refusals."""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import anyipc

from .conftest import Run, Start

CLIENTS = 4


@pytest.fixture
def serve(start_anyipc: Start) -> Iterator[Callable[..., tuple[subprocess.Popen[bytes], str]]]:
    """``serve(uri, command)``: a running ``anyipc serve`` and the address it printed."""
    started: list[subprocess.Popen[bytes]] = []

    def start(uri: str, command: str) -> tuple[subprocess.Popen[bytes], str]:
        server = start_anyipc("serve", uri, "--exec", command, "--stop-timeout", "2")
        started.append(server)
        assert server.stdout is not None
        ready, _, _ = select.select([server.stdout], [], [], 10)
        assert ready, "the server printed no address"
        return server, server.stdout.readline().decode().strip()

    yield start
    for server in started:
        if server.poll() is None:
            server.kill()
        server.communicate(timeout=10)


def _stop(server: subprocess.Popen[bytes]) -> str:
    """TERM the server; its log, once it exited with status 0."""
    server.send_signal(signal.SIGTERM)
    _, log = server.communicate(timeout=10)
    assert server.returncode == 0, log
    return log.decode()


def _uri(kind: str, tmp_path: Path) -> str:
    if kind == "tcp":
        return "tcp://127.0.0.1:0"
    if kind == "unix":
        return f"unix://{tmp_path}/serve.sock"
    return f"unix-seqpacket://@anyipc-serve-{uuid.uuid4().hex}"


def _raw_socket(address: str) -> socket.socket:
    """A plain socket connected to ``address`` (tcp or unix): a client that is not anyipc."""
    scheme, _, location = address.partition("://")
    if scheme == "tcp":
        host, _, port = location.rpartition(":")
        return socket.create_connection((host, int(port)), timeout=10)
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.settimeout(10)
    client.connect(location)
    return client


def _read_to_end(client: socket.socket) -> bytes:
    data = b""
    while chunk := client.recv(65536):
        data += chunk
    return data


@pytest.mark.parametrize("kind", ["tcp", "unix"])
def test_tr_answers_concurrent_clients_after_their_end(
    serve: Callable[..., tuple[subprocess.Popen[bytes], str]], kind: str, tmp_path: Path
) -> None:
    server, address = serve(_uri(kind, tmp_path), "tr a-z A-Z")
    clients = [_raw_socket(address) for _ in range(CLIENTS)]  # all connected at once
    try:
        for number, client in enumerate(clients):
            client.sendall(f"hello {number}\nsecond line\n".encode())
            client.shutdown(socket.SHUT_WR)  # tr writes its output at the end of its input
        answers = [_read_to_end(client) for client in clients]
    finally:
        for client in clients:
            client.close()
    assert answers == [f"HELLO {n}\nSECOND LINE\n".encode() for n in range(CLIENTS)]
    _stop(server)
    if kind == "unix":
        assert not (tmp_path / "serve.sock").exists(), "the socket file is removed"


@pytest.mark.parametrize("kind", ["tcp", "unix", "unix-seqpacket"])
def test_cat_echoes_to_concurrent_clients_as_they_talk(
    serve: Callable[..., tuple[subprocess.Popen[bytes], str]], kind: str, tmp_path: Path
) -> None:
    server, address = serve(_uri(kind, tmp_path), "cat")
    clients = [anyipc.connect(address) for _ in range(CLIENTS)]
    try:
        for round_ in range(3):
            for number, client in enumerate(clients):
                client.send(f"{number}.{round_}".encode())
            for number, client in enumerate(clients):
                expected = f"{number}.{round_}".encode()
                received = b""
                while len(received) < len(expected):
                    received += client.recv(timeout=10)
                assert received == expected
    finally:
        for client in clients:
            client.close()
    assert "error" not in _stop(server)


def test_term_stops_the_server_and_its_running_commands(
    serve: Callable[..., tuple[subprocess.Popen[bytes], str]],
) -> None:
    server, address = serve("tcp://127.0.0.1:0", "sleep 30")
    with anyipc.connect(address) as client:
        give_up = time.monotonic() + 10
        while not (commands := _children(server.pid)):
            assert time.monotonic() < give_up, "no command was started"
            time.sleep(0.02)
        started = time.monotonic()
        log = _stop(server)
        assert time.monotonic() - started < 2.0
        with pytest.raises((anyipc.EndOfChannel, anyipc.ConnectionLost)):
            client.recv(timeout=5)
    assert "SIGTERM: stop" in log
    assert not any(os.path.exists(f"/proc/{pid}") for pid in commands), "no command is left"


def _children(pid: int) -> list[int]:
    """The pids of the children of ``pid`` (from /proc/<pid>/task/*/children)."""
    found = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as children:
            found.extend(int(child) for child in children.read().split())
    return found


@pytest.mark.parametrize(
    ("arguments", "status", "message"),
    [
        (["bogus://x", "--exec", "cat"], 1, "unknown scheme 'bogus'"),
        (["udp://127.0.0.1:0", "--exec", "cat"], 1, "needs a connection-oriented transport"),
        (["framed+tcp://127.0.0.1:0", "--exec", "cat"], 1, "needs a plain socket transport"),
        (["mem://x", "--exec", "cat"], 1, "not mem://"),
        (["tcp://127.0.0.1:0"], 2, "the following arguments are required: --exec"),
        (["tcp://127.0.0.1:0", "--exec", " "], 2, "--exec needs a command"),
        (["tcp://127.0.0.1:0", "--exec", "'cat"], 2, "No closing quotation"),
        (["tcp://127.0.0.1:0", "--exec", "no-such-command-here"], 2, "command not found"),
        (["tcp://127.0.0.1:0", "--exec", "cat", "--workers", "0"], 2, "must be at least 1"),
    ],
)
def test_errors_are_one_line(
    run_anyipc: Run, arguments: list[str], status: int, message: str
) -> None:
    result = run_anyipc("serve", *arguments, timeout=20)
    assert result.returncode == status
    assert result.stdout == b""
    (line,) = result.stderr.decode().splitlines()
    assert line.startswith("anyipc: error: ") and message in line, line
