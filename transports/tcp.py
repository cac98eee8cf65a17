"""``tcp://host:port`` — TCP connections over IPv4 and IPv6.

The host is an IPv4 address, an IPv6 address in brackets
(``tcp://[::1]:4242``) or a name resolved when ``connect``/``listen`` runs
(``tcp://localhost:4242``: ``connect`` tries each address the name has, in
the resolver's order, within one ``connect_timeout``; ``listen`` binds the
first).  Validating an address resolves nothing.

Verbs: ``listen`` (port 0 picks a free port; ``Listener.address`` reports
it) and ``connect``.  Channel ``address``/``peer`` are the two ends as
``tcp://ip:port`` URIs.

Options:

* ``nodelay`` (bool, default true): TCP_NODELAY, so that small sends leave at
  once instead of waiting to be merged (Nagle's algorithm).
* ``connect_timeout`` (seconds, default 10): how long ``connect`` waits for
  the listener; then :class:`~anyipc.Timeout`.  A refused connection raises
  :class:`~anyipc.ConnectionLost` saying that nobody listens there.

The listener sets SO_REUSEADDR, so a port that an earlier server left in
TIME_WAIT can be listened on again at once; on Linux this never lets two
live listeners share a port: the second raises :class:`~anyipc.AddressInUse`.
Stream semantics, orderly close versus reset and SIGPIPE: see
:mod:`anyipc._sockets`.
"""

from __future__ import annotations

import contextlib
import socket
from typing import Any

from anyipc import hookimpl
from anyipc._address import Address
from anyipc._capabilities import Addressing, Boundaries, Capabilities, Connection, Direction, Scope
from anyipc._channel import Channel, Listener
from anyipc._deadline import Deadline
from anyipc._errors import ConnectionLost, InvalidAddress, map_os_error
from anyipc._inet import check_peer_port, location_checker, parse_location, sockaddr_location
from anyipc._options import Option
from anyipc._records import TransportSpec
from anyipc._sockets import (
    CONNECT_TIMEOUT,
    SocketChannel,
    SocketListener,
    connect_stream,
    connect_timeout,
    listen_error,
    owned,
    peer_name,
)

CAPABILITIES = Capabilities(
    direction=Direction.DUPLEX,
    boundaries=Boundaries.STREAM,
    connection=Connection.ORIENTED,
    lossless=True,
    ordered=True,
    intact=True,
    duplicate_free=True,
    scope=Scope.NETWORK,
    addressing=Addressing.NAMED,
)
NODELAY = Option(
    name="nodelay",
    kind=bool,
    default=True,
    doc="TCP_NODELAY: small sends leave at once instead of waiting to be merged",
)
OPTIONS = (NODELAY, CONNECT_TIMEOUT)


def _uri(sockname: Any) -> str | None:
    return None if sockname is None else str(Address("tcp", sockaddr_location(sockname), {}))


def _resolve(host: str, port: int, context: str, *, passive: bool) -> list[tuple[int, Any]]:
    flags = socket.AI_PASSIVE if passive else 0
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=flags)
    except socket.gaierror as exc:
        message = f"{context}: cannot resolve {host!r}: {exc.strerror}"
        raise (InvalidAddress(message) if passive else ConnectionLost(message)) from exc
    return [(family, sockaddr) for family, _, _, _, sockaddr in found]


def _channel(sock: socket.socket, nodelay: bool) -> SocketChannel:
    if nodelay:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return SocketChannel(
        sock, CAPABILITIES, address=_uri(sock.getsockname()), peer=_uri(peer_name(sock))
    )


class TcpListener(SocketListener):
    """A listening TCP socket; accepted channels get ``nodelay`` as the listener's address says."""

    def __init__(self, sock: socket.socket, address: str, *, nodelay: bool) -> None:
        super().__init__(sock, CAPABILITIES, address)
        self._nodelay = nodelay

    def _channel(self, sock: socket.socket) -> Channel:
        return _channel(sock, self._nodelay)


def listen(address: Address) -> Listener:
    """Listen on ``tcp://host:port``; :class:`~anyipc.AddressInUse` if a live listener has it.

    A host this machine does not have, or a name that does not resolve,
    raises :class:`~anyipc.InvalidAddress`; a privileged port without the
    privilege, :class:`~anyipc.PermissionDenied`.
    """
    host, port = parse_location(address.location, "tcp")
    context = f"listen on tcp://{address.location}"
    family, sockaddr = _resolve(host, port, context, passive=True)[0]

    def bound(sock: socket.socket) -> Listener:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(sockaddr)
        sock.listen(socket.SOMAXCONN)
        public = address.replace(location=sockaddr_location(sock.getsockname()))
        return TcpListener(sock, str(public), nodelay=address.get(NODELAY) is True)

    return owned(
        socket.socket(family, socket.SOCK_STREAM), bound, lambda exc: listen_error(exc, context)
    )


def connect(address: Address) -> Channel:
    """Connect to ``tcp://host:port``, trying each address of the host until one answers."""
    host, port = parse_location(address.location, "tcp")
    check_peer_port(port, "tcp", address.location)
    context = f"connect to tcp://{address.location}"
    deadline = connect_timeout(address)
    nodelay = address.get(NODELAY) is True
    *others, last = _resolve(host, port, context, passive=False)
    for family, sockaddr in others:
        with contextlib.suppress(ConnectionLost):
            return _connect(family, sockaddr, deadline, context, nodelay)
    return _connect(*last, deadline, context, nodelay)


def _connect(
    family: int, sockaddr: Any, deadline: Deadline, context: str, nodelay: bool
) -> SocketChannel:
    sock = connect_stream(family, sockaddr, deadline, context)
    return owned(sock, lambda s: _channel(s, nodelay), lambda exc: map_os_error(exc, context))


@hookimpl
def anyipc_transports() -> list[TransportSpec]:
    return [
        TransportSpec(
            scheme="tcp",
            description="TCP connections over IPv4 and IPv6 (host:port, [ipv6]:port)",
            capabilities=lambda address: CAPABILITIES,
            check_location=location_checker("tcp"),
            test_address=lambda: "tcp://127.0.0.1:0",
            options=OPTIONS,
            connect=connect,
            listen=listen,
        )
    ]
