"""``unix-seqpacket:///path`` and ``unix-seqpacket://@name`` — connected, reliable messages.

``SOCK_SEQPACKET`` Unix domain sockets: connection-oriented like a stream,
but each ``send`` is one whole message and each ``recv`` returns one, with
no anyipc header (a plain program reading the socket gets the same
messages).  Duplex, lossless, ordered, intact and duplicate-free within
the host, and the receiver learns of the peer's end: the cell of the
taxonomy (oriented, message boundaries, reliable) that TCP cannot fill.

Verbs: ``listen`` and ``connect``, as for ``unix://`` (see
:func:`anyipc._unixconnections.connected_spec`): a connecting client's
``peer`` is the listener's URI and its ``address`` is ``None``; an
accepted channel's ``address`` is the listener's URI.  ``connect`` raises
:class:`~anyipc.ConnectionLost` when nobody listens there, or when the
socket there is not a seqpacket one.

Messages.  ``max_message_size`` is 65536 bytes (:data:`MAX_MESSAGE`) on
every machine: each channel makes its send buffer large enough for it.
A larger ``send`` raises :class:`~anyipc.MessageTooLarge` before anything
is sent; the channel stays usable.  Zero-length messages are messages,
told apart from the end of the channel (see :mod:`anyipc._seqpacket`).  A
message above the maximum from a peer that is not anyipc cannot be
received whole: :class:`~anyipc.ConnectionLost`, then and on every later
``recv``.

Ends.  The peer's orderly close after everything it sent was received:
:class:`~anyipc.EndOfChannel`.  A peer that closed (or was killed) with our
messages unread resets the connection, :class:`~anyipc.ConnectionLost`, as
does sending after the peer closed (never SIGPIPE).  A peer killed with
nothing unread looks like an orderly close: ``EndOfChannel``.

Names, as for every unix-domain scheme (see :mod:`anyipc._unixnames`): a
path of at most 107 bytes, or an abstract ``@name`` of at most 107 bytes.
``listen`` on a path creates the socket file with exactly the ``mode``
option's bits (octal, default ``600``; connecting needs write permission),
never wider at any moment; it never replaces a live socket or a file that
is not a socket (:class:`~anyipc.AddressInUse`), reclaims a stale socket
left by a dead owner, and the listener removes its file on close if the
path still names it.  Abstract names have no file, so ``mode`` is refused
there; the uids at both ends are checked instead, as for ``unix://@``
(option ``allow_uids``; see :mod:`anyipc._peercred`).  Other options:
``connect_timeout`` (seconds, default 10), also covering a listener whose
backlog stays full (:class:`~anyipc.Timeout`).
"""

from __future__ import annotations

import socket

from anyipc import hookimpl
from anyipc._capabilities import Addressing, Boundaries, Capabilities, Connection, Direction, Scope
from anyipc._records import TransportSpec
from anyipc._seqpacket import SeqpacketChannel
from anyipc._unixconnections import connected_spec

MAX_MESSAGE = 65536  #: the largest message, in bytes
CAPABILITIES = Capabilities(
    direction=Direction.DUPLEX,
    boundaries=Boundaries.MESSAGE,
    connection=Connection.ORIENTED,
    lossless=True,
    ordered=True,
    intact=True,
    duplicate_free=True,
    scope=Scope.HOST,
    addressing=Addressing.NAMED,
    max_message_size=MAX_MESSAGE,
)


@hookimpl
def anyipc_transports() -> list[TransportSpec]:
    return [
        connected_spec(
            scheme="unix-seqpacket",
            description="Unix domain seqpacket sockets: connected, reliable messages",
            kind=socket.SOCK_SEQPACKET,
            capabilities=CAPABILITIES,
            channel=SeqpacketChannel,
        )
    ]
