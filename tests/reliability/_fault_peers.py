"""The peers of the fault tests: a fork server, and the roles its workers play.

Run as ``python _fault_peers.py FD``, where FD is one end of a
``SOCK_SEQPACKET`` socket pair whose other end the test holds (see
:mod:`_fault_control`).  The server imports anyipc and loads its plugins
once, then forks one worker per request, so that a peer costs a fork
(milliseconds) instead of a fresh interpreter.  It is single-threaded, and
so are the workers.

Packets, one JSON object each:

* test → server: ``{"role": NAME, "args": {...}}``, with the descriptors
  the role needs attached (``SCM_RIGHTS``); a role's ``uri`` may say
  ``{fd}``, which becomes the number of the first attached descriptor in
  the worker.
* server → test: ``{"pid": PID, "event": "started"}`` with a pidfd of the
  worker attached (so the test can signal it with no risk of reaching a
  recycled pid); ``{"pid": PID, "event": "exited", "status": WAITSTATUS,
  "at": T}`` once it is reaped.
* worker → test: ``{"pid": PID, "event": ..., ...}`` as each role says, and
  ``{"pid": PID, "event": "error", "error": TEXT}`` if the role raised.

Times ``T`` are ``time.monotonic()``, a clock the whole machine shares.  When
the test's end of the socket closes, the server kills every worker, reaps
them and exits.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

from _fault_messages import frame, stamp, verify

import anyipc

PATIENCE = 30.0  #: the timeout of every blocking call a worker makes
_control: socket.socket  # the worker's (and the server's) end of the test's socket


def report(event: str, **fields: Any) -> None:
    """Tell the test ``event`` about this worker."""
    report_for(os.getpid(), event, **fields)


def report_for(pid: int, event: str, **fields: Any) -> None:
    """Tell the test ``event`` about worker ``pid`` (the server reports about its workers)."""
    _control.send(json.dumps({"pid": pid, "event": event, **fields}).encode())


def _open(uri: str, verb: str) -> anyipc.Channel | anyipc.Listener:
    """``uri`` opened with ``verb``: ``connect``, ``bind`` or ``listen``."""
    if verb == "listen":
        return anyipc.listen(uri)
    return anyipc.bind(uri) if verb == "bind" else anyipc.connect(uri)


def _connect(uri: str) -> anyipc.Channel:
    """Connect to ``uri`` and report ``connected``."""
    channel = anyipc.connect(uri)
    report("connected")
    return channel


# -- roles -----------------------------------------------------------------------------------
def frames(uri: str, sizes: list[int], cut: int) -> None:
    """Write whole frames of stamped messages on the raw stream ``uri``, then stop inside one.

    The worker connects (and reports it).  Messages ``0..len(sizes)-2`` go
    as whole ``framed+`` frames; of the last frame only the first ``cut``
    bytes are written.  Then the worker reports ``cut`` (with the time) and
    SIGKILLs itself.
    """
    channel = _connect(uri)
    for seq, size in enumerate(sizes[:-1]):
        channel.send(frame(stamp(seq, size)), timeout=PATIENCE)
    last = frame(stamp(len(sizes) - 1, sizes[-1]))
    channel.send(last[:cut], timeout=PATIENCE)
    report("cut", at=time.monotonic())
    os.kill(os.getpid(), signal.SIGKILL)


def flood(uri: str, sizes: list[int]) -> None:
    """Connect (reporting it), then send stamped messages until killed.

    Message ``n`` is ``sizes[n % len(sizes)]`` bytes long.  Reports
    ``sending`` once the first message is sent.
    """
    channel = _connect(uri)
    seq = 0
    while True:
        channel.send(stamp(seq, sizes[seq % len(sizes)]), timeout=PATIENCE)
        if not seq:
            report("sending")
        seq += 1


def talk(uri: str, count: int, size: int, echo: bool, interval: float, delay: float = 0) -> None:
    """After ``delay`` seconds connect (reporting it) and send ``count`` stamped messages.

    Messages go ``interval`` seconds apart; with ``echo`` each must come back
    unchanged before the next is sent.  Reports ``done`` after closing.
    """
    time.sleep(delay)
    with _connect(uri) as channel:
        for seq in range(count):
            message = stamp(seq, size)
            channel.send(message, timeout=PATIENCE)
            if echo:
                reply = channel.recv(timeout=PATIENCE)
                assert reply == message, f"echo of message {seq} differs"
            if interval:
                time.sleep(interval)
    report("done")


def drain(uri: str, verb: str, count: int, interval: float, quiet: float = PATIENCE) -> None:
    """Receive ``count`` stamped messages, sleeping ``interval`` after each; report what came.

    ``verb`` is ``connect`` or ``bind`` (then ``ready`` with the address is
    reported first).  A silence of ``quiet`` seconds after the first message
    ends the receiving early (a transport that may lose).  Reports ``done``
    with ``received`` (sequence numbers in order of arrival, as runs
    ``[first, last]``).
    """
    channel = _open(uri, verb)
    assert isinstance(channel, anyipc.Channel)
    if verb == "bind":
        report("ready", address=channel.address)
    runs: list[list[int]] = []
    for _ in range(count):
        try:
            seq = verify(channel.recv(timeout=quiet if runs else PATIENCE))
        except anyipc.Timeout:
            break
        if runs and runs[-1][1] + 1 == seq:
            runs[-1][1] = seq
        else:
            runs.append([seq, seq])
        if interval:
            time.sleep(interval)
    report("done", received=runs)
    channel.close()


def serve(uri: str, verb: str) -> None:
    """Own the endpoint ``uri`` (``listen`` or ``bind``) and answer until killed.

    Reports ``ready`` with the endpoint's address, then ``received`` with
    the sequence number of each message.  A listener serves one connection
    at a time, echoing each message (while the peer is there to take it)
    until the connection ends.  A connectionless endpoint echoes each
    datagram to its sender.
    """
    endpoint = _open(uri, verb)
    report("ready", address=endpoint.address)
    if isinstance(endpoint, anyipc.Listener):
        while True:
            with endpoint.accept(timeout=PATIENCE) as channel:
                _echo(channel)
    connectionless = endpoint.capabilities.connection is anyipc.Connection.CONNECTIONLESS
    while True:
        if connectionless:
            message, sender = endpoint.recv_from(timeout=PATIENCE)
            report("received", seq=verify(message))
            endpoint.send_to(message, sender, timeout=PATIENCE)
            continue
        try:
            report("received", seq=verify(endpoint.recv(timeout=PATIENCE)))
        except anyipc.EndOfChannel:  # a FIFO between writers
            time.sleep(0.01)


def _echo(channel: anyipc.Channel) -> None:
    while True:
        try:
            message = channel.recv(timeout=PATIENCE)
        except (anyipc.EndOfChannel, anyipc.ConnectionLost):
            return
        report("received", seq=verify(message))
        try:
            channel.send(message, timeout=PATIENCE)
        except anyipc.ConnectionLost:  # a client that sent and left at once
            return


def linger(uri: str) -> None:
    """Connect (reporting it) and stay, silent, until killed (or for ``PATIENCE`` seconds)."""
    with _connect(uri):
        time.sleep(PATIENCE)


def pester(target: int, signum: int, interval: float) -> None:
    """Send signal ``signum`` to process ``target`` every ``interval`` seconds until killed."""
    report("pestering")
    while True:
        os.kill(target, signum)
        time.sleep(interval)


def signal_once(target: int, signum: int, delay: float) -> None:
    """Sleep ``delay`` seconds, send ``signum`` to ``target``; report ``sent`` with the time.

    The time is taken just before the signal goes, so that delays measured
    from it are never too short.
    """
    time.sleep(delay)
    at = time.monotonic()
    os.kill(target, signum)
    report("sent", at=at)


ROLES: dict[str, Callable[..., None]] = {
    role.__name__: role for role in (frames, flood, talk, drain, serve, linger, pester, signal_once)
}


# -- the fork server ---------------------------------------------------------------------------
class Server:
    """Forks a worker per request and reaps them all."""

    def __init__(self) -> None:
        self.poller = select.poll()
        self.poller.register(_control, select.POLLIN)
        self.pidfds: dict[int, int] = {}  # pidfd -> pid, for each worker not yet reaped

    def run(self) -> None:
        """Serve until the test's end of the socket closes."""
        while True:
            for fd, _ in self.poller.poll():
                if fd != _control.fileno():
                    self._reap(fd)
                elif not self._start():
                    return

    def _start(self) -> bool:
        message, fds, _, _ = socket.recv_fds(_control, 1 << 16, 8)
        if not message:
            return False
        request = json.loads(message)
        args = request["args"]
        if fds and "uri" in args:
            args["uri"] = args["uri"].replace("{fd}", str(fds[0]))
        pid = os.fork()
        if pid == 0:
            self._work(request["role"], args)
        for fd in fds:
            os.close(fd)
        pidfd = os.pidfd_open(pid)
        self.pidfds[pidfd] = pid
        self.poller.register(pidfd, select.POLLIN)
        packet = json.dumps({"pid": pid, "event": "started"}).encode()
        socket.send_fds(_control, [packet], [pidfd])
        return True

    def _work(self, role: str, args: dict[str, Any]) -> None:
        """The worker: play ``role``, report a failure, and never return."""
        code = 0
        try:
            for pidfd in self.pidfds:
                os.close(pidfd)
            ROLES[role](**args)
        except BaseException as exc:
            code = 1
            lines = traceback.format_exception_only(type(exc), exc)
            report("error", error="".join(lines).strip())
        finally:
            os._exit(code)

    def _reap(self, pidfd: int) -> None:
        pid = self.pidfds.pop(pidfd)
        self.poller.unregister(pidfd)
        os.close(pidfd)
        _, status = os.waitpid(pid, 0)
        report_for(pid, "exited", status=status, at=time.monotonic())

    def stop(self) -> None:
        """Kill and reap every worker still running."""
        for pidfd, pid in self.pidfds.items():
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os.close(pidfd)
        self.pidfds.clear()


def main() -> None:
    """The server's entry point: ``_fault_peers.py FD``."""
    global _control
    _control = socket.socket(fileno=int(sys.argv[1]))
    anyipc.transports()  # load every plugin once, before the first fork
    server = Server()
    try:
        server.run()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
