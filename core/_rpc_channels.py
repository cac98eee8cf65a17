"""Which channels :mod:`anyipc.rpc` can use, and the channels a client opens.

JSON messages need boundaries: a STREAM transport is refused with a hint
to its ``framed+`` form, before anything is connected when a URI is
given.  A client whose channel cannot receive (the sending end of a
message queue) binds an endpoint of its own for the replies and names it
in every request; where the channel of the replies cannot report that the
server is gone, the client re-opens the server's address now and then to
find out (see :class:`anyipc.rpc.Client`).
"""

from __future__ import annotations

import attrs

from anyipc._address import Address
from anyipc._api import bind, connect
from anyipc._capabilities import Boundaries, Capabilities, Connection
from anyipc._channel import Channel
from anyipc._errors import NotSupported
from anyipc._registry import registry

__all__ = ["ClientChannels", "open_client", "require_messages", "scheme_of"]


def scheme_of(uri: str | None) -> str | None:
    """The transport scheme (layers left out) of ``uri``, or ``None`` if it has none."""
    if not uri:
        return None
    try:
        return Address.parse_syntax(uri).scheme
    except ValueError:
        return None


def require_messages(capabilities: Capabilities, uri: str | None, who: str) -> None:
    """:class:`NotSupported`, naming the ``framed+`` form, unless the channel keeps boundaries."""
    if capabilities.boundaries is Boundaries.MESSAGE:
        return
    scheme = scheme_of(uri)
    named = f"{scheme}://" if scheme else "this channel"
    framed = f"framed+{scheme}://" if scheme else "framed+tcp://, framed+unix://"
    raise NotSupported(
        f"{who} sends one JSON message per request and reply, and {named} is a byte stream "
        f"without message boundaries: use {framed} (the framed+ layer adds them)"
    )


def _check_uri(uri: str) -> None:
    """Refuse a byte-stream URI before anything is connected (bad URIs: InvalidAddress)."""
    reg = registry()
    address = reg.validate(Address.parse_syntax(uri))
    require_messages(reg.capabilities(address), uri, "an rpc client")


@attrs.frozen
class ClientChannels:
    """What a client talks through.

    ``requests`` carries the requests; ``replies`` brings the replies (the
    same channel, or an endpoint the client bound); ``reply_to`` is that
    endpoint's URI, put into every request, or ``None``; ``probe`` is the
    server's address, re-opened to learn that the server is gone where the
    replies' channel cannot tell (``None`` where it can).
    """

    requests: Channel
    replies: Channel
    reply_to: str | None
    probe: str | None

    def close(self) -> None:
        """Close both channels (an endpoint the client bound is removed)."""
        try:
            self.requests.close()
        finally:
            self.replies.close()


def open_client(target: str | Address | Channel, reply_to: str | None) -> ClientChannels:
    """The channels of a client of ``target`` (a URI to connect to, or a channel to use).

    A channel given is checked, and adopted only when this returns.
    Raises :class:`NotSupported` for a channel rpc cannot use, ``ValueError``
    for a ``reply_to`` where the replies need no endpoint of their own, and
    what ``connect``/``bind`` raise.
    """
    if isinstance(target, Channel):
        return _adopt(target, target.peer, reply_to)
    uri = str(target)
    _check_uri(uri)
    channel = connect(uri)
    try:
        return _adopt(channel, uri, reply_to)
    except BaseException:
        channel.close()
        raise


def _adopt(channel: Channel, uri: str | None, reply_to: str | None) -> ClientChannels:
    require_messages(channel.capabilities, uri, "an rpc client")
    if not channel.can_send:
        raise NotSupported(f"an rpc client sends requests, and {channel!r} is a receiving end")
    if channel.can_recv:
        if channel.capabilities.connection is Connection.CONNECTIONLESS and channel.peer is None:
            raise NotSupported(
                f"{channel!r} has no default peer: give the client a channel from "
                "connect() to the server's address, or the address itself"
            )
        if reply_to is not None:
            raise ValueError(
                "reply_to is for channels that cannot receive (message queues); "
                "this channel brings the replies itself"
            )
        return ClientChannels(channel, channel, None, _probe(channel, uri))
    scheme = scheme_of(uri)
    if reply_to is None and scheme is None:
        raise ValueError(f"{channel!r} names no peer: say where replies go with reply_to=URI")
    replies = bind(reply_to or f"{scheme}://")
    try:
        require_messages(replies.capabilities, replies.address, "an rpc client's reply endpoint")
        if not replies.can_recv:
            raise NotSupported(f"the reply endpoint {replies!r} cannot receive")
        return ClientChannels(channel, replies, replies.address, _probe(replies, uri))
    except BaseException:
        replies.close()
        raise


def _probe(replies: Channel, uri: str | None) -> str | None:
    """The address to re-open to learn that the server is gone, where ``replies`` cannot tell."""
    return None if replies.capabilities.reports_end else uri
