"""The two ends of a burst, each in a process of its own.

``python _burst_peers.py read VERB URI COUNT`` opens the receiving end (VERB:
``listen`` then accept one connection, ``bind``, or ``connect`` for an
inherited end), prints ``{"address": ...}`` for the sender, then reads
COUNT records slowly (a 1 ms sleep every 100) and checks each one's
sequence number and CRC32 (``_load_records``).

``python _burst_peers.py send COUNT SEED`` reads a URI from its stdin (so
that it starts, and imports anyipc, while the reader opens its end),
connects to it and sends COUNT records numbered 0 to COUNT-1 as fast as the
transport takes them (a blocking ``send``), of random sizes up to 64 KiB or
the transport's largest message if smaller, then closes.

Each prints one JSON report when done: counts, seconds, and its memory:
``rss_kib`` when the burst started and ``peak_kib``, the peak resident set
(``VmHWM`` of ``/proc/self/status``) during the burst, the peak having been
reset (``/proc/self/clear_refs``) as the burst started.
"""

from __future__ import annotations

import json
import random
import select
import sys
import time
from collections.abc import Callable

from _load_records import (
    HEADER,
    Parsed,
    RecordStream,
    compact,
    parse,
    parse_compact,
    record,
)

import anyipc

PATIENCE = 60.0  #: seconds the sender, or the next message, may take
LARGEST = 64 * 1024  #: the largest record sent where the transport takes more
SLOW_EVERY = 100  #: the reader sleeps after this many records
SLOW_SLEEP = 0.001
EXTRA_WAIT = 0.5  #: how long a reader that learns no end listens for anything after the last


def memory(field: str) -> int:
    """A ``/proc/self/status`` field in KiB (``VmRSS``, ``VmHWM``)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise LookupError(field)


def start_measuring() -> int:
    """Reset the peak resident set to the current one; the current one in KiB."""
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")
    return memory("VmRSS")


def largest(channel: anyipc.Channel) -> int:
    limit = channel.capabilities.max_message_size
    return LARGEST if limit is None else min(LARGEST, limit)


def send(count: int, seed: int) -> dict[str, object]:
    if not select.select([sys.stdin], [], [], PATIENCE)[0]:
        raise SystemExit(f"no address to send to within {PATIENCE} s")
    channel = anyipc.connect(sys.stdin.readline().strip())
    biggest = largest(channel)
    generator = random.Random(seed)
    pool = memoryview(generator.randbytes(2 * LARGEST))
    rss = start_measuring()
    started = time.monotonic()
    for sequence in range(count):
        if biggest < HEADER.size:
            message = compact(sequence)
        else:
            size = generator.randint(0, biggest - HEADER.size)
            offset = generator.randrange(LARGEST)
            message = record(sequence, pool[offset : offset + size])
        channel.send(message, timeout=PATIENCE)
    channel.close()
    return {
        "sent": count,
        "seconds": round(time.monotonic() - started, 3),
        "rss_kib": rss,
        "peak_kib": memory("VmHWM"),
    }


class Tally:
    """What a reader saw of records 0 to ``count``-1: each one once and in order, or not."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.seen = bytearray(count)
        self.received = self.duplicated = self.reordered = self.corrupted = 0
        self.highest = -1

    def add(self, parsed: Parsed) -> None:
        sequence, _, intact = parsed
        self.received += 1
        if not intact or not 0 <= sequence < self.count:
            self.corrupted += 1
        elif self.seen[sequence]:
            self.duplicated += 1
        else:
            self.seen[sequence] = 1
            if sequence < self.highest:
                self.reordered += 1
            self.highest = max(self.highest, sequence)

    def outcome(self) -> dict[str, int]:
        return {
            "received": self.received,
            "lost": self.count - sum(self.seen),
            "duplicated": self.duplicated,
            "reordered": self.reordered,
            "corrupted": self.corrupted,
        }


def open_receiver(verb: str, uri: str) -> tuple[anyipc.Channel, Callable[[], None]]:
    """The receiving end, once the sender can reach it, and what closes everything."""
    if verb == "listen":
        listener = anyipc.listen(uri)
        announce(listener.address)
        channel = listener.accept(timeout=PATIENCE)

        def close() -> None:
            channel.close()
            listener.close()

        return channel, close
    channel = anyipc.bind(uri) if verb == "bind" else anyipc.connect(uri)
    announce(channel.address or uri)
    return channel, channel.close


def announce(address: str) -> None:
    print(json.dumps({"address": address}), flush=True)


def read(verb: str, uri: str, count: int) -> dict[str, object]:
    channel, close = open_receiver(verb, uri)
    biggest = largest(channel)
    decode = parse_compact if biggest < HEADER.size else parse
    streamed = channel.capabilities.boundaries is anyipc.Boundaries.STREAM
    split = RecordStream(biggest - HEADER.size) if streamed else None
    reports_end = channel.capabilities.reports_end
    tally = Tally(count)
    rss = start_measuring()
    started = last = 0.0  # when the first and the last data arrived
    ended = "end of channel"
    while True:
        patience = PATIENCE if reports_end or tally.received < count else EXTRA_WAIT
        try:
            data = channel.recv(timeout=patience)
        except anyipc.EndOfChannel:
            break
        except anyipc.Timeout:
            ended = "silence" if tally.received >= count and not reports_end else "timeout"
            break
        last = time.monotonic()
        started = started or last
        for message in split.feed(data) if split is not None else [data]:
            tally.add(decode(message))
            if tally.received % SLOW_EVERY == 0:
                time.sleep(SLOW_SLEEP)
        if split is not None and split.lost_sync:
            ended = "a damaged length: the rest of the stream is unreadable"
            break
    peak = memory("VmHWM")
    close()
    return {
        **tally.outcome(),
        "ended": ended,
        "left_over_bytes": split.pending if split is not None else 0,
        "seconds": round(last - started, 3),
        "rss_kib": rss,
        "peak_kib": peak,
    }


def main() -> None:
    role, *args = sys.argv[1:]
    if role == "read":
        outcome = read(args[0], args[1], int(args[2]))
    else:
        outcome = send(int(args[0]), int(args[1]))
    print(json.dumps(outcome), flush=True)


if __name__ == "__main__":
    main()
