"""``anyipc transports``: the taxonomy table of what is installed, as text and as JSON."""

from __future__ import annotations

import enum
import io
import json
import re
from collections.abc import Callable
from typing import Any

import attrs
import pytest

from anyipc._api import transports  # anyipc.transports is shadowed by the package of that name
from anyipc._registry import registry
from anyipc.cli import _transports


def test_the_table_has_a_row_per_transport_with_its_claims(
    run_anyipc: Callable[..., Any],
) -> None:
    result = run_anyipc("transports")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.decode().splitlines()
    assert lines[0].split() == [
        "scheme", "direction", "boundaries", "connection", "lossless", "ordered", "intact",
        "dup-free", "scope", "addressing", "max", "size", "verbs", "distribution", "available",
    ]  # fmt: skip
    rows = {line.split()[0]: line.split() for line in lines[1:] if line and line[0] != " "}
    for scheme in registry().transports():
        assert scheme in rows
    assert rows["mem"] == [
        "mem", "duplex", "message", "oriented", "yes", "yes", "yes", "yes", "process", "named",
        "-", "connect,listen,bind,pair", "anyipc", "yes",
    ]  # fmt: skip


def test_the_table_lists_the_layers(run_anyipc: Callable[..., Any]) -> None:
    out = run_anyipc("transports").stdout.decode()
    for name, provided in registry().layers().items():
        row = rf"^{name}\+ +{re.escape(provided.spec.description)} "  # columns padded to fit
        assert re.search(row, out, re.MULTILINE), out


def test_json_says_what_the_api_says(run_anyipc: Callable[..., Any]) -> None:
    result = run_anyipc("transports", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    by_scheme = {entry["scheme"]: entry for entry in report["transports"]}
    infos = transports()
    assert set(by_scheme) == set(infos)
    for scheme, info in infos.items():
        entry = by_scheme[scheme]
        assert entry["capabilities"] == attrs.asdict(
            info.capabilities,
            value_serializer=lambda _, __, value: (
                value.value if isinstance(value, enum.Enum) else value
            ),
        )
        assert entry["verbs"] == list(info.verbs)
        assert entry["distribution"] == info.distribution
        assert entry["available"] is info.available
        assert [option["name"] for option in entry["options"]] == [o.name for o in info.options]
    assert [layer["name"] for layer in report["layers"]] == list(registry().layers())
    assert report["problems"] == []


def test_rich_renders_the_same_rows_when_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("rich")
    monkeypatch.setenv("COLUMNS", "300")  # as wide as a terminal that fits every column
    report = _transports.collect()
    out = io.StringIO()
    assert _transports.render_rich(report, out)
    text = out.getvalue()
    for entry in report["transports"]:
        assert entry["scheme"] in text
    for entry in report["layers"]:
        assert f"{entry['name']}+" in text
