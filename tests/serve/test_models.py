"""Each model: handlers bounded, children reaped under load, failures logged, reloads."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import pytest

import anyipc

from .conftest import (
    ServerProcess,
    children_of,
    collect_replies,
    receive_line,
    request,
    wait_for,
)

MODELS = ["thread", "fork", "prefork"]


def _stop(server: ServerProcess) -> str:
    """Stop the server with SIGTERM; its log, once it exited in order."""
    server.signal(signal.SIGTERM)
    status, log = server.finish(timeout=15)
    assert status == 0, log
    return log


@pytest.mark.parametrize("model", MODELS)
def test_no_more_than_workers_handlers_run_at_once(
    start_server: Callable[..., ServerProcess], model: str, tmp_path: Path
) -> None:
    server = start_server(
        uri="tcp://127.0.0.1:0", model=model, workers=3, handler="count", directory=str(tmp_path)
    )
    clients = [anyipc.connect(server.address) for _ in range(7)]
    try:
        for client in clients:
            client.send(b"how many?\n")
        counts = [int(receive_line(client)) for client in clients]
    finally:
        for client in clients:
            client.close()
    assert max(counts) == 3, counts
    _stop(server)


def test_the_fork_model_reaps_every_child_under_load(
    start_server: Callable[..., ServerProcess], start_clients: Callable[..., list]
) -> None:
    server = start_server(uri="tcp://127.0.0.1:0", model="fork", workers=4, handler="echo")
    replies = collect_replies(server.pid, start_clients(server.address, 3, 100))
    pids = {int(line.split()[0]) for lines in replies for line in lines}
    assert sum(map(len, replies)) == 300 and len(pids) == 300, "a child per connection"
    wait_for(lambda: not children_of(server.pid), 5, "every child is reaped")
    log = _stop(server)
    assert "WARNING" not in log, log


@pytest.mark.parametrize("model", MODELS)
def test_a_crashing_handler_is_logged_and_the_server_goes_on(
    start_server: Callable[..., ServerProcess], model: str
) -> None:
    server = start_server(uri="tcp://127.0.0.1:0", model=model, handler="crash")
    with anyipc.connect(server.address) as client:
        client.send(b"crash\n")
        with pytest.raises((anyipc.EndOfChannel, anyipc.ConnectionLost)):
            client.recv(timeout=10)  # closed after the handler raised, with no answer
    assert request(server.address, "hello").endswith("v1 hello")
    log = _stop(server)
    assert "anyipc.serve ERROR the handler failed on a connection" in log
    assert "RuntimeError: the handler fails on purpose" in log


@pytest.mark.parametrize("model", MODELS)
def test_hup_calls_the_reload_callback(
    start_server: Callable[..., ServerProcess], model: str
) -> None:
    server = start_server(uri="tcp://127.0.0.1:0", model=model, handler="echo", reload="version")
    assert request(server.address, "before").endswith("v1 before")
    server.signal(signal.SIGHUP)
    wait_for(
        lambda: request(server.address, "after").endswith("v2 after"), 10, "the handlers reloaded"
    )
    assert "SIGHUP: reload" in _stop(server)


def test_a_failing_reload_changes_nothing(start_server: Callable[..., ServerProcess]) -> None:
    server = start_server(uri="tcp://127.0.0.1:0", model="prefork", handler="echo", reload="fail")
    wait_for(lambda: len(children_of(server.pid)) == 4, 10, "the pool is full")
    children = set(children_of(server.pid))
    server.signal(signal.SIGHUP)
    assert int(request(server.address, "still there").split()[0]) in children
    log = _stop(server)
    assert "the reload callback failed" in log
    assert "RuntimeError: the new configuration is broken" in log
    assert "retired" not in log, "the children were kept"
