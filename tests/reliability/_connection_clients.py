"""Many connections from one process: ``python _connection_clients.py ADDRESS FIRST COUNT ROUNDS``.

Opens COUNT connections to ADDRESS (numbered FIRST, FIRST+1, ...), then
prints ``{"connected": COUNT}`` and waits for a line on stdin: the parent's
go, sent once every client process holds all its connections.  Then every
connection does ROUNDS checked round trips, all connections at once, driven
by :func:`anyipc.wait` in this one thread: a request is a record (see
``_load_records``) numbered ``connection << 32 | round`` with 16 random
bytes; the reply must be intact, carry the same number and the bytes
reversed.  A connection whose reply is wrong, late (``PATIENCE``) or missing
stops there.  Prints the outcome as one JSON line: ``correct`` replies,
``errors`` (how many, and the first few described) and the timings.
"""

from __future__ import annotations

import json
import os
import select
import sys
import time

from _load_records import HEADER, RecordStream, parse, record

import anyipc

PATIENCE = 60.0  #: seconds a reply, a connection or the parent's go may take
BODY = 16
SIZE = HEADER.size + BODY


class Connection:
    """One client connection and the round trip it is in."""

    def __init__(self, number: int, channel: anyipc.Channel, rounds: int) -> None:
        self.number = number
        self.channel = channel
        self.rounds = rounds
        self.done = 0
        self.body = b""
        self.stream = RecordStream(BODY)
        self.streamed = channel.capabilities.boundaries is anyipc.Boundaries.STREAM

    def ask(self) -> None:
        """Send the next request."""
        self.body = os.urandom(BODY)
        self.channel.send(record(self.number << 32 | self.done, self.body), timeout=PATIENCE)

    def replies(self) -> list[bytes]:
        """The whole replies that arrived (reading what is there now, without waiting)."""
        try:
            data = self.channel.recv(timeout=0)
        except anyipc.Timeout:  # ready for what was not a reply (TLS records of its own)
            return []
        return self.stream.feed(data) if self.streamed else [data]

    def check(self, reply: bytes) -> str | None:
        """What is wrong with ``reply`` to the request in flight; None when it is right."""
        sequence, body, intact = parse(reply)
        if not intact:
            return f"connection {self.number}: a damaged reply in round {self.done}"
        if sequence != self.number << 32 | self.done or body != self.body[::-1]:
            return f"connection {self.number}: round {self.done} answered with {sequence:#x}"
        return None


def main() -> None:
    address, first, count, rounds = sys.argv[1], *map(int, sys.argv[2:5])
    started = time.monotonic()
    connections = [
        Connection(first + index, anyipc.connect(address), rounds) for index in range(count)
    ]
    connected = time.monotonic()
    print(json.dumps({"connected": count}), flush=True)
    if not select.select([sys.stdin], [], [], PATIENCE)[0] or not sys.stdin.readline():
        raise SystemExit("no go from the parent")
    went = time.monotonic()
    correct, errors = drive(connections)
    for connection in connections:
        connection.channel.close()
    report = {
        "correct": correct,
        "error_count": len(errors),
        "errors": errors[:5],
        "connect_s": round(connected - started, 3),
        "round_trips_s": round(time.monotonic() - went, 3),
    }
    print(json.dumps(report), flush=True)


def drive(connections: list[Connection]) -> tuple[int, list[str]]:
    """Run every connection's round trips; the count of correct replies, and the errors."""
    errors: list[str] = []
    correct = 0
    for connection in connections:
        connection.ask()
    waiting = {connection.channel: connection for connection in connections if connection.rounds}
    while waiting:
        ready = anyipc.wait(list(waiting), timeout=PATIENCE)
        if not ready:
            errors.extend(
                f"connection {c.number}: no reply in round {c.done}" for c in waiting.values()
            )
            break
        for channel in ready:
            connection = waiting[channel]
            try:
                replies = connection.replies()
            except anyipc.IPCError as exc:
                errors.append(f"connection {connection.number}: {type(exc).__name__}: {exc}")
                del waiting[channel]
                continue
            for reply in replies:
                problem = connection.check(reply)
                if problem is not None:
                    errors.append(problem)
                    del waiting[channel]
                    break
                correct += 1
                connection.done += 1
                if connection.done == connection.rounds:
                    del waiting[channel]
                    break
                connection.ask()
    return correct, errors


if __name__ == "__main__":
    main()
