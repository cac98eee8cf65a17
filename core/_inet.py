"""Internet socket addresses in URIs: ``host:port`` and ``[ipv6]:port``, parsed and formatted.

The location syntax of the transports over IP.  Parsing touches neither DNS
nor the OS: a host is an IPv4 address, an IPv6 address in brackets (with an
optional zone, ``[fe80::1%eth0]``) or a name that the transport resolves
when it opens the address.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable
from typing import Any

from anyipc._errors import InvalidAddress

__all__ = [
    "check_peer_port",
    "format_location",
    "ip_literal",
    "location_checker",
    "parse_location",
    "sockaddr_location",
]

_HOST = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,251}[A-Za-z0-9_])?\Z")
_DIGITS = re.compile(r"[0-9]+\Z")


def parse_location(location: str, scheme: str) -> tuple[str, int]:
    """The host (without brackets) and port of ``host:port`` or ``[ipv6]:port``.

    Raises ``ValueError`` saying what is wrong, with examples written for
    ``scheme``; touches neither DNS nor the OS.
    """
    if location.startswith("["):
        host, bracket, rest = location[1:].partition("]")
        if not bracket:
            raise ValueError("unclosed '[': write an IPv6 address as [::1]:port")
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"{host!r} in brackets is not an IPv6 address") from None
        if not rest.startswith(":"):
            raise ValueError("missing ':port' after the IPv6 address (e.g. [::1]:4242)")
        port = rest[1:]
    else:
        host, colon, port = location.rpartition(":")
        if not colon:
            raise ValueError("missing port: expected host:port (e.g. 127.0.0.1:4242)")
        if ":" in host:
            raise ValueError(f"an IPv6 address goes in brackets: {scheme}://[::1]:4242")
        if not host:
            raise ValueError("empty host: expected host:port (0.0.0.0 means every interface)")
        if not _HOST.match(host):
            raise ValueError(f"{host!r} is not a host name or an IPv4 address")
    if not _DIGITS.match(port):
        raise ValueError(f"port {port!r} is not a number" if port else "missing port number")
    number = int(port)
    if number > 65535:
        raise ValueError(f"port {number} is out of range 0..65535")
    return host, number


def location_checker(scheme: str) -> Callable[[str], str | None]:
    """The ``check_location`` of ``scheme``: the problem :func:`parse_location` finds, if any."""

    def check(location: str) -> str | None:
        try:
            parse_location(location, scheme)
        except ValueError as exc:
            return str(exc)
        return None

    return check


def check_peer_port(port: int, scheme: str, location: str) -> None:
    """Raise :class:`~anyipc.InvalidAddress` when ``port`` cannot be a peer's: port 0.

    Port 0 asks ``listen``/``bind`` for a free port; no peer has it, so a
    ``connect`` to it is refused before any socket (or DNS query) is made.
    """
    if port == 0:
        raise InvalidAddress(
            f"connect to {scheme}://{location}: port 0 picks a free port when listening or "
            "binding; connect needs the peer's port (its listener's address says it)"
        )


def ip_literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """``host`` as an IP address when it is written as one (not a name), else ``None``."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def format_location(host: str, port: int) -> str:
    """``host:port``, with an IPv6 host in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def sockaddr_location(sockaddr: Any) -> str:
    """The location of a socket address as Python returns it (IPv6: with its zone, if any).

    An IPv6 address with a scope (a link-local peer) gets its zone as the
    interface's name (``[fe80::1%eth0]:4242``), its number if the interface
    is gone, so that the location reaches the same peer again.
    """
    host, port = sockaddr[0], sockaddr[1]
    if len(sockaddr) == 4 and sockaddr[3]:  # Python gives the scope apart, not in the host
        try:
            zone = socket.if_indextoname(sockaddr[3])
        except OSError:
            zone = str(sockaddr[3])
        host = f"{host}%{zone}"
    return format_location(host, port)
