"""The test's side of the fault peers: start workers in the fork server, hear them, kill them.

:class:`ForkServer` runs ``_fault_peers.py`` (one per test module: it is
started before, and so never counted by, the per-test leak check) and
:class:`Peers` is one test's view of it: every worker a test started is
killed, reaped and forgotten when the test ends.  A :class:`Worker` is
signalled through its pidfd, so a worker that died and was reaped can never
be confused with a process that reuses its pid.
"""

from __future__ import annotations

import collections
import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["PATIENCE", "ForkServer", "PeerFailed", "Peers", "Worker", "describe_status"]

SCRIPT = Path(__file__).with_name("_fault_peers.py")
PATIENCE = 30.0  #: how long the test waits for a worker's report


class PeerFailed(AssertionError):
    """A worker raised, or ended before reporting what the test waited for."""


def describe_status(status: int) -> str:
    """A wait status in words: ``exit 0``, ``killed by SIGKILL``."""
    if os.WIFSIGNALED(status):
        return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit {os.waitstatus_to_exitcode(status)}"


class ForkServer:
    """``_fault_peers.py`` in a child process, and the socket to it."""

    def __init__(self) -> None:
        self._control, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        with theirs:
            self._process = subprocess.Popen(
                [sys.executable, str(SCRIPT), str(theirs.fileno())],
                pass_fds=[theirs.fileno()],
                cwd=tempfile.gettempdir(),
            )
        self._events: dict[int, collections.deque[dict[str, Any]]] = collections.defaultdict(
            collections.deque
        )

    def start(self, role: str, *, fds: tuple[int, ...] = (), **args: Any) -> Worker:
        """Fork a worker playing ``role`` with ``args``; it gets copies of ``fds``."""
        request = {"role": role, "args": args}
        socket.send_fds(self._control, [json.dumps(request).encode()], list(fds))
        deadline = time.monotonic() + PATIENCE
        while True:
            packet, received = self._receive(deadline)
            if packet["event"] == "started":
                return Worker(self, packet["pid"], received[0])
            for fd in received:
                os.close(fd)
            self._events[packet["pid"]].append(packet)

    def next_event(self, pid: int, deadline: float) -> dict[str, Any]:
        """The next report about worker ``pid``, waiting until ``deadline`` (monotonic)."""
        while not self._events[pid]:
            packet, received = self._receive(deadline)
            for fd in received:
                os.close(fd)
            self._events[packet["pid"]].append(packet)
        return self._events[pid].popleft()

    def forget(self, pid: int) -> None:
        """Drop what is queued about worker ``pid``."""
        self._events.pop(pid, None)

    def _receive(self, deadline: float) -> tuple[dict[str, Any], list[int]]:
        ready, _, _ = select.select([self._control], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            raise PeerFailed("the fault peers said nothing in time")
        message, fds, _, _ = socket.recv_fds(self._control, 1 << 18, 4)
        if not message:
            raise PeerFailed(f"the fork server ended: {describe_status(self._process.wait())}")
        packet: dict[str, Any] = json.loads(message)
        return packet, fds

    def close(self) -> None:
        """End the server (it kills and reaps its workers)."""
        self._control.close()
        try:
            self._process.wait(10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


class Worker:
    """One forked peer: its reports, its death."""

    def __init__(self, server: ForkServer, pid: int, pidfd: int) -> None:
        self.pid = pid
        self._server = server
        self._pidfd: int | None = pidfd
        self.status: int | None = None  #: the wait status once it exited
        self.errors: list[str] = []  #: what it reported failing
        self.died_at: float | None = None  #: when it was reaped (monotonic)

    def event(self, name: str, timeout: float = PATIENCE) -> dict[str, Any]:
        """The worker's next report called ``name``; :class:`PeerFailed` if it fails first.

        Reports with other names are skipped, except ``error`` and
        ``exited`` (unless that is the name asked for).
        """
        deadline = time.monotonic() + timeout
        while True:
            packet = self._server.next_event(self.pid, deadline)
            event = packet["event"]
            if event == "exited":
                self.status, self.died_at = packet["status"], packet["at"]
            if event == "error":
                self.errors.append(packet["error"])
            if event == name:
                return packet
            if event == "error" and name != "exited":
                raise PeerFailed(f"worker {self.pid} failed: {packet['error']}")
            if event == "exited":
                raise PeerFailed(
                    f"worker {self.pid} ended ({describe_status(packet['status'])}) "
                    f"before reporting {name!r}"
                )

    def kill(self) -> float:
        """SIGKILL the worker now (if it still runs); the time just before (monotonic)."""
        now = time.monotonic()
        if self._pidfd is not None and self.status is None:
            try:
                signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)
            except ProcessLookupError:
                pass  # it exited on its own meanwhile
        return now

    def wait_exit(self, timeout: float = PATIENCE) -> int:
        """Wait until the worker was reaped; its wait status."""
        if self.status is None:
            self.event("exited", timeout)
        assert self.status is not None
        return self.status

    def wait_killed(self, timeout: float = PATIENCE) -> None:
        """Wait until the worker was reaped; it must have died by SIGKILL, and failed in nothing."""
        status = self.wait_exit(timeout)
        assert not self.errors, f"worker {self.pid} failed: {self.errors}"
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, (
            f"worker {self.pid} was expected to die by SIGKILL, not by {describe_status(status)}"
        )

    def release(self) -> None:
        """Close the pidfd and forget the worker's reports (after it exited)."""
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None
        self._server.forget(self.pid)


class Peers:
    """One test's workers: ``start`` forks one; at the end all are killed and reaped."""

    def __init__(self, server: ForkServer) -> None:
        self._server = server
        self._workers: list[Worker] = []

    def start(self, role: str, *, fds: tuple[int, ...] = (), **args: Any) -> Worker:
        """Fork a worker playing ``role`` (see ``_fault_peers.py``)."""
        worker = self._server.start(role, fds=fds, **args)
        self._workers.append(worker)
        return worker

    def finish(self) -> None:
        """Kill every worker of this test still running, wait for each, release them all."""
        for worker in self._workers:
            worker.kill()
        for worker in self._workers:
            try:
                worker.wait_exit(10)
            finally:
                worker.release()
        self._workers.clear()


@contextmanager
def fork_server() -> Iterator[ForkServer]:
    """A :class:`ForkServer` for the duration of the block."""
    server = ForkServer()
    try:
        yield server
    finally:
        server.close()


@contextmanager
def peers_of(server: ForkServer) -> Iterator[Peers]:
    """A test's :class:`Peers` on ``server``; its workers are finished at the end."""
    peers = Peers(server)
    try:
        yield peers
    finally:
        peers.finish()
