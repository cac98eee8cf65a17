"""Stopping: TERM and INT stop at once, stubborn children are killed after the deadline."""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Callable

import pytest

import anyipc

from .conftest import ServerProcess, children_of, receive_line, wait_for

STOP_TIMEOUT = 1.0


@pytest.mark.parametrize("model", ["fork", "prefork"])
def test_term_kills_a_child_that_ignores_it_once_the_deadline_passed(
    start_server: Callable[..., ServerProcess], model: str
) -> None:
    server = start_server(
        uri=f"unix://@anyipc-serve-{uuid.uuid4().hex}",
        model=model,
        workers=2,
        handler="stubborn",
        stop_timeout=STOP_TIMEOUT,
    )
    with anyipc.connect(server.address) as client:
        client.send(b"hold on\n")
        stubborn = int(receive_line(client).split()[0])  # in its handler, ignoring SIGTERM
        children = set(children_of(server.pid))
        assert stubborn in children
        started = time.monotonic()
        server.signal(signal.SIGTERM)
        status, log = server.finish(timeout=10)
        took = time.monotonic() - started
        with pytest.raises((anyipc.EndOfChannel, anyipc.ConnectionLost)):
            client.recv(timeout=5)  # the kill ended the connection
    assert status == 0, log
    assert STOP_TIMEOUT <= took < STOP_TIMEOUT + 2.5
    assert "still running 1 s after SIGTERM: killing them" in log
    assert not any(os.path.exists(f"/proc/{pid}") for pid in children), "no child is left"


@pytest.mark.parametrize("signo", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
@pytest.mark.parametrize("model", ["thread", "fork", "prefork"])
def test_term_and_int_stop_at_once_even_with_a_connection_in_its_handler(
    start_server: Callable[..., ServerProcess], model: str, signo: signal.Signals
) -> None:
    server = start_server(uri="tcp://127.0.0.1:0", model=model, handler="echo", stop_timeout=5.0)
    with anyipc.connect(server.address) as client:
        client.send(b"first\n")
        assert receive_line(client).endswith("first")  # its handler now waits for the next line
        children = set(children_of(server.pid))
        started = time.monotonic()
        server.signal(signo)
        status, log = server.finish(timeout=10)
        took = time.monotonic() - started
        with pytest.raises((anyipc.EndOfChannel, anyipc.ConnectionLost)):
            client.recv(timeout=5)
    assert status == 0, log
    assert took < 2.0, "the handler was stopped, not waited for"
    assert f"{signo.name}: stop" in log
    assert "WARNING" not in log and "Traceback" not in log, log
    assert server.printed == "stopped\n"
    assert not any(os.path.exists(f"/proc/{pid}") for pid in children), "no child is left"


def test_a_stuck_handler_thread_is_left_behind_once_the_deadline_passed(
    start_server: Callable[..., ServerProcess],
) -> None:
    server = start_server(
        uri="tcp://127.0.0.1:0", model="thread", handler="stubborn", stop_timeout=STOP_TIMEOUT
    )
    with anyipc.connect(server.address) as client:
        client.send(b"hold on\n")
        receive_line(client)  # the handler sleeps now, deaf to its connection
        started = time.monotonic()
        server.signal(signal.SIGTERM)
        status, log = server.finish(timeout=10)
        took = time.monotonic() - started
    assert status == 0, log
    assert STOP_TIMEOUT <= took < STOP_TIMEOUT + 2.5
    assert "1 handler threads still running" in log


def _exited(pid: int) -> bool:
    """Whether process ``pid`` has ended (gone, or a zombie its new parent has not reaped yet)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def test_prefork_children_leave_once_idle_when_the_server_is_killed(
    start_server: Callable[..., ServerProcess],
) -> None:
    server = start_server(uri="tcp://127.0.0.1:0", model="prefork", handler="echo")
    with anyipc.connect(server.address) as client:
        client.send(b"first\n")
        busy = int(receive_line(client).split()[0])  # its child is in the handler now
        wait_for(lambda: len(children_of(server.pid)) == 4, 10, "the pool is full")
        children = set(children_of(server.pid))
        server.signal(signal.SIGKILL)
        idle = children - {busy}
        wait_for(lambda: all(map(_exited, idle)), 5, "the idle children left")
        assert not _exited(busy), "a child finishes its connection first"
        client.send(b"second\n")
        assert receive_line(client).endswith("second")
    wait_for(lambda: _exited(busy), 5, "the last child left after its connection")
