"""``framed+`` — message boundaries over any byte stream (``framed+tcp://``, ``framed+unix://``).

Wire format, byte for byte.  Each message is one frame: a 4-byte header
holding the payload's length as an unsigned 32-bit big-endian integer,
then exactly that many payload bytes.  Frames follow each other with
nothing in between: no magic, version, padding or trailer.  ``b"hi"`` is
``00 00 00 02 68 69``; the empty message is ``00 00 00 00``, a message like
any other.  Any program that writes ``struct.pack("!I", len(m)) + m`` and
reads the same is a peer.

Option ``max_message_size`` (bytes; default 16 MiB = 16777216; 0 to
2**32-1).  Over a transport whose endpoint several writers share
(``TransportSpec.atomic_write``, e.g. ``fifo://``: ``PIPE_BUF``), a frame
must be one atomic write so that writers' messages never mix: there the
default is the atomic size minus the header (4092 bytes for a FIFO), and a
larger value is refused with :class:`~anyipc.InvalidAddress`.  Sending
more raises :class:`~anyipc.MessageTooLarge` before anything is sent.  A
received header announcing more is checked before anything is allocated
for the body and raises :class:`~anyipc.ConnectionLost` naming the limit;
the stream cannot be resynchronised, so the channel is broken from then on
(its inner channel is closed, every later call raises ``ConnectionLost``;
``close()`` it).

Receiving.  ``recv`` returns whole messages only.  The end of the stream
exactly between frames is :class:`~anyipc.EndOfChannel`; anywhere inside a
frame (header or payload) it is ``ConnectionLost`` ("truncated frame"),
never a partial message.  A ``recv`` that times out in the middle of a frame
keeps what arrived, and the next ``recv`` continues it: nothing is lost.
A payload's buffer grows with what arrives (from 64 KiB, doubling, up to
the announced length), so a header announcing a large message costs
memory only as its bytes come: a peer that announces 16 MiB and sends a
trickle makes this end hold about twice the trickle, never 16 MiB.
Payloads are read straight into that buffer when the inner channel offers
``recv_into`` (the socket and pipe transports do).

Sending.  Header and payload go out while the channel's send lock is held,
so frames never interleave: as one stream send for payloads up to 64 KiB,
as the header and then the uncopied payload above that.  On
:class:`~anyipc.Timeout`, ``sent`` counts the frame bytes (header included)
already written to the stream.  ``sent == 0``: the message was not sent.
``sent > 0``: the frame is committed; its remainder is kept and written
first by the next ``send``, so the message arrives whole once the channel
is used again (closing it instead truncates the frame: the peer sees
``ConnectionLost``).  A send that times out while still writing such a
remainder raises ``Timeout`` with ``sent == 0``: its own message was not
sent.

Capabilities: ``boundaries`` MESSAGE and ``max_message_size`` from the
option; everything else is the inner transport's.  Readiness: ``fileno()``
and :func:`anyipc.wait` use the inner channel's descriptor (or its
readiness), and a channel holding a complete frame already received is
ready without it; ``poll_interval``, at which :func:`anyipc.wait`
re-checks the channel, is the inner channel's (a ``tls+`` handshake in
progress has one).  A readable descriptor may hold only part of a frame, so
a ``recv`` after ``wait`` may still wait for the rest (give it a timeout).
``address`` and ``peer`` are the inner ones with the ``framed+`` prefix,
and ``fds`` the inner channel's (the descriptors a child must inherit to
adopt an inherited end; empty where there are none).  Closing closes the
inner channel.
"""

from __future__ import annotations

from typing import NoReturn, Protocol, runtime_checkable

from anyipc import hookimpl
from anyipc._address import Address
from anyipc._capabilities import Boundaries, Capabilities
from anyipc._channel import Channel
from anyipc._deadline import Deadline
from anyipc._errors import ConnectionLost, EndOfChannel, InvalidAddress, Timeout
from anyipc._options import Option
from anyipc._records import LayerSpec, Role
from anyipc._registry import registry

HEADER = 4  #: bytes of the length prefix
DEFAULT_MAX = 16 * 1024 * 1024
MAX_MESSAGE_SIZE = Option(
    name="max_message_size",
    kind=int,
    default=DEFAULT_MAX,
    minimum=0,
    maximum=2**32 - 1,
    doc="largest message in bytes, sent or received (checked before allocating)",
)
_COALESCE = 65536  # payloads up to this size are copied behind their header: one send
_FIRST_BODY = 65536  # the first buffer of a larger payload; it doubles as the bytes arrive


@runtime_checkable
class _ReadsInto(Protocol):
    def recv_into(self, buffer: bytearray | memoryview, *, timeout: float | None = None) -> int:
        """Receive 1..len(buffer) stream bytes into ``buffer``."""


@runtime_checkable
class _Inherited(Protocol):
    fds: tuple[int, ...]


def _requires(inner: Capabilities) -> str | None:
    if inner.boundaries is Boundaries.MESSAGE:
        return "it frames byte streams, and this transport already keeps message boundaries"
    return None


def _limit(address: Address) -> int:
    """The largest message: the option, within the transport's atomic write if it has one."""
    value = address.get(MAX_MESSAGE_SIZE)
    assert isinstance(value, int)
    atomic = _atomic(address)
    if atomic is None:
        return value
    if MAX_MESSAGE_SIZE.name not in address.query:
        return atomic
    if value > atomic:
        raise InvalidAddress(
            f"framed+{address.scheme}://: max_message_size={value} is above {atomic}: several "
            f"writers share a {address.scheme}:// endpoint, and only frames of up to "
            f"{atomic + HEADER} bytes are written atomically, never mixed with another's"
        )
    return value


def _atomic(address: Address) -> int | None:
    """The largest payload whose frame is one atomic write, when framed sits on such a transport."""
    if address.layers[-1:] != ("framed",):
        return None  # another layer lies between: it decides how bytes reach the stream
    atomic = registry().transport(address.scheme).atomic_write
    return None if atomic is None else max(0, atomic - HEADER)


def _capabilities(inner: Capabilities, address: Address) -> Capabilities:
    return inner.evolve(boundaries=Boundaries.MESSAGE, max_message_size=_limit(address))


def _framed(uri: str | None, address: Address) -> str | None:
    """``uri`` with the ``framed+`` prefix and the layer's options given in ``address``."""
    if uri is None:
        return None
    inner = Address.parse_syntax(uri)
    given = {name: value for name, value in address.options if name == MAX_MESSAGE_SIZE.name}
    return str(inner.replace(layers=("framed", *inner.layers), options={**inner.query, **given}))


class FramedChannel(Channel):
    """A MESSAGE channel over the STREAM channel ``inner``, which it owns; see the module."""

    def __init__(self, inner: Channel, address: Address) -> None:
        self._inner = inner
        capabilities = _capabilities(inner.capabilities, address)
        super().__init__(
            capabilities,
            address=_framed(inner.address, address),
            peer=_framed(inner.peer, address),
            can_send=inner.can_send,
            can_recv=inner.can_recv,
        )
        self.watchers = inner.watchers  # an fd-less inner rings these when data arrives
        self.fds: tuple[int, ...] = inner.fds if isinstance(inner, _Inherited) else ()
        self._max = _limit(address)
        self._read_into = inner.recv_into if isinstance(inner, _ReadsInto) else None
        self._buffer = bytearray()  # received bytes not yet part of a message body
        self._body: bytearray | None = None  # the payload of the frame in progress, growing
        self._expected = 0  # bytes of that payload its header announced
        self._filled = 0  # bytes of _body received
        self._unsent = b""  # the rest of a committed frame, written first by the next send
        self._broken: str | None = None

    # -- receiving ------------------------------------------------------------------
    def _recv(self, deadline: Deadline) -> bytes:
        while True:
            message = self._take()
            if message is not None:
                return message
            self._fill(deadline)

    def _take(self) -> bytes | None:
        """The next message if it is complete; once its header is in, a buffer for its body."""
        if self._broken is not None:
            raise ConnectionLost(self._broken)
        if self._body is not None:
            if self._filled < self._expected:
                return None
            message, self._body = bytes(self._body), None
            return message
        if len(self._buffer) < HEADER:
            return None
        length = int.from_bytes(self._buffer[:HEADER], "big")
        if length > self._max:
            self._break(
                f"the peer announced a message of {length} bytes, above this channel's "
                f"max_message_size of {self._max} bytes"
            )
        end = HEADER + length
        if len(self._buffer) >= end:
            message = bytes(self._buffer[HEADER:end])
            del self._buffer[:end]
            return message
        self._filled = len(self._buffer) - HEADER
        self._expected = length
        self._body = bytearray(min(length, max(_FIRST_BODY, self._filled)))
        self._body[: self._filled] = self._buffer[HEADER:]
        self._buffer.clear()
        return None

    def _room(self, body: bytearray, wanted: int) -> bytearray:
        """``body``, or a copy twice its size (at most the announced length), to hold ``wanted``.

        A new buffer rather than a resize: a view of the old one may still
        be alive (in a traceback), and a bytearray with views cannot grow.
        """
        if self._filled + wanted <= len(body) or len(body) >= self._expected:
            return body
        size = min(self._expected, max(2 * len(body), self._filled + wanted))
        grown = bytearray(size)
        grown[: self._filled] = memoryview(body)[: self._filled]
        self._body = grown
        return grown

    def _fill(self, deadline: Deadline) -> None:
        """Receive more of the stream into the body in progress, or the buffer."""
        timeout = deadline.remaining()
        try:
            if self._body is not None and self._read_into is not None:
                body = self._room(self._body, 1)
                view = memoryview(body)[self._filled :]
                self._filled += self._read_into(view, timeout=timeout)
                return
            data = self._inner.recv(timeout=timeout)
        except EndOfChannel:
            if self._body is None and not self._buffer:
                raise
            self._break(f"truncated frame: the stream ended after {self._progress()}")
        except ConnectionLost as exc:
            self._break(str(exc))
        if self._body is None:
            self._buffer += data
            return
        take = min(len(data), self._expected - self._filled)
        body = self._room(self._body, take)
        body[self._filled : self._filled + take] = data[:take]
        self._filled += take
        self._buffer += data[take:]

    def _progress(self) -> str:
        if self._body is None:
            return f"{len(self._buffer)} of the {HEADER} header bytes"
        return f"{self._filled} of the {self._expected} payload bytes of a frame"

    def _break(self, reason: str) -> NoReturn:
        """Mark the channel broken, close the inner channel and raise ``ConnectionLost``."""
        self._broken = reason
        self._buffer.clear()
        self._body = None
        self._inner.close()
        raise ConnectionLost(reason)

    # -- sending --------------------------------------------------------------------
    def _send(self, data: memoryview, deadline: Deadline) -> None:
        if self._broken is not None:
            raise ConnectionLost(self._broken)
        if self._unsent:
            try:
                self._inner.send(self._unsent, timeout=deadline.remaining())
            except Timeout as exc:
                self._unsent = self._unsent[exc.sent :]
                raise Timeout(
                    "send timed out finishing the previous message; this one was not sent"
                ) from None
            self._unsent = b""
        header = len(data).to_bytes(HEADER, "big")
        parts: list[bytes | memoryview] = (
            [header + data] if len(data) <= _COALESCE else [header, data]
        )
        sent = 0
        try:
            for part in parts:
                self._inner.send(part, timeout=deadline.remaining())
                sent += len(part)
        except Timeout as exc:
            sent += exc.sent
            if not sent:
                raise Timeout("send timed out; the message was not sent") from None
            self._unsent = _rest(parts, sent)
            raise Timeout(
                f"send timed out after {sent} of {HEADER + len(data)} frame bytes; "
                "the rest goes out first with the next send",
                sent=sent,
            ) from None

    # -- readiness and closing -----------------------------------------------------
    @property
    def poll_interval(self) -> float | None:
        """The inner channel's (a ``tls+`` handshake in progress asks for re-checks)."""
        return self._inner.poll_interval

    @poll_interval.setter
    def poll_interval(self, value: float | None) -> None:  # Endpoint's is writable too
        self._inner.poll_interval = value

    def _wait_fd(self) -> int | None:
        return None if self._inner.closed else self._inner._wait_fd()

    def _ready(self) -> bool:
        return self._broken is not None or self._complete() or self._inner._ready()

    def _complete(self) -> bool:
        """True when a whole frame, or a header over the limit, is buffered."""
        body, buffer = self._body, self._buffer
        if body is not None:
            return self._filled >= self._expected
        if len(buffer) < HEADER:
            return False
        length = int.from_bytes(buffer[:HEADER], "big")
        return length > self._max or len(buffer) >= HEADER + length

    def _interrupt(self) -> None:
        # The layer holds no OS object of its own; closing the inner channel
        # releases everything and wakes a call blocked in it.
        self._inner.close()


def _rest(parts: list[bytes | memoryview], sent: int) -> bytes:
    """The bytes of ``parts`` after the first ``sent``, copied."""
    rest = []
    for part in parts:
        skip = min(sent, len(part))
        sent -= skip
        rest.append(part[skip:])
    return b"".join(rest)


def _wrap(channel: Channel, address: Address, role: Role) -> Channel:
    return FramedChannel(channel, address)


@hookimpl
def anyipc_layers() -> list[LayerSpec]:
    return [
        LayerSpec(
            name="framed",
            description="message boundaries over a byte stream (4-byte big-endian length prefix)",
            requires=_requires,
            capabilities=_capabilities,
            wrap=_wrap,
            options=(MAX_MESSAGE_SIZE,),
        )
    ]
