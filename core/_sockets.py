"""Connected and listening stream sockets: the mechanics ``tcp://`` and ``unix://`` share.

Every call here is non-blocking.  A listener's socket is put in
non-blocking mode; a connected channel leaves its descriptor in (or puts it
back into) blocking mode, the POSIX default, and makes each call
non-blocking by its flags (``MSG_DONTWAIT``) instead, because the mode
belongs to the open file description, which a child that inherits the
descriptor shares (``socketpair://``, the fork server model): it can use
the descriptor as a plain, blocking one.  A call that must wait polls the
socket together with the endpoint's waker until the call's deadline, so
timeouts are never early and ``close()`` from another thread wakes it (it
raises :class:`ChannelClosed`); a connected channel keeps one
:class:`~anyipc._readiness.FdWaiter` per direction for that, so that the
wait between two messages costs one ``poll()`` and no set-up.

Errors.  Sends pass ``MSG_NOSIGNAL``: writing to a vanished peer raises
:class:`ConnectionLost` and never raises SIGPIPE, whatever the process's
SIGPIPE disposition.  OS errors are translated by
:func:`anyipc._errors.map_os_error` and keep the ``OSError`` as
``__cause__``; an OS error after this end was closed is :class:`ChannelClosed`.

Orderly close versus reset.  ``recv`` returning no bytes is the peer's FIN:
:class:`EndOfChannel`, everything it sent was received.  A TCP peer that
closes while data it never read sits in its receive buffer makes its kernel
send RST instead; our ``recv`` fails with ECONNRESET, which is
:class:`ConnectionLost` (data in flight toward us may be lost).  A peer that
crashed with nothing unread is closed by its kernel with FIN, which is
indistinguishable from an orderly close: ``EndOfChannel``, as the design
allows.  Once a ``recv`` reported ``ConnectionLost`` every later one does
too (the kernel reports a reset once, then end-of-file).

Closing never calls ``shutdown()``: a descriptor shared with a forked child
(the fork server model) must keep working in the child after the parent
closes its copy.  Blocked calls of this process are woken by the waker; the
peer sees FIN (RST if this end leaves data unread) when the last copy of the
descriptor is closed.
"""

from __future__ import annotations

import abc
import errno
import os
import select
import socket
import time
from collections.abc import Callable
from typing import Any, TypeVar

from anyipc._address import Address
from anyipc._capabilities import Capabilities
from anyipc._channel import Channel, Listener, receiving_view
from anyipc._deadline import Deadline
from anyipc._errors import (
    ChannelClosed,
    ConnectionLost,
    EndOfChannel,
    InvalidAddress,
    IPCError,
    Timeout,
    map_os_error,
)
from anyipc._options import Option
from anyipc._readiness import READABLE, WRITABLE, FdWaiter, wait_for_fd

__all__ = [
    "CHUNK",
    "CONNECT_TIMEOUT",
    "SocketChannel",
    "SocketListener",
    "connect_stream",
    "connect_timeout",
    "listen_error",
    "owned",
    "peer_name",
]

CHUNK = 65536  #: the most bytes one ``recv`` returns

CONNECT_TIMEOUT = Option(
    name="connect_timeout",
    kind=float,
    default=10.0,
    minimum=0.0,
    doc="seconds connect() waits for the listener to take the connection",
)

_T = TypeVar("_T")

_SEND_FLAGS = int(socket.MSG_NOSIGNAL | socket.MSG_DONTWAIT)  # once: the enum's "|" is slow

# accept(2): errors of a connection that died while queued; retry as for EAGAIN.
_ACCEPT_AGAIN = frozenset(
    {
        errno.ECONNABORTED,
        errno.EPROTO,
        errno.ENETDOWN,
        errno.ENOPROTOOPT,
        errno.EHOSTDOWN,
        errno.ENONET,
        errno.EHOSTUNREACH,
        errno.EOPNOTSUPP,
        errno.ENETUNREACH,
    }
)
# bind(2) and listen(2) errors that mean "this address cannot be listened on here".
_NOT_HERE = frozenset(
    {
        errno.ENOENT,
        errno.ENOTDIR,
        errno.EISDIR,
        errno.ELOOP,
        errno.ENAMETOOLONG,
        errno.EROFS,
        errno.EADDRNOTAVAIL,
    }
)
_BACKLOG_RETRY_S = 0.005


class SocketChannel(Channel):
    """A connected stream socket; owns ``sock`` (its descriptor in blocking mode) from now on.

    ``recv`` returns 1..65536 bytes as they arrive; :meth:`recv_into` reads
    into a caller's buffer instead.  A ``send`` that times out raises
    :class:`Timeout` whose ``sent`` counts the bytes handed to the kernel
    (they will arrive; the rest was not sent).  See the module docstring for
    how the end of a connection is reported.
    """

    def __init__(
        self,
        sock: socket.socket,
        capabilities: Capabilities,
        *,
        address: str | None,
        peer: str | None,
    ) -> None:
        self._sock = sock
        super().__init__(capabilities, address=address, peer=peer)
        if sock.gettimeout() is not None:
            sock.settimeout(None)  # no timeout of Python's own: each call below is MSG_DONTWAIT
        self._lost: str | None = None
        # Each made by the first wait in its direction, under that direction's lock.
        self._readable: FdWaiter | None = None
        self._writable: FdWaiter | None = None

    def recv_into(self, buffer: bytearray | memoryview, *, timeout: float | None = None) -> int:
        """Receive 1..``len(buffer)`` stream bytes into ``buffer`` and return how many.

        Same lock, timeout and errors as :meth:`recv`, without allocating:
        the framed layer reads large messages straight into their final
        buffer with it.  ``buffer`` must be writable and not empty.
        """
        view = receiving_view(buffer)
        self._check_can_recv()
        deadline = Deadline(timeout)
        self._locked(self._recv_lock, deadline, "recv")
        try:
            self._check_open()
            return self._read(lambda: self._sock.recv_into(view, 0, socket.MSG_DONTWAIT), deadline)
        finally:
            self._recv_lock.release()

    def _recv(self, deadline: Deadline) -> bytes:
        return self._read(lambda: self._sock.recv(CHUNK, socket.MSG_DONTWAIT), deadline)

    def _read(self, attempt: Callable[[], _T], deadline: Deadline) -> _T:
        """Retry ``attempt`` (one non-blocking receive) until it gets bytes or end-of-file."""
        if self._lost is not None:
            raise ConnectionLost(self._lost)
        while True:
            try:
                result = attempt()
            except BlockingIOError:
                if self._readable is None:
                    self._readable = FdWaiter(self._sock.fileno(), READABLE, self._waker)
                self._readable.wait(deadline, "recv")
                continue
            except OSError as exc:
                error = self._failure(exc, "recv")
                if isinstance(error, ConnectionLost):
                    self._lost = str(error)
                raise error from exc
            if not result:
                raise EndOfChannel(f"{self.peer or 'the peer'} closed the connection")
            return result

    def _send(self, data: memoryview, deadline: Deadline) -> None:
        sent = 0
        while sent < len(data):
            try:
                sent += self._sock.send(data[sent:], _SEND_FLAGS)
            except BlockingIOError:
                if self._writable is None:
                    self._writable = FdWaiter(self._sock.fileno(), WRITABLE, self._waker)
                try:
                    self._writable.wait(deadline, "send")
                except Timeout:
                    raise Timeout(
                        f"send timed out after {sent} of {len(data)} bytes", sent=sent
                    ) from None
            except OSError as exc:
                raise self._failure(exc, "send") from exc

    def _failure(self, exc: OSError, what: str) -> IPCError:
        if self._closed:
            return ChannelClosed(f"{self!r} was closed during {what}")
        return map_os_error(exc, f"{what} with {self.peer or self.address or 'an unnamed peer'}")

    def _wait_fd(self) -> int | None:
        fd = self._sock.fileno()
        return fd if fd >= 0 else None

    def _close(self) -> None:
        self._sock.close()


class SocketListener(Listener):
    """A listening stream socket; owns ``sock`` (made non-blocking) from now on.

    ``accept`` skips connections that died while queued, and those that
    :meth:`_admits` refuses (closed unread, never handed out).  Reaching the
    limit on open descriptors raises :class:`~anyipc.TransportUnavailable`
    saying so; the connection stays queued for a later ``accept``.
    """

    def __init__(self, sock: socket.socket, capabilities: Capabilities, address: str) -> None:
        self._sock = sock
        super().__init__(capabilities, address)
        sock.setblocking(False)

    @abc.abstractmethod
    def _channel(self, sock: socket.socket) -> Channel:
        """The channel of a freshly accepted ``sock``."""

    def _admits(self, sock: socket.socket) -> bool:
        """Whether the client on the freshly accepted ``sock`` may be handed out (before any read).

        Every client, unless a subclass checks who it is.  ``OSError`` (the
        client is gone already) counts as a refusal.
        """
        return True

    def _accept(self, deadline: Deadline) -> Channel:
        while True:
            try:
                sock, _ = self._sock.accept()
            except BlockingIOError:
                wait_for_fd(self._sock.fileno(), READABLE, deadline, self._waker, "accept")
                continue
            except OSError as exc:
                if exc.errno in _ACCEPT_AGAIN:
                    continue
                if self._closed:
                    raise ChannelClosed(f"{self!r} was closed during accept") from exc
                raise map_os_error(exc, f"accept on {self.address}") from exc
            try:
                admitted = self._admits(sock)
            except OSError:
                admitted = False
            if not admitted:
                sock.close()
                continue
            return owned(
                sock, self._channel, lambda exc: map_os_error(exc, f"accept on {self.address}")
            )

    def _wait_fd(self) -> int | None:
        fd = self._sock.fileno()
        return fd if fd >= 0 else None

    def _close(self) -> None:
        self._sock.close()


def owned(
    sock: socket.socket,
    make: Callable[[socket.socket], _T],
    failure: Callable[[OSError], IPCError],
) -> _T:
    """``make(sock)``; if it raises, ``sock`` is closed and a raw OSError is ``failure(exc)``."""
    try:
        return make(sock)
    except BaseException as exc:
        sock.close()
        if isinstance(exc, OSError) and not isinstance(exc, IPCError):
            raise failure(exc) from exc
        raise


def connect_stream(
    family: int,
    target: str | bytes | tuple[Any, ...],
    deadline: Deadline,
    context: str,
    *,
    kind: int = socket.SOCK_STREAM,
) -> socket.socket:
    """A new non-blocking stream socket connected to ``target`` before ``deadline``.

    ``kind`` may be ``SOCK_SEQPACKET`` (connected the same way) instead.

    A full AF_UNIX backlog (EAGAIN, which no poll event announces the end
    of) is retried every few milliseconds until the deadline.  Raises
    :class:`ConnectionLost` when nobody listens there or the peer is
    unreachable, :class:`~anyipc.PermissionDenied`, or :class:`Timeout`;
    ``context`` ("connect to tcp://...") starts the message.
    """
    sock = socket.socket(family, kind)
    try:
        sock.setblocking(False)
        while True:
            code = sock.connect_ex(target)
            if code == errno.EAGAIN:
                left = deadline.remaining()
                if left == 0.0:
                    raise Timeout(f"{context}: the listener's backlog stayed full")
                time.sleep(_BACKLOG_RETRY_S if left is None else min(_BACKLOG_RETRY_S, left))
                continue
            if code == errno.EINPROGRESS:
                _wait_connected(sock, deadline, context)
                code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code:
                cause = OSError(code, os.strerror(code))
                raise map_os_error(cause, context) from cause
            return sock
    except BaseException:
        sock.close()
        raise


def _wait_connected(sock: socket.socket, deadline: Deadline, context: str) -> None:
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLOUT)
    while not poller.poll(deadline.poll_ms()):
        if deadline.expired():
            raise Timeout(f"{context}: no answer within the connect_timeout")


def connect_timeout(address: Address) -> Deadline:
    """The deadline of a connect to ``address``, from its ``connect_timeout`` option."""
    value = address.get(CONNECT_TIMEOUT)
    assert isinstance(value, float)
    return Deadline(value)


def listen_error(exc: OSError, context: str) -> IPCError:
    """The error for ``exc`` raised while creating a listening endpoint.

    A missing directory, an address this host does not have or a read-only
    file system mean the address cannot be listened on here:
    :class:`InvalidAddress`.  Everything else maps as usual (address in use,
    permission, descriptor limit).
    """
    if exc.errno in _NOT_HERE:
        return InvalidAddress(f"{context}: {exc.strerror or exc}")
    return map_os_error(exc, context)


def peer_name(sock: socket.socket) -> Any:
    """``getpeername()``, or ``None`` when the peer is already gone (ENOTCONN)."""
    try:
        return sock.getpeername()
    except OSError:
        return None
