"""An rpc server in another process, over each transport the tests run on.

``server`` is one server process per transport, shared by a module's
tests; ``own_server`` is one for a single test (one that kills it).  Both
run ``rpc_server.py``; clients reach it at ``server.address``.
"""

from __future__ import annotations

import select
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import anyipc

from ..transports.conftest import Children

SERVER_SCRIPT = Path(__file__).with_name("rpc_server.py")

#: the transports of the cross-process tests: connected ones, then bound endpoints
TRANSPORTS = [
    "framed+tcp",
    "framed+unix",
    "unix-seqpacket",
    "shm",
    "posixmq",
    "sysvmq",
    "unix-dgram",
]
QUEUES = ("posixmq", "sysvmq")


def fresh_uri(transport: str, directory: str) -> str:
    """A URI of ``transport`` that no other test uses; ``directory`` holds socket files."""
    name = f"anyipc-rpc-{uuid.uuid4().hex[:12]}"
    return {
        "framed+tcp": "framed+tcp://127.0.0.1:0",
        "framed+unix": f"framed+unix://{directory}/rpc.sock",
        "unix-seqpacket": f"unix-seqpacket://@{name}",
        "shm": f"shm://{name}",
        "posixmq": f"posixmq://{name}",
        "sysvmq": "sysvmq://",  # bind picks a free key; the server prints it
        "unix-dgram": f"unix-dgram://@{name}",
    }[transport]


class ServerProcess:
    """``rpc_server.py`` serving ``uri`` in a child process; ``address`` is where it listens."""

    def __init__(self, children: Children, transport: str, uri: str, directory: Path) -> None:
        self.transport = transport
        self.log = directory / "server.log"  # its stderr: warnings about dropped messages
        with self.log.open("wb") as log:
            self.process = children.run(
                [sys.executable, str(SERVER_SCRIPT), uri], stdin=subprocess.PIPE, stderr=log
            )
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], 30)
        line = self.process.stdout.readline() if ready else b""
        assert line, f"the server did not start: {self.log.read_text()}"
        self.address = line.decode().strip()

    def stop(self) -> None:
        """End its input, so that it closes everything and exits; it must exit with 0."""
        self.process.communicate(timeout=10)
        assert self.process.returncode == 0, self.log.read_text()

    def kill(self) -> None:
        """SIGKILL it, and reclaim the queue a killed server leaves behind."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)
        if self.transport in QUEUES:
            anyipc.bind(self.address).close()  # the next bind removes a dead owner's queue


def _available(transport: str) -> None:
    scheme = transport.rpartition("+")[2]
    reason = anyipc.transports()[scheme].unavailable
    if reason is not None:
        pytest.skip(f"{scheme}:// is unavailable here: {reason}")


@pytest.fixture(scope="module", params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> str:
    """Each transport of the cross-process tests in turn."""
    _available(request.param)
    return str(request.param)


def _running(transport: str) -> Iterator[ServerProcess]:
    directory = Path(tempfile.mkdtemp(prefix="anyipc-rpc-"))
    children = Children()
    try:
        server = ServerProcess(children, transport, fresh_uri(transport, str(directory)), directory)
        yield server
        if server.process.poll() is None:
            server.stop()
    finally:
        children.reap()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def server(transport: str) -> Iterator[ServerProcess]:
    """A server process over ``transport``, shared by the tests of a module."""
    yield from _running(transport)


@pytest.fixture
def own_server(transport: str) -> Iterator[ServerProcess]:
    """A server process over ``transport`` for one test alone."""
    yield from _running(transport)


@pytest.fixture
def children() -> Iterator[Children]:
    """Child processes of one test; each is killed if still running and reaped at the end."""
    started = Children()
    yield started
    started.reap()
