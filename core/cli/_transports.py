"""``anyipc transports``: the taxonomy of every installed transport, the layers, the problems.

One report (:func:`collect`) is rendered three ways: ``--json``; a rich
table when ``rich`` is installed and stdout is a terminal; plain aligned
text otherwise.  Plugins that failed to load are listed with their
distribution; they never stop the command.
"""

from __future__ import annotations

import argparse
import enum
import json
import sys
from typing import Any, TextIO

import attrs

from anyipc._api import TransportInfo
from anyipc._api import transports as all_transports
from anyipc._options import Option
from anyipc._registry import registry
from anyipc.cli._output import format_table

__all__ = ["add_parsers", "collect", "render_plain", "render_rich", "run"]

#: (header, key in the report's capabilities) for the capability columns
CAPABILITY_COLUMNS = (
    ("direction", "direction"),
    ("boundaries", "boundaries"),
    ("connection", "connection"),
    ("lossless", "lossless"),
    ("ordered", "ordered"),
    ("intact", "intact"),
    ("dup-free", "duplicate_free"),
    ("scope", "scope"),
    ("addressing", "addressing"),
    ("max size", "max_message_size"),
)
HEADERS = (
    "scheme",
    *(header for header, _ in CAPABILITY_COLUMNS),
    "verbs",
    "distribution",
    "available",
)
LAYER_HEADERS = ("layer", "description", "distribution")


def add_parsers(commands: Any) -> None:
    """Add the ``transports`` sub-command to ``commands`` (an argparse sub-parsers action)."""
    parser = commands.add_parser(
        "transports",
        help="list installed transports, layers and plugin problems",
        description="The taxonomy of every installed transport (capabilities of its default "
        "address), the layers, and the plugins that could not be loaded.",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Print the report; exit status 0 (plugin problems are part of the report)."""
    report = collect()
    if args.json:
        print(json.dumps(report, indent=2))
    elif not (sys.stdout.isatty() and render_rich(report, sys.stdout)):
        print(render_plain(report))
    return 0


def collect() -> dict[str, list[dict[str, Any]]]:
    """The report as JSON-ready data: ``transports``, ``layers`` and ``problems``.

    A transport's ``capabilities`` are those of its default (test) address,
    with enums as their string values; ``unavailable`` says why a transport
    cannot be used here (``null`` when it can).  A transport whose record
    fails when asked (a plugin bug) is listed under ``problems`` instead.
    """
    reg = registry()
    transports = [_transport(info) for info in all_transports().values()]
    problems = [
        {"plugin": problem.plugin, "distribution": problem.distribution, "message": problem.message}
        for problem in reg.problems
    ]
    layers = [
        {
            "name": name,
            "description": provided.spec.description,
            "options": [_option(option) for option in provided.spec.options],
            "plugin": provided.plugin,
            "distribution": provided.distribution,
        }
        for name, provided in reg.layers().items()
    ]
    return {"transports": transports, "layers": layers, "problems": problems}


def _transport(info: TransportInfo) -> dict[str, Any]:
    return {
        "scheme": info.scheme,
        "description": info.description,
        "capabilities": attrs.asdict(info.capabilities, value_serializer=_plain_value),
        "verbs": list(info.verbs),
        "options": [_option(option) for option in info.options],
        "plugin": info.plugin,
        "distribution": info.distribution,
        "available": info.available,
        "unavailable": info.unavailable,
    }


def _plain_value(instance: object, attribute: object, value: object) -> object:
    return value.value if isinstance(value, enum.Enum) else value


def _option(option: Option) -> dict[str, Any]:
    return {
        "name": option.name,
        "kind": option.kind.__name__,
        "default": option.default,
        "doc": option.doc,
        "choices": list(option.choices),
        "minimum": option.minimum,
        "maximum": option.maximum,
    }


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _rows(report: dict[str, list[dict[str, Any]]]) -> list[list[str]]:
    return [
        [
            transport["scheme"],
            *(_cell(transport["capabilities"][key]) for _, key in CAPABILITY_COLUMNS),
            ",".join(transport["verbs"]),
            transport["distribution"],
            "yes" if transport["available"] else f"no: {transport['unavailable']}",
        ]
        for transport in report["transports"]
    ]


def _layer_rows(report: dict[str, list[dict[str, Any]]]) -> list[list[str]]:
    return [
        [f"{layer['name']}+", layer["description"], layer["distribution"]]
        for layer in report["layers"]
    ]


def _problem_lines(report: dict[str, list[dict[str, Any]]]) -> list[str]:
    return [
        f"plugin {problem['plugin']!r} from {problem['distribution']}: {problem['message']}"
        for problem in report["problems"]
    ]


def render_plain(report: dict[str, list[dict[str, Any]]]) -> str:
    """The report as aligned plain text: transports, then layers, then problems (if any)."""
    parts = [format_table(HEADERS, _rows(report)) if report["transports"] else "no transports"]
    if report["layers"]:
        parts.append(format_table(LAYER_HEADERS, _layer_rows(report)))
    else:
        parts.append("no layers")
    problems = _problem_lines(report)
    if problems:
        parts.append("\n".join(["plugin problems:", *(f"  {line}" for line in problems)]))
    return "\n\n".join(parts)


def render_rich(report: dict[str, list[dict[str, Any]]], file: TextIO) -> bool:
    """Print the report to ``file`` with rich; False (nothing printed) when rich is missing."""
    try:
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text
    except ImportError:
        return False
    console = Console(file=file)
    transports = Table(*HEADERS, title="transports")
    for row in _rows(report):
        transports.add_row(*map(Text, row))
    layers = Table(*LAYER_HEADERS, title="layers")
    for row in _layer_rows(report):
        layers.add_row(*map(Text, row))
    console.print(transports)
    console.print(layers)
    for line in _problem_lines(report):
        console.print(line, style="red", markup=False, highlight=False)
    return True
