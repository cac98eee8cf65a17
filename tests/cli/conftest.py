"""Running the installed ``anyipc`` command as a user would, in a scratch directory."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest

from anyipc._registry import registry

#: the console script next to this interpreter (what `pip install` put on PATH)
ANYIPC = shutil.which("anyipc", path=os.path.dirname(sys.executable)) or "anyipc"

Run = Callable[..., subprocess.CompletedProcess[bytes]]
Start = Callable[..., subprocess.Popen[bytes]]


def _run(
    cwd: Path, *args: str, input: bytes = b"", timeout: float = 60
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [ANYIPC, *args], cwd=cwd, input=input, capture_output=True, timeout=timeout
    )


def _start(cwd: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [ANYIPC, *args],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


@pytest.fixture
def run_anyipc(tmp_path: Path) -> Run:
    """``run_anyipc(*args, input=b"", timeout=60)``: run ``anyipc`` to its end, output captured."""
    return partial(_run, tmp_path)


@pytest.fixture
def start_anyipc(tmp_path: Path) -> Start:
    """``start_anyipc(*args)``: start ``anyipc`` with stdout and stderr piped."""
    return partial(_start, tmp_path)


def _require(uri: str) -> None:
    *layers, scheme = uri.partition("://")[0].split("+")
    reg = registry()
    if scheme not in reg.transports() or any(layer not in reg.layers() for layer in layers):
        pytest.skip(f"{uri} is not installed")


@pytest.fixture
def require() -> Callable[[str], None]:
    """A function that skips the test unless the transport and layers of a URI are installed."""
    return _require
