"""Where a bound endpoint's replies go: ``send_to`` the sender, or into a client's reply queue.

A CONNECTIONLESS endpoint (``unix-dgram://``, ``udp://``) answers with
``send_to``.  An endpoint that only receives (the receiving end of a
message queue) answers through a channel connected to the client's reply
endpoint for that one reply and closed right after: a channel kept open
would keep a queue that its client removed alive in the kernel, and with
it the memory the kernel charges to the client's user (``RLIMIT_MSGQUEUE``).
Either way a reply that cannot be delivered in time (the client is gone,
or its queue stays full) is dropped with a warning: one client never
stalls the server for longer than the send timeout, nor stops it.
"""

from __future__ import annotations

from anyipc._address import Address
from anyipc._api import connect
from anyipc._capabilities import Connection
from anyipc._channel import Channel
from anyipc._errors import IPCError
from anyipc._rpc_channels import scheme_of
from anyipc._rpc_methods import logger, reply_bytes
from anyipc._rpc_wire import Reply

__all__ = ["ReplyRoutes"]


class ReplyRoutes:
    """The replies of one bound ``endpoint``, each sent within ``timeout`` seconds."""

    def __init__(self, endpoint: Channel, timeout: float) -> None:
        self._endpoint = endpoint
        self._timeout = timeout
        self._scheme = scheme_of(endpoint.address)
        self._connectionless = endpoint.capabilities.connection is Connection.CONNECTIONLESS

    def check(self, reply_to: str) -> str | None:
        """Why replies cannot go to ``reply_to``, or ``None``.

        Only endpoints of the endpoint's own transport are accepted, so that
        a request can never make the server connect anywhere else.
        """
        try:
            address = Address.parse(reply_to)
        except ValueError as exc:
            return f"reply_to is not a valid address: {exc}"
        if address.layers or address.scheme != self._scheme:
            return f"reply_to must name a {self._scheme}:// endpoint, not {reply_to!r}"
        return None

    def send(self, reply: Reply, destination: str) -> None:
        """Send ``reply`` to ``destination``; drop it with a warning if that fails."""
        try:
            if self._connectionless:
                data = reply_bytes(reply, self._endpoint.capabilities.max_message_size)
                if data is not None:
                    self._endpoint.send_to(data, destination, timeout=self._timeout)
                return
            with connect(destination) as channel:
                data = reply_bytes(reply, channel.capabilities.max_message_size)
                if data is not None:
                    channel.send(data, timeout=self._timeout)
        except IPCError as exc:
            logger.warning("dropped the reply to request %r for %s: %s", reply.id, destination, exc)
