"""The peer process as the measuring process sees it: start it, give it commands, end it.

A peer is always a fresh interpreter, never a fork of the measuring
process: :class:`CommandPeer` runs ``python -P -m anyipc.cli._bench_peer``
(commands as JSON lines on its stdin, answers on its stdout, descriptors
handed with ``pass_fds``), and :class:`SpawnPeer` is a ``multiprocessing``
process of the ``spawn`` start method, for the mechanisms that can only be
handed over that way (``multiprocessing.Pipe`` and ``Queue``; commands and
answers then travel on a control ``Pipe``).  Both are started with SIGINT
ignored, so that Ctrl-C reaches only the measuring process, which then
ends its peer in order: ``close()`` closes the control channel (an idle
peer exits at once, cleaning up what it created), then sends SIGTERM (the
peer cleans up too), then SIGKILL.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import select
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from multiprocessing.connection import Connection
from typing import Any, Protocol

from anyipc.cli._bench_link import BenchError

__all__ = ["CommandPeer", "PeerProcess", "SpawnPeer"]

GRACE_S = 2.0  #: how long a peer may take to exit after each step of ``close()``


class PeerProcess(Protocol):
    """The measuring side's handle on a peer process."""

    def command(self, request: dict[str, Any]) -> None:
        """Send a command; the peer answers once it has done it."""

    def answer(self, timeout: float) -> dict[str, Any]:
        """The next answer; :class:`BenchError` if the peer failed, died or stayed silent."""

    def terminate(self) -> None:
        """Ask the peer to stop now (SIGTERM); safe from another thread."""

    def close(self) -> None:
        """End the peer (see the module docstring) and reap it; idempotent."""


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    """Ignore SIGINT while a child starts, so that it inherits the disposition."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _answered(line: bytes) -> dict[str, Any]:
    answer: dict[str, Any] = json.loads(line)
    if "error" in answer:
        raise BenchError(f"the peer failed: {answer['error']}")
    return answer


class CommandPeer:
    """``python -P -m anyipc.cli._bench_peer SPEC TIMEOUT``, handed ``pass_fds``."""

    def __init__(self, spec: dict[str, Any], timeout: float, pass_fds: Sequence[int] = ()) -> None:
        command = [
            sys.executable,
            "-P",
            "-m",
            "anyipc.cli._bench_peer",
            json.dumps(spec),
            repr(timeout),
        ]
        self._stderr = tempfile.TemporaryFile()
        try:
            with _sigint_ignored():
                self._process = subprocess.Popen(
                    command,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=self._stderr,
                    pass_fds=tuple(pass_fds),
                    bufsize=0,
                )
        except BaseException:
            self._stderr.close()
            raise

    def command(self, request: dict[str, Any]) -> None:
        stdin = self._process.stdin
        assert stdin is not None
        try:
            stdin.write(json.dumps(request).encode() + b"\n")
        except BrokenPipeError:
            raise BenchError(self._death()) from None

    def answer(self, timeout: float) -> dict[str, Any]:
        stdout = self._process.stdout
        assert stdout is not None
        ready, _, _ = select.select([stdout], [], [], timeout)
        if not ready:
            raise BenchError(f"the peer process did not answer within {timeout:g} s")
        line = stdout.readline()
        if not line:
            raise BenchError(self._death())
        return _answered(line)

    def _death(self) -> str:
        """What to say of a peer that went away: its exit status and last line on stderr."""
        try:
            status = self._process.wait(GRACE_S)
        except subprocess.TimeoutExpired:
            status = None
        self._stderr.seek(0)
        said = self._stderr.read().decode(errors="replace").strip().splitlines()
        last = f": {said[-1]}" if said else ""
        return f"the peer process ended (exit status {status}){last}"

    def terminate(self) -> None:
        if self._process.poll() is None:
            self._process.terminate()

    def close(self) -> None:
        process = self._process
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        _reap(process.wait, process.terminate, process.kill, process.poll)
        self._stderr.close()


class SpawnPeer:
    """A ``multiprocessing`` spawn process running ``target(control, *args)``.

    ``target`` serves commands read from ``control`` (a ``Connection``) as
    JSON, answering on it; ``args`` are handed over by ``multiprocessing``
    (connections and queues included).
    """

    def __init__(self, target: Callable[..., None], args: Sequence[object]) -> None:
        context = multiprocessing.get_context("spawn")
        self._control, theirs = context.Pipe()
        self._process = context.Process(target=target, args=(theirs, *args), daemon=True)
        self._closed = False
        try:
            with _sigint_ignored():
                self._process.start()
        except BaseException:
            self._control.close()
            raise
        finally:
            theirs.close()

    def command(self, request: dict[str, Any]) -> None:
        try:
            self._control.send_bytes(json.dumps(request).encode())
        except OSError:
            raise BenchError(self._death()) from None

    def answer(self, timeout: float) -> dict[str, Any]:
        control: Connection = self._control
        if not control.poll(timeout):
            raise BenchError(f"the peer process did not answer within {timeout:g} s")
        try:
            return _answered(control.recv_bytes())
        except EOFError:
            raise BenchError(self._death()) from None

    def _death(self) -> str:
        self._process.join(GRACE_S)
        return f"the peer process ended (exit status {self._process.exitcode})"

    def terminate(self) -> None:
        if self._process.is_alive():
            self._process.terminate()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        process = self._process
        self._control.close()

        def wait(timeout: float | None = None) -> None:
            process.join(timeout)

        _reap(wait, process.terminate, process.kill, lambda: process.exitcode)
        process.close()


def _reap(
    wait: Callable[[float], object],
    terminate: Callable[[], None],
    kill: Callable[[], None],
    status: Callable[[], int | None],
) -> None:
    """Wait for a child told to stop; SIGTERM, then SIGKILL, when it lingers."""
    for stop in (terminate, kill, None):
        with contextlib.suppress(subprocess.TimeoutExpired):
            wait(GRACE_S)
        if status() is not None or stop is None:
            return
        stop()
