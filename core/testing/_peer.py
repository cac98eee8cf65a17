"""The peer in another process: a child that connects and plays one role per request.

The parent (:class:`PeerProcess`) starts a fresh interpreter (as the
``spawn`` start method would) running :func:`main` and talks to it
with one JSON line per request on its stdin/stdout.  Requests:

* ``send``: connect to ``uri``, send ``payloads`` (hex; or ``generate``:
  ``count`` messages of ``size`` bytes, message n filled with ``n % 251``),
  then close, or
  SIGKILL itself when ``end`` is ``"die"`` (after the last send) or
  ``"die_during"`` (from a timer ``delay`` seconds in, while sending).
* ``echo``: connect to ``uri`` and send back every message received until
  the end of the channel or ``count`` messages (or, on a transport that may
  lose, a silence of ``timeout`` seconds); on a connectionless transport it
  first sends ``hello`` so that the parent learns its address.

Each finished request is answered with ``{"ok": true}`` or
``{"ok": false, "error": "..."}``.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from typing import Any

__all__ = ["PeerProcess"]

HELLO = b"anyipc-conformance-hello"


def _serve_send(request: dict[str, Any]) -> None:
    import anyipc

    if "generate" in request:  # large payloads are made here rather than sent as hex
        count, size = request["generate"]["count"], request["generate"]["size"]
        payloads = [bytes([n % 251]) * size for n in range(count)]
    else:
        payloads = [bytes.fromhex(item) for item in request["payloads"]]
    channel = anyipc.connect(request["uri"])
    if request.get("end") == "die_during":
        timer = threading.Timer(request["delay"], os.kill, (os.getpid(), signal.SIGKILL))
        timer.start()
    for payload in payloads:
        channel.send(payload, timeout=30)
    if request.get("end") in ("die", "die_during"):
        os.kill(os.getpid(), signal.SIGKILL)
    channel.close()


def _serve_echo(request: dict[str, Any]) -> None:
    import anyipc

    channel = anyipc.connect(request["uri"])
    try:
        if channel.capabilities.connection is anyipc.Connection.CONNECTIONLESS:
            channel.send(HELLO, timeout=10)
        count = request.get("count")
        done = 0
        while count is None or done < count:
            try:
                message = channel.recv(timeout=request.get("timeout", 30))
            except anyipc.EndOfChannel:
                break
            except anyipc.Timeout:
                if channel.capabilities.lossless:
                    raise
                break  # the rest was lost: silence is all the end a lossy transport shows
            channel.send(message, timeout=30)
            done += 1
    finally:
        channel.close()


def main() -> None:
    """Serve requests from stdin until it closes (the child's entry point)."""
    for line in sys.stdin:
        request = json.loads(line)
        try:
            {"send": _serve_send, "echo": _serve_echo}[request["op"]](request)
            answer: dict[str, Any] = {"ok": True}
        except Exception as exc:  # reported to the parent, which fails the check
            answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


class PeerProcess:
    """A child interpreter that plays the other end of a conversation.

    Started on first use; restarted after it dies (e.g. after a ``die``
    request).  ``pass_fds`` are handed to the child at their own numbers
    (inherited transports: the child opens ``pipe://fd/N``).  ``close()``
    ends it; it is also killed if it does not stop.
    """

    def __init__(self, pass_fds: Sequence[int] = ()) -> None:
        self._pass_fds = tuple(pass_fds)
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the child now (it is otherwise started by the first request)."""
        self._ensure()

    def _ensure(self) -> subprocess.Popen[bytes]:
        if self._process is None or self._process.poll() is not None:
            self.close()
            self._process = subprocess.Popen(
                [sys.executable, "-c", "from anyipc.testing._peer import main; main()"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                pass_fds=self._pass_fds,
            )
        return self._process

    def request(self, op: str, uri: str, **fields: Any) -> None:
        """Start request ``op`` against ``uri``; collect its outcome with :meth:`result`."""
        process = self._ensure()
        assert process.stdin is not None
        process.stdin.write((json.dumps({"op": op, "uri": uri, **fields}) + "\n").encode())
        process.stdin.flush()

    def result(self, timeout: float = 30.0) -> dict[str, Any]:
        """The outcome of the last request; ``{"died": True}`` if the child died."""
        process = self._process
        assert process is not None and process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], timeout)
        if not ready:
            self.close()
            raise AssertionError(f"the peer process did not answer within {timeout} s")
        line = process.stdout.readline()
        if not line:
            process.wait(timeout)
            return {"died": True, "returncode": process.returncode}
        answer: dict[str, Any] = json.loads(line)
        return answer

    def descriptors(self) -> set[int]:
        """The parent's descriptors for talking to the child (not leaks)."""
        process = self._process
        if process is None:
            return set()
        return {
            s.fileno() for s in (process.stdin, process.stdout) if s is not None and not s.closed
        }

    def wait_dead(self, timeout: float = 10.0) -> int:
        """Wait for the child to exit (after a ``die`` request); its return code."""
        assert self._process is not None
        return self._process.wait(timeout)

    def close(self) -> None:
        """Stop the child: end of input, then SIGKILL if it lingers."""
        process, self._process = self._process, None
        if process is None:
            return
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                stream.close()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
