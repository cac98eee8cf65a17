"""Faults: the reading peer SIGKILLed while this process sends, on every transport family.

The mirror of ``test_kills.py``: here this process writes stamped messages
(of random sizes, as fast as it can) and the peer process reads and checks
them (sequence number and CRC32); after a random number of sends this
process SIGKILLs the reader, wherever it is in its ``recv``, and sends on.
The writer must get the error its transport documents
(``Transport.on_reader_death``: :class:`~anyipc.ConnectionLost`; none on
``udp``, whose sends go on into the void) within :data:`DEATH_BOUND`
seconds, never a hang, a ``BrokenPipeError`` or a SIGPIPE; the reader must
have found nothing damaged before it died.  Then a fresh reader is reached
the same way (accepted on the same listener, bound on the same name, a
fresh pair) and receives everything sent to it.  20 rounds per transport in
the long profile.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import pytest

import anyipc

from . import _fault_fixtures
from ._fault_control import PATIENCE, Peers
from ._fault_messages import COMPACT, HEADER, stamp
from ._fault_survivor import Survivor
from ._fault_transports import QUIET, TRANSPORTS
from .conftest import figure

ROUNDS = figure(4, 20)  #: kills per transport
DEATH_BOUND = 2.0  #: how soon after the death the writer must hear of it
LIMIT = 1 << 18  #: the largest message sent

# the shared fixtures, under the names the tests ask for
server, peers, directory, tls_options, survivor = (
    _fault_fixtures.server,
    _fault_fixtures.peers,
    _fault_fixtures.directory,
    _fault_fixtures.tls_options,
    _fault_fixtures.survivor,
)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("survivor", TRANSPORTS, ids=lambda t: t.name, indirect=True)
def test_a_reader_killed_inside_a_message(
    survivor: Survivor, peers: Peers, record_property: Callable[[str, object], None]
) -> None:
    generator = random.Random(survivor.transport.name)
    delays = []
    for _ in range(ROUNDS):
        delays.append(_kill_the_reader(survivor, peers, generator))
        _a_fresh_reader_gets_everything(survivor, peers)
    record_property("kills", ROUNDS)
    if survivor.transport.on_reader_death is not None:
        record_property("max_report_delay_s", round(max(delays), 4))


def _sizes(survivor: Survivor, generator: random.Random) -> list[int]:
    limit = min(survivor.max_message_size, LIMIT)
    if limit == COMPACT:
        return [COMPACT]
    return [generator.randint(HEADER.size, limit) for _ in range(16)]


def _kill_the_reader(survivor: Survivor, peers: Peers, generator: random.Random) -> float:
    """One round: how soon the writer heard of the reader's death (0 where it never does)."""
    channel, reader = survivor.reader(peers, count=1 << 30, interval=0)
    sizes = _sizes(survivor, generator)
    kill_after = generator.randint(1, 40)
    expected = survivor.transport.on_reader_death
    window = DEATH_BOUND if expected is not None else QUIET  # how long to send after the kill
    sent = 0
    killed_at: float | None = None
    error: anyipc.IPCError | None = None
    try:
        while killed_at is None or time.monotonic() - killed_at < window:
            timeout = PATIENCE if killed_at is None else DEATH_BOUND
            channel.send(stamp(sent, sizes[sent % len(sizes)]), timeout=timeout)
            sent += 1
            if killed_at is None and sent >= kill_after:
                killed_at = reader.kill()
    except anyipc.IPCError as exc:
        error, error_at = exc, time.monotonic()
    finally:
        channel.close()
    assert killed_at is not None, f"{error!r} before the reader was killed"
    reader.wait_killed()  # and it found no damaged message
    if expected is None:
        assert error is None, f"{survivor.transport.name}: sends failed with {error!r}"
        return 0.0
    assert type(error) is expected, (
        f"{survivor.transport.name}: the writer got {error!r}, where the transport documents "
        f"{expected.__name__}"
    )
    delay = error_at - killed_at
    assert delay <= DEATH_BOUND, f"the reader's death was reported {delay:.3f} s after it"
    return delay


def _a_fresh_reader_gets_everything(survivor: Survivor, peers: Peers, count: int = 3) -> None:
    channel, reader = survivor.reader(peers, count=count, interval=0)
    size = min(survivor.max_message_size, 1000)
    with channel:
        for seq in range(count):
            channel.send(stamp(seq, size), timeout=PATIENCE)
        assert reader.event("done")["received"] == [[0, count - 1]]
    assert reader.wait_exit() == 0
