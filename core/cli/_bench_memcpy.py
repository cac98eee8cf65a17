"""``memcpy``: the ceiling of any transfer through memory, measured in the same run.

One copy of a message of each size from one buffer to another, in the
measuring process, timed like a throughput run (see
:mod:`anyipc.cli._bench_measure`): calibrated batches, ``repeat``
repetitions, the median rate.  Its row has no latency; the ratio table
gives each transport's throughput over it, the share of a plain copy that
the transfer between two processes reaches.
"""

from __future__ import annotations

import statistics
import time

from anyipc.cli._bench_link import BenchError, payload
from anyipc.cli._bench_measure import (
    MAX_MESSAGES,
    MIN_MESSAGES,
    Settings,
    Throughput,
    batch_size,
    calibrate,
)
from anyipc.cli._bench_session import Contender, Group, Plan, Point, Stack

__all__ = ["MEMCPY", "measure_memcpy"]

MAX_BYTES = 1 << 32  #: bytes copied per repetition


def _no_peer(stack: Stack, timeout: float) -> Plan:
    raise BenchError("memcpy is measured in the measuring process, without a peer")


MEMCPY = Contender(
    name="memcpy",
    group=Group.REFERENCE,
    detail="one copy of each message into a bytearray, in the measuring process",
    prepare=_no_peer,
)


def _copies(source: bytes, target: bytearray, count: int) -> float:
    """Copy ``source`` into ``target`` ``count`` times; the seconds it took."""
    start = time.perf_counter_ns()
    for _ in range(count):
        target[:] = source
    return (time.perf_counter_ns() - start) / 1e9


def measure_memcpy(size: int, settings: Settings) -> Point:
    """The copy rate of messages of ``size`` bytes, as a throughput point."""
    source, target = payload(size), bytearray(size)
    most = max(MIN_MESSAGES, min(MAX_MESSAGES, MAX_BYTES // size))
    per_copy = calibrate(lambda count: _copies(source, target, count), settings.warmup)
    count = batch_size(settings, per_copy, MIN_MESSAGES, most)
    rates = tuple(count / _copies(source, target, count) for _ in range(settings.repeat))
    rate = statistics.median(rates)
    return Point(
        size,
        throughput=Throughput(
            messages_per_s=rate,
            bytes_per_s=rate * size,
            messages=count,
            repetition_rates=rates,
            lost=0,
        ),
    )
