"""Faults: an owner SIGKILLed again and again, and restarted on the same URI each time.

For every named transport, round after round, a fresh process listens on
(or binds) one fixed URI, serves a client of this process, and is SIGKILLed
while that client is connected (for listeners, together with a client
process it never accepted), so that each death strands what the owner held:
socket files, a FIFO, a queue, unattached segments, ring files.  Each restart must
succeed with no cleanup by anyone, and its endpoint must work.  While an
owner lives, this process tries to take its URI: always
:class:`~anyipc.AddressInUse`, and the owner goes on serving (the negative
control: a live owner's objects are never taken).

After the last kill this process restarts the URI itself, does a round
trip with a peer process, and closes: then nothing of any owner is left
(the name answers nobody, the socket file or FIFO is gone, and the per-test
leak check finds no /dev/shm entry or SysV object).  The rounds are the
issue's 20 per transport in both profiles (they take milliseconds each).
"""

from __future__ import annotations

import random
import socket
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import attrs
import pytest

import anyipc

from . import _fault_fixtures
from ._fault_control import PATIENCE, Peers, Worker
from ._fault_messages import stamp, verify
from .conftest import figure

RESTARTS = figure(20, 20)  #: kills and restarts per transport


@attrs.frozen
class Named:
    """A named transport as restarted here: its fixed URI, and how an owner opens it."""

    name: str
    uri: str  #: ``{dir}``: a private directory; ``{token}``: a fresh word; ``{key}``, ``{port}``
    verb: str  #: ``listen`` or ``bind``
    path: str | None = None  #: the file the owner creates, under ``{dir}``

    @property
    def scheme(self) -> str:
        """The transport's scheme (byte streams carry messages with ``framed+``)."""
        return self.uri.split("://", 1)[0].rpartition("+")[2]


NAMED = [
    Named("unix", "framed+unix://{dir}/restart.sock", "listen", "restart.sock"),
    Named("unix-abstract", "framed+unix://@anyipc-restart-{token}", "listen"),
    Named("unix-seqpacket", "unix-seqpacket://{dir}/restart.sock", "listen", "restart.sock"),
    Named("unix-dgram", "unix-dgram://{dir}/restart.sock", "bind", "restart.sock"),
    Named("fifo", "framed+fifo://{dir}/restart.fifo", "bind", "restart.fifo"),
    Named("posixmq", "posixmq://anyipc-restart-{token}", "bind"),
    Named("sysvmq", "sysvmq://{key}", "bind"),
    Named("shm", "shm://anyipc-restart-{token}", "listen"),
    Named("sysvshm", "sysvshm://{key}", "listen"),
    Named("mmap", "mmap://{dir}/rings", "listen", "rings"),
    Named("tcp", "framed+tcp://127.0.0.1:{port}", "listen"),
]


# the shared fixtures, under the names the tests ask for
server, peers, directory = _fault_fixtures.server, _fault_fixtures.peers, _fault_fixtures.directory


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _fixed_uri(named: Named, directory: Path) -> str:
    key = random.SystemRandom().randrange(1, 1 << 32)
    return named.uri.format(
        dir=directory, token=uuid.uuid4().hex[:16], key=f"{key:#010x}", port=_free_port()
    )


def _open(uri: str, verb: str) -> anyipc.Listener | anyipc.Channel:
    return anyipc.listen(uri) if verb == "listen" else anyipc.bind(uri)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("named", NAMED, ids=lambda n: n.name)
def test_an_owner_killed_twenty_times_restarts_on_the_same_uri(
    named: Named, peers: Peers, directory: Path, record_property: Callable[[str, object], None]
) -> None:
    unavailable = anyipc.transports()[named.scheme].unavailable
    if unavailable is not None:
        pytest.skip(f"{named.scheme}:// is unavailable here: {unavailable}")
    uri = _fixed_uri(named, directory)
    slowest = 0.0
    for restart in range(RESTARTS):
        started = time.monotonic()
        owner = peers.start("serve", uri=uri, verb=named.verb)
        try:
            owner.event("ready")
            slowest = max(slowest, time.monotonic() - started)
        except AssertionError as exc:
            raise AssertionError(f"restart {restart} of {uri} failed: {exc}") from None
        seq = 3 * restart
        with ExitStack() as clients:
            busy = _round_trip(clients, uri, owner, seq)  # keeps a listener owner busy
            if named.verb == "listen":  # sent, and gone before it is accepted
                with anyipc.connect(uri) as early:
                    early.send(stamp(seq + 1, 64), timeout=PATIENCE)
            with pytest.raises(anyipc.AddressInUse):  # the negative control
                _open(uri, named.verb).close()
            if named.verb == "listen":
                busy.close()
                _heard(owner, seq + 1)  # what waited for the owner is still there
            _round_trip(clients, uri, owner, seq + 2)  # and the owner still serves
            doomed = [owner]
            if named.verb == "listen":  # a client never accepted, killed too: more to strand
                doomed.append(peers.start("linger", uri=uri))
                doomed[-1].event("connected")
            for worker in doomed:
                worker.kill()
            for worker in doomed:
                worker.wait_killed()
    record_property("restarts", RESTARTS)
    record_property("slowest_restart_s", round(slowest, 4))
    _restart_here_and_close(uri, named, peers)
    with pytest.raises(anyipc.ConnectionLost):  # nobody owns the name any more
        anyipc.connect(uri).close()
    if named.path is not None:
        assert not (directory / named.path).exists(), f"{named.path} was left behind"


def _round_trip(clients: ExitStack, uri: str, owner: Worker, seq: int) -> anyipc.Channel:
    """A client of this process reaches the owner; it stays open (the caller closes it)."""
    client = clients.enter_context(anyipc.connect(uri))
    message = stamp(seq, 64)
    client.send(message, timeout=PATIENCE)
    if client.capabilities.direction is anyipc.Direction.DUPLEX:
        assert client.recv(timeout=PATIENCE) == message
    _heard(owner, seq)
    return client


def _heard(owner: Worker, seq: int) -> None:
    """Wait until the owner reports that it received message ``seq``."""
    while owner.event("received")["seq"] != seq:
        pass


def _restart_here_and_close(uri: str, named: Named, peers: Peers) -> None:
    """The last restart, in this process: a peer's round trip, then an orderly close."""
    with _open(uri, named.verb) as endpoint:
        duplex = endpoint.capabilities.direction is anyipc.Direction.DUPLEX
        talker = peers.start("talk", uri=uri, count=3, size=64, echo=duplex, interval=0)
        if isinstance(endpoint, anyipc.Listener):
            _answer_first_live(endpoint, duplex)
        else:
            talker.event("connected")
            _answer(endpoint, duplex)
        talker.event("done")


def _answer_first_live(listener: anyipc.Listener, duplex: bool) -> None:
    """Answer the first connection whose peer lives.

    An ``mmap://`` listener first hands out the ring files that a dead
    predecessor and a dead client left: their unreceived messages (none
    here), then their end.  Those are closed.
    """
    while True:
        with listener.accept(timeout=PATIENCE) as channel:
            try:
                first = channel.recv(timeout=PATIENCE)
            except (anyipc.EndOfChannel, anyipc.ConnectionLost):
                continue
            _answer(channel, duplex, first)
            return


def _answer(channel: anyipc.Channel, duplex: bool, first: bytes | None = None) -> None:
    """Receive the talker's 3 messages (``first`` already received) and echo them if duplex."""
    connectionless = channel.capabilities.connection is anyipc.Connection.CONNECTIONLESS
    for seq in range(3):
        if connectionless:
            message, sender = channel.recv_from(timeout=PATIENCE)
            channel.send_to(message, sender, timeout=PATIENCE)
        else:
            message = first if seq == 0 and first is not None else channel.recv(timeout=PATIENCE)
            if duplex:
                channel.send(message, timeout=PATIENCE)
        assert verify(message) == seq
