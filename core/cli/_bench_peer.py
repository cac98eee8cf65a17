"""The peer process of ``anyipc bench``: the far side of every measurement.

``python -P -m anyipc.cli._bench_peer SPEC TIMEOUT``.  SPEC (JSON) says how
to join the link the measuring process prepared: its ``kind`` names the
module that does it (:data:`KINDS`; each has ``join(spec, timeout) ->
(link, info)``).  The peer then answers ``{"ready": true, **info}`` and
serves commands, one JSON line each on stdin, until stdin closes:

* ``{"op": "echo", "size": S, "count": N}``: receive N messages of S bytes,
  sending each one back (latency);
* ``{"op": "sink", "size": S, "count": N, "quiet": Q, "batch": B}``:
  receive N messages of S bytes, up to B per call where the link can, then
  send the acknowledgement: the count received (throughput).  With
  ``quiet`` (a lossy transport) a silence of Q seconds after the first
  message ends the run early.

Either command may say ``"views": true``: receive views instead of copies
where the link can (see :mod:`anyipc.cli._bench_link`).

Each command done is answered ``{"ok": true}`` on stdout; a failure is
answered ``{"error": "..."}`` and ends the peer.  Peers that
``multiprocessing`` must start (its ``Pipe`` and ``Queue``) run
:func:`run` with a control ``Connection`` in place of stdin and stdout.

SIGINT is ignored (the measuring process handles Ctrl-C and ends its
peer); SIGTERM ends the peer through ``SystemExit``, so that it still
closes what it opened (a queue it bound, a socket file).  Every wait is
bounded: by TIMEOUT for the link's calls, and by :data:`IDLE_S` (or
TIMEOUT, if longer) for the next command.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import select
import signal
import sys
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from types import FrameType
from typing import Any, Protocol

from anyipc.cli._bench_link import BatchLink, Link, ack, describe, use_views

__all__ = ["KINDS", "ConnectionControl", "main", "run"]

#: kind of link -> the module whose ``join(spec, timeout)`` joins it
KINDS = {
    "anyipc": "anyipc.cli._bench_anyipc",
    "socket": "anyipc.cli._bench_raw_sockets",
    "files": "anyipc.cli._bench_raw_files",
    "queues": "anyipc.cli._bench_raw_queues",
    "memory": "anyipc.cli._bench_raw_memory",
    "zmq": "anyipc.cli._bench_alternatives",
}
#: the longest wait for the next command (the measuring process measures the other contenders
#: in between, and closes the control channel when it ends or dies, which ends the wait at once)
IDLE_S = 3600.0


class Control(Protocol):
    """The peer's side of its control channel."""

    def next(self, timeout: float) -> dict[str, Any] | None:
        """The next command, or None once the measuring process closed the channel."""

    def answer(self, message: dict[str, Any]) -> None:
        """Send an answer."""


class _StdioControl:
    """Commands on stdin, answers on the stdout of the start (stray prints go to stderr)."""

    def __init__(self) -> None:
        self._in = os.fdopen(sys.stdin.fileno(), "rb", buffering=0, closefd=False)
        self._out = os.fdopen(os.dup(sys.stdout.fileno()), "wb", buffering=0)
        os.dup2(sys.stderr.fileno(), sys.stdout.fileno())

    def next(self, timeout: float) -> dict[str, Any] | None:
        ready, _, _ = select.select([self._in], [], [], timeout)
        if not ready:
            raise TimeoutError(f"no command came within {timeout:g} s")
        line = self._in.readline()
        return json.loads(line) if line else None

    def answer(self, message: dict[str, Any]) -> None:
        self._out.write(json.dumps(message).encode() + b"\n")


class ConnectionControl:
    """Commands and answers as JSON on a ``multiprocessing`` connection."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def next(self, timeout: float) -> dict[str, Any] | None:
        if not self._connection.poll(timeout):
            raise TimeoutError(f"no command came within {timeout:g} s")
        try:
            command: dict[str, Any] = json.loads(self._connection.recv_bytes())
        except EOFError:
            return None
        return command

    def answer(self, message: dict[str, Any]) -> None:
        self._connection.send_bytes(json.dumps(message).encode())


def _echo(link: Link, size: int, count: int, timeout: float) -> None:
    for _ in range(count):
        link.send(link.recv(size, timeout), timeout)


def _sink(
    link: Link, size: int, count: int, timeout: float, quiet: float | None, batch: int
) -> None:
    received = 0
    wait = timeout
    batched = link if batch > 1 and isinstance(link, BatchLink) else None
    recv = link.recv
    while received < count:
        try:
            if batched is None:
                recv(size, wait)
                received += 1
            else:
                received += batched.recv_batch(size, min(batch, count - received), wait)
        except TimeoutError:
            if quiet is None or not received:
                raise
            break  # the rest was lost
        if quiet is not None:
            wait = quiet
    link.send(ack(received), timeout)


def _serve(link: Link, control: Control, timeout: float) -> None:
    while (command := control.next(max(IDLE_S, timeout))) is not None:
        size, count = command["size"], command["count"]
        use_views(link, command.get("views", False))
        if command["op"] == "echo":
            _echo(link, size, count, timeout)
        else:
            _sink(link, size, count, timeout, command["quiet"], command.get("batch", 1))
        control.answer({"ok": True})


def _stop(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def run(join: Callable[[], tuple[Link, dict[str, Any]]], control: Control, timeout: float) -> int:
    """Join the link, say ready, serve commands; the exit status (1 after a failure)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _stop)
    try:
        link, info = join()
        with contextlib.closing(link):
            control.answer({"ready": True, **info})
            _serve(link, control, timeout)
    except Exception as exc:  # told to the measuring process, which reports the point's error
        with contextlib.suppress(Exception):
            control.answer({"error": describe(exc)})
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Join the link SPEC describes and serve commands from stdin; the exit status."""
    spec_text, timeout_text = sys.argv[1:] if argv is None else argv
    spec: dict[str, Any] = json.loads(spec_text)
    timeout = float(timeout_text)
    module = importlib.import_module(KINDS[spec["kind"]])
    return run(lambda: module.join(spec, timeout), _StdioControl(), timeout)


if __name__ == "__main__":
    raise SystemExit(main())
