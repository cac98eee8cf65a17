"""README.md says what is true: its test command is what CI runs, its examples run."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _shell_lines() -> list[str]:
    return [
        line
        for block in re.findall(r"```sh\n(.*?)```", README, re.S)
        for line in block.splitlines()
    ]


def test_ci_runs_exactly_the_readme_test_command() -> None:
    # the set-up line that runs the tests (the other one runs `anyipc check`)
    (command,) = [
        line for line in _shell_lines() if line.startswith("python3 -m venv") and "pytest" in line
    ]
    assert f'TEST_COMMAND="{command}"' in (ROOT / ".ci" / "run").read_text().splitlines()


@pytest.mark.parametrize(
    "example",
    [
        block
        for block in re.findall(r"```python\n(.*?)```", README, re.S)
        if block.startswith("import anyipc\n")
    ],
)
def test_a_readme_example_runs(example: str) -> None:
    result = subprocess.run([sys.executable, "-P", "-c", example], capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr.decode()
