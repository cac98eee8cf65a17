"""The measurement loops: ping-pong latency and one-way throughput over a :class:`Link`.

Both run in the measuring process against a peer process that plays the
other side on command (see :mod:`anyipc.cli._bench_peer`), with the
payload of one size:

* Latency: the peer echoes every message back.  Each round trip (send a
  message, receive the echo) is timed alone with
  ``time.perf_counter_ns()``; each batch starts with one untimed round, so
  that the peer reading its command is never timed.  The median and the
  99th percentile (nearest rank) are over the samples of every repetition.
* Throughput: N messages are sent one way as fast as the link takes them;
  the peer receives them all and then sends one acknowledgement (the count
  it received).  The time runs from the first send to the arrival of the
  acknowledgement; a repetition's rate is N over that time, and the figure
  is the median rate of the repetitions (MB/s is that rate times the size,
  in 10^6 bytes).  On a lossy transport the peer stops after a silence of
  ``quiet`` seconds, which is then taken off the time, and the rate counts
  the messages received (the lost ones are reported).

With ``batch`` above 1, the throughput run sends its messages in batches
of that many and the peer receives up to that many per call, on links
that can (see :mod:`anyipc.cli._bench_link`); with ``zero_copy``, both
sides of links that can receive views instead of copies.  Round trips are
always one message at a time.

Both start with a warm-up that also calibrates: batches of 1, 2, 4...
operations until one lasts ``warmup`` seconds.  The time per operation of
that batch sets the batch size of each of the ``repeat`` repetitions, so
that all of them together last about ``seconds``, within fixed bounds.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import attrs

from anyipc.cli._bench_link import (
    ACK_SIZE,
    BatchLink,
    BenchError,
    Link,
    acked,
    payload,
    use_views,
)

if TYPE_CHECKING:
    from anyipc.cli._bench_process import PeerProcess

__all__ = [
    "Latency",
    "Settings",
    "Throughput",
    "batch_size",
    "calibrate",
    "measure_latency",
    "measure_throughput",
]

MIN_ROUNDS, MAX_ROUNDS = 5, 100_000  #: timed round trips per repetition
MIN_MESSAGES, MAX_MESSAGES = 4, 1_000_000  #: messages per throughput repetition
MAX_BYTES = 1 << 30  #: bytes per throughput repetition
MAX_WARMUP_BATCH = 1 << 16  #: the largest warm-up batch


@attrs.frozen
class Settings:
    """How long and how often to measure, and the bound on every wait (all in seconds)."""

    seconds: float = 0.5  #: the timed part of one measurement, all repetitions together
    repeat: int = 5  #: repetitions of each measurement
    timeout: float = 10.0  #: the bound on each blocking call
    quiet: float = 0.25  #: the silence that ends a throughput run on a lossy transport
    batch: int = 1  #: messages per send and most per receive in a throughput run
    zero_copy: bool = False  #: receive views instead of copies, where the link can

    @property
    def warmup(self) -> float:
        """The length of the warm-up batch that calibrates a measurement."""
        return self.seconds / 5


@attrs.frozen
class Latency:
    """Round trips of one size: median and 99th percentile, in nanoseconds."""

    median_ns: float
    p99_ns: float
    samples: int
    repetition_medians_ns: tuple[float, ...]


@attrs.frozen
class Throughput:
    """One-way transfer of one size: the median of the repetitions' rates."""

    messages_per_s: float
    bytes_per_s: float
    messages: int  #: sent in each repetition
    repetition_rates: tuple[float, ...]  #: messages per second, each repetition
    lost: int  #: messages lost, all repetitions together (lossy transports)


def calibrate(run: Callable[[int], float], warmup: float) -> float:
    """Warm up with batches of 1, 2, 4... operations; the seconds per operation of the last one."""
    count = 1
    while True:
        elapsed = run(count)
        if elapsed >= warmup or count >= MAX_WARMUP_BATCH:
            return elapsed / count
        count *= 2


def batch_size(settings: Settings, per_operation: float, least: int, most: int) -> int:
    """How many operations make one repetition last ``seconds / repeat``, within bounds."""
    wanted = settings.seconds / settings.repeat / max(per_operation, 1e-9)
    return max(least, min(most, int(wanted)))


def _round_trips(
    link: Link, peer: PeerProcess, data: bytes, count: int, timeout: float, views: bool
) -> list[int]:
    """``count`` timed round trips, after one untimed one: each one's nanoseconds."""
    size = len(data)
    peer.command({"op": "echo", "size": size, "count": count + 1, "views": views})
    send, recv, clock = link.send, link.recv, time.perf_counter_ns
    send(data, timeout)
    recv(size, timeout)
    times = []
    for _ in range(count):
        start = clock()
        send(data, timeout)
        recv(size, timeout)
        times.append(clock() - start)
    peer.answer(timeout)
    return times


def measure_latency(link: Link, peer: PeerProcess, size: int, settings: Settings) -> Latency:
    """Ping-pong latency of messages of ``size`` bytes (see the module docstring)."""
    data = payload(size)
    timeout, views = settings.timeout, settings.zero_copy
    use_views(link, views)

    def warm(count: int) -> float:
        return sum(_round_trips(link, peer, data, count, timeout, views)) / 1e9

    rounds = batch_size(settings, calibrate(warm, settings.warmup), MIN_ROUNDS, MAX_ROUNDS)
    batches = [
        _round_trips(link, peer, data, rounds, timeout, views) for _ in range(settings.repeat)
    ]
    samples = sorted(sample for batch in batches for sample in batch)
    p99 = samples[max(0, -(-len(samples) * 99 // 100) - 1)]  # nearest rank
    return Latency(
        median_ns=statistics.median(samples),
        p99_ns=float(p99),
        samples=len(samples),
        repetition_medians_ns=tuple(float(statistics.median(batch)) for batch in batches),
    )


def _one_way(
    link: Link, peer: PeerProcess, data: bytes, count: int, settings: Settings, lossy: bool
) -> tuple[float, int]:
    """Send ``count`` messages one way until acknowledged: (seconds, messages received)."""
    size, timeout, batch = len(data), settings.timeout, settings.batch
    quiet = settings.quiet if lossy else None
    command = {"op": "sink", "size": size, "count": count, "quiet": quiet, "batch": batch}
    peer.command({**command, "views": settings.zero_copy})
    send = link.send
    start = time.perf_counter_ns()
    if batch > 1 and isinstance(link, BatchLink):
        whole, rest = divmod(count, batch)
        for _ in range(whole):
            link.send_batch(data, batch, timeout)
        if rest:
            link.send_batch(data, rest, timeout)
    else:
        for _ in range(count):
            send(data, timeout)
    received = acked(link.recv(ACK_SIZE, timeout))
    elapsed = (time.perf_counter_ns() - start) / 1e9
    peer.answer(timeout)
    if received < count and quiet is not None:
        elapsed = max(elapsed - quiet, 1e-9)  # the peer waited that long before acknowledging
    if not received:
        raise BenchError(f"none of the {count} messages arrived")
    return elapsed, received


def measure_throughput(
    link: Link, peer: PeerProcess, size: int, settings: Settings, *, lossy: bool
) -> Throughput:
    """One-way throughput of messages of ``size`` bytes (see the module docstring)."""
    data = payload(size)
    use_views(link, settings.zero_copy)

    def warm(count: int) -> float:
        return _one_way(link, peer, data, count, settings, lossy)[0]

    most = max(MIN_MESSAGES, min(MAX_MESSAGES, MAX_BYTES // size))
    count = batch_size(settings, calibrate(warm, settings.warmup), MIN_MESSAGES, most)
    runs = [_one_way(link, peer, data, count, settings, lossy) for _ in range(settings.repeat)]
    rates = tuple(received / elapsed for elapsed, received in runs)
    rate = statistics.median(rates)
    return Throughput(
        messages_per_s=rate,
        bytes_per_s=rate * size,
        messages=count,
        repetition_rates=rates,
        lost=sum(count - received for _, received in runs),
    )
