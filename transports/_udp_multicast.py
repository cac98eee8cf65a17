"""Multicast for ``udp://``: the group options, their checks, joining a group, sending to it.

The ``interface`` and ``ttl`` options and the rules for using them (groups
only; how an IPv6 group names its interface), and :class:`Multicast`: the
socket options that make a bound channel a member of a group and let a
channel send to one.  The semantics are in :mod:`anyipc.transports.udp`.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import struct
from typing import Any

from anyipc._address import Address
from anyipc._errors import InvalidAddress
from anyipc._inet import ip_literal
from anyipc._options import Option, OptionValue

# Linux interface names: shorter than IFNAMSIZ (16), without '/', ':' or whitespace.
_INTERFACE_NAME = re.compile(r"[^/:\s]{1,15}\Z")
_INTERFACE_KINDS = (
    "the IPv4 address of a local interface (e.g. 127.0.0.1) or an interface name (e.g. lo, eth0)"
)


def _check_interface(value: OptionValue) -> str | None:
    text = str(value)
    if isinstance(ip_literal(text), ipaddress.IPv4Address):
        return None
    if _INTERFACE_NAME.match(text) and text not in (".", ".."):
        return None
    return f"expected {_INTERFACE_KINDS}"


INTERFACE = Option(
    name="interface",
    kind=str,
    default=None,
    check=_check_interface,
    doc=f"multicast: where to join the group and send to it: {_INTERFACE_KINDS}",
)
TTL = Option(
    name="ttl",
    kind=int,
    default=1,
    minimum=0,
    maximum=255,
    doc="multicast: how many routers a datagram sent to the group may cross",
)


def group(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The multicast group ``host`` is written as, or ``None`` for any other host."""
    literal = ip_literal(host)
    return literal if literal is not None and literal.is_multicast else None


def check_options(address: Address, host: str) -> None:
    """Raise :class:`~anyipc.InvalidAddress` where ``address`` misuses the multicast options.

    That is: options on an address that is not a group, and an IPv6 group
    whose interface is missing (link-local scope), named twice or given as
    an IPv4 address.  ``host`` is the host of ``address``, parsed.
    """
    multicast_group = group(host)
    given = sorted(name for name, _ in address.options)
    if given and multicast_group is None:
        options = (
            f"options {' and '.join(given)} apply" if len(given) > 1 else f"{given[0]} applies"
        )
        raise InvalidAddress(
            f"udp://{address.location}: {options} only to multicast groups "
            "(224.0.0.0/4 or ff00::/8, written as an address)"
        )
    if isinstance(multicast_group, ipaddress.IPv6Address):
        problem = _ipv6_group_problem(multicast_group, address.get(INTERFACE))
        if problem:
            raise InvalidAddress(f"udp://{address.location}: {problem}")


def _ipv6_group_problem(ipv6: ipaddress.IPv6Address, interface: OptionValue | None) -> str | None:
    if interface is not None and ip_literal(str(interface)) is not None:
        return (
            f"interface={interface}: an IPv6 group is joined on an interface given by its "
            "name (e.g. interface=eth0), not by an address"
        )
    if interface is not None and ipv6.scope_id:
        return f"the zone %{ipv6.scope_id} and interface={interface} both name the interface"
    multicast_scope = (int(ipv6) >> 112) & 0xF
    if multicast_scope in (1, 2) and interface is None and not ipv6.scope_id:
        return (
            f"{ipv6} is an interface- or link-local group: say on which interface with "
            f"interface=NAME (e.g. eth0) or a zone ([{ipv6}%25eth0])"
        )
    return None


def _interface_index(name: str, context: str) -> int:
    try:
        return socket.if_nametoindex(name)
    except OSError:
        known = ", ".join(sorted(found for _, found in socket.if_nameindex()))
        raise InvalidAddress(
            f"{context}: this host has no interface {name!r} (it has: {known})"
        ) from None


class Multicast:
    """How one channel joins a group and sends to it: the interface, the TTL, the target.

    ``sockaddr`` is the group's socket address as resolved for ``address``;
    an interface this host lacks raises :class:`~anyipc.InvalidAddress`
    naming ``context``.
    """

    def __init__(self, address: Address, family: int, sockaddr: Any, context: str) -> None:
        self.family = family
        self.ipv4_interface = "0.0.0.0"  # the interface's address (IPv4; 0.0.0.0: by index)
        self.index = 0  # the interface's index (0: the kernel's choice)
        interface = address.get(INTERFACE)
        if interface is not None:
            text = str(interface)
            if family == socket.AF_INET and ip_literal(text) is not None:
                self.ipv4_interface = text
            else:
                self.index = _interface_index(text, context)
        elif family == socket.AF_INET6:
            self.index = sockaddr[3]  # the zone of the address, if any
        ttl = address.get(TTL)
        assert isinstance(ttl, int)
        self.ttl = ttl
        self.group = sockaddr[0]
        self.target = sockaddr if family == socket.AF_INET else (*sockaddr[:3], self.index)

    @property
    def source(self) -> tuple[str, int]:
        """Where a sending channel binds: the interface's IPv4 address if given, else any."""
        return (self.ipv4_interface if self.family == socket.AF_INET else "::", 0)

    def _mreqn(self) -> bytes:
        # struct ip_mreqn: the group, the interface's address, the interface's index
        return struct.pack(
            "@4s4si",
            socket.inet_aton(self.group),
            socket.inet_aton(self.ipv4_interface),
            self.index,
        )

    def prepare_sending(self, sock: socket.socket) -> None:
        """Send to groups on the chosen interface, with the TTL, looped back to this host."""
        if self.family == socket.AF_INET:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, self._mreqn())
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, self.ttl)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
        else:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, self.index)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, self.ttl)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 1)

    def join(self, sock: socket.socket) -> None:
        """Become a member of the group on the chosen interface."""
        if self.family == socket.AF_INET:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, self._mreqn())
        else:
            membership = socket.inet_pton(socket.AF_INET6, self.group) + struct.pack(
                "@I", self.index
            )
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, membership)
