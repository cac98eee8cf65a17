"""A connected ``AF_UNIX`` ``SOCK_SEQPACKET`` socket as a MESSAGE channel.

Seqpacket sockets keep message boundaries, are reliable and ordered, and
report the peer's close, so each ``send`` is one whole message (no anyipc
header: a plain program reading the socket gets the same message) and each
``recv`` returns one.

Blocking mode.  The descriptor is left in (or put back into) blocking
mode, the POSIX default, so that a child that inherits it can use it as a
plain descriptor; every call is made non-blocking by its flags
(``MSG_DONTWAIT``) and waits with ``poll()`` together with the endpoint's
waker, so timeouts hold and ``close()`` from another thread wakes it.

Sizes.  The channel claims ``capabilities.max_message_size`` and makes the
socket able to carry it: Linux refuses a message larger than the sender's
send buffer minus 32 bytes, so a smaller send buffer is raised (or
:class:`~anyipc.TransportUnavailable` says why it cannot be).  A message
above the maximum from a peer that is not anyipc cannot be received whole:
it is discarded by the kernel, and the channel raises
:class:`~anyipc.ConnectionLost` then and on every later ``recv``.

Empty messages and the end.  A zero-length message and the end of the
channel both read as zero bytes.  They are told apart by credentials: the
socket has ``SO_PASSCRED`` set, so the kernel attaches the sender's
credentials to every message, and the end carries none.  (A zero-length
message queued before this channel set the option, by a sender that did
not set it either, would read as the end; anyipc sets it on both ends of
every pair it creates.)

Errors.  The peer's close after everything it sent was received:
:class:`~anyipc.EndOfChannel`.  The peer closed while our messages were
unread (its kernel resets the connection), or a send after the peer
closed: :class:`~anyipc.ConnectionLost`.  Sends pass ``MSG_NOSIGNAL``:
never SIGPIPE.
"""

from __future__ import annotations

import socket
import struct

from anyipc._capabilities import Capabilities
from anyipc._channel import Channel
from anyipc._deadline import Deadline
from anyipc._errors import (
    ChannelClosed,
    ConnectionLost,
    EndOfChannel,
    IPCError,
    TransportUnavailable,
    map_os_error,
)
from anyipc._readiness import READABLE, WRITABLE, wait_for_fd

__all__ = ["SEND_BUFFER_OVERHEAD", "SeqpacketChannel", "ensure_send_buffer"]

SEND_BUFFER_OVERHEAD = 32  #: bytes of the send buffer Linux keeps back from one message
_CREDENTIALS = socket.CMSG_SPACE(struct.calcsize("3i"))  # struct ucred: pid, uid, gid


class SeqpacketChannel(Channel):
    """A connected seqpacket socket ``sock``, which it owns; see the module docstring.

    ``capabilities`` must be MESSAGE with a ``max_message_size``.  If the
    constructor raises (the socket cannot be set up), ``sock`` is left open
    for the caller to close.
    """

    def __init__(
        self,
        sock: socket.socket,
        capabilities: Capabilities,
        *,
        address: str | None,
        peer: str | None,
    ) -> None:
        limit = capabilities.max_message_size
        if limit is None:
            raise ValueError("a seqpacket channel needs a max_message_size")
        if sock.gettimeout() is not None:
            sock.settimeout(None)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        ensure_send_buffer(sock, limit + SEND_BUFFER_OVERHEAD)
        self._sock = sock
        super().__init__(capabilities, address=address, peer=peer)
        self._limit = limit
        self._lost: str | None = None

    def _recv(self, deadline: Deadline) -> bytes:
        if self._lost is not None:
            raise ConnectionLost(self._lost)
        while True:
            try:
                data, ancillary, flags, _ = self._sock.recvmsg(
                    self._limit, _CREDENTIALS, socket.MSG_DONTWAIT | socket.MSG_CMSG_CLOEXEC
                )
            except BlockingIOError:
                wait_for_fd(self._sock.fileno(), READABLE, deadline, self._waker, "recv")
                continue
            except OSError as exc:
                error = self._failure(exc, "recv")
                if isinstance(error, ConnectionLost):
                    self._lost = str(error)
                raise error from exc
            if flags & socket.MSG_TRUNC:
                self._lost = (
                    f"the peer sent a message above this channel's max_message_size of "
                    f"{self._limit} bytes; it was discarded"
                )
                raise ConnectionLost(self._lost)
            if not data and not ancillary:
                raise EndOfChannel(f"{self.peer or 'the peer'} closed the connection")
            return data

    def _send(self, data: memoryview, deadline: Deadline) -> None:
        while True:
            try:
                self._sock.send(data, socket.MSG_DONTWAIT | socket.MSG_NOSIGNAL)
                return
            except BlockingIOError:
                wait_for_fd(self._sock.fileno(), WRITABLE, deadline, self._waker, "send")
            except OSError as exc:
                raise self._failure(exc, "send") from exc

    def _failure(self, exc: OSError, what: str) -> IPCError:
        if self._closed:
            return ChannelClosed(f"{self!r} was closed during {what}")
        return map_os_error(exc, f"{what} on {self.address or 'a seqpacket socket'}")

    def _wait_fd(self) -> int | None:
        fd = self._sock.fileno()
        return fd if fd >= 0 else None

    def _close(self) -> None:
        self._sock.close()


def ensure_send_buffer(sock: socket.socket, needed: int) -> None:
    """Raise the send buffer of ``sock`` to at least ``needed`` bytes, or say why it cannot be."""
    if sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) >= needed:
        return
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, needed)
    got = sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
    if got < needed:
        raise TransportUnavailable(
            f"the socket's send buffer is {got} bytes and cannot be raised to {needed} "
            "(see sysctl net.core.wmem_max)"
        )
