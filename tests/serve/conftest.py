"""Servers and clients in processes of their own, and the kernel's view of a server's children."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import anyipc

HERE = Path(__file__).resolve().parent


class ServerProcess:
    """A running ``server_process.py``: its pid, address, and what it logged."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-P", str(HERE / "server_process.py"), json.dumps(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.pid = self.process.pid
        self.printed = ""
        self.address = self.line(timeout=10)

    def line(self, timeout: float) -> str:
        """The server's next line on stdout."""
        stdout = self.process.stdout
        assert stdout is not None
        ready, _, _ = select.select([stdout], [], [], timeout)
        assert ready, f"the server said nothing for {timeout} s"
        return stdout.readline().strip()

    def signal(self, signo: int) -> None:
        os.kill(self.pid, signo)

    def finish(self, timeout: float) -> tuple[int, str]:
        """Wait for the server to exit: its status and its log (``printed``: what else it said)."""
        self.printed, log = self.process.communicate(timeout=timeout)
        return self.process.returncode, log

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.communicate(timeout=10)


@pytest.fixture
def start_server() -> Iterator[Callable[..., ServerProcess]]:
    """``start_server(uri=..., model=..., handler=...)``: a server process, killed at the end."""
    started: list[ServerProcess] = []

    def start(**config: Any) -> ServerProcess:
        config.setdefault("workers", 4)
        server = ServerProcess(config)
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()


def children_of(pid: int) -> dict[int, str]:
    """The children of process ``pid`` and their states (``S``, ``R``, ``Z``...), from /proc."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:  # it ended meanwhile
            continue
        if int(fields[1]) == pid:
            found[int(entry)] = fields[0]
    return found


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``timeout`` seconds."""
    give_up = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < give_up, f"{what}: not within {timeout} s"
        time.sleep(0.02)


def request(address: str, text: str, timeout: float = 10) -> str:
    """Connect, send one line, return the reply line (without its newline)."""
    with anyipc.connect(address) as channel:
        channel.send(f"{text}\n".encode(), timeout=timeout)
        return receive_line(channel, timeout)


def receive_line(channel: anyipc.Channel, timeout: float = 10) -> str:
    data = b""
    while not data.endswith(b"\n"):
        data += channel.recv(timeout=timeout)
    return data[:-1].decode()


@pytest.fixture
def start_clients() -> Iterator[Callable[[str, int, int], list[subprocess.Popen[bytes]]]]:
    """``start_clients(address, clients, requests)``: client processes, killed at the end.

    Each sends ``requests`` requests, a connection each, and prints each
    reply line as it comes; client ``n``'s requests are ``c<n>-<i>``.
    """
    started: list[subprocess.Popen[bytes]] = []

    def start(address: str, clients: int, requests: int) -> list[subprocess.Popen[bytes]]:
        script = str(HERE / "client_process.py")
        batch = [
            subprocess.Popen(
                [sys.executable, "-P", script, address, f"c{n}", str(requests)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
            )
            for n in range(clients)
        ]
        started.extend(batch)
        return batch

    yield start
    for client in started:
        if client.poll() is None:
            client.kill()
        client.communicate(timeout=10)


ZOMBIE_GRACE = 1.0  #: how long a child may stay a zombie before it counts as left behind


def collect_replies(
    server_pid: int,
    clients: list[subprocess.Popen[bytes]],
    progress: Callable[[int], None] = lambda replies: None,
    timeout: float = 60,
) -> list[list[str]]:
    """Each client's reply lines, read until every client ended; zombies watched meanwhile.

    ``progress(n)`` is called with the number of replies the first client
    got so far, whenever it changes.  The server's children are listed
    between reads: a child that is a zombie for longer than ZOMBIE_GRACE
    fails the test (the moment between a child's end and its reaping is
    allowed).
    """
    buffers = {client.stdout.fileno(): b"" for client in clients if client.stdout is not None}
    order = list(buffers)
    replies: dict[int, list[str]] = {fd: [] for fd in order}
    zombie_since: dict[int, float] = {}
    give_up = time.monotonic() + timeout
    while buffers:
        assert time.monotonic() < give_up, f"the clients did not finish within {timeout} s"
        ready, _, _ = select.select(list(buffers), [], [], 0.05)
        for fd in ready:
            data = os.read(fd, 65536)
            if not data:
                del buffers[fd]
                continue
            *lines, buffers[fd] = (buffers[fd] + data).split(b"\n")
            replies[fd].extend(line.decode() for line in lines)
            if fd == order[0] and lines:
                progress(len(replies[fd]))
        now = time.monotonic()
        for pid, state in children_of(server_pid).items():
            if state == "Z":
                since = zombie_since.setdefault(pid, now)
                assert now - since < ZOMBIE_GRACE, f"child {pid} stays a zombie"
    for client in clients:
        assert client.wait(timeout=10) == 0, "a client failed"
    return [replies[fd] for fd in order]
