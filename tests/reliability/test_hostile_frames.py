"""Hostile input on the wire: malformed, truncated and oversized frames against every parser.

The listeners that read a length or a structure from their peers are
attacked by a raw peer (a plain socket in a process of its own,
``_hostile_peers.py``):

* ``framed+tcp://`` and ``framed+unix://`` (a 4-byte length prefix): lengths
  over the limit, 2**31 and 2**32-1 (negative as signed), 64-bit lengths,
  an empty frame followed by garbage, a header cut short, a payload cut
  short, and a header announcing the limit followed by a trickle;
* ``tls+tcp://`` and ``tls+unix://``: garbage instead of a ClientHello, a
  truncated ClientHello, a record header and a handshake message announcing
  more than TLS allows;
* ``shm://``'s rendezvous: bad setup lines and descriptors, and a segment
  whose ring a hostile writer scribbled;
* ``anyipc.rpc``'s JSON decoder, behind ``framed+tcp://``.

Each hostile connection must be refused with the documented error (nothing
else escapes), with ``tracemalloc``'s peak under 1 MiB in the process that
parses while it handles the connection (nothing is allocated for what was
merely announced), and closed, so that the raw peer sees its end (``framed+``
and the rendezvous close it themselves, before the application does;
``tls+`` raises the failure from the first ``recv``, and closing the channel
ends the connection); then a good client on the same listener still
round-trips records carrying a sequence number and a CRC32.  ``figure``: the
long profile repeats each attack (:data:`ROUNDS`) and sends more good records
and a longer trickle.  Each test records its allocation peaks (``peak_bytes``)
as properties, which ``-o junit_family=xunit1
--junitxml=FILE`` writes out.
"""

from __future__ import annotations

import json
import shutil
import struct
import tempfile
import threading
import time
import tracemalloc
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import attrs
import pytest

import anyipc
from anyipc import rpc
from anyipc._shmchannel import SEGMENT_HEADER, segment_bytes
from anyipc._shmring import CONTROL_BYTES, ring_bytes
from anyipc._shmsetup import mark_segment
from anyipc._shmspec import DEFAULT_PROTOCOL
from anyipc.transports.framed import DEFAULT_MAX

from ..transports.conftest import Children, TLSFiles
from ._hostile_peers import Peer, check_record, client_hello, target
from .conftest import figure

MiB = 1 << 20
Recorder = Callable[[str, object], None]  #: pytest's record_property: figures for --junitxml
ROUNDS = figure(1, 5)  #: times each attack is repeated on one listener
GOOD_RECORDS = figure(10, 500)  #: records the good client sends after each attack
TRICKLE_BYTES = figure(20, 200)  #: bytes of the trickle, one every TRICKLE_PAUSE seconds
TRICKLE_PAUSE = 0.05
PATIENCE = 10.0  #: seconds any one step may take
WATCH = 5.0  #: seconds a raw peer waits for the listener to close its connection


@attrs.frozen
class Attack:
    """What a raw peer sends, and what the listener's side must make of it."""

    pieces: list[tuple[bytes, float]]  #: bytes, then a pause (seconds)
    shutdown: bool = False  #: the peer ends its side after the pieces
    delivered: tuple[bytes, ...] = ()  #: whole messages due before the refusal
    match: str | None = None  #: in the message of the ConnectionLost that refuses it


def header(length: int, size: int = 4) -> bytes:
    """``length`` as a big-endian length prefix of ``size`` bytes."""
    return length.to_bytes(size, "big")


def once(
    data: bytes,
    *,
    shutdown: bool = False,
    delivered: tuple[bytes, ...] = (),
    match: str | None = None,
) -> Attack:
    """An attack sent in one piece."""
    return Attack([(data, 0.0)], shutdown=shutdown, delivered=delivered, match=match)


OVER = "above this channel's max_message_size"
TRUNCATED = "truncated frame"
FRAMED_ATTACKS = {
    "limit+1": once(header(DEFAULT_MAX + 1) + b"x" * 64, match=OVER),
    "2**31 (negative as signed)": once(header(2**31) + b"x" * 64, match=OVER),
    "2**32-1 (-1 as signed)": once(header(2**32 - 1), match=OVER),
    "2**63 in 8 bytes": once(header(2**63, 8), match=OVER),
    "2**64-1 in 8 bytes": once(header(2**64 - 1, 8), match=OVER),
    # a 4-byte reader sees 2**32 as the length 1, its byte, then 3 bytes of a header
    "2**32 in 8 bytes": once(
        header(2**32, 8), shutdown=True, delivered=(b"\x00",), match=TRUNCATED
    ),
    "0 then garbage": once(header(0) + b"\xfe\xed\xfa\xce" * 256, delivered=(b"",), match=OVER),
    "header cut short, then EOF": once(b"\x00\x01", shutdown=True, match=TRUNCATED),
    "payload cut short, then EOF": once(header(1000) + b"y" * 10, shutdown=True, match=TRUNCATED),
    "the limit announced, then a trickle": Attack(
        [(header(DEFAULT_MAX), TRICKLE_PAUSE)] + [(b"z", TRICKLE_PAUSE)] * TRICKLE_BYTES,
        shutdown=True,
        match=TRUNCATED,
    ),
}


@pytest.fixture
def children() -> Iterator[Children]:
    started = Children()
    yield started
    started.reap()


@pytest.fixture
def peer(children: Children) -> Peer:
    return Peer(children)


@pytest.fixture
def short_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="anyipc-h-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    return TLSFiles(tmp_path_factory.mktemp("tls"))


@contextmanager
def allocation_peak() -> Iterator[list[int]]:
    """Trace this process's allocations; the list holds the peak (bytes) afterwards."""
    peak: list[int] = []
    tracemalloc.start()
    try:
        yield peak
    finally:
        peak.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()


def attack(peer: Peer, where: dict[str, object], hostile: Attack) -> None:
    """Start ``hostile`` in the raw ``peer`` against ``where`` (it answers when it ends)."""
    peer.request(
        do="raw",
        target=where,
        pieces=[[data.hex(), pause] for data, pause in hostile.pieces],
        shutdown=hostile.shutdown,
        watch=WATCH,
    )


def echo_until_end(channel: anyipc.Channel) -> int:
    """Send back what arrives until the peer's end; records are checked on MESSAGE channels."""
    count = 0
    message = channel.capabilities.boundaries is anyipc.Boundaries.MESSAGE
    while True:
        try:
            data = channel.recv(timeout=PATIENCE)
        except anyipc.EndOfChannel:
            return count
        if message:
            check_record(data, count)
        channel.send(data, timeout=PATIENCE)
        count += 1


def good_client_is_served(listener: anyipc.Listener, peer: Peer, uri: str | None = None) -> None:
    """A good client on ``listener`` round-trips :data:`GOOD_RECORDS` checked records."""
    peer.request(do="good", uri=uri or listener.address, count=GOOD_RECORDS)
    with listener.accept(timeout=PATIENCE) as channel:
        echoed = echo_until_end(channel)
    answer = peer.result(PATIENCE)
    assert answer.get("ok"), answer
    if channel.capabilities.boundaries is anyipc.Boundaries.MESSAGE:
        assert echoed == GOOD_RECORDS


# -- framed+ ------------------------------------------------------------------------------
@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", FRAMED_ATTACKS)
@pytest.mark.parametrize("scheme", ["framed+tcp", "framed+unix"])
def test_a_framed_listener_refuses_a_hostile_frame_before_allocating(
    peer: Peer, short_dir: Path, scheme: str, name: str, record_property: Recorder
) -> None:
    hostile = FRAMED_ATTACKS[name]
    uri = "framed+tcp://127.0.0.1:0" if scheme == "framed+tcp" else f"{scheme}://{short_dir}/h"
    with anyipc.listen(uri) as listener:
        for _ in range(ROUNDS):
            attack(peer, target(listener.address), hostile)
            delivered: list[bytes] = []
            with allocation_peak() as peak, listener.accept(timeout=PATIENCE) as server:
                with pytest.raises(anyipc.ConnectionLost, match=hostile.match):
                    while True:
                        try:
                            delivered.append(server.recv(timeout=TRICKLE_PAUSE * 5))
                        except anyipc.Timeout:
                            continue  # a trickle: the frame is not whole yet
                answer = peer.result(PATIENCE + WATCH)  # the channel is still open here
            assert delivered == list(hostile.delivered)
            assert peak[0] < MiB, f"{peak[0]} bytes allocated for a hostile frame"
            record_property("peak_bytes", peak[0])
            assert answer["closed"], "the listener's side kept the hostile connection open"
            good_client_is_served(listener, peer)


# -- tls+ ---------------------------------------------------------------------------------
HELLO = client_hello()
TLS_ATTACKS = {
    "an HTTP request instead of a ClientHello": once(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
    "random bytes instead of a ClientHello": once(bytes((n * 37 + 11) % 256 for n in range(512))),
    "a truncated ClientHello, then EOF": once(
        HELLO[: len(HELLO) // 2], shutdown=True, match="in the middle of the TLS handshake"
    ),
    "a record of 65535 bytes announced": once(b"\x16\x03\x01\xff\xff" + b"\x01" * 100),
    "a handshake message of 16 MiB announced": once(b"\x16\x03\x01\x00\x04\x01\xff\xff\xff"),
}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", TLS_ATTACKS)
@pytest.mark.parametrize("scheme", ["tls+tcp", "tls+unix"])
def test_a_tls_listener_refuses_a_hostile_handshake(
    peer: Peer, short_dir: Path, tls: TLSFiles, scheme: str, name: str, record_property: Recorder
) -> None:
    hostile = TLS_ATTACKS[name]
    location = "127.0.0.1:0" if scheme == "tls+tcp" else f"{short_dir}/t"
    with anyipc.listen(f"{scheme}://{location}?cert={tls.server}") as listener:
        good = f"{listener.address}&ca={tls.ca}&server_hostname=localhost"
        for _ in range(ROUNDS):
            attack(peer, target(listener.address), hostile)
            with allocation_peak() as peak:
                server = listener.accept(timeout=PATIENCE)
                with server, pytest.raises(anyipc.ConnectionLost, match=hostile.match):
                    server.recv(timeout=PATIENCE)
            assert peak[0] < MiB, f"{peak[0]} bytes allocated for a hostile handshake"
            record_property("peak_bytes", peak[0])
            assert peer.result(PATIENCE + WATCH)["closed"]
            good_client_is_served(listener, peer, good)


# -- shm:// rendezvous --------------------------------------------------------------------
RING = 4096  #: the listener's ring size: small segments for the attacks
SEGMENT = segment_bytes(RING)
SETUP = f"anyipc-shm 2 {RING} {DEFAULT_PROTOCOL}\n".encode()


def segment_image(name: str, *, scribbled: bool = False) -> list[list[object]]:
    """A segment for the listener ``name`` as (offset, hex) pieces; its inbound ring scribbled."""
    head = bytearray(SEGMENT_HEADER)
    listener = types.SimpleNamespace(scheme="shm", tag=name)  # what the header names
    mark_segment(memoryview(head), listener)  # type: ignore[arg-type]
    image: list[list[object]] = [[0, head.hex()]]
    if scribbled:  # the ring the listener reads: a head 2**40 ahead, a record of 8 bytes
        inbound = SEGMENT_HEADER + ring_bytes(RING)
        image.append([inbound, struct.pack("=Q", 2**40).hex()])
        image.append([inbound + CONTROL_BYTES, struct.pack("=Q", 8).hex()])
    return image


@attrs.frozen
class Handoff:
    """A rendezvous client's setup line and descriptors; ``refusal``: what it is told."""

    line: bytes
    fds: Callable[[str], list[dict[str, object]]] = lambda name: []
    refusal: str | None = "refused"  #: in the line the listener writes back (None: nothing)
    accepted: bool = False  #: accepted, then its channel fails on recv


SHM_ATTACKS = {
    "an HTTP request instead of a setup line": Handoff(b"GET / HTTP/1.0\r\n\r\n"),
    "a setup line of 4 KiB": Handoff(SETUP[:-1] + b" " + b"9" * 4000 + b"\n"),
    "connect, then EOF": Handoff(b"", refusal=None),
    "a ring size it did not ask for": Handoff(
        SETUP.replace(str(RING).encode(), str(2**62).encode()), refusal="rings hold size="
    ),
    "no segment": Handoff(SETUP, refusal="no segment descriptor"),
    "a pipe for a segment": Handoff(SETUP, lambda name: [{"pipe": 1}], f"not {SEGMENT} bytes"),
    "a segment of the wrong size": Handoff(
        SETUP, lambda name: [{"memfd": RING}], f"not {SEGMENT} bytes"
    ),
    "a segment without the header": Handoff(
        SETUP, lambda name: [{"memfd": SEGMENT}], "not an anyipc segment"
    ),
    "ten segments": Handoff(
        SETUP, lambda name: [{"memfd": SEGMENT, "image": segment_image(name)}] * 10
    ),
    "a ring its writer scribbled": Handoff(
        SETUP,
        lambda name: [{"memfd": SEGMENT, "image": segment_image(name, scribbled=True)}],
        refusal=None,
        accepted=True,
    ),
}


def accept_while_waiting(listener: anyipc.Listener, peer: Peer) -> list[str]:
    """Accept until the peer answers; what each accepted channel's ``recv`` raised."""
    failures: list[str] = []
    deadline = time.monotonic() + PATIENCE + WATCH
    while not peer.answered():
        assert time.monotonic() < deadline, "the rendezvous never ended the hostile client"
        try:
            channel = listener.accept(timeout=0.1)
        except anyipc.Timeout:
            continue
        with channel, pytest.raises(anyipc.ConnectionLost) as lost:
            channel.recv(timeout=PATIENCE)
        failures.append(str(lost.value))
    return failures


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", SHM_ATTACKS)
def test_the_shm_rendezvous_refuses_a_hostile_client(
    peer: Peer, name: str, record_property: Recorder
) -> None:
    hostile = SHM_ATTACKS[name]
    with anyipc.listen(f"shm://?size={RING}") as listener:
        shm_name = anyipc.Address.parse_syntax(listener.address).location
        for _ in range(ROUNDS):
            peer.request(
                do="raw",
                target=target(listener.address),
                pieces=[[hostile.line.hex(), 0.0]],
                fds=hostile.fds(shm_name),
                shutdown=not hostile.line,
                watch=WATCH,
            )
            with allocation_peak() as peak:
                failures = accept_while_waiting(listener, peer)
            answer = peer.result()
            assert answer["closed"], "the listener kept the hostile client"
            heard = bytes.fromhex(answer["heard"]).decode()
            if hostile.refusal is None:
                assert heard == ""
            else:
                assert heard.startswith("refused: ") and hostile.refusal in heard, heard
            assert len(failures) == hostile.accepted, failures
            assert all("does not fit" in f or "cannot both be" in f for f in failures), failures
            assert peak[0] < MiB, f"{peak[0]} bytes allocated for a hostile client"
            record_property("peak_bytes", peak[0])
            good_client_is_served(listener, peer)


# -- anyipc.rpc's JSON decoder ------------------------------------------------------------
Reply = tuple[int, str]  #: a reply's id, and "result" or the type of its error
DEEP = b'{"id": 12, "method": "echo", "params": {"value": ' + b'{"a": ' * 300 + b"0" + b"}" * 302
RPC_ATTACKS: list[tuple[bytes, Reply | None]] = [  # a request, and its reply (None: dropped)
    (b"\xff\xfe not UTF-8", None),
    (b"[" * 60000, None),  # nested deeper than any decoder recurses
    (b'{"id": 1, "method": "echo", "params": ' + b"[" * 60000, None),
    (b'{"id": ' + b"9" * 5000 + b', "method": "echo"}', None),  # an id too long to convert
    (b'{"id": 2, "method": "echo", "params": [NaN]}', None),
    (b"\x00" * 1000, None),
    (b'{"id": 7, "method": 5}', (7, "InvalidRequest")),
    (b'{"id": 8, "method": "echo", "params": "x"}', (8, "InvalidRequest")),
    (b'{"id": 9, "method": "nothing-of-the-kind"}', (9, "MethodNotFound")),
    (b'{"id": 10, "method": "echo", "params": [1, 2, 3]}', (10, "InvalidParams")),
    (b'{"id": 11, "method": "echo", "params": [1e999]}', (11, "InvalidResult")),
    (DEEP, (12, "result")),  # deep, but within what JSON decoders take
    (b'{"id": "\\ud800", "method": "echo", "params": [1]}', None),  # no reply can carry its id
    (b'{"id": 13, "method": "echo", "params": ["\\udc80"]}', (13, "InvalidResult")),
]


def framed(message: bytes) -> bytes:
    """``message`` as a ``framed+`` frame."""
    return header(len(message)) + message


def replies(stream: bytes) -> list[dict[str, object]]:
    """The JSON replies in a ``framed+`` byte stream (a cut-off last one is left out)."""
    found = []
    while len(stream) >= 4 and len(stream) >= 4 + int.from_bytes(stream[:4], "big"):
        end = 4 + int.from_bytes(stream[:4], "big")
        found.append(json.loads(stream[4:end]))
        stream = stream[end:]
    return found


@pytest.mark.timeout(120)
def test_the_rpc_decoder_answers_or_drops_hostile_requests_and_serves_on(
    peer: Peer, record_property: Recorder
) -> None:
    service = rpc.Service({"echo": lambda value: value})
    sent = b"".join(framed(request) for request, _ in RPC_ATTACKS)
    hostile = Attack([(sent, 0.5), (header(DEFAULT_MAX + 1), 0.0)])
    with anyipc.listen("framed+tcp://127.0.0.1:0") as listener:
        for _ in range(ROUNDS):
            attack(peer, target(listener.address), hostile)
            with allocation_peak() as peak, listener.accept(timeout=PATIENCE) as server:
                service.handle(server)  # returns once the oversized frame breaks the channel
                answer = peer.result(PATIENCE + WATCH)
            assert answer["closed"]
            assert peak[0] < MiB, f"{peak[0]} bytes allocated for hostile requests"
            record_property("peak_bytes", peak[0])
            got = [reply_kind(reply) for reply in replies(bytes.fromhex(answer["heard"]))]
            assert got == [reply for _, reply in RPC_ATTACKS if reply is not None]
            rpc_client_is_served(listener, peer, service)


def reply_kind(reply: dict[str, object]) -> Reply:
    """The id of a decoded reply, and "result" or its error's type."""
    error = reply.get("error")
    kind = error.get("type") if isinstance(error, dict) else "result"
    assert isinstance(reply["id"], int) and isinstance(kind, str), reply
    return reply["id"], kind


def rpc_client_is_served(listener: anyipc.Listener, peer: Peer, service: rpc.Service) -> None:
    """A good ``rpc.Client`` on ``listener`` calls ``echo`` with :data:`GOOD_RECORDS` records."""
    peer.request(do="rpc", uri=listener.address, count=GOOD_RECORDS)
    with listener.accept(timeout=PATIENCE) as server:
        worker = threading.Thread(target=service.handle, args=(server,))
        worker.start()
        answer = peer.result(PATIENCE)
        worker.join(PATIENCE)
    assert answer.get("ok"), answer
    assert not worker.is_alive()
