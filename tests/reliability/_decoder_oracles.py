"""Every decoder of peer input, run on one fuzzed input and held to what it may do.

``test_fuzz_decoders.py`` (hypothesis) and ``fuzz_atheris.py`` (atheris)
feed the same checks.  Each ``check_*`` runs a decoder on its input and
raises ``AssertionError`` when the decoder breaks its contract; the errors
the contract names are the decoder's answer and pass.  The contracts:

* ``framed+`` (:class:`FramedDecoder`): whatever bytes arrive, cut however,
  ``recv`` returns exactly the messages a plain reading of the format finds
  (:func:`reference_frames`) and then ``EndOfChannel`` (the stream ended
  between frames) or ``ConnectionLost`` (a length over the limit, or a
  frame cut short), nothing else; and (``traced``) it allocates at most a
  few times what arrived, whatever the lengths say.
* URIs (:func:`check_uri`): ``Address.parse_syntax`` and ``Address.parse``
  raise only ``InvalidAddress``, and what ``parse`` accepts round-trips.
* Options (:func:`check_option`): ``Option.coerce`` raises only
  ``InvalidAddress``, and what it returns is of the option's kind, within
  its choices and bounds.
* Shared-memory rings (:func:`check_ring`): a consumer reading a control
  block and records a hostile peer wrote gets records of at most
  ``max_message`` bytes, never more than the ring holds, or
  ``CorruptRing``; nothing else.
* The rendezvous (:func:`check_setup`): ``parse_setup`` raises only
  ``ValueError``, ``belongs_to`` answers a bool.
* ``anyipc.rpc`` (:func:`check_rpc`): requests and replies decode or raise
  ``ProtocolError``; a service answers with a well-formed reply or nothing.
"""

from __future__ import annotations

import json
import logging
import mmap
import os
import struct
import tracemalloc
from collections.abc import Sequence

import anyipc
from anyipc import rpc
from anyipc._options import Option
from anyipc._registry import registry
from anyipc._rpc_wire import decode_reply, decode_request
from anyipc._shmlock import LOCK_FREE_PROTOCOL, LOCKED_PROTOCOL
from anyipc._shmring import RECORD_HEADER, CorruptRing, Ring, ring_bytes
from anyipc._shmsetup import Terms, belongs_to, parse_setup
from anyipc._shmspec import CAPABILITIES
from anyipc.transports.framed import DEFAULT_MAX

__all__ = [
    "OPTIONS",
    "RING_CAPACITY",
    "FramedDecoder",
    "check_option",
    "check_ring",
    "check_rpc",
    "check_setup",
    "check_uri",
    "quiet_rpc_log",
    "reference_frames",
]

HEADER = 4
RING_CAPACITY = 4096  #: the data area of the ring under test


def reference_frames(stream: bytes, limit: int = DEFAULT_MAX) -> tuple[list[bytes], str]:
    """The messages of a ``framed+`` stream read plainly, and how it ends: "end" or "lost"."""
    messages = []
    while stream:
        if len(stream) < HEADER:
            return messages, "lost"
        length = int.from_bytes(stream[:HEADER], "big")
        if length > limit or len(stream) < HEADER + length:
            return messages, "lost"
        messages.append(stream[HEADER : HEADER + length])
        stream = stream[HEADER + length :]
    return messages, "end"


class FramedDecoder:
    """A ``framed+mem://`` stream listener, whose accepted channels decode what a raw end sends."""

    def __init__(self) -> None:
        name = f"fuzz-framed-{os.getpid()}-{id(self)}"
        self._listener = anyipc.listen(f"framed+mem://{name}?boundaries=stream")
        self._raw_uri = f"mem://{name}?boundaries=stream"

    def close(self) -> None:
        self._listener.close()

    def check(self, chunks: Sequence[bytes], *, traced: bool = False) -> None:
        """Send ``chunks`` raw, end the stream, and check what the framed end makes of it.

        ``traced``: also check, with ``tracemalloc``, that decoding allocated
        at most four times what arrived, and 256 KiB.
        """
        stream = b"".join(chunks)
        expected, ending = reference_frames(stream)
        with anyipc.connect(self._raw_uri) as raw, self._listener.accept(timeout=5) as framed:
            for chunk in chunks:
                if chunk:
                    raw.send(chunk, timeout=5)
            raw.close()
            if traced:
                tracemalloc.start()
            try:
                received, ended = _drain(framed)
                peak = tracemalloc.get_traced_memory()[1]
            finally:
                if traced:
                    tracemalloc.stop()
        assert peak <= 4 * len(stream) + (256 << 10), f"{peak} bytes for {len(stream)} received"
        assert received == expected, "the messages differ from the format's"
        assert ended == ending, f"the stream's end was {ended}, not {ending}"


def _drain(channel: anyipc.Channel) -> tuple[list[bytes], str]:
    """Every message until the channel's end, and which end: "end" or "lost"."""
    received: list[bytes] = []
    try:
        while True:
            received.append(channel.recv(timeout=5))
    except anyipc.EndOfChannel:
        return received, "end"
    except anyipc.ConnectionLost:
        return received, "lost"


def check_uri(text: str) -> None:
    """``text`` parses, or is ``InvalidAddress``; a parsed address round-trips through str()."""
    try:
        anyipc.Address.parse_syntax(text)
    except anyipc.InvalidAddress:
        pass
    try:
        address = anyipc.Address.parse(text)
    except anyipc.InvalidAddress:
        return
    written = str(address)
    assert anyipc.Address.parse(written) == address, f"{text!r} -> {written!r} does not round-trip"


def _declared_options() -> list[Option]:
    found: dict[tuple[str, str], Option] = {}
    reg = registry()
    for table in (reg.transports(), reg.layers()):
        for name, provided in table.items():
            for option in provided.spec.options:
                found[(name, option.name)] = option
    return [found[key] for key in sorted(found)]


OPTIONS = _declared_options()  #: every option of every installed transport and layer


def check_option(option: Option, raw: object) -> None:
    """``option.coerce(raw)`` is ``InvalidAddress`` or a value the option allows."""
    try:
        value = option.coerce(raw)
    except anyipc.InvalidAddress:
        return
    assert isinstance(value, option.kind), f"{option.name}: {raw!r} became {value!r}"
    if option.choices:
        assert value in option.choices, f"{option.name}: {value!r} is not a choice"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        assert option.minimum is None or value >= option.minimum, f"{option.name}={value}"
        assert option.maximum is None or value <= option.maximum, f"{option.name}={value}"


_RING_MEMORY = mmap.mmap(-1, ring_bytes(RING_CAPACITY))  # page-aligned, reused by every check
_RING_OPERATIONS = ("read", "read_many", "read_view", "readable")
_HEAD, _TAIL, _BLOCKED = 0, 64, 192  # byte offsets of control words (see anyipc._shmring)


def check_ring(
    control: Sequence[int], first: int, lengths: Sequence[int], fill: int, operations: bytes
) -> None:
    """A consumer on a ring its peer scribbled reads sane records or raises ``CorruptRing``.

    ``control`` is the head, the tail and the producer's "blocked" word;
    the data area is the byte ``fill`` with the length words ``lengths``
    from slot ``first`` on.  Each byte of ``operations`` is one consumer
    operation (its value modulo 4 picks one of :data:`_RING_OPERATIONS`,
    and sets how many records ``read_many`` asks for); they run until one
    finds the ring empty or corrupt.
    """
    _RING_MEMORY[:] = bytes([fill]) * len(_RING_MEMORY)
    for offset, value in zip((_HEAD, _TAIL, _BLOCKED), control, strict=False):
        struct.pack_into("=Q", _RING_MEMORY, offset, value)
    for slot, value in enumerate(lengths, start=first):
        struct.pack_into("=Q", _RING_MEMORY, 256 + 8 * (slot % (RING_CAPACITY // 8)), value)
    memory = memoryview(_RING_MEMORY)
    ring = Ring(memory, RING_CAPACITY)
    records = 0
    try:
        for operation in operations:
            got = _operate(ring, _RING_OPERATIONS[operation % 4], 1 + 3 * operation)
            if got is None:
                break
            assert all(len(payload) <= ring.max_message for payload in got), "a record too long"
            records += len(got)
            assert records <= RING_CAPACITY // RECORD_HEADER, f"{records} records from one ring"
    except CorruptRing:
        pass
    finally:
        ring.release()
        memory.release()


def _operate(ring: Ring, name: str, count: int) -> list[bytes] | None:
    """What one consumer operation reads (``None``: the ring is empty)."""
    if name == "read_many":
        return ring.try_read_many(count) or None
    if name == "read_view":
        view = ring.try_read_view()
        return None if view is None else [bytes(view)]
    if name == "readable":
        return [] if ring.readable() else None
    payload = ring.try_read()
    return None if payload is None else [payload]


_SETUP_TERMS = {
    protocol: Terms(
        scheme="shm",
        name="fuzz",
        tag="fuzz",
        capacity=RING_CAPACITY,
        spin=0.0,
        mode=0o600,
        capabilities=CAPABILITIES,
        uri="shm://fuzz",
        protocol=protocol,
    )
    for protocol in (LOCK_FREE_PROTOCOL, LOCKED_PROTOCOL)
}


def check_setup(line: bytes, fds: list[int], segment: bytes, locked: bool) -> None:
    """The rendezvous reads any setup line and segment header without an unexpected error."""
    terms = _SETUP_TERMS[LOCKED_PROTOCOL if locked else LOCK_FREE_PROTOCOL]
    try:
        handoff, lock_fd = parse_setup(line, fds, terms)
    except ValueError:
        pass
    else:
        assert set(handoff.fds) <= set(fds) and (lock_fd is None or lock_fd in fds)
        assert isinstance(handoff.token, str) and " " not in handoff.token
    assert belongs_to(memoryview(segment), terms) in (True, False)


_SERVICE = rpc.Service({"echo": lambda value: value})


def quiet_rpc_log() -> logging.Logger:
    """The ``anyipc.rpc`` logger, silenced (it warns of every dropped request); restore it."""
    logger = logging.getLogger("anyipc.rpc")
    logger.disabled = True
    return logger


def check_rpc(data: bytes) -> None:
    """Requests and replies decode or are ``ProtocolError``; the service's answer is sound."""
    for decode in (decode_request, decode_reply):
        try:
            decoded = decode(data)
        except rpc.ProtocolError:
            continue
        assert isinstance(decoded.id, (int, str)) and not isinstance(decoded.id, bool)
    answer = _SERVICE.answer(data, max_size=1 << 16)
    if answer is not None:
        reply = decode_reply(answer)
        assert reply.problem is None, reply
        assert reply.id == json.loads(data)["id"]
