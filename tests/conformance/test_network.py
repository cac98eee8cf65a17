"""The conformance suite on the network transports: udp:// over IPv4 and IPv6.

UDP claims neither lossless nor ordered delivery, so the suite checks that
nothing is fabricated and reports the share of a burst that arrived (see
``ANYIPC_CONFORMANCE_DELIVERY_FLOOR``); the peer tests run the other end in
a spawned process.
"""

from __future__ import annotations

import socket

import pytest

from anyipc.testing import TransportConformance


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


class TestUdp(TransportConformance):
    uri = "udp"


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="this machine has no IPv6 loopback")
class TestUdp6(TransportConformance):
    uri = "udp://[::1]:0"
