"""How the command line writes: error lines, plain-text tables, argument types."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Iterable, Sequence

__all__ = ["PROG", "count", "fail", "format_table", "seconds"]

PROG = "anyipc"


def fail(message: str, status: int = 1) -> int:
    """Print ``anyipc: error: message`` on stderr as one line and return ``status``.

    Line breaks inside ``message`` are folded into spaces.
    """
    print(f"{PROG}: error: {' '.join(message.split())}", file=sys.stderr)
    return status


def format_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """``headers`` then ``rows``, columns left-aligned two spaces apart, no trailing spaces."""
    table = [list(headers), *(list(row) for row in rows)]
    widths = [max(len(row[column]) for row in table) for column in range(len(headers))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in table
    )


def seconds(text: str) -> float:
    """An argparse type: a finite, non-negative number of seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: seconds must be finite and >= 0")
    return value


def count(text: str) -> int:
    """An argparse type: a positive whole number."""
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: must be at least 1")
    return value
