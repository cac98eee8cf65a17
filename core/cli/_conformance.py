"""``anyipc conformance``: the conformance suite on installed transports, through pytest.

``anyipc conformance [TRANSPORT ...] [-- PYTEST-ARGS]``.  A TRANSPORT is a
scheme (``tcp``, ``framed+tcp``, ``tls+unix?cert=...``: the suite opens
fresh test addresses of that transport, with the options given) or a full
URI; none means every available installed transport.  pytest runs in a
fresh interpreter (``python -P -m pytest``, so that it imports and rewrites
the suite itself) and ignores the current directory's configuration.  The
exit status is pytest's, or 2 with an install hint when pytest or
hypothesis is missing.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from typing import Any

from anyipc._address import Address
from anyipc._api import transports
from anyipc._registry import registry
from anyipc.cli._output import PROG, fail

__all__ = ["add_parsers", "run", "split_passthrough"]

INSTALL_HINT = "pip install 'anyipc[testing]'"


def add_parsers(commands: Any) -> None:
    """Add the ``conformance`` sub-command to ``commands``."""
    parser = commands.add_parser(
        "conformance",
        help="run the conformance suite on installed transports",
        description="Run the conformance suite (anyipc.testing) on each TRANSPORT, a scheme "
        "such as tcp or framed+tcp, or a URI; none means every available installed transport. "
        "Arguments after -- go to pytest unchanged. The exit status is pytest's.",
    )
    parser.add_argument("targets", metavar="TRANSPORT", nargs="*")
    parser.set_defaults(run=run, pytest_args=[])


def split_passthrough(argv: list[str]) -> tuple[list[str], list[str] | None]:
    """Split ``conformance ... -- PYTEST-ARGS`` into its own arguments and pytest's.

    The second item is ``None`` for any other command line, which is then
    left whole (a ``--`` there keeps its usual meaning).
    """
    command = next((argument for argument in argv if not argument.startswith("-")), None)
    if command != "conformance" or "--" not in argv:
        return argv, None
    cut = argv.index("--")
    return argv[:cut], argv[cut + 1 :]


def run(args: argparse.Namespace) -> int:
    """Check the targets, then run pytest on ``anyipc.testing``; return pytest's exit status."""
    try:  # what the suite needs, checked here so that a missing one gets the hint
        import hypothesis  # noqa: F401
        import pytest  # noqa: F401
    except ImportError as exc:
        return fail(f"the conformance suite needs {exc.name}: {INSTALL_HINT}", status=2)
    targets = list(args.targets)
    for target in targets:  # an unknown scheme or layer: InvalidAddress naming the closest one
        uri = target if "://" in target else f"{target.partition('?')[0]}://"
        registry().stack(Address.parse_syntax(uri))
    if not targets:
        targets = [info.scheme for info in transports().values() if info.available]
    if not targets:
        return fail("no available transport is installed")
    with tempfile.TemporaryDirectory(prefix=f"{PROG}-conformance-") as rootdir:
        command = _pytest_command(targets, rootdir, args.pytest_args)
        return subprocess.run(command, check=False).returncode


def _pytest_command(targets: list[str], rootdir: str, extra: list[str]) -> list[str]:
    """pytest's command line: the suite by package name, isolated from any project config."""
    arguments = [sys.executable, "-P", "-m", "pytest"]
    arguments += ["-c", os.devnull, "--rootdir", rootdir, "-p", "no:cacheprovider"]
    arguments += ["--pyargs", "anyipc.testing"]
    for target in targets:
        arguments += ["--anyipc-uri", target]
    return arguments + extra
