"""The serving side of :mod:`anyipc.rpc`: :class:`Service`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import attrs

from anyipc._capabilities import Connection
from anyipc._channel import Channel
from anyipc._errors import ChannelClosed, MessageTooLarge, NotSupported, Timeout
from anyipc._rpc_channels import require_messages
from anyipc._rpc_methods import Methods, logger, reply_bytes
from anyipc._rpc_routes import ReplyRoutes

__all__ = ["Service"]

F = TypeVar("F", bound=Callable[..., Any])


class Service:
    """Methods by name, served over MESSAGE channels.

    ``methods`` maps names to functions; :meth:`register` adds more (also
    as a decorator).  A request's ``params`` are passed by position (an
    array) or by name (an object).  Whatever a method raises (any
    :class:`Exception`) goes back to the caller as an error reply and the
    service goes on serving; so do unknown methods, params that do not fit
    the method's signature, malformed requests that carry an id, and
    results JSON cannot carry.  Messages that carry no id are dropped with
    a warning on the ``anyipc.rpc`` logger.

    Requests that arrive on one channel are run one at a time, in order:
    serve several channels at once from several threads (or processes),
    as a server loop does.  The methods must be thread-safe then.

    ``send_timeout``: how long a reply may wait for room in the channel
    back (seconds).
    """

    def __init__(
        self,
        methods: Mapping[str, Callable[..., Any]] | None = None,
        *,
        send_timeout: float = 2.0,
    ) -> None:
        if not isinstance(send_timeout, (int, float)) or not send_timeout > 0:
            raise ValueError(
                f"send_timeout must be a positive number of seconds, not {send_timeout!r}"
            )
        self.send_timeout = send_timeout
        self._methods = Methods()
        for name, function in (methods or {}).items():
            self._methods.add(name, function)

    def register(self, function: F, *, name: str | None = None) -> F:
        """Serve ``function`` as method ``name`` (default: its ``__name__``); returns it.

        Use as a decorator (``@service.register``), or call it with a name.
        Raises ``ValueError`` when the name is taken.
        """
        self._methods.add(function.__name__ if name is None else name, function)
        return function

    @property
    def method_names(self) -> list[str]:
        """The names of the methods served, sorted."""
        return self._methods.names()

    def answer(self, message: bytes, *, max_size: int | None = None) -> bytes | None:
        """The reply to the request ``message``, at most ``max_size`` bytes, or ``None``.

        ``None`` when the message names no request id to answer (it is
        dropped), or when not even an error reply fits in ``max_size``.
        ``reply_to`` in the request is ignored here.  For serving loops of
        one's own; :meth:`handle` and :meth:`serve_bound` use it.
        """
        request = self._methods.decode(message)
        if request is None:
            return None
        return reply_bytes(self._methods.run(request), max_size)

    def handle(self, channel: Channel) -> None:
        """Answer the requests on one connected ``channel`` until it ends.

        Returns when the peer ends the conversation (orderly or not), when
        the channel is closed (also from another thread), or when a reply
        could not be sent within ``send_timeout`` (the client does not read
        its replies).  It does not close the channel: its owner does.  Fit
        as the handler of a server loop that passes one accepted channel
        per connection.  Raises :class:`~anyipc.NotSupported` at once for a
        channel that cannot both receive and send, or that has no message
        boundaries.
        """
        require_messages(channel.capabilities, channel.address, "an rpc service")
        if not (channel.can_send and channel.can_recv):
            raise NotSupported(
                f"handle() needs a channel that receives and sends, not {channel!r}; "
                "serve the receiving end of a message queue with serve_bound()"
            )
        if channel.capabilities.connection is Connection.CONNECTIONLESS and channel.peer is None:
            raise NotSupported(f"{channel!r} is a bound endpoint: serve it with serve_bound()")
        limit = channel.capabilities.max_message_size
        while True:
            try:
                message = channel.recv()
            except MessageTooLarge as exc:  # a datagram too large to receive: gone already
                logger.warning("dropped a request: %s", exc)
                continue
            except ChannelClosed:  # the end, orderly or not, or closed here
                return
            reply = self.answer(message, max_size=limit)
            if reply is None:
                continue
            try:
                channel.send(reply, timeout=self.send_timeout)
            except (ChannelClosed, Timeout):
                return

    def serve_bound(self, endpoint: Channel) -> None:
        """Answer the requests that arrive at a bound ``endpoint`` until it ends or is closed.

        For endpoints shared by many clients: a CONNECTIONLESS one
        (``unix-dgram://``, ``udp://``) answers each request to its sender
        (``send_to``), or to its ``reply_to``; the receiving end of a
        message queue (``posixmq://``, ``sysvmq://``) answers each request
        to its ``reply_to``, an endpoint of the same transport, through a
        channel connected to it for that reply.  A ``reply_to``
        of another transport gets an ``InvalidRequest`` error where there
        is a sender to tell, and is dropped otherwise, as is a request with
        nowhere to reply.  A reply that cannot be sent within
        ``send_timeout`` is dropped with a warning.

        Returns when the endpoint is closed (also from another thread) or
        ends (a queue bound with ``end=senders`` after its last sender).
        Raises :class:`~anyipc.NotSupported` at once for an endpoint that
        cannot receive or has no message boundaries.
        """
        require_messages(endpoint.capabilities, endpoint.address, "an rpc service")
        connectionless = endpoint.capabilities.connection is Connection.CONNECTIONLESS
        if not endpoint.can_recv or (endpoint.can_send and not connectionless):
            raise NotSupported(
                f"serve_bound() needs a bound endpoint that receives requests, not {endpoint!r}; "
                "serve a connected channel with handle()"
            )
        routes = ReplyRoutes(endpoint, self.send_timeout)
        while True:
            try:
                message, sender = endpoint.recv_from() if connectionless else (endpoint.recv(), "")
            except MessageTooLarge as exc:
                logger.warning("dropped a request: %s", exc)
                continue
            except ChannelClosed:
                return
            self._answer_bound(routes, message, sender)

    def _answer_bound(self, routes: ReplyRoutes, message: bytes, sender: str) -> None:
        """Run one request that came to a bound endpoint and route its reply."""
        request = self._methods.decode(message)
        if request is None:
            return
        destination = request.reply_to or sender
        if request.reply_to:
            problem = routes.check(request.reply_to)
            if problem is not None:
                request = attrs.evolve(request, reply_to=None, problem=problem)
                destination = sender
        if not destination:
            logger.warning("dropped request %r: it names nowhere to reply", request.id)
            return
        routes.send(self._methods.run(request), destination)
