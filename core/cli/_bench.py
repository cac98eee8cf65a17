"""``anyipc bench URI [URI ...]``: latency and throughput with the peer in another process.

For each URI (or scheme, standing for its transport's test address) and
each message size (``--sizes``, default 64 B, 4 KiB, 64 KiB and 1 MiB):
the ping-pong round trip (median and 99th percentile) and the one-way
throughput (messages/s and MB/s), against a peer process started afresh
(see :mod:`anyipc.cli._bench_measure` for how each is measured, and
:mod:`anyipc.cli._bench_anyipc` for how a transport is opened).  A size
above a transport's largest message is skipped.

``--baseline`` adds, in the same run and on the same framing, the raw
Python equivalent of each transport measured, the alternatives a user
might pick (``multiprocessing``, ZeroMQ) and ``memcpy`` (one copy of each
size in this process, the ceiling of any transfer through memory), with a
table of ratios.  ``--batch N`` and ``--zero-copy`` use the calls that
shared memory has for throughput (batches, views); every transport that
lacks them is measured one message, and one copy, at a time.
Progress goes to stderr; the table to stdout; ``--json FILE`` (``-``:
stdout, instead of the table) and ``--plot FILE`` write the results too.

The measuring machinery is imported when the command runs, not when the
command line is parsed.  Exit status: 0; 1 when any point failed (each failure is a line on stderr
as it happens, and the run goes on); 2 for a usage error (a bad size, an
unknown scheme, a transport that no peer process can use, ``--plot``
without matplotlib).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import attrs

import anyipc
from anyipc.cli._bench_measure import Settings
from anyipc.cli._output import PROG, count, fail, seconds

if TYPE_CHECKING:
    from anyipc.cli._bench_report import Row
    from anyipc.cli._bench_session import Contender, Point

__all__ = ["add_parsers", "message_sizes", "run"]

DEFAULT_SIZES = (64, 4 << 10, 64 << 10, 1 << 20)
MAX_SIZE = 256 << 20
UNITS = {"": 1, "b": 1, "k": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mib": 1 << 20}
NORMAL = Settings()
QUICK = Settings(seconds=0.02, repeat=2)


def message_sizes(text: str) -> tuple[int, ...]:
    """An argparse type: sizes such as ``64,4K,64K,1M`` (K and M are binary), sorted."""
    sizes = set()
    for item in text.split(","):
        match = re.fullmatch(r"\s*(\d+)\s*([a-zA-Z]*)\s*", item)
        unit = match and UNITS.get(match.group(2).lower())
        if match is None or unit is None:
            raise argparse.ArgumentTypeError(
                f"{item.strip()!r} is not a size (a whole number, optionally with K or M)"
            )
        size = int(match.group(1)) * unit
        if not 1 <= size <= MAX_SIZE:
            raise argparse.ArgumentTypeError(f"{item.strip()!r}: sizes go from 1 byte to 256M")
        sizes.add(size)
    return tuple(sorted(sizes))


def _timeout(text: str) -> float:
    value = seconds(text)
    if not value:
        raise argparse.ArgumentTypeError("the timeout must be more than 0 seconds")
    return value


def add_parsers(commands: Any) -> None:
    """Add the ``bench`` sub-command to ``commands``."""
    parser = commands.add_parser(
        "bench",
        help="measure latency and throughput with a peer in another process",
        description="Measure ping-pong latency (median, p99) and one-way throughput "
        "(messages/s, MB/s) of each URI, with the peer in a fresh interpreter, for each "
        "message size. A URI may be a bare scheme (tcp, unix, framed+tcp): its test address.",
    )
    parser.add_argument("targets", metavar="URI", nargs="+")
    parser.add_argument(
        "--sizes",
        type=message_sizes,
        default=DEFAULT_SIZES,
        metavar="LIST",
        help="message sizes, K and M binary (64,4K,64K,1M)",
    )
    parser.add_argument(
        "--seconds",
        type=seconds,
        metavar="SECONDS",
        help=f"the timed part of each measurement ({NORMAL.seconds:g}; "
        f"{QUICK.seconds:g} with --quick)",
    )
    parser.add_argument(
        "--repeat",
        type=count,
        metavar="N",
        help=f"repetitions of each measurement ({NORMAL.repeat}; {QUICK.repeat} with --quick)",
    )
    parser.add_argument(
        "--timeout",
        type=_timeout,
        default=NORMAL.timeout,
        metavar="SECONDS",
        help=f"bound on each blocking call ({NORMAL.timeout:g})",
    )
    parser.add_argument(
        "--batch",
        type=count,
        default=NORMAL.batch,
        metavar="N",
        help="throughput: send N messages per call and receive up to N, where a transport "
        "has calls for that (shared memory); others go one at a time (1)",
    )
    parser.add_argument(
        "--zero-copy",
        action="store_true",
        help="receive views of the messages where they lie instead of copies, where a "
        "transport can (shared memory)",
    )
    parser.add_argument("--quick", action="store_true", help="a fast smoke run")
    parser.add_argument(
        "--baseline",
        action="store_true",
        help="also measure the raw Python equivalents and the alternatives "
        "(multiprocessing, pyzmq), with ratios",
    )
    parser.add_argument("--json", metavar="FILE", help="write the results as JSON ('-': stdout)")
    parser.add_argument(
        "--plot", metavar="FILE", help="draw latency and throughput against size (.png, .svg)"
    )
    parser.set_defaults(run=run)


def _settings(args: argparse.Namespace) -> Settings:
    base = QUICK if args.quick else NORMAL
    return Settings(
        seconds=base.seconds if args.seconds is None else args.seconds,
        repeat=base.repeat if args.repeat is None else args.repeat,
        timeout=args.timeout,
        batch=args.batch,
        zero_copy=args.zero_copy,
    )


def _contenders(targets: Sequence[str], baseline: bool) -> list[Contender]:
    """The anyipc contenders (each followed by its raw equivalent), then the alternatives."""
    from anyipc.cli._bench_anyipc import contender, target_uri
    from anyipc.cli._bench_baseline import alternatives, raw_equivalent

    found: list[Contender] = []
    names: set[str] = set()
    raw_done: set[str | None] = set()
    for target in targets:
        uri = target_uri(target)
        measured = contender(uri)
        if measured.name in names:  # the same transport twice: tell them apart by URI
            measured = attrs.evolve(measured, name=uri)
        names.add(measured.name)
        found.append(measured)
        raw = raw_equivalent(measured) if baseline else None
        if raw is not None and raw.scheme not in raw_done:
            raw_done.add(raw.scheme)
            found.append(raw)
    return found + (alternatives() if baseline else [])


def _measure(
    contenders: Sequence[Contender], sizes: Sequence[int], settings: Settings, memcpy: bool
) -> list[Row]:
    """Every point, size by size: a transport and its baselines are measured back to back.

    So a drift of the machine's load between them stays small.  Each
    contender keeps its connection (and peer process) from one size to the
    next; all are closed at the end.  With ``memcpy``, each size starts
    with the copy rate of this process (the last row).
    """
    from anyipc.cli._bench_memcpy import MEMCPY, measure_memcpy
    from anyipc.cli._bench_progress import progress
    from anyipc.cli._bench_report import Row, size_text
    from anyipc.cli._bench_session import Session

    points: list[list[Point]] = [[] for _ in contenders]
    copies: list[Point] = []
    total = (len(contenders) + memcpy) * len(sizes)
    with contextlib.ExitStack() as stack, progress(total) as shown:
        sessions = [stack.enter_context(Session(measured, settings)) for measured in contenders]
        for size in sizes:
            if memcpy:
                what = f"memcpy {size_text(size)}"
                shown.begin(what)
                copies.append(measure_memcpy(size, settings))
                shown.end(what, copies[-1])
            for session, found in zip(sessions, points, strict=True):
                what = f"{session.contender.name} {size_text(size)}"
                shown.begin(what)
                point = session.measure(size)
                shown.end(what, point)
                found.append(point)
    rows = [Row(measured, tuple(found)) for measured, found in zip(contenders, points, strict=True)]
    return rows + ([Row(MEMCPY, tuple(copies))] if memcpy else [])


def run(args: argparse.Namespace) -> int:
    """Measure, then print and write the results; see the module docstring for the status."""
    from anyipc.cli import _bench_report
    from anyipc.cli._bench_anyipc import Unmeasurable

    if args.plot:
        from anyipc.cli._bench_plot import unusable

        problem = unusable(args.plot)
        if problem:
            return fail(problem, status=2)
    try:
        contenders = _contenders(args.targets, args.baseline)
    except (anyipc.InvalidAddress, Unmeasurable) as exc:
        return fail(str(exc), status=2)
    settings = _settings(args)
    rows = _measure(contenders, args.sizes, settings, memcpy=args.baseline)
    if args.json != "-":
        _bench_report.render(rows, sys.stdout, settings)
    if args.json:
        text = json.dumps(_bench_report.document(rows, settings, args.sizes), indent=2)
        if args.json == "-":
            print(text)
        else:
            with open(args.json, "w", encoding="utf-8") as file:
                file.write(text + "\n")
    if args.plot:
        from anyipc.cli._bench_plot import plot

        title = f"{PROG} bench: medians of {settings.repeat} repetitions"
        note = _bench_report.how(settings)
        plot(rows, args.plot, f"{title}; {note}" if note else title)
    return 1 if _bench_report.failed(rows) else 0
