"""What is measured (a :class:`Contender`) and a connection to measure it (a :class:`Session`).

A contender is an anyipc transport, its raw Python equivalent, a
mechanism a user might pick instead, or a reference that is measured in
this process alone (``memcpy``, see :mod:`anyipc.cli._bench_memcpy`).
Its ``prepare`` opens this side's objects (registering their cleanup on
the given ``ExitStack``) and returns a :class:`Plan`: how to start the
peer process, what this process hands it (closed here once the peer has
started), and how to complete this side once the peer said it is ready.

A session opens the connection on its first point and keeps it for the
next sizes.  A point that fails (an error, a timeout, a peer that died)
is reported as that point's error and the connection is torn down; the
next point opens a fresh one.  Each point also has a watchdog: when it
runs past its limit, the peer is told to stop and the plan's ``abort``
runs, which wakes the few raw calls that have no timeout of their own.
"""

from __future__ import annotations

import contextlib
import enum
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any

import attrs

from anyipc.cli._bench_link import Link, describe
from anyipc.cli._bench_measure import (
    Latency,
    Settings,
    Throughput,
    measure_latency,
    measure_throughput,
)
from anyipc.cli._bench_process import PeerProcess

__all__ = ["Contender", "Group", "Plan", "Point", "Session", "Stack"]

START_S = 20.0  #: how long a fresh interpreter may take to start and report ready
#: where a contender's ``prepare`` registers the cleanup of what it opened
Stack = contextlib.ExitStack[bool | None]


class Group(enum.Enum):
    """Where a contender comes from."""

    ANYIPC = "anyipc"  #: an anyipc transport (a URI)
    RAW = "raw"  #: the plain Python calls that the transport wraps
    ALTERNATIVE = "alternative"  #: another library a user might pick
    REFERENCE = "reference"  #: not a transport: what a transfer is measured against (memcpy)


@attrs.frozen
class Plan:
    """How one connection is completed: the peer to start and this side's last steps."""

    start: Callable[[], PeerProcess]
    #: this side's part once the peer's ready answer (given) came
    finish: Callable[[dict[str, Any]], Link]
    #: closes this process's copies of what the peer inherits, run once the peer started
    handed: tuple[Callable[[], None], ...] = ()
    #: wakes this side's blocking calls that have no timeout (run by the watchdog)
    abort: Callable[[], None] | None = None


@attrs.frozen
class Contender:
    """Something to measure: one row of the table."""

    name: str
    group: Group
    detail: str  #: the URI, or what the mechanism is
    #: opens this side's objects, their cleanup on the stack; the second argument is the timeout
    prepare: Callable[[Stack, float], Plan]
    max_message_size: int | None = None
    lossy: bool = False  #: messages may be lost (a throughput run ends after a silence)
    #: the transport's scheme, beneath any layers (a raw contender: the one it is the equivalent of)
    scheme: str | None = None

    def size_problem(self, size: int) -> str | None:
        """Why messages of ``size`` bytes cannot be measured here, or None."""
        limit = self.max_message_size
        if limit is not None and size > limit:
            return f"{size} bytes exceed the largest message ({limit} bytes)"
        return None


@attrs.frozen
class Point:
    """The results for one contender and one size."""

    size: int
    latency: Latency | None = None
    throughput: Throughput | None = None
    error: str | None = None
    skipped: str | None = None  #: why this size was not measured


class Session:
    """A contender's connection, opened on first use and reopened after a failure."""

    def __init__(self, contender: Contender, settings: Settings) -> None:
        self.contender = contender
        self._settings = settings
        self._stack: Stack | None = None
        self._opened: tuple[Link, PeerProcess] | None = None
        self._aborts: list[Callable[[], None]] = []

    def _limit(self) -> float:
        """The watchdog's limit for one point, opening included."""
        settings = self._settings
        return START_S + 2 * settings.timeout + 10 * settings.seconds

    def measure(self, size: int) -> Point:
        """Latency and throughput for ``size``; the error instead when something fails."""
        problem = self.contender.size_problem(size)
        if problem:
            return Point(size, skipped=problem)
        limit = self._limit()
        fired = threading.Event()
        watchdog = threading.Timer(limit, self._abort, (fired,))
        watchdog.daemon = True
        watchdog.start()
        latency = throughput = None
        try:
            link, peer = self._open()
            latency = measure_latency(link, peer, size, self._settings)
            throughput = measure_throughput(
                link, peer, size, self._settings, lossy=self.contender.lossy
            )
        except Exception as exc:
            error = describe(exc)
            if fired.is_set():
                error = f"stopped after {limit:g} s (the peer was stopped): {error}"
            try:
                self.close()
            except Exception as cleanup:  # said with the point's error, the run goes on
                error = f"{error}; then, cleaning up: {describe(cleanup)}"
            return Point(size, latency, throughput, error)
        finally:
            watchdog.cancel()
            watchdog.join()  # no thread outlives the point (signal://self refuses stray ones)
        if fired.is_set():  # it fired just as the point ended: the connection is spoilt
            self.close()
        return Point(size, latency, throughput)

    def _abort(self, fired: threading.Event) -> None:
        fired.set()
        for abort in list(self._aborts):
            with contextlib.suppress(Exception):
                abort()

    def _open(self) -> tuple[Link, PeerProcess]:
        if self._opened is not None:
            return self._opened
        timeout = self._settings.timeout
        self._stack = stack = contextlib.ExitStack()
        plan = self.contender.prepare(stack, timeout)
        peer = plan.start()
        stack.callback(peer.close)
        self._aborts.append(peer.terminate)
        if plan.abort is not None:
            self._aborts.append(plan.abort)
        for close in plan.handed:
            close()
        link = plan.finish(peer.answer(timeout + START_S))
        stack.callback(link.close)
        self._opened = link, peer
        return self._opened

    def close(self) -> None:
        """Close the connection: this side, then the peer, then what this side created."""
        stack, self._stack, self._opened = self._stack, None, None
        self._aborts.clear()
        if stack is not None:
            stack.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
