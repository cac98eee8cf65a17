"""Load held: many concurrent connections on one listener, every round trip checked.

An :class:`anyipc.Server` (thread model, one handler thread per connection)
runs in the test process on tcp, tls+tcp, unix and unix-seqpacket.  Client
processes (:data:`CLIENT_PROCESSES`, ``_connection_clients.py``) open all
the connections first, so that the server holds every one of them at once,
then each connection does its round trips, each request and reply a record
with a sequence number and a CRC32 (``_load_records``).  Every reply must be
right and no request damaged; afterwards the test process holds exactly the
descriptors it held before.

Figures (``figure(fast, long)``): the long profile runs the issue's 1,024
connections x 100 round trips (102,400 replies) per transport.  CI runs the
1,024 connections with 10 round trips each (10,240 replies): the hundred
round trips take about a minute per transport on two cores, over CI's
budget.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import anyipc

from ._load_processes import Children, descriptor_room, open_descriptors, report, start
from ._load_records import RecordStream, parse, record
from .conftest import figure

CONNECTIONS = figure(1024, 1024)
ROUNDS = figure(10, 100)
CLIENT_PROCESSES = 8
PATIENCE = figure(60.0, 120.0)  #: seconds any one step (connecting, a reply, a report) may take
BODY = 16


@pytest.fixture
def children() -> Iterator[Children]:
    started = Children()
    yield started
    started.reap()


@pytest.fixture(scope="module")
def tls_query(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Listener options for tls+: a server certificate and the CA that issued it (trustme)."""
    from ..transports.conftest import TLSFiles

    files = TLSFiles(tmp_path_factory.mktemp("tls"))
    return f"cert={files.server}&ca={files.ca}"


@pytest.fixture(params=["tcp", "tls+tcp", "unix", "unix-seqpacket"])
def listen_uri(request: pytest.FixtureRequest) -> Iterator[str]:
    """Where the server listens, for each transport under load."""
    if request.param == "tcp":
        yield "tcp://127.0.0.1:0"
    elif request.param == "tls+tcp":
        yield f"tls+tcp://127.0.0.1:0?{request.getfixturevalue('tls_query')}"
    else:
        directory = tempfile.mkdtemp(prefix="anyipc-load-")  # short: sun_path holds 107 bytes
        yield f"{request.param}://{directory}/server.sock"
        os.rmdir(directory)  # fails if the server left its socket file behind


class Served:
    """The server's side: a handler answering checked requests, and what it saw.

    ``answered`` requests were intact and answered; ``damaged`` were not (the
    connection is then dropped); ``peak`` is the most connections handled at
    once.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.answered = 0
        self.damaged = 0
        self.active = 0
        self.peak = 0

    def handle(self, channel: anyipc.Channel) -> None:
        with self._lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
        try:
            self._answer_all(channel)
        finally:
            with self._lock:
                self.active -= 1

    def _answer_all(self, channel: anyipc.Channel) -> None:
        streamed = channel.capabilities.boundaries is anyipc.Boundaries.STREAM
        stream = RecordStream(BODY)
        while True:
            try:
                data = channel.recv(timeout=PATIENCE)
            except anyipc.EndOfChannel:
                return
            for request in stream.feed(data) if streamed else [data]:
                sequence, body, intact = parse(request)
                if not intact or len(body) != BODY:
                    with self._lock:
                        self.damaged += 1
                    return
                channel.send(record(sequence, body[::-1]), timeout=PATIENCE)
                with self._lock:
                    self.answered += 1


def _wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + PATIENCE
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen within {PATIENCE} s"
        time.sleep(0.02)


def _run_clients(address: str, served: Served, children: Children) -> list[dict[str, Any]]:
    """Every client process's outcome, once all their connections were open at once."""
    per_process = CONNECTIONS // CLIENT_PROCESSES
    clients = [
        start(children, "_connection_clients.py", address, n * per_process, per_process, ROUNDS)
        for n in range(CLIENT_PROCESSES)
    ]
    for client in clients:
        assert report(client, PATIENCE) == {"connected": per_process}
    _wait_for(lambda: served.active == CONNECTIONS, f"{CONNECTIONS} connections at once")
    for client in clients:
        assert client.stdin is not None
        client.stdin.write(b"go\n")
    outcomes = [report(client, PATIENCE * 2) for client in clients]
    for client in clients:
        client.communicate(timeout=PATIENCE)  # closes the pipes to it, too
        assert client.returncode == 0
    _wait_for(lambda: served.active == 0, "the end of every connection")
    return outcomes


@pytest.mark.timeout(900)
def test_every_round_trip_of_every_concurrent_connection_is_right(
    listen_uri: str, children: Children
) -> None:
    with descriptor_room(CONNECTIONS + 256):
        baseline = open_descriptors()
        served = Served()
        server = anyipc.Server(
            listen_uri, served.handle, model="thread", workers=CONNECTIONS, signals={}
        )
        loop = threading.Thread(target=server.serve_forever, name="load-server")
        loop.start()
        started = time.monotonic()
        try:
            outcomes = _run_clients(server.address, served, children)
        finally:
            server.stop()
            loop.join(PATIENCE)
        seconds = time.monotonic() - started
        assert not loop.is_alive()
        correct = sum(outcome["correct"] for outcome in outcomes)
        errors = sum(outcome["error_count"] for outcome in outcomes)
        timings = ", ".join(
            f"{key} {max(outcome[key] for outcome in outcomes):.1f} s"
            for key in ("connect_s", "round_trips_s")
        )
        print(
            f"{listen_uri.split(':')[0]}: {CONNECTIONS} connections x {ROUNDS} round trips: "
            f"{correct} correct replies, {errors} errors, at most {served.peak} connections "
            f"at once; slowest client: {timings}; {seconds:.1f} s in all"
        )
        assert not errors, [error for outcome in outcomes for error in outcome["errors"]]
        assert (correct, served.answered, served.damaged) == (CONNECTIONS * ROUNDS,) * 2 + (0,)
        assert served.peak == CONNECTIONS
        assert open_descriptors() == baseline
