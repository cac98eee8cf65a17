"""Installed next to anyipc, the plugin is found like a built-in transport.

These run the ``anyipc`` command of this environment, as a user would.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ANYIPC = shutil.which("anyipc", path=os.path.dirname(sys.executable)) or "anyipc"


def _anyipc(cwd: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([ANYIPC, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)


def test_anyipc_transports_lists_pty_with_its_distribution(tmp_path: Path) -> None:
    result = _anyipc(tmp_path, "transports", "--json")
    assert result.returncode == 0, result.stderr
    listed = {entry["scheme"]: entry for entry in json.loads(result.stdout)["transports"]}
    assert listed["pty"]["distribution"] == "anyipc-pty"
    assert listed["pty"]["capabilities"]["direction"] == "simplex"


def test_anyipc_conformance_passes_for_pty(tmp_path: Path) -> None:
    result = _anyipc(tmp_path, "conformance", "pty", "--", "-q")
    assert result.returncode == 0, result.stdout[-4000:]
    assert " passed" in result.stdout
    assert " failed" not in result.stdout
