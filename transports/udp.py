"""``udp://host:port`` — UDP datagrams over IPv4 and IPv6, to one peer or to a multicast group.

The host is an IPv4 address, an IPv6 address in brackets (``udp://[::1]:4242``,
with a zone where the address needs one: ``udp://[fe80::1%25eth0]:4242``) or
a name, resolved when ``bind``/``connect`` runs (the first address the
resolver gives).  Validating an address resolves nothing.

Verbs:

* ``bind("udp://host:port")``: a channel that receives every datagram sent
  to that address, with ``recv_from`` (which says who sent it, as a
  ``udp://ip:port`` URI) and ``send_to`` (to any such URI: replying to what
  ``recv_from`` reported works).  Port 0 picks a free port; ``address`` is
  the real one, a URI that ``connect`` accepts.  A second ``bind`` of a live
  unicast address raises :class:`~anyipc.AddressInUse`.
* ``connect("udp://host:port")``: a channel whose default peer is that
  address.  ``send`` sends to it; ``recv`` returns the datagrams that peer
  sends to this channel (the socket is ``connect()``-ed, so the kernel
  drops datagrams from anyone else).  The socket is bound to an ephemeral
  port at once, and ``address`` reports it: what ``recv_from`` on the
  bound side reports, so replies come back.  ``send_to`` works too.
  Connecting sends nothing: with nobody there, ``connect`` still succeeds.

Channels never ``listen``: UDP has no connections.

Claims, and why.  DUPLEX, MESSAGE (each ``send`` is one datagram, no anyipc
header, so any UDP program is a peer; a zero-length datagram is a message),
CONNECTIONLESS, NETWORK scope, NAMED.  **Not lossless** (a datagram is
dropped when the receiver's buffer is full, by any router on the way, or
when nobody is bound there), **not ordered** (the network may reorder),
**not duplicate-free** (the network may duplicate), ``reports_end`` false
(nothing tells a receiver that a sender is gone: ``recv`` waits until its
timeout, and ``for message in channel`` never ends on its own).  **Intact**:
a datagram arrives whole or not at all, and damage is caught by the UDP
checksum (16 bits; mandatory over IPv6, always set by Linux over IPv4)
and dropped.  On loopback nothing is reordered or duplicated, and nothing
is lost while the receiver keeps up; the conformance suite reports the
share of a burst that arrived.

Sizes.  ``max_message_size`` is the largest UDP payload: 65507 bytes over
IPv4 (65535 minus the 20-byte IP and 8-byte UDP headers) and 65527 over
IPv6 (the 65535-byte payload length minus the UDP header); a host name
claims the IPv4 limit, which holds for both.  A larger ``send`` raises
:class:`~anyipc.MessageTooLarge` before anything is sent, and the channel
stays usable.  Datagrams larger than the path's MTU are fragmented by IP
(losing one fragment loses the datagram); a send that the kernel refuses
for its size anyway (EMSGSIZE, e.g. after an ICMP "fragmentation needed")
is :class:`~anyipc.MessageTooLarge` too, with nothing sent.  IPv6 sockets
are IPv6-only (``IPV6_V6ONLY``): an IPv4 peer is reached through a
``udp://`` IPv4 address, never as a mapped ``::ffff:`` one, so each
socket's size limit is exact.

Multicast.  A group address (``224.0.0.0/4``, ``ff00::/8``, written as an
address: a name is never taken for a group) changes the verbs:

* ``bind("udp://239.1.2.3:5000")`` binds the group's address and port with
  ``SO_REUSEADDR`` and ``SO_REUSEPORT``, so that any number of receivers,
  in any processes, bind the same group and port (no
  :class:`~anyipc.AddressInUse`), and joins the group
  (``IP_ADD_MEMBERSHIP`` / ``IPV6_JOIN_GROUP``).  Every member receives
  its own copy of each datagram sent to the group.  The membership ends
  when the channel closes.  Its ``address`` keeps the options, so that
  ``connect(channel.address)`` sends the way the group was joined.
* ``connect("udp://239.1.2.3:5000")`` sends to the group.  The socket is
  not ``connect()``-ed (replies come from members' own addresses, not from
  the group), so ``recv`` returns whatever arrives at this channel's port.
  Multicast loop is on (``IP_MULTICAST_LOOP``): members on this host
  receive what it sends.

Options (for multicast groups only; given with any other address they raise
:class:`~anyipc.InvalidAddress`):

* ``interface``: where to join the group and send to it: for an IPv4 group,
  the IPv4 address of a local interface (``interface=127.0.0.1`` keeps the
  traffic on loopback) or an interface name (``lo``, ``eth0``); for an IPv6
  group, an interface name (or a zone in the address, not both).  Without
  it the kernel picks the interface from its routing table.  A link-local
  or interface-local IPv6 group (``ff02::/16``, ``ff01::/16``...) needs
  one.  A name this host lacks is :class:`~anyipc.InvalidAddress` naming
  the interfaces it has.  (Linux's loopback interface carries IPv4
  multicast but, lacking the MULTICAST flag, not IPv6 multicast.)
* ``ttl`` (0..255, default 1): how many routers a datagram sent to the group
  may cross (``IP_MULTICAST_TTL`` / ``IPV6_MULTICAST_HOPS``); 1 keeps it on
  the local network.

Errors.  Every call is non-blocking (``MSG_DONTWAIT``) and waits with
``poll()`` together with the channel's waker until its deadline: a ``send``
waits while the send buffer is full, then :class:`~anyipc.Timeout`, and
``close()`` from another thread wakes a blocked call
(:class:`~anyipc.ChannelClosed`).  OS errors are mapped by
:func:`anyipc._errors.map_os_error` (a send with no route to the host:
:class:`~anyipc.ConnectionLost` for that send; the channel stays usable).

ICMP errors.  When a datagram sent by a ``connect``-ed channel reaches a
host where nobody is bound to that port, the host answers "port
unreachable", and Linux reports ECONNREFUSED on the socket's next call.
That is news about an *earlier* datagram, which is simply lost: UDP
promises nothing more, so the channel neither closes nor raises
:class:`~anyipc.ConnectionLost` (the peer may bind a moment later, and a
``recv`` may be waiting for another datagram already on its way).  The
call goes on (a ``send`` still sends its datagram, a ``recv`` keeps
waiting), and a ``recv`` that then times out says in its
:class:`~anyipc.Timeout` message that an earlier datagram was refused.
Other ICMP reports (host or network unreachable) are handled the same way
when ``recv`` finds them.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from collections.abc import Callable
from typing import Any

import attrs

from anyipc import hookimpl
from anyipc._address import Address
from anyipc._capabilities import Addressing, Boundaries, Capabilities, Connection, Direction, Scope
from anyipc._channel import Channel
from anyipc._errors import ConnectionLost, InvalidAddress, IPCError, map_os_error
from anyipc._inet import (
    check_peer_port,
    format_location,
    ip_literal,
    location_checker,
    parse_location,
    sockaddr_location,
)
from anyipc._records import TransportSpec
from anyipc._sockets import listen_error, owned
from anyipc.transports._udp_channel import UdpChannel, udp_uri
from anyipc.transports._udp_multicast import INTERFACE, TTL, Multicast, check_options, group

__all__ = ["IPV4_CAPABILITIES", "IPV6_CAPABILITIES", "OPTIONS", "UdpChannel", "bind", "connect"]

MAX_IPV4 = 65507  #: 65535 - 20 (IPv4 header) - 8 (UDP header)
MAX_IPV6 = 65527  #: 65535 (IPv6 payload length) - 8 (UDP header); no jumbograms


def _claims(limit: int) -> Capabilities:
    return Capabilities(
        direction=Direction.DUPLEX,
        boundaries=Boundaries.MESSAGE,
        connection=Connection.CONNECTIONLESS,
        lossless=False,
        ordered=False,
        intact=True,
        duplicate_free=False,
        scope=Scope.NETWORK,
        addressing=Addressing.NAMED,
        max_message_size=limit,
        reports_end=False,
    )


IPV4_CAPABILITIES = _claims(MAX_IPV4)
IPV6_CAPABILITIES = _claims(MAX_IPV6)
OPTIONS = (INTERFACE, TTL)


def capabilities(address: Address) -> Capabilities:
    """The claims for ``address`` (its family sets the size limit); checks the options' use.

    Raises :class:`~anyipc.InvalidAddress` for multicast options on an
    address that is not a group, and for an IPv6 group whose interface is
    missing (link-local scope), named twice or given as an IPv4 address.
    """
    host, _ = parse_location(address.location, "udp")
    check_options(address, host)
    literal = ip_literal(host)
    return IPV6_CAPABILITIES if isinstance(literal, ipaddress.IPv6Address) else IPV4_CAPABILITIES


def _resolve(host: str, port: int, context: str, *, passive: bool) -> tuple[int, Any]:
    """The family and socket address of ``host:port`` (the resolver's first answer)."""
    flags = socket.AI_PASSIVE if passive else 0
    if ip_literal(host) is not None:
        flags |= socket.AI_NUMERICHOST
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM, flags=flags)
    except socket.gaierror as exc:
        message = f"{context}: cannot resolve {host!r}: {exc.strerror}"
        raise (InvalidAddress(message) if passive else ConnectionLost(message)) from exc
    family, _, _, _, sockaddr = found[0]
    return family, sockaddr


@attrs.frozen
class _Plan:
    """What ``bind`` or ``connect`` learns from an address before it makes a socket."""

    context: str  #: what the verb does, for error messages ("bind udp://...")
    host: str  #: as written (a group keeps its spelling in the bound channel's address)
    capabilities: Capabilities
    family: int
    sockaddr: Any
    multicast: Multicast | None  #: how to join or send, for a group


def _plan(address: Address, context: str, *, passive: bool) -> _Plan:
    host, port = parse_location(address.location, "udp")
    if not passive:
        check_peer_port(port, "udp", address.location)
    caps = capabilities(address)
    family, sockaddr = _resolve(host, port, context, passive=passive)
    multicast = Multicast(address, family, sockaddr, context) if group(host) else None
    return _Plan(context, host, caps, family, sockaddr, multicast)


def _opened(plan: _Plan, make: Callable[[socket.socket], Channel]) -> Channel:
    """``make(sock)`` for a new UDP socket (IPv6: IPv6-only); errors mapped, nothing leaked."""
    try:
        sock = socket.socket(plan.family, socket.SOCK_DGRAM)
    except OSError as exc:
        raise map_os_error(exc, plan.context) from exc

    def setup(sock: socket.socket) -> Channel:
        if plan.family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        return make(sock)

    return owned(sock, setup, lambda exc: _open_error(exc, plan.context))


def _open_error(exc: OSError, context: str) -> IPCError:
    if exc.errno == errno.ENODEV:  # joining: no interface routes the group
        return InvalidAddress(
            f"{context}: no interface can carry this group ({exc.strerror}): choose one with "
            "interface="
        )
    return listen_error(exc, context)


def bind(address: Address) -> Channel:
    """Receive on ``udp://host:port`` (a group: join it); see the module docstring.

    Raises :class:`~anyipc.AddressInUse` when a live socket has the unicast
    address, :class:`~anyipc.InvalidAddress` when this host does not have
    the address (or the interface), :class:`~anyipc.PermissionDenied` for a
    privileged port without the privilege.
    """
    plan = _plan(address, f"bind udp://{address.location}", passive=True)

    def bound(sock: socket.socket) -> Channel:
        if plan.multicast is None:
            sock.bind(plan.sockaddr)
            location = sockaddr_location(sock.getsockname())
        else:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind(plan.multicast.target)
            plan.multicast.join(sock)
            plan.multicast.prepare_sending(sock)
            location = format_location(plan.host, sock.getsockname()[1])  # the group as written
        public = address.replace(location=location)
        return UdpChannel(sock, plan.capabilities, address=str(public), peer=None)

    return _opened(plan, bound)


def connect(address: Address) -> Channel:
    """A channel whose default peer is ``udp://host:port`` (a group: sends to it)."""
    plan = _plan(address, f"connect to udp://{address.location}", passive=False)

    def connected(sock: socket.socket) -> Channel:
        if plan.multicast is None:
            sock.connect(plan.sockaddr)
            peer = udp_uri(sock.getpeername())
            target = None
        else:
            plan.multicast.prepare_sending(sock)
            sock.bind(plan.multicast.source)
            peer = udp_uri(plan.multicast.target)
            target = plan.multicast.target
        return UdpChannel(
            sock, plan.capabilities, address=udp_uri(sock.getsockname()), peer=peer, target=target
        )

    return _opened(plan, connected)


@hookimpl
def anyipc_transports() -> list[TransportSpec]:
    return [
        TransportSpec(
            scheme="udp",
            description="UDP datagrams over IPv4 and IPv6, to a peer or a multicast group",
            capabilities=capabilities,
            check_location=location_checker("udp"),
            test_address=lambda: "udp://127.0.0.1:0",
            options=OPTIONS,
            connect=connect,
            bind=bind,
        )
    ]
