"""The open ``udp://`` channel: sending and receiving datagrams, ICMP reports, send_to targets.

Each call is non-blocking and waits with ``poll()`` together with the
channel's waker; errors that tell of an earlier datagram (ICMP) are noted
rather than raised.  Opening sockets, and the semantics, are in
:mod:`anyipc.transports.udp`.
"""

from __future__ import annotations

import errno
import socket
from typing import Any

from anyipc._address import Address
from anyipc._capabilities import Capabilities
from anyipc._channel import Channel
from anyipc._deadline import Deadline
from anyipc._errors import (
    ChannelClosed,
    InvalidAddress,
    IPCError,
    MessageTooLarge,
    Timeout,
    map_os_error,
)
from anyipc._inet import ip_literal, parse_location, sockaddr_location
from anyipc._readiness import READABLE, WRITABLE, wait_for_fd

_RECEIVE_SIZE = 65536  # more than any datagram a socket of either family can receive

# Errors that a receive finds on a connect()-ed socket: ICMP news about an earlier datagram.
_UNDELIVERED = frozenset(
    {errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN}
)


def udp_uri(sockaddr: Any) -> str:
    """The ``udp://ip:port`` URI of a socket address as Python returns it."""
    return str(Address("udp", sockaddr_location(sockaddr), {}))


class UdpChannel(Channel):
    """A UDP socket ``sock``, owned from now on; see :mod:`anyipc.transports.udp`.

    ``target`` is the socket address ``send`` sends to when the socket is
    not ``connect()``-ed (a multicast group); ``None`` when the socket is
    connected to its peer, or when the channel has none (``bind``).  The
    descriptor stays in blocking mode; each call is non-blocking by its
    flags.
    """

    def __init__(
        self,
        sock: socket.socket,
        capabilities: Capabilities,
        *,
        address: str,
        peer: str | None,
        target: Any = None,
    ) -> None:
        self._sock = sock
        super().__init__(capabilities, address=address, peer=peer)
        if sock.gettimeout() is not None:
            sock.settimeout(None)  # no timeout of Python's own: each call is MSG_DONTWAIT
        self._target = target
        self._undelivered: str | None = None  # the last ICMP report, for a Timeout's message

    def _send(self, data: memoryview, deadline: Deadline) -> None:
        self._transmit(data, self._target, deadline, "send")

    def _send_to(self, data: memoryview, address: str, deadline: Deadline) -> None:
        self._transmit(data, self._sockaddr(address), deadline, "send_to")

    def _recv(self, deadline: Deadline) -> bytes:
        return self._receive(deadline, "recv")[0]

    def _recv_from(self, deadline: Deadline) -> tuple[bytes, str]:
        data, source = self._receive(deadline, "recv_from")
        return data, udp_uri(source)

    def _transmit(self, data: memoryview, sockaddr: Any, deadline: Deadline, what: str) -> None:
        """Send one datagram to ``sockaddr`` (``None``: the connected peer) before ``deadline``."""
        while True:
            try:
                if sockaddr is None:
                    self._sock.send(data, socket.MSG_DONTWAIT)
                else:
                    self._sock.sendto(data, socket.MSG_DONTWAIT, sockaddr)
                return
            except BlockingIOError:
                wait_for_fd(self._sock.fileno(), WRITABLE, deadline, self._waker, what)
            except OSError as exc:
                if exc.errno == errno.ECONNREFUSED:  # about an earlier datagram: send this one
                    self._note_undelivered(exc)
                    continue
                raise self._failure(exc, what, len(data)) from exc

    def _receive(self, deadline: Deadline, what: str) -> tuple[bytes, Any]:
        """One datagram and its source's socket address, before ``deadline``."""
        while True:
            try:
                data, source = self._sock.recvfrom(_RECEIVE_SIZE, socket.MSG_DONTWAIT)
            except BlockingIOError:
                try:
                    wait_for_fd(self._sock.fileno(), READABLE, deadline, self._waker, what)
                except Timeout as exc:
                    if self._undelivered is None:
                        raise
                    raise Timeout(f"{exc}; {self._undelivered}") from None
                continue
            except OSError as exc:
                if exc.errno in _UNDELIVERED and not self._closed:
                    self._note_undelivered(exc)
                    continue
                raise self._failure(exc, what, 0) from exc
            self._undelivered = None
            return data, source

    def _note_undelivered(self, exc: OSError) -> None:
        why = "nobody was bound to that port" if exc.errno == errno.ECONNREFUSED else exc.strerror
        self._undelivered = (
            f"an earlier datagram to {self.peer or 'its destination'} was not delivered ({why})"
        )

    def _sockaddr(self, uri: str) -> Any:
        """The socket address of a ``send_to`` target: ``udp://ip:port``, this channel's family."""
        target = Address.parse(uri)
        if target.scheme != "udp" or target.layers:
            raise InvalidAddress(f"send_to on a udp:// channel takes a udp:// address, not {uri!r}")
        if target.options:
            raise InvalidAddress(
                f"send_to takes udp://ip:port without options, not {uri!r}: the multicast "
                "settings are the sending channel's own (connect to the group to choose them)"
            )
        host, port = parse_location(target.location, "udp")
        literal = ip_literal(host)
        if literal is None:
            raise InvalidAddress(
                f"send_to takes an IP address (as recv_from reports), not the name in {uri!r}: "
                "connect() resolves names"
            )
        family = socket.AF_INET6 if literal.version == 6 else socket.AF_INET
        if family != self._sock.family:
            mine = 6 if self._sock.family == socket.AF_INET6 else 4
            raise InvalidAddress(f"this channel speaks IPv{mine}; it cannot send to {uri}")
        try:
            found = socket.getaddrinfo(
                host, port, family, socket.SOCK_DGRAM, 0, socket.AI_NUMERICHOST
            )
        except socket.gaierror as exc:
            raise InvalidAddress(f"send_to {uri}: {exc.strerror}") from exc
        return found[0][4]

    def _failure(self, exc: OSError, what: str, size: int) -> IPCError:
        if self._closed:
            return ChannelClosed(f"{self!r} was closed during {what}")
        if exc.errno == errno.EMSGSIZE:
            return MessageTooLarge(
                f"{what}: the kernel refused a datagram of {size} bytes ({exc.strerror}); "
                "nothing was sent"
            )
        return map_os_error(exc, f"{what} on {self.address}")

    def _wait_fd(self) -> int | None:
        fd = self._sock.fileno()
        return fd if fd >= 0 else None

    def _close(self) -> None:
        self._sock.close()
