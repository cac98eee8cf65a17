"""Every failure of the command line is one line on stderr and a non-zero status."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

import anyipc


def _one_error_line(result: Any) -> str:
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("anyipc: error: ")
    assert "Traceback" not in lines[0]
    return str(lines[0])


def test_an_unknown_scheme_names_the_closest_installed_one(
    run_anyipc: Callable[..., Any],
) -> None:
    result = run_anyipc("send", "mme://x", "hi")
    assert result.returncode == 1
    assert "unknown scheme 'mme'; did you mean 'mem'?" in _one_error_line(result)


def test_a_verb_the_transport_lacks_names_those_it_has(run_anyipc: Callable[..., Any]) -> None:
    result = run_anyipc("recv", "mem://x", "--verb", "bind")
    assert result.returncode == 1
    assert "does not support bind(); it supports: listen, connect, pair" in _one_error_line(result)


def test_nobody_listening_is_a_one_line_error(
    run_anyipc: Callable[..., Any], require: Callable[[str], None]
) -> None:
    require("tcp://")
    with anyipc.listen("tcp://127.0.0.1:0") as listener:
        address = listener.address  # a port that was just free, closed again below
    result = run_anyipc("send", address, "hi")
    assert result.returncode == 1
    assert "nobody is listening there" in _one_error_line(result)


@pytest.mark.parametrize(
    "args",
    [
        (),
        ("send",),
        ("recv", "mem://x", "--timeout", "-1"),
        ("recv", "mem://x", "--count", "0"),
        ("transports", "--no-such-option"),
    ],
)
def test_usage_errors_exit_2_with_one_line(
    run_anyipc: Callable[..., Any], args: tuple[str, ...]
) -> None:
    result = run_anyipc(*args)
    assert result.returncode == 2
    assert "see 'anyipc" in _one_error_line(result)


def test_version(run_anyipc: Callable[..., Any]) -> None:
    result = run_anyipc("--version")
    assert (result.returncode, result.stdout) == (0, f"anyipc {anyipc.__version__}\n".encode())


def test_python_dash_m_runs_the_same_command() -> None:
    result = subprocess.run(
        [sys.executable, "-P", "-m", "anyipc.cli", "--version"], capture_output=True, timeout=60
    )
    assert (result.returncode, result.stdout) == (0, f"anyipc {anyipc.__version__}\n".encode())


def test_ctrl_c_ends_the_command_quietly_with_130(start_anyipc: Callable[..., Any]) -> None:
    with start_anyipc("recv", "mem://waiting") as process:
        assert process.stderr.readline() == b"anyipc: listening on mem://waiting\n"
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 130
        assert process.stderr.read() == b""
