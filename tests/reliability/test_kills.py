"""Faults: a peer SIGKILLed inside a message, on every transport family.

For each transport of :data:`TRANSPORTS`, round after round, a peer
process sends stamped messages (sequence number and CRC32) to the survivor,
this process, and dies by SIGKILL:

* on a byte stream, the peer writes a few whole ``framed+`` frames and then
  a random number of bytes of the next one (inside its header or its
  payload), and kills itself;
* on every other transport the peer sends messages of random sizes as fast
  as it can, and is killed by this process after a random number of them
  arrived, wherever it is in its next ``send``.

Each round checks that the survivor gets the error its transport documents
(``Transport.on_death``) within :data:`DEATH_BOUND` seconds of the death,
that every message it received before is whole, undamaged and in order
(nothing partial), and then that the endpoint still works: a fresh peer
connects to the same listener or name (a fresh pair for inherited
transports) and does a round trip.  The rounds are the issue's 20 per
transport in the long profile.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import pytest

import anyipc

from . import _fault_fixtures
from ._fault_control import PATIENCE, Peers
from ._fault_messages import COMPACT, HEADER, frame, verify
from ._fault_survivor import Survivor
from ._fault_transports import QUIET, TRANSPORTS, Transport, raw
from .conftest import figure

ROUNDS = figure(4, 20)  #: kills per transport
DEATH_BOUND = 2.0  #: how soon after the death the survivor must hear of it
FRAME_LIMIT = 1 << 18  #: the largest stamped message a cutting peer writes
FLOOD_LIMIT = 1 << 20  #: the largest message a flooding peer sends


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
def test_a_peer_killed_inside_a_message(
    survivor: Survivor, peers: Peers, record_property: Callable[[str, object], None]
) -> None:
    generator = random.Random(survivor.transport.name)
    delays, received = [], 0
    for _ in range(ROUNDS):
        if survivor.transport.framed:
            delay, count = _cut_inside_a_frame(survivor, peers, generator)
        else:
            delay, count = _killed_while_sending(survivor, peers, generator)
        delays.append(delay)
        received += count
        _fresh_round_trip(survivor, peers)
    record_property("kills", ROUNDS)
    record_property("messages_checked", received)
    record_property("max_report_delay_s", round(max(delays), 4))


def _cut_inside_a_frame(
    survivor: Survivor, peers: Peers, generator: random.Random
) -> tuple[float, int]:
    """One round on a byte stream: (how soon the cut was reported, messages received)."""
    offer = survivor.offer()
    limit = min(survivor.max_message_size, FRAME_LIMIT)
    sizes = [generator.randint(HEADER.size, limit) for _ in range(generator.randint(1, 5))]
    cut = generator.randint(1, len(frame(bytes(sizes[-1]))) - 1)
    worker = peers.start("frames", uri=raw(offer.uri), fds=offer.fds, sizes=sizes, cut=cut)
    offer.handed()
    channel = survivor.channel_to(worker)
    received, error, error_at = _receive_until_error(channel)
    cut_at = worker.event("cut")["at"]
    worker.wait_killed()
    _assert_death_reported(survivor.transport, error, error_at - cut_at)
    assert received == list(range(len(sizes) - 1)), "whole frames lost, or a partial one received"
    _recover(survivor, channel)
    return error_at - cut_at, len(received)


def _killed_while_sending(
    survivor: Survivor, peers: Peers, generator: random.Random
) -> tuple[float, int]:
    """One round of messages: (how soon the death was reported, messages received)."""
    offer = survivor.offer()
    limit = min(survivor.max_message_size, FLOOD_LIMIT)
    if limit == COMPACT:
        sizes = [COMPACT]
    else:
        sizes = [generator.randint(HEADER.size, limit) for _ in range(16)]
    kill_after = generator.randint(1, 40)
    worker = peers.start("flood", uri=offer.uri, fds=offer.fds, sizes=sizes)
    offer.handed()
    channel = survivor.channel_to(worker)
    received: list[int] = []
    killed_at: float | None = None
    quiet = QUIET if survivor.transport.on_death is anyipc.Timeout else DEATH_BOUND
    try:
        while True:
            message = channel.recv(timeout=PATIENCE if killed_at is None else quiet)
            received.append(verify(message))
            if killed_at is None and len(received) >= kill_after:
                killed_at = worker.kill()
    except anyipc.IPCError as exc:
        error, error_at = exc, time.monotonic()
    assert killed_at is not None, f"{error!r} before the peer was killed"
    worker.wait_killed()
    _assert_death_reported(survivor.transport, error, error_at - killed_at)
    _assert_in_order(survivor, received)
    _recover(survivor, channel)
    return error_at - killed_at, len(received)


def _receive_until_error(channel: anyipc.Channel) -> tuple[list[int], anyipc.IPCError, float]:
    """The sequence numbers received, then the error that ended it and its time."""
    received: list[int] = []
    try:
        while True:
            received.append(verify(channel.recv(timeout=PATIENCE)))
    except anyipc.IPCError as exc:
        return received, exc, time.monotonic()


def _assert_death_reported(transport: Transport, error: Exception, delay: float) -> None:
    assert type(error) is transport.on_death, (
        f"{transport.name}: the survivor got {error!r}, where the transport documents "
        f"{transport.on_death.__name__}"
    )
    assert delay <= DEATH_BOUND, f"the death was reported {delay:.3f} s after it"


def _assert_in_order(survivor: Survivor, received: list[int]) -> None:
    if survivor.capabilities.lossless:
        assert received == list(range(len(received))), "messages lost, repeated or reordered"
    else:  # udp: loss is allowed, repetition and reordering are not seen on loopback
        assert received == sorted(set(received)), "messages repeated or reordered"


def _recover(survivor: Survivor, channel: anyipc.Channel) -> None:
    """Close a channel the death ended; a broken framed FIFO reader is bound anew."""
    if survivor.transport.verb == "listen":
        channel.close()
    elif survivor.transport.framed and survivor.transport.verb == "bind":
        survivor.reopen()


def _fresh_round_trip(survivor: Survivor, peers: Peers, count: int = 3) -> None:
    """A new peer reaches the same endpoint and is answered (or heard, on simplex ones)."""
    offer = survivor.offer()
    capabilities = survivor.capabilities
    duplex = capabilities.direction is anyipc.Direction.DUPLEX
    connectionless = capabilities.connection is anyipc.Connection.CONNECTIONLESS
    size = min(survivor.max_message_size, 1000)
    worker = peers.start(
        "talk", uri=offer.uri, fds=offer.fds, count=count, size=size, echo=duplex, interval=0
    )
    offer.handed()
    channel = survivor.channel_to(worker)
    for seq in range(count):
        if connectionless:
            message, sender = channel.recv_from(timeout=PATIENCE)
            if duplex:
                channel.send_to(message, sender, timeout=PATIENCE)
        else:
            message = channel.recv(timeout=PATIENCE)
            if duplex:
                channel.send(message, timeout=PATIENCE)
        assert verify(message) == seq
    worker.event("done")
    if capabilities.reports_end:
        with pytest.raises(anyipc.EndOfChannel):
            channel.recv(timeout=PATIENCE)
    if survivor.transport.verb == "listen":
        channel.close()
    assert worker.wait_exit() == 0
