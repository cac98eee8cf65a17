"""``--plot FILE``: latency and throughput against message size, log-log, one line per contender.

Two panels: the median round trip (microseconds) and the throughput
(MB/s, 10^6 bytes per second), each against the message size.  anyipc
transports are solid lines, raw equivalents dashed in the colour of the
transport they mirror, alternatives dotted, ``memcpy`` (throughput only)
dash-dotted in grey.
The format follows the file's suffix (``.png``, ``.svg``, or any other
that matplotlib writes).  matplotlib is optional and imported only here,
when a plot is asked for; it draws on a bare ``Figure`` (no pyplot, no
display needed).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence

from anyipc.cli._bench_report import Row, size_text
from anyipc.cli._bench_session import Group

__all__ = ["plot", "unusable"]

INSTALL_HINT = "pip install matplotlib"
STYLES = {Group.ANYIPC: "-", Group.RAW: "--", Group.ALTERNATIVE: ":", Group.REFERENCE: "-."}
GREY = (0.5, 0.5, 0.5, 1.0)


def unusable(path: str) -> str | None:
    """Why a plot cannot be written to ``path`` (matplotlib missing, unknown format), or None."""
    if importlib.util.find_spec("matplotlib") is None:
        return f"--plot needs matplotlib, which is not installed: {INSTALL_HINT}"
    from matplotlib.backend_bases import FigureCanvasBase

    suffix = os.path.splitext(path)[1].lstrip(".").lower()
    formats = FigureCanvasBase.get_supported_filetypes()
    if suffix not in formats:
        return f"--plot {path}: name a file ending in one of .{', .'.join(sorted(formats))}"
    return None


def _colors(rows: Sequence[Row]) -> dict[str, tuple[float, float, float, float]]:
    """A colour per line; a raw equivalent takes the colour of the transport it mirrors."""
    from matplotlib import colormaps

    palette = colormaps["tab10"]
    colors: dict[str, tuple[float, float, float, float]] = {}
    by_scheme: dict[str | None, tuple[float, float, float, float]] = {}
    for row in rows:
        contender = row.contender
        if contender.group is Group.RAW and contender.scheme in by_scheme:
            colors[contender.name] = by_scheme[contender.scheme]
            continue
        if contender.group is Group.REFERENCE:
            colors[contender.name] = GREY
            continue
        colors[contender.name] = color = palette(len(set(colors.values())) % palette.N)
        if contender.group is Group.ANYIPC:
            by_scheme.setdefault(contender.scheme, color)
    return colors


def plot(rows: Sequence[Row], path: str, title: str) -> None:
    """Draw both panels for ``rows`` and write them to ``path``."""
    from matplotlib.artist import Artist
    from matplotlib.figure import Figure

    figure = Figure(figsize=(12, 5), layout="constrained")
    latency_axes, throughput_axes = figure.subplots(1, 2)
    sizes = sorted({point.size for row in rows for point in row.points})
    colors = _colors(rows)
    for row in rows:
        style = STYLES[row.contender.group]
        latency = [(p.size, p.latency.median_ns / 1000) for p in row.points if p.latency]
        throughput = [(p.size, p.throughput.bytes_per_s / 1e6) for p in row.points if p.throughput]
        for axes, points in ((latency_axes, latency), (throughput_axes, throughput)):
            if points:
                xs, ys = zip(*points, strict=True)
                axes.plot(
                    xs,
                    ys,
                    style,
                    marker="o",
                    color=colors[row.contender.name],
                    label=row.contender.name,
                )
    for axes, label in (
        (latency_axes, "median round trip (us)"),
        (throughput_axes, "throughput (MB/s)"),
    ):
        axes.set_xscale("log", base=2)
        axes.set_yscale("log")
        axes.set_xticks(sizes, [size_text(size) for size in sizes])
        axes.set_xlabel("message size")
        axes.set_ylabel(label)
        axes.grid(True, which="both", alpha=0.3)
    latency_axes.set_title("latency (lower is better)")
    throughput_axes.set_title("throughput (higher is better)")
    legend: dict[str, Artist] = {}
    for axes in (latency_axes, throughput_axes):
        for handle, label in zip(*axes.get_legend_handles_labels(), strict=True):
            legend.setdefault(label, handle)
    if legend:
        figure.legend(list(legend.values()), list(legend), loc="outside right upper")
    figure.suptitle(title)
    figure.savefig(path, dpi=120)
