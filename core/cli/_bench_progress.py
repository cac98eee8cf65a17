"""The progress of ``anyipc bench`` on stderr: a rich progress bar on a terminal, lines otherwise.

Either way, a point that failed is one line, ``anyipc: error: NAME SIZE:
...``, and the run goes on.
"""

from __future__ import annotations

import sys
from types import TracebackType
from typing import Any

from anyipc.cli._bench_session import Point
from anyipc.cli._output import PROG

__all__ = ["Progress", "progress"]


class Progress:
    """Plain progress: one line per point on stderr."""

    def __init__(self, total: int) -> None:
        self._total = total
        self._done = 0

    def begin(self, what: str) -> None:
        """A point starts (``what``: contender and size)."""

    def end(self, what: str, point: Point) -> None:
        """A point ended."""
        self._done += 1
        if point.error:
            self.say(f"{PROG}: error: {what}: {point.error}")
        else:
            self.say(f"{PROG}: bench [{self._done}/{self._total}] {what}: {summary(point)}")

    def say(self, line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None


def summary(point: Point) -> str:
    """A few words on a point that did not fail."""
    if point.skipped:
        return f"skipped: {point.skipped}"
    parts = []
    if point.latency is not None:
        parts.append(f"{point.latency.median_ns / 1000:.1f} us median round trip")
    if point.throughput is not None:
        parts.append(f"{point.throughput.messages_per_s:.0f} messages/s")
    return ", ".join(parts)


class _RichProgress(Progress):
    """A rich progress bar on stderr; error lines are printed above it."""

    def __init__(self, total: int, progress: Any) -> None:
        super().__init__(total)
        self._progress = progress
        self._task = progress.add_task("starting", total=total)

    def begin(self, what: str) -> None:
        self._progress.update(self._task, description=what)

    def end(self, what: str, point: Point) -> None:
        self._progress.advance(self._task)
        if point.error:
            self.say(f"{PROG}: error: {what}: {point.error}")

    def say(self, line: str) -> None:
        self._progress.console.print(line, markup=False, highlight=False, soft_wrap=True)

    def __enter__(self) -> Progress:
        self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._progress.stop()


def progress(total: int) -> Progress:
    """The progress display for ``total`` points: rich on a terminal when installed."""
    if not sys.stderr.isatty():
        return Progress(total)
    try:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )
        from rich.progress import (
            Progress as RichBar,
        )
    except ImportError:
        return Progress(total)
    bar = RichBar(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    return _RichProgress(total, bar)
