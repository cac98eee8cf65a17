"""The results of ``anyipc bench``: the tables on the terminal, the ratios, the JSON document.

The main table has one line per contender and size: the median and 99th
percentile round trip, and the throughput in messages/s and MB/s (10^6
bytes per second).  A size that was not measured shows a dash (the reason
is in the JSON); a point that failed shows ``error``.  With baselines, a
second table gives each anyipc transport's ratios to its raw equivalent
and to each alternative, as ``latency / throughput``: anyipc's median
round trip over theirs (above 1: anyipc is slower) and anyipc's messages/s
over theirs (below 1: anyipc is slower); against ``memcpy`` only the
throughput (the share of a plain copy in one process).  When the run used
``--batch`` or ``--zero-copy``, a line above the tables says so.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Sequence
from typing import Any, TextIO

import attrs

import anyipc
from anyipc.cli._bench_measure import Settings
from anyipc.cli._bench_session import Contender, Group, Point
from anyipc.cli._output import format_table

__all__ = [
    "Ratio",
    "Row",
    "document",
    "failed",
    "how",
    "ratios",
    "render",
    "size_text",
]

HEADERS = ("transport", "size", "latency median", "latency p99", "messages/s", "MB/s")
LEGEND = (
    "ratios, latency / throughput: anyipc's over theirs "
    "(latency above 1 or throughput below 1: anyipc is slower)"
)


@attrs.frozen
class Row:
    """One contender and its points, one per size."""

    contender: Contender
    points: tuple[Point, ...]

    def at(self, size: int) -> Point | None:
        """The point of ``size``, if measured."""
        return next((point for point in self.points if point.size == size), None)


@attrs.frozen
class Ratio:
    """An anyipc transport against another contender at one size (None: not both measured).

    ``latency`` is anyipc's median round trip over theirs, ``throughput``
    anyipc's messages/s over theirs.
    """

    transport: str
    size: int
    against: str
    latency: float | None
    throughput: float | None


def failed(rows: Sequence[Row]) -> bool:
    """True when any point failed."""
    return any(point.error for row in rows for point in row.points)


def size_text(size: int) -> str:
    """``64 B``, ``4 KiB``, ``1 MiB``."""
    for unit, factor in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size % factor == 0:
            return f"{size // factor} {unit}"
    return f"{size} B"


def _time(ns: float) -> str:
    us = ns / 1000
    if us < 100:
        return f"{us:.1f} us"
    if us < 10_000:
        return f"{us:.0f} us"
    return f"{us / 1000:.1f} ms"


def _rate(per_s: float) -> str:
    if per_s >= 1e6:
        return f"{per_s / 1e6:.2f} M"
    if per_s >= 1e3:
        return f"{per_s / 1e3:.1f} k"
    return f"{per_s:.0f}"


def _megabytes(per_s: float) -> str:
    return f"{per_s / 1e6:.1f}" if per_s >= 1e7 else f"{per_s / 1e6:.2f}"


def _cells(point: Point, dash: str) -> list[str]:
    missing = "error" if point.error else dash
    latency, throughput = point.latency, point.throughput
    return [
        _time(latency.median_ns) if latency else missing,
        _time(latency.p99_ns) if latency else missing,
        _rate(throughput.messages_per_s) if throughput else missing,
        _megabytes(throughput.bytes_per_s) if throughput else missing,
    ]


def _main_rows(rows: Sequence[Row], dash: str) -> list[list[str]]:
    return [
        [row.contender.name, size_text(point.size), *_cells(point, dash)]
        for row in rows
        for point in row.points
    ]


def _median(point: Point) -> float | None:
    return None if point.latency is None else point.latency.median_ns


def _messages(point: Point) -> float | None:
    return None if point.throughput is None else point.throughput.messages_per_s


def _ratio(mine: float | None, theirs: float | None) -> float | None:
    return None if mine is None or not theirs else mine / theirs


def _compare(transport: Row, other: Row, against: str) -> list[Ratio]:
    found = []
    for point in transport.points:
        theirs = other.at(point.size)
        if theirs is None:
            continue
        latency = _ratio(_median(point), _median(theirs))
        throughput = _ratio(_messages(point), _messages(theirs))
        if latency is not None or throughput is not None:
            found.append(Ratio(transport.contender.name, point.size, against, latency, throughput))
    return found


def ratios(rows: Sequence[Row]) -> list[Ratio]:
    """Each anyipc transport against its raw equivalent (``against="raw"``) and each alternative."""
    found: list[Ratio] = []
    others = (Group.ALTERNATIVE, Group.REFERENCE)
    alternatives = [row for row in rows if row.contender.group in others]
    for row in rows:
        contender = row.contender
        if contender.group is not Group.ANYIPC:
            continue
        raw = next(
            (
                r
                for r in rows
                if r.contender.group is Group.RAW and r.contender.scheme == contender.scheme
            ),
            None,
        )
        if raw is not None:
            found += _compare(row, raw, "raw")
        for alternative in alternatives:
            found += _compare(row, alternative, alternative.contender.name)
    return found


def _ratio_rows(rows: Sequence[Row], dash: str) -> tuple[list[str], list[list[str]]]:
    """The ratio table: headers, then one line per anyipc transport and size."""
    found = ratios(rows)
    columns = list(dict.fromkeys(ratio.against for ratio in found))
    cells: dict[tuple[str, int], dict[str, str]] = {}
    for ratio in found:
        parts = [
            dash if value is None else f"{value:.2f}" for value in (ratio.latency, ratio.throughput)
        ]
        cells.setdefault((ratio.transport, ratio.size), {})[ratio.against] = " / ".join(parts)
    table = [
        [transport, size_text(size), *(by.get(column, dash) for column in columns)]
        for (transport, size), by in cells.items()
    ]
    return ["transport", "size", *(f"vs {column}" for column in columns)], table


def _dash(file: TextIO) -> str:
    """The dash for a cell that was not measured, in what ``file`` can encode."""
    try:
        "\u2013".encode(file.encoding or "ascii")
    except (UnicodeEncodeError, LookupError):
        return "-"
    return "\u2013"


def how(settings: Settings) -> str | None:
    """What a run did beyond one message and one copy at a time, or None."""
    parts = []
    if settings.batch > 1:
        parts.append(f"throughput in batches of up to {settings.batch} messages")
    if settings.zero_copy:
        parts.append("zero-copy receive")
    if not parts:
        return None
    return "measured with " + " and ".join(parts) + " where a transport can (shared memory)"


def render(rows: Sequence[Row], file: TextIO, settings: Settings) -> None:
    """Print the tables to ``file``: with rich on a terminal when installed, else plain text."""
    note = how(settings)
    if note:
        print(note, file=file)
    dash = _dash(file)
    main = _main_rows(rows, dash)
    ratio_headers, ratio_rows = _ratio_rows(rows, dash)
    if file.isatty() and _render_rich(file, main, ratio_headers, ratio_rows):
        return
    print(format_table(HEADERS, main), file=file)
    if ratio_rows:
        print(f"\n{LEGEND}", file=file)
        print(format_table(ratio_headers, ratio_rows), file=file)


def _render_rich(
    file: TextIO, main: list[list[str]], ratio_headers: list[str], ratio_rows: list[list[str]]
) -> bool:
    try:
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text
    except ImportError:
        return False
    console = Console(file=file)
    table = Table(*HEADERS, title="anyipc bench")
    for line in main:
        table.add_row(*map(Text, line))
    console.print(table)
    if ratio_rows:
        ratio_table = Table(*ratio_headers, title="ratios", caption=LEGEND)
        for line in ratio_rows:
            ratio_table.add_row(*map(Text, line))
        console.print(ratio_table)
    return True


def _point(point: Point) -> dict[str, Any]:
    latency, throughput = point.latency, point.throughput
    return {
        "size": point.size,
        "latency": None
        if latency is None
        else {
            "median_us": latency.median_ns / 1000,
            "p99_us": latency.p99_ns / 1000,
            "samples": latency.samples,
            "repetition_medians_us": [value / 1000 for value in latency.repetition_medians_ns],
        },
        "throughput": None
        if throughput is None
        else {
            "messages_per_s": throughput.messages_per_s,
            "mb_per_s": throughput.bytes_per_s / 1e6,
            "messages_per_repetition": throughput.messages,
            "repetition_messages_per_s": list(throughput.repetition_rates),
            "lost": throughput.lost,
        },
        "error": point.error,
        "skipped": point.skipped,
    }


def document(rows: Sequence[Row], settings: Settings, sizes: Sequence[int]) -> dict[str, Any]:
    """Everything measured, as JSON-ready data."""
    return {
        "anyipc": anyipc.__version__,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "settings": {
            "sizes": list(sizes),
            "seconds": settings.seconds,
            "repeat": settings.repeat,
            "timeout": settings.timeout,
            "batch": settings.batch,
            "zero_copy": settings.zero_copy,
        },
        "units": {
            "latency": "microseconds per round trip",
            "throughput": "messages per second; MB is 10^6 bytes",
            "ratios": "anyipc over the other: latency medians, throughput messages/s",
        },
        "results": [
            {
                "name": row.contender.name,
                "group": row.contender.group.value,
                "detail": row.contender.detail,
                "scheme": row.contender.scheme,
                "max_message_size": row.contender.max_message_size,
                "points": [_point(point) for point in row.points],
            }
            for row in rows
        ],
        "ratios": [attrs.asdict(ratio) for ratio in ratios(rows)],
    }
