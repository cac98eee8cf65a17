"""Opening connected channels of any transport, the way its verbs allow.

A :class:`Harness` knows one transport (a URI or a bare scheme), its
capabilities and verbs, and opens :class:`Conversation` s: a ``sender`` whose
``send`` reaches ``receiver.recv``.  Everything it opens is closed by
:meth:`Harness.close_all`, whatever the checks did.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import attrs

import anyipc
from anyipc._address import Address
from anyipc._capabilities import Addressing, Capabilities, Connection, Direction, Scope
from anyipc._channel import Channel, Listener
from anyipc._registry import registry

__all__ = ["Conversation", "Harness", "NotApplicable"]

ACCEPT_TIMEOUT = 10.0


class NotApplicable(Exception):
    """A check does not apply to this transport; the message says why."""


@attrs.define
class Conversation:
    """Two connected ends: ``sender.send`` reaches ``receiver.recv``.

    ``reply_address`` is where ``receiver`` sends back on a connectionless
    transport (``None``: use ``receiver.send``/``sender.recv`` if duplex).
    """

    sender: Channel
    receiver: Channel
    listener_address: str | None = None


class Harness:
    """Opens conversations over one transport and cleans up after them.

    ``uri`` is a full URI (reused for every conversation) or a bare scheme,
    optionally with layers and options (``framed+tcp?max_message_size=99``),
    for which each conversation gets a fresh address from the transport's
    ``test_address()``.
    """

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self._open: list[Channel | Listener] = []
        probe = Address.parse(self.fresh_uri())
        reg = registry()
        self.transport, self.layers = reg.stack(probe)
        self.capabilities: Capabilities = reg.capabilities(probe)
        self.verbs = self.transport.verbs_at(probe)
        self.message_strategy = self.transport.message_strategy
        self.probe = probe  #: a validated address of the transport under test
        in_process = self.capabilities.scope is Scope.PROCESS
        default_patience = "1" if in_process else "10"
        #: seconds a receive that the claims say must succeed may take
        self.patience = float(os.environ.get("ANYIPC_CONFORMANCE_PATIENCE", default_patience))
        #: seconds of silence after which a transport that may lose has delivered all it will
        self.quiet = float(os.environ.get("ANYIPC_CONFORMANCE_QUIET", "0.1"))
        #: the least share of a burst (B4) that a transport which may lose must deliver
        self.delivery_floor = float(os.environ.get("ANYIPC_CONFORMANCE_DELIVERY_FLOOR", "0.1"))

    def __repr__(self) -> str:
        return f"Harness({self.uri!r})"

    # -- addresses ------------------------------------------------------------------
    def fresh_uri(self) -> str:
        """A URI to open: the given one, or a fresh test address for a bare scheme."""
        if "://" in self.uri:
            return self.uri
        stack, _, query = self.uri.partition("?")
        *layers, scheme = stack.split("+")
        base = (
            "".join(f"{layer}+" for layer in layers) + registry().transport(scheme).test_address()
        )
        if query:
            base += ("&" if "?" in base else "?") + query
        return base

    def watched_paths(self, uri: str) -> list[str]:
        """Filesystem paths an address names (checked by the leak snapshots)."""
        location = Address.parse_syntax(uri).location
        return [location] if location.startswith("/") else []

    @property
    def inherited(self) -> bool:
        """True when a child reaches the transport only by inheriting an end of a pair."""
        return self.capabilities.addressing is Addressing.INHERITED and "pair" in self.verbs

    @property
    def cross_process(self) -> bool:
        """True when the peer may live in another process (HOST or NETWORK scope)."""
        return self.capabilities.scope is not Scope.PROCESS and (
            "listen" in self.verbs or "bind" in self.verbs or self.inherited
        )

    @property
    def connectionless(self) -> bool:
        return self.capabilities.connection is Connection.CONNECTIONLESS

    @property
    def duplex(self) -> bool:
        return self.capabilities.direction is not Direction.SIMPLEX

    # -- opening --------------------------------------------------------------------
    def track(self, endpoint: Channel | Listener) -> None:
        """Close ``endpoint`` in :meth:`close_all`."""
        self._open.append(endpoint)

    def conversation(self) -> Conversation:
        """Two fresh connected ends, opened with the transport's verbs."""
        uri = self.fresh_uri()
        if "pair" in self.verbs and not ("listen" in self.verbs and self.cross_process):
            first, second = anyipc.pair(uri)
            self.track(first)
            self.track(second)
            if self.connectionless:
                # a connectionless pair: the second end's default peer is the first
                return Conversation(second, first)
            return Conversation(first, second)
        if "listen" in self.verbs:
            listener = self.listen(uri)
            client = self.connect(listener.address)
            server = listener.accept(timeout=ACCEPT_TIMEOUT)
            self.track(server)
            listener.close()
            return Conversation(client, server, listener.address)
        if "bind" in self.verbs:
            receiver = self.bind(uri)
            assert receiver.address is not None, "a bound channel must report its address"
            sender = self.connect(receiver.address)
            return Conversation(sender, receiver, receiver.address)
        raise NotApplicable(f"{self.uri}: no verb to open a conversation with ({self.verbs})")

    def listen(self, uri: str) -> Listener:
        listener = anyipc.listen(uri)
        self.track(listener)
        return listener

    def bind(self, uri: str) -> Channel:
        channel = anyipc.bind(uri)
        self.track(channel)
        return channel

    def connect(self, uri: str) -> Channel:
        channel = anyipc.connect(uri)
        self.track(channel)
        return channel

    def passive_endpoint(self) -> tuple[str, Channel | Listener]:
        """A listener (or bound channel) on a fresh address, and the address to reach it."""
        uri = self.fresh_uri()
        if "listen" in self.verbs:
            listener = self.listen(uri)
            return listener.address, listener
        if "bind" in self.verbs:
            channel = self.bind(uri)
            assert channel.address is not None
            return channel.address, channel
        raise NotApplicable(f"{self.uri} has neither listen nor bind")

    @contextmanager
    def session(self) -> Iterator[Harness]:
        """Close everything opened inside the block when it ends."""
        try:
            yield self
        finally:
            self.close_all()

    def close_all(self) -> None:
        """Close everything this harness opened, newest first."""
        while self._open:
            self._open.pop().close()


def fd_count() -> int:
    """The number of descriptors this process has open."""
    return len(os.listdir("/proc/self/fd"))
