"""The prefork model under load and under control: nothing dropped, children replaced, reaped."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable

import pytest

from .conftest import ServerProcess, children_of, collect_replies, request, wait_for

WORKERS = 4


def _children_when(
    server: ServerProcess, condition: Callable[[set[int]], bool], what: str
) -> set[int]:
    """The server's children, once one listing of them meets ``condition``."""
    seen: set[int] = set()

    def met() -> bool:
        seen.clear()
        seen.update(children_of(server.pid))
        return condition(seen)

    wait_for(met, 10, what)
    return seen


def _pool(server: ServerProcess) -> set[int]:
    """The server's children once all ``WORKERS`` are there."""
    return _children_when(server, lambda now: len(now) == WORKERS, "the pool is full")


def _replaced(server: ServerProcess, old: set[int]) -> set[int]:
    """The server's children once none of ``old`` is left and the pool is full again."""
    return _children_when(
        server, lambda now: len(now) == WORKERS and not now & old, "the children are replaced"
    )


def test_every_request_is_answered_through_hup_and_usr1_and_no_zombie_remains(
    start_server: Callable[..., ServerProcess], start_clients: Callable[..., list]
) -> None:
    server = start_server(
        uri="tcp://127.0.0.1:0", model="prefork", workers=WORKERS, handler="echo", reload="version"
    )
    first = _pool(server)
    sent: list[int] = []
    before_usr1: set[int] = set()

    def control(replies: int) -> None:
        if replies >= 80 and not sent:
            server.signal(signal.SIGHUP)
            sent.append(signal.SIGHUP)
        if replies >= 180 and len(sent) == 1:
            before_usr1.update(children_of(server.pid))
            server.signal(signal.SIGUSR1)
            sent.append(signal.SIGUSR1)

    clients = start_clients(server.address, 3, 334)
    replies = collect_replies(server.pid, clients, control)

    assert sent == [signal.SIGHUP, signal.SIGUSR1], "the signals were sent mid-stream"
    for number, lines in enumerate(replies):
        assert [line.split()[2] for line in lines] == [f"c{number}-{i}" for i in range(334)]
    answered = [line.split() for lines in replies for line in lines]
    assert len(answered) == 1002
    by_version = {
        version: {int(pid) for pid, seen, _ in answered if seen == version}
        for version in ("v1", "v2")
    }
    assert by_version["v1"] and by_version["v1"] <= first, "before HUP, the first children"
    assert by_version["v2"] and not by_version["v2"] & first, "after HUP, new children reloaded"
    last = _replaced(server, first | before_usr1)  # USR1 replaced those HUP started too
    assert "Z" not in children_of(server.pid).values()

    server.signal(signal.SIGTERM)
    status, log = server.finish(timeout=15)
    assert status == 0, log
    assert "SIGHUP: reload" in log and "SIGUSR1: restart" in log
    assert "WARNING" not in log and "Traceback" not in log, log
    assert not any(os.path.exists(f"/proc/{pid}") for pid in last), "no child is left"


def test_a_child_that_dies_is_logged_and_replaced(
    start_server: Callable[..., ServerProcess],
) -> None:
    server = start_server(
        uri="tcp://127.0.0.1:0", model="prefork", workers=WORKERS, handler="crash"
    )
    first = _pool(server)
    with pytest.raises(Exception, match="closed|reset|lost"):
        request(server.address, "die")
    wait_for(
        lambda: len(first & set(children_of(server.pid))) == WORKERS - 1,
        10,
        "the dead child is reaped",
    )
    _pool(server)
    assert request(server.address, "hello").endswith("hello")
    server.signal(signal.SIGTERM)
    status, log = server.finish(timeout=15)
    assert status == 0
    assert "exited with status 3" in log


def test_the_signal_map_is_the_callers(start_server: Callable[..., ServerProcess]) -> None:
    server = start_server(
        uri="tcp://127.0.0.1:0",
        model="prefork",
        workers=WORKERS,
        handler="echo",
        signals={"TERM": "restart", "USR2": "stop"},
    )
    first = _pool(server)
    server.signal(signal.SIGTERM)  # a restart now: the server goes on with new children
    new = _replaced(server, first)
    assert int(request(server.address, "still there").split()[0]) in new
    server.signal(signal.SIGUSR2)
    status, log = server.finish(timeout=15)
    assert status == 0, log
    assert "SIGTERM: restart" in log and "SIGUSR2: stop" in log
