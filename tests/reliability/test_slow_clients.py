"""Slow and silent clients (slowloris): a good client is still accepted and served at once.

A raw peer (``_hostile_peers.py``) opens :data:`CROWD` connections to one
listener: half never send a byte, half send one byte every
:data:`TRICKLE_INTERVAL` seconds (a ClientHello on ``tls+``, a setup line on
``shm://``).  The listener's side is one thread serving every connection
with :func:`anyipc.wait` and ``recv(timeout=0)``, echoing what arrives, as a
single-threaded server does.  Once the crowd is accepted (on ``shm://``:
taken in by the rendezvous), a good client connects and round-trips
records carrying a sequence number and a CRC32: its first record must come
back within :data:`SERVED_WITHIN` seconds of its ``connect``.

Where a handshake stands between ``accept`` and the first message, it has a
deadline, and the crowd is closed at it: ``tls+``'s ``handshake_timeout``
(an option; :data:`HANDSHAKE_S` here), and ``shm://``'s rendezvous, which
drops a client that sent no setup line within
:data:`anyipc._shmlink.SETUP_TIMEOUT_S` (a client that trickles one is
refused at its first byte).  Plain ``tcp://`` and ``unix://`` have no
handshake: their connections are accepted and stay the server's to close.

Each test records the good client's first round trip
(``good_client_first_echo_s``) and when the crowd was closed
(``crowd_closed_after_s``) as properties, which
``-o junit_family=xunit1 --junitxml=FILE`` writes out.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import anyipc
from anyipc._shmlink import SETUP_TIMEOUT_S
from anyipc._shmspec import DEFAULT_PROTOCOL

from ..transports.conftest import Children, TLSFiles
from ._hostile_peers import Peer, client_hello, target
from .conftest import figure

CROWD = figure(100, 400)  #: slow clients on one listener, half silent, half trickling
TRICKLE_INTERVAL = 1.0  #: seconds between two bytes of a trickling client
GOOD_RECORDS = figure(10, 1000)
SERVED_WITHIN = 1.0  #: seconds from the good client's connect to its first echo
HANDSHAKE_S = 2.0  #: tls+'s handshake_timeout here
SLACK = 1.5  #: seconds a deadline may be overrun (a busy two-core machine)
PATIENCE = 30.0
Recorder = Callable[[str, object], None]  #: pytest's record_property: figures for --junitxml


@pytest.fixture
def children() -> Iterator[Children]:
    started = Children()
    yield started
    started.reap()


@pytest.fixture
def peer(children: Children) -> Peer:
    return Peer(children)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    return TLSFiles(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def short_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="anyipc-s-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


class EchoLoop:
    """One thread serving ``listener`` and every channel it accepted, through ``anyipc.wait``."""

    def __init__(self, listener: anyipc.Listener) -> None:
        self.listener = listener
        self.channels: list[anyipc.Channel] = []
        self.accepted = 0

    def run(self, until: Callable[[], bool], limit: float = PATIENCE) -> None:
        """Serve until ``until()`` is true (checked between rounds), at most ``limit`` seconds."""
        deadline = time.monotonic() + limit
        while not until():
            assert time.monotonic() < deadline, f"not done within {limit} s"
            for endpoint in anyipc.wait([self.listener, *self.channels], timeout=0.05):
                if isinstance(endpoint, anyipc.Listener):
                    self._accept()
                else:
                    self._echo(endpoint)

    def _accept(self) -> None:
        try:
            channel = self.listener.accept(timeout=0)
        except anyipc.Timeout:  # a rendezvous still in progress
            return
        self.channels.append(channel)
        self.accepted += 1

    def _echo(self, channel: anyipc.Channel) -> None:
        try:
            data = channel.recv(timeout=0)
            channel.send(data, timeout=PATIENCE)
        except anyipc.Timeout:  # part of a frame or a handshake: the rest comes later
            return
        except anyipc.ChannelClosed:  # its end, or its handshake failed: close it
            channel.close()
            self.channels.remove(channel)

    def __enter__(self) -> EchoLoop:
        return self

    def __exit__(self, *exc_info: object) -> None:
        for channel in self.channels:
            channel.close()


def open_crowd(loop: EchoLoop, peer: Peer, trickle: bytes, accepted: int) -> None:
    """:data:`CROWD` slow clients on ``loop``'s listener, served until ``accepted`` are in."""
    peer.request(
        do="crowd",
        target=target(loop.listener.address),
        silent=CROWD // 2,
        trickling=CROWD - CROWD // 2,
        trickle=trickle.hex(),
        interval=TRICKLE_INTERVAL,
    )
    loop.run(peer.answered)
    assert peer.result() == {"opened": CROWD}
    loop.run(lambda: loop.accepted >= accepted)  # then the good client comes


def good_client_is_served_at_once(
    loop: EchoLoop, peer: Peer, uri: str, record_property: Recorder
) -> None:
    """The good client's first record comes back within :data:`SERVED_WITHIN` seconds."""
    peer.request(do="good", uri=uri, count=GOOD_RECORDS)
    loop.run(peer.answered)
    answer = peer.result()
    assert answer.get("ok"), answer
    record_property("good_client_first_echo_s", round(answer["first"], 4))
    assert answer["first"] < SERVED_WITHIN, f"the good client waited {answer['first']} s"


def crowd_closed_after(
    loop: EchoLoop, peer: Peer, hold: float, record_property: Recorder
) -> list[float | None]:
    """Serve ``hold`` seconds more; then how long after opening each slow client was closed."""
    held = time.monotonic() + hold
    loop.run(lambda: time.monotonic() >= held)
    peer.request(do="crowd_report")
    loop.run(peer.answered)
    closed: list[float | None] = peer.result()["closed_after"]
    ended = [c for c in closed if c is not None]
    if ended:
        record_property("crowd_closed_after_s", f"{min(ended):.3f}..{max(ended):.3f}")
    return closed


@pytest.mark.timeout(120)
@pytest.mark.parametrize("scheme", ["tcp", "unix"])
def test_slow_clients_do_not_delay_a_good_one_without_a_handshake(
    peer: Peer, short_dir: Path, scheme: str, record_property: Recorder
) -> None:
    uri = "tcp://127.0.0.1:0" if scheme == "tcp" else f"unix://{short_dir}/s"
    with anyipc.listen(uri) as listener, EchoLoop(listener) as loop:
        open_crowd(loop, peer, b"slow", accepted=CROWD)
        good_client_is_served_at_once(loop, peer, listener.address, record_property)
        closed = crowd_closed_after(loop, peer, TRICKLE_INTERVAL, record_property)
    assert loop.accepted == CROWD + 1  # every slow client accepted at once, and the good one
    assert closed == [None] * CROWD  # no handshake: the connections are the server's to close


@pytest.mark.timeout(120)
def test_slow_tls_handshakes_do_not_delay_a_good_one_and_end_at_their_deadline(
    peer: Peer, tls: TLSFiles, record_property: Recorder
) -> None:
    uri = f"tls+tcp://127.0.0.1:0?cert={tls.server}&handshake_timeout={HANDSHAKE_S}"
    with anyipc.listen(uri) as listener, EchoLoop(listener) as loop:
        open_crowd(loop, peer, client_hello(), accepted=CROWD)  # a ClientHello, byte by byte
        good = f"{listener.address}&ca={tls.ca}&server_hostname=localhost"
        good_client_is_served_at_once(loop, peer, good, record_property)
        closed = crowd_closed_after(loop, peer, HANDSHAKE_S + SLACK, record_property)
    assert loop.accepted == CROWD + 1
    late = [c for c in closed if c is None or not HANDSHAKE_S - 0.2 < c < HANDSHAKE_S + SLACK]
    assert not late, f"slow handshakes closed after {late} s, not at {HANDSHAKE_S} s"


@pytest.mark.timeout(120)
def test_slow_shm_rendezvous_do_not_delay_a_good_one_and_end_at_their_deadline(
    peer: Peer, record_property: Recorder
) -> None:
    setup_line = f"anyipc-shm 2 {4 << 20} {DEFAULT_PROTOCOL}\n".encode()
    with anyipc.listen("shm://") as listener, EchoLoop(listener) as loop:
        open_crowd(loop, peer, setup_line, accepted=0)  # a rendezvous never completes
        good_client_is_served_at_once(loop, peer, listener.address, record_property)
        # the accept that finds silent clients past the deadline drops them
        with pytest.raises(anyipc.Timeout):
            listener.accept(timeout=SETUP_TIMEOUT_S + SLACK)
        closed = crowd_closed_after(loop, peer, 0.0, record_property)
    assert loop.accepted == 1  # the good client: the crowd never completes a rendezvous
    silent, trickling = closed[: CROWD // 2], closed[CROWD // 2 :]
    # a setup line comes whole: a trickling one is refused at its first byte
    assert all(c is not None and c < SLACK for c in trickling), trickling
    late = [
        c for c in silent if c is None or not SETUP_TIMEOUT_S - 0.2 < c < SETUP_TIMEOUT_S + SLACK
    ]
    assert not late, f"silent clients dropped after {late} s, not at {SETUP_TIMEOUT_S} s"
