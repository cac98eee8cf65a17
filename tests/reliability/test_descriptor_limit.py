"""Running out of descriptors: a clear error naming the limit, nothing half-made, then recovery.

In a child process whose soft ``RLIMIT_NOFILE`` is 64 (``_descriptor_child.py``),
each case opens endpoints of one descriptor-based transport with one verb
until an open fails.  That failure and the :data:`RETRIES` attempts after it
must each be :class:`anyipc.TransportUnavailable` naming ``RLIMIT_NOFILE``
and its value, and leave nothing behind: every descriptor given back, no
socket file, FIFO, directory, queue, segment or owner file made by the
failed open.  Once everything is closed, an open succeeds again, and the
case leaves nothing at all.

``signal://`` binds each real-time signal once per process, and there are
fewer of them than 64 descriptors: its case runs under a limit just above
what the process holds when it starts.  The figures are the same in both
profiles: the whole file takes a few seconds.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from ._load_processes import Children, start

RETRIES = 10  #: as _descriptor_child.RETRIES
CASES = [
    "tcp listen",
    "tcp connect",
    "tls+tcp listen",
    "unix listen",
    "unix connect",
    "unix-seqpacket listen",
    "unix-seqpacket connect",
    "unix-dgram bind",
    "unix-dgram connect",
    "udp bind",
    "fifo bind",
    "fifo connect",
    "pipe pair",
    "socketpair pair",
    "posixmq bind",
    "posixmq connect",
    "sysvmq bind",
    "shm listen",
    "sysvshm listen",
    "mmap listen",
    "signal bind",
]


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, dict[str, Any]]]:
    """Every case's report, by case: one child process runs them all, one after another."""
    from ..transports.conftest import TLSFiles

    files = TLSFiles(tmp_path_factory.mktemp("tls"))
    children = Children()
    try:
        child = start(
            children, "_descriptor_child.py", f"cert={files.server}&ca={files.ca}", *CASES
        )
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err.decode(errors="replace")
        reports = [json.loads(line) for line in out.decode().splitlines()]
        yield {report["case"]: report for report in reports}
    finally:
        children.reap()


@pytest.mark.parametrize("case", CASES)
def test_running_out_of_descriptors_is_a_clear_error_that_leaves_nothing(
    outcomes: dict[str, dict[str, Any]], case: str
) -> None:
    outcome = outcomes[case]
    if "unavailable" in outcome:
        pytest.skip(f"{case}: {outcome['unavailable']}")
    failures = outcome["failures"]
    assert failures, f"{case}: {outcome['opened']} opened under RLIMIT_NOFILE {outcome['limit']}"
    assert outcome["opened"] > 0
    assert len(failures) == 1 + RETRIES
    named = f"RLIMIT_NOFILE = {outcome['limit']} descriptors"
    for number, failure in enumerate(failures):
        assert failure["documented"], f"{case}, attempt {number}: {failure}"
        assert named in failure["message"] and "ulimit -n" in failure["message"], failure
        assert failure["left"] == [], f"{case}, attempt {number} left {failure['left']}"
    assert outcome["reopened"] is True, f"{case}: after closing everything: {outcome['reopened']}"
    assert outcome["leftover"] == []
