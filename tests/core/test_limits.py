"""Kernel limits: read here and now, and named with their value and remedy when exceeded."""

from __future__ import annotations

import resource

from anyipc._limits import Limit, at_most_sysctl, rlimit_msgqueue, sysctl


def test_a_sysctl_is_read_from_proc() -> None:
    with open("/proc/sys/kernel/msgmax") as handle:
        expected = int(handle.read())
    limit = sysctl("kernel.msgmax", "bytes")
    assert limit.value == expected
    assert limit.describe() == f"kernel.msgmax = {expected} bytes"
    assert limit.exceeded_by(expected) is None
    problem = limit.exceeded_by(expected + 1)
    assert problem is not None
    assert f"{expected + 1} is above the kernel limit kernel.msgmax = {expected}" in problem
    assert "sysctl -w kernel.msgmax=N" in problem


def test_an_unreadable_limit_is_left_to_the_kernel() -> None:
    limit = sysctl("no.such.limit", "things")
    assert limit.value is None and limit.exceeded_by(10**9) is None
    assert limit.describe() == "no.such.limit = unknown"


def test_an_option_check_names_the_sysctl() -> None:
    check = at_most_sysctl("kernel.msgmnb", "bytes")
    assert check(1) is None
    assert "kernel.msgmnb" in (check(10**12) or "")


def test_rlimit_msgqueue_is_the_soft_limit_with_its_remedy() -> None:
    soft, _ = resource.getrlimit(resource.RLIMIT_MSGQUEUE)
    limit = rlimit_msgqueue()
    assert isinstance(limit, Limit) and limit.name == "RLIMIT_MSGQUEUE"
    assert limit.value == (None if soft == resource.RLIM_INFINITY else soft)
    assert "ulimit -q" in limit.how_to_raise and "prlimit --msgqueue" in limit.how_to_raise
