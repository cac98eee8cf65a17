"""Broken plugins are reported by name and distribution, and never break the others.

Each test installs throwaway distributions (a ``.dist-info`` directory with
``entry_points.txt``, and a module) into a directory put on ``PYTHONPATH``
of a fresh interpreter, so that the registry loads them from scratch.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

BROKEN = 'raise ImportError("deliberately broken")\n'

#: a plugin providing "twin://", a mem:// under another name; two of them collide
TWIN = """
from anyipc import TransportSpec, hookimpl
from anyipc.transports import mem


@hookimpl
def anyipc_transports():
    return [
        TransportSpec(
            scheme="twin",
            description="mem:// under another name",
            capabilities=mem.capabilities,
            check_location=lambda location: None,
            test_address=lambda: "twin://",
            options=mem.OPTIONS,
            pair=mem.pair,
        )
    ]
"""

#: a plugin whose "liar://" is in-process (mem) but claims host scope: `check` must fail it
LIAR = """
from anyipc import Scope, TransportSpec, hookimpl
from anyipc.transports import mem


@hookimpl
def anyipc_transports():
    return [
        TransportSpec(
            scheme="liar",
            description="mem:// claiming host scope",
            capabilities=lambda address: mem.capabilities(address).evolve(scope=Scope.HOST),
            check_location=lambda location: None,
            test_address=lambda: "liar://lies",
            options=mem.OPTIONS,
            connect=mem.connect,
            listen=mem.listen,
        )
    ]
"""

#: a plugin that loads, but whose "faulty://" raises when asked for its test address
FAULTY = """
from anyipc import TransportSpec, hookimpl
from anyipc.transports import mem


def no_address():
    raise RuntimeError("no test address today")


@hookimpl
def anyipc_transports():
    return [
        TransportSpec(
            scheme="faulty",
            description="fails when asked for its test address",
            capabilities=mem.capabilities,
            check_location=lambda location: None,
            test_address=no_address,
            options=mem.OPTIONS,
            pair=mem.pair,
        )
    ]
"""

#: in a fresh interpreter: open URI with pair(), one round trip, print what happened as JSON
PAIR_ROUND_TRIP = """
import json, sys
import anyipc
try:
    first, second = anyipc.pair(sys.argv[1])
except anyipc.IPCError as exc:
    print(json.dumps({"error": type(exc).__name__, "message": str(exc)}))
else:
    with first, second:
        first.send(b"ping", timeout=5)
        print(json.dumps({"received": second.recv(timeout=5).decode()}))
"""


def _install(site: Path, distribution: str, entry_point: str, source: str) -> None:
    """Install ``distribution`` into ``site``: a module and its ``anyipc`` entry point."""
    module = distribution.replace("-", "_")
    (site / f"{module}.py").write_text(textwrap.dedent(source))
    info = site / f"{module}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[anyipc]\n{entry_point} = {module}\n")


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """The broken plugin and the two twins, installed in one directory."""
    site = tmp_path / "site"
    site.mkdir()
    _install(site, "anyipc-broken", "broken", BROKEN)
    _install(site, "anyipc-twin-a", "twin_a", TWIN)
    _install(site, "anyipc-twin-b", "twin_b", TWIN)
    return site


def _python(site: Path, *args: str, block: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(site), "ANYIPC_BLOCK_PLUGINS": block}
    return subprocess.run(
        [sys.executable, "-P", *args],
        cwd=site.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _report(site: Path, block: str = "") -> dict[str, list[dict[str, object]]]:
    result = _python(site, "-m", "anyipc.cli", "transports", "--json", block=block)
    assert result.returncode == 0, result.stderr
    report: dict[str, list[dict[str, object]]] = json.loads(result.stdout)
    return report


def _pair(site: Path, uri: str, block: str = "") -> dict[str, str]:
    result = _python(site, "-c", PAIR_ROUND_TRIP, uri, block=block)
    assert result.returncode == 0, result.stderr
    outcome: dict[str, str] = json.loads(result.stdout)
    return outcome


def test_a_plugin_that_fails_to_import_is_reported_and_mem_still_works(site: Path) -> None:
    report = _report(site)
    broken = [problem for problem in report["problems"] if problem["plugin"] == "broken"]
    assert broken == [
        {
            "plugin": "broken",
            "distribution": "anyipc-broken",
            "message": "cannot be imported: ImportError: deliberately broken",
        }
    ]
    assert "mem" in {entry["scheme"] for entry in report["transports"]}
    assert _pair(site, "mem://") == {"received": "ping"}


def test_the_plain_table_names_the_broken_plugin_and_its_distribution(site: Path) -> None:
    result = _python(site, "-m", "anyipc.cli", "transports")
    assert result.returncode == 0, result.stderr
    assert (
        "plugin 'broken' from anyipc-broken: cannot be imported: ImportError: deliberately broken"
        in result.stdout
    )
    assert any(line.startswith("mem ") for line in result.stdout.splitlines())


def test_a_scheme_from_two_plugins_is_unavailable_naming_both(site: Path) -> None:
    outcome = _pair(site, "twin://")
    assert outcome["error"] == "TransportUnavailable"
    assert "anyipc-twin-a (plugin twin_a)" in outcome["message"]
    assert "anyipc-twin-b (plugin twin_b)" in outcome["message"]
    assert _pair(site, "mem://") == {"received": "ping"}

    report = _report(site)
    assert "twin" not in {entry["scheme"] for entry in report["transports"]}
    (conflict,) = [problem for problem in report["problems"] if "twin" in str(problem["message"])]
    assert "anyipc-twin-a" in str(conflict["message"])
    assert "anyipc-twin-b" in str(conflict["message"])


def test_the_command_line_reports_the_conflict_in_one_line(site: Path) -> None:
    result = _python(site, "-m", "anyipc.cli", "send", "twin://", "hi")
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith("anyipc: error: scheme 'twin' is provided by more than one plugin")


@pytest.mark.parametrize("block", ["twin_b", "anyipc-twin-b", "twin_b,broken"])
def test_blocking_one_twin_by_plugin_or_distribution_name_lets_the_other_serve(
    site: Path, block: str
) -> None:
    assert _pair(site, "twin://", block=block) == {"received": "ping"}
    report = _report(site, block=block)
    (twin,) = [entry for entry in report["transports"] if entry["scheme"] == "twin"]
    assert twin["distribution"] == "anyipc-twin-a"
    assert not [problem for problem in report["problems"] if "twin" in str(problem["message"])]
    reported = {problem["plugin"] for problem in report["problems"]}
    assert ("broken" in reported) is ("broken" not in block)


def test_check_fails_a_transport_whose_claims_are_false_and_checks_the_others(
    tmp_path: Path,
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    _install(site, "anyipc-liar", "liar", LIAR)
    result = _python(site, "-m", "anyipc.cli", "check", "--rounds", "2", "--timeout", "3")
    assert result.returncode == 1, result.stdout
    rows = {line.split()[0]: line for line in result.stdout.splitlines()[1:]}
    assert "FAIL: Timeout: accept timed out" in rows["liar"]
    assert "nobody listens on mem://lies in this process" in rows["liar"]  # what the peer said
    assert "skipped" in rows["mem"]
    assert not [row for name, row in rows.items() if name != "liar" and "FAIL" in row]


def test_a_transport_that_fails_when_asked_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    _install(site, "anyipc-faulty", "faulty", FAULTY)
    report = _report(site)
    assert {
        "plugin": "faulty",
        "distribution": "anyipc-faulty",
        "message": "faulty:// cannot describe itself: RuntimeError: no test address today",
    } in report["problems"]
    assert "mem" in {entry["scheme"] for entry in report["transports"]}

    result = _python(site, "-m", "anyipc.cli", "check", "--rounds", "2")
    rows = {line.split()[0]: line for line in result.stdout.splitlines()[1:]}
    assert "FAIL: RuntimeError: no test address today" in rows["faulty"]
    assert result.returncode == 1
    assert not [row for name, row in rows.items() if name != "faulty" and "FAIL" in row]
