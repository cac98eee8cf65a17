"""The anyipc contenders: how a transport is opened across two processes, on both sides.

Nothing here knows a scheme: the way in follows from the transport's verbs
at the address and its capabilities.

* ``pair`` (an INHERITED transport, ``pipe://``, ``socketpair://``): this
  process pairs, hands one end to the peer (``pass_fds`` and the end's
  address) and closes its copy.  A SIMPLEX transport gets a second pair for
  the way back, handed the other way round.
* ``listen``: this process listens on the URI, the peer connects, this
  process accepts; one channel carries both ways.
* ``bind`` and ``connect``, CONNECTIONLESS and two-way (``udp``,
  ``unix-dgram``): this process binds the URI, the peer connects and says
  :data:`~anyipc.cli._bench_link.HELLO`, which tells this process its
  address; this process then sends with ``send_to``.
* ``bind`` and ``connect`` otherwise (the receiver binds: ``fifo``,
  ``posixmq``, ``sysvmq``): the peer binds the URI and this process
  connects to the address the peer reports; the way back is a second
  channel on a fresh address of the same transport (its test address, with
  the URI's options and layers), which this process binds and the peer
  connects to.

A STREAM channel carries the fixed-size messages as they are, each read
exactly (what arrived beyond one message is kept for the next): through
``recv_into`` and the same reader as the raw sockets and pipes, where the
channel has ``recv_into``; a MESSAGE channel sends each message whole.  Batches and views (see
:mod:`anyipc.cli._bench_link`) use the shared-memory channels' own calls
(``send_many``, ``recv_many``, ``recv_view``); other channels send and
receive one message, and a copy, at a time.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

import anyipc
from anyipc._address import Address
from anyipc._capabilities import Capabilities
from anyipc._channel import BytesLike, Channel
from anyipc._registry import registry
from anyipc._shmchannel import ShmChannel
from anyipc.cli._bench_link import HELLO, BenchError, StreamReader, check_size
from anyipc.cli._bench_process import CommandPeer
from anyipc.cli._bench_session import Contender, Group, Plan, Stack

__all__ = ["ChannelLink", "Unmeasurable", "contender", "join", "target_uri"]


class Unmeasurable(Exception):
    """The transport cannot be measured with a peer in another process; says why."""


@runtime_checkable
class _ReadsInto(Protocol):
    """A stream channel that receives into a buffer (sockets, descriptors)."""

    def recv_into(self, buffer: bytearray | memoryview, *, timeout: float | None = None) -> int:
        """Receive 1..``len(buffer)`` bytes into ``buffer``; how many."""


class ChannelLink:
    """A link over anyipc channels: ``out`` sends, ``into`` receives (the same one if two-way).

    With ``to``, sends go there (``send_to``) and receives take any sender
    (``recv_from``): this side of a connectionless transport.
    """

    def __init__(self, out: Channel, into: Channel, *, to: str | None = None) -> None:
        self._out, self._in, self._to = out, into, to
        self._stream = into.capabilities.boundaries is anyipc.Boundaries.STREAM
        self._rest = bytearray()  # stream bytes received beyond the last message
        self._timeout = 0.0  # the bound on the reads of the current ``recv``
        self._reader = None
        if self._stream and isinstance(into, _ReadsInto):
            reads_into = into
            self._reader = StreamReader(
                lambda view: reads_into.recv_into(view, timeout=self._timeout)
            )
        self._viewer: ShmChannel | None = None  # receives views, when asked to

    def receive_views(self, on: bool) -> bool:
        into = self._in
        self._viewer = into if on and self._to is None and isinstance(into, ShmChannel) else None
        return self._viewer is not None

    def send_batch(self, data: BytesLike, count: int, timeout: float) -> None:
        if isinstance(self._out, ShmChannel) and self._to is None:
            self._out.send_many([data] * count, timeout=timeout)
            return
        for _ in range(count):
            self.send(data, timeout)

    def recv_batch(self, size: int, most: int, timeout: float) -> int:
        if not isinstance(self._in, ShmChannel) or self._to is not None:
            self.recv(size, timeout)
            return 1
        messages = self._in.recv_many(most, timeout=timeout)
        for message in messages:
            check_size(len(message), size)
        return len(messages)

    def send(self, data: BytesLike, timeout: float) -> None:
        if self._to is None:
            self._out.send(data, timeout=timeout)
        else:
            self._out.send_to(data, self._to, timeout=timeout)

    def recv(self, size: int, timeout: float) -> BytesLike:
        if self._stream:
            return self._exactly(size, timeout)
        message: BytesLike
        if self._viewer is not None:
            message = self._viewer.recv_view(timeout=timeout)
        elif self._to is None:
            message = self._in.recv(timeout=timeout)
        else:
            message = self._in.recv_from(timeout=timeout)[0]
        check_size(len(message), size)
        return message

    def _exactly(self, size: int, timeout: float) -> BytesLike:
        """The next ``size`` bytes of the stream."""
        if self._reader is not None:
            self._timeout = timeout
            return self._reader.exactly(size)
        if not self._rest:
            first = self._in.recv(timeout=timeout)
            if len(first) == size:
                return first
            self._rest += first
        rest = self._rest
        while len(rest) < size:
            rest += self._in.recv(timeout=timeout)
        message = rest[:size]
        del rest[:size]
        return message

    def close(self) -> None:
        self._out.close()
        self._in.close()


def target_uri(target: str) -> str:
    """The URI to measure for ``target``: a URI, or a scheme (``unix``, ``framed+tcp``).

    A scheme stands for its transport's test address (a fresh name or port).
    Raises :class:`anyipc.InvalidAddress` for an unknown scheme or a bad URI.
    """
    if "://" in target:
        return str(Address.parse(target))
    *layers, scheme = target.split("+")
    address = Address.parse_syntax(f"{target}://")
    registry().stack(address)  # an unknown scheme or layer: InvalidAddress naming the closest
    test = Address.parse_syntax(registry().transport(scheme).test_address())
    return str(Address.parse(str(test.replace(layers=tuple(layers)))))


def _way_in(address: Address, capabilities: Capabilities) -> str:
    """How a connection is made: ``pair``, ``listen``, ``hello`` or ``receivers-bind``."""
    spec = registry().transport(address.scheme)
    unavailable = spec.available()
    if unavailable:
        raise Unmeasurable(f"{address.scheme}:// is not available here: {unavailable}")
    if capabilities.scope is anyipc.Scope.PROCESS:
        raise Unmeasurable(f"{address}: in-process only (scope process), no peer process can join")
    if spec.message_strategy is not None:
        raise Unmeasurable(f"{address}: carries only special messages, not arbitrary bytes")
    verbs = spec.verbs_at(address)
    if "pair" in verbs:
        return "pair"
    if "listen" in verbs:
        return "listen"
    if {"bind", "connect"} <= set(verbs):
        two_way = capabilities.direction is not anyipc.Direction.SIMPLEX
        connectionless = capabilities.connection is anyipc.Connection.CONNECTIONLESS
        return "hello" if two_way and connectionless else "receivers-bind"
    raise Unmeasurable(
        f"{address}: needs pair, listen, or bind and connect (has {', '.join(verbs)})"
    )


def contender(uri: str) -> Contender:
    """The contender for ``uri``; :class:`Unmeasurable` when no peer process can use it."""
    address = Address.parse(uri)
    capabilities = registry().capabilities(address)
    way = _way_in(address, capabilities)
    duplex = capabilities.direction is not anyipc.Direction.SIMPLEX

    def prepare(stack: Stack, timeout: float) -> Plan:
        if way == "pair":
            return _by_pair(stack, uri, duplex, timeout)
        if way == "listen":
            return _by_listen(stack, uri, timeout)
        if way == "hello":
            return _by_hello(stack, uri, timeout)
        return _by_receivers(stack, address, timeout)

    return Contender(
        name=uri.partition("://")[0],
        group=Group.ANYIPC,
        detail=uri,
        prepare=prepare,
        max_message_size=capabilities.max_message_size,
        lossy=not capabilities.lossless,
        scheme=address.scheme,
    )


def _spec(
    opens: Sequence[tuple[str, str]], recv: int, send: int, hello: bool = False
) -> dict[str, Any]:
    """What the peer opens (verb, URI) in order, which channel receives and which sends."""
    return {
        "kind": "anyipc",
        "open": [list(step) for step in opens],
        "recv": recv,
        "send": send,
        "hello": hello,
    }


def _owned(stack: Stack, channel: Channel) -> Channel:
    stack.callback(channel.close)
    return channel


def _by_pair(stack: Stack, uri: str, duplex: bool, timeout: float) -> Plan:
    mine, theirs = (_owned(stack, end) for end in anyipc.pair(uri))
    out = into = mine
    handed = [theirs]
    if not duplex:  # the first pair goes there, a second one comes back
        back_out, into = (_owned(stack, end) for end in anyipc.pair(uri))
        handed = [theirs, back_out]
    fds = []
    for end in handed:
        inherited = getattr(end, "fds", None)
        if not inherited or end.address is None:
            raise BenchError(f"{uri}: an end names no descriptors to hand to another process")
        fds.extend(inherited)
    opens = [("connect", str(end.address)) for end in handed]
    spec = _spec(opens, recv=0, send=0 if duplex else 1)
    return Plan(
        start=lambda: CommandPeer(spec, timeout, fds),
        finish=lambda ready: ChannelLink(out, into),
        handed=tuple(end.close for end in handed),
    )


def _by_listen(stack: Stack, uri: str, timeout: float) -> Plan:
    listener = anyipc.listen(uri)
    stack.callback(listener.close)

    def finish(ready: dict[str, Any]) -> ChannelLink:
        channel = _owned(stack, listener.accept(timeout=timeout))
        listener.close()
        return ChannelLink(channel, channel)

    spec = _spec([("connect", listener.address)], recv=0, send=0)
    return Plan(start=lambda: CommandPeer(spec, timeout), finish=finish)


def _by_hello(stack: Stack, uri: str, timeout: float) -> Plan:
    bound = _owned(stack, anyipc.bind(uri))
    if bound.address is None:
        raise BenchError(f"the channel bound to {uri} reports no address")

    def finish(ready: dict[str, Any]) -> ChannelLink:
        hello, peer = bound.recv_from(timeout=timeout)
        if hello != HELLO:
            raise BenchError(f"expected the peer's hello, received {bytes(hello[:40])!r}")
        return ChannelLink(bound, bound, to=peer)

    spec = _spec([("connect", bound.address)], recv=0, send=0, hello=True)
    return Plan(start=lambda: CommandPeer(spec, timeout), finish=finish)


def _fresh(address: Address) -> str:
    """A fresh address of the same transport, with the options and layers of ``address``."""
    test = Address.parse_syntax(registry().transport(address.scheme).test_address())
    return str(Address.parse(str(test.replace(options=address.query, layers=address.layers))))


def _by_receivers(stack: Stack, address: Address, timeout: float) -> Plan:
    back = _owned(stack, anyipc.bind(_fresh(address)))
    if back.address is None:
        raise BenchError(f"the channel bound to {address} reports no address")

    def finish(ready: dict[str, Any]) -> ChannelLink:
        out = _owned(stack, anyipc.connect(ready["addresses"][0]))
        return ChannelLink(out, back)

    spec = _spec([("bind", str(address)), ("connect", back.address)], recv=0, send=1)
    return Plan(start=lambda: CommandPeer(spec, timeout), finish=finish)


def join(spec: dict[str, Any], timeout: float) -> tuple[ChannelLink, dict[str, Any]]:
    """The peer's side: open the channels ``spec`` lists; the link and their addresses."""
    verbs: dict[str, Callable[[str], Channel]] = {"connect": anyipc.connect, "bind": anyipc.bind}
    with contextlib.ExitStack() as stack:
        channels = [_owned(stack, verbs[verb](uri)) for verb, uri in spec["open"]]
        link = ChannelLink(channels[spec["send"]], channels[spec["recv"]])
        if spec["hello"]:
            link.send(HELLO, timeout)
        stack.pop_all()
    return link, {"addresses": [channel.address for channel in channels]}
