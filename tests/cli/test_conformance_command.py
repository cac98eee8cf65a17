"""``anyipc conformance``: the suite through pytest, isolated from the project's config."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

from anyipc._registry import registry


def test_the_suite_runs_on_a_named_transport(run_anyipc: Callable[..., Any]) -> None:
    result = run_anyipc("conformance", "mem", "--", "-q", "-k", "b1_roundtrip", timeout=300)
    out = result.stdout.decode()
    assert result.returncode == 0, out + result.stderr.decode()
    assert " passed" in out


def test_the_exit_status_is_pytests(run_anyipc: Callable[..., Any]) -> None:
    result = run_anyipc("conformance", "mem", "--", "-q", "-k", "no_such_test_anywhere")
    assert result.returncode == pytest.ExitCode.NO_TESTS_COLLECTED


def test_an_unknown_transport_is_refused_before_pytest_starts(
    run_anyipc: Callable[..., Any],
) -> None:
    result = run_anyipc("conformance", "mme")
    assert result.returncode == 1
    assert result.stderr.decode().splitlines() == [
        "anyipc: error: unknown scheme 'mme'; did you mean 'mem'? (installed: "
        + ", ".join(registry().transports())
        + ")"
    ]


def test_without_pytest_it_prints_the_install_hint() -> None:
    # A fresh interpreter in which importing pytest fails, as in an install without [testing].
    code = (
        "import sys; sys.modules['pytest'] = None; "
        "from anyipc.cli import main; sys.exit(main(['conformance', 'mem']))"
    )
    result = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.decode().splitlines() == [
        "anyipc: error: the conformance suite needs pytest: pip install 'anyipc[testing]'"
    ]
