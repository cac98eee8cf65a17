"""Peer processes of the load tests: their scripts, their reports, their descriptors.

The peers are scripts beside this file, started with this interpreter by
:func:`start` through :class:`Children` (every child is reaped when the
test ends).  A peer
speaks one JSON object per line on its stdout; :func:`report` reads the
next one within a timeout, never blocking past it.
"""

from __future__ import annotations

import json
import os
import resource
import select
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from ..transports.conftest import Children

__all__ = ["Children", "descriptor_room", "open_descriptors", "report", "start"]

HERE = Path(__file__).parent


def start(children: Children, name: str, *args: object, **options: Any) -> subprocess.Popen[bytes]:
    """Run the peer script ``name`` (a file beside this one) with ``args``.

    Its stdout is unbuffered here, so that :func:`report` sees every line
    as soon as it is written; its stdin is a pipe unless ``options`` say.
    """
    options.setdefault("stdin", subprocess.PIPE)
    return children.run([sys.executable, str(HERE / name), *map(str, args)], bufsize=0, **options)


def report(child: subprocess.Popen[bytes], timeout: float) -> dict[str, Any]:
    """The next JSON line ``child`` prints, within ``timeout`` seconds.

    Fails the test, with what the child wrote on stderr, when it prints
    anything else, ends first, or stays silent that long.
    """
    assert child.stdout is not None
    poller = select.poll()  # not select(): this process may hold descriptors above 1023
    poller.register(child.stdout, select.POLLIN)
    if not poller.poll(timeout * 1000):
        pytest.fail(f"{child.args[1:]} said nothing for {timeout} s:\n{_stderr(child)}")
    line = child.stdout.readline()
    if not line:
        pytest.fail(f"{child.args[1:]} ended without a report:\n{_stderr(child)}")
    try:
        answer: dict[str, Any] = json.loads(line)
    except ValueError:
        pytest.fail(f"{child.args[1:]} printed {line!r}")
    return answer


def _stderr(child: subprocess.Popen[bytes]) -> str:
    if child.poll() is None:
        child.kill()
    _, err = child.communicate(timeout=10)
    return err.decode(errors="replace")


def open_descriptors() -> int:
    """How many descriptors this process has open."""
    return len(os.listdir("/proc/self/fd"))


@contextmanager
def descriptor_room(needed: int) -> Iterator[None]:
    """At least ``needed`` descriptors allowed here, then the limit as it was.

    The soft RLIMIT_NOFILE is raised to the hard limit if it is below
    ``needed``; the test is skipped, naming the limit, when the hard limit
    is below it too.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft >= needed:
        yield
        return
    if hard != resource.RLIM_INFINITY and hard < needed:
        pytest.skip(
            f"needs {needed} descriptors, and RLIMIT_NOFILE allows {hard} (hard limit): "
            "raise it with `ulimit -Hn` (as root) or `prlimit --nofile`"
        )
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
