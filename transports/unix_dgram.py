"""``unix-dgram:///path`` and ``unix-dgram://@name`` — Unix domain datagram sockets.

Connectionless messages between processes of one host: each ``send`` is one
datagram and each ``recv`` returns one whole datagram, with no anyipc
header (a plain program reading the socket gets the same message).
Zero-length datagrams are messages.  On Linux, Unix domain datagrams are
never dropped, reordered, damaged or duplicated: a sender whose receiver's
queue is full waits (``net.unix.max_dgram_qlen`` datagrams, or its own send
buffer) until there is room, or until its timeout
(:class:`~anyipc.Timeout`: the message was not sent).  So the channel
claims lossless, ordered (per sender), intact and duplicate-free.  It does
not report ends (``reports_end`` is false): a receiver is never told that a
sender closed or died, it just receives nothing more.

Verbs:

* ``bind("unix-dgram:///path")`` (or ``@name``) creates the named endpoint:
  a channel with ``recv``/``recv_from`` and ``send_to``, and no default
  peer (``send`` raises :class:`~anyipc.NotSupported`).  Its ``address``
  is its URI.
* ``connect("unix-dgram:///path")`` gives a channel whose default peer is
  that endpoint (``send``/``recv``; ``send_to``/``recv_from`` work too).
  Its socket is ``connect()``-ed to the endpoint, so it receives only what
  that endpoint sends, and is autobound to a fresh abstract name (Linux's
  autobind: five hex digits), reported as its ``address``
  (``unix-dgram://@1a2b3``): ``recv_from`` on the bound side reports that
  address, and ``send_to`` it reaches this channel.  Nothing is sent by
  ``connect`` itself.

``recv_from`` reports the sender's URI; a sender that is not anyipc and
has no name (it neither bound nor was autobound) is reported as ``""``:
it cannot be answered.  ``send_to`` takes a ``unix-dgram://`` URI
(anything else is :class:`~anyipc.InvalidAddress`).

Sizes.  ``max_message_size`` is 65536 bytes (:data:`MAX_MESSAGE`) on every
machine: each channel makes its send buffer large enough for it (Linux
refuses a datagram larger than the sender's send buffer minus 32 bytes;
the default buffer of 212992 bytes already is).  A larger ``send`` or
``send_to`` raises :class:`~anyipc.MessageTooLarge` before anything is
sent; the channel stays usable.  A larger datagram from a program that is
not anyipc cannot be received whole: the kernel discards it and ``recv``
raises :class:`~anyipc.MessageTooLarge` saying so; the channel stays usable.

Errors.  Sending where nobody is bound (no socket file, or a stale one
whose owner died): :class:`~anyipc.ConnectionLost` ("nobody is listening
there"), raised by ``connect`` at once and by ``send_to``; the message is
not sent and the channel stays usable.  A connected channel whose peer
closed: the next ``send`` raises :class:`~anyipc.ConnectionLost`, and so
does every later one (the kernel drops the connection then, with any
datagrams of the old peer not yet received); connect again to reach a
successor at the same name.  Without write permission on the socket
file, or to a socket ``connect()``-ed to another one:
:class:`~anyipc.PermissionDenied`.  Sends pass ``MSG_NOSIGNAL``: never
SIGPIPE.  Every call is non-blocking (``MSG_DONTWAIT``); a send that must
wait for room waits in the kernel in slices of at most 50 ms (no poll event
tells an unconnected sender that another socket's queue drained), so
``close()`` from another thread ends it within a slice and the deadline is
kept; a ``recv`` waits with ``poll()`` and is woken at once.

Names, as for every unix-domain scheme (see :mod:`anyipc._unixnames`): a
path of at most 107 bytes, or an abstract ``@name`` of at most 107 bytes.
``bind`` on a path creates the socket file with exactly the ``mode``
option's bits (octal, default ``600``; sending needs write permission),
never wider at any moment; it never replaces a live socket or a file that
is not a socket (:class:`~anyipc.AddressInUse`), reclaims a stale socket
left by a dead owner, and ``close()`` removes the file if the path still
names it.  Abstract names have no file, so ``mode`` is refused there.

Who may send to an abstract name is checked by uid instead (see
:mod:`anyipc._peercred`): the endpoint ``bind`` creates on ``@name``
receives every datagram with its sender's credentials and drops, unread,
those from a uid other than this user's, root's or one of ``allow_uids``
(``allow_uids=1001,1002``, or ``any``; refused on a socket file).  A
dropped datagram is as if never sent: ``recv`` goes on waiting for the
next one.  ``connect`` cannot check who bound the name (use
``unix-seqpacket://@`` where that matters) and ignores ``allow_uids``.
"""

from __future__ import annotations

import socket
import struct
from functools import lru_cache, partial

from anyipc import hookimpl
from anyipc._address import Address
from anyipc._capabilities import Addressing, Boundaries, Capabilities, Connection, Direction, Scope
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
from anyipc._peercred import ALLOW_UIDS, CREDENTIALS_SPACE, PeerPolicy, log, policy_of, sender_uid
from anyipc._readiness import READABLE, wait_for_fd
from anyipc._records import TransportSpec
from anyipc._seqpacket import SEND_BUFFER_OVERHEAD, ensure_send_buffer
from anyipc._sockets import owned
from anyipc._unixnames import (
    MODE,
    SocketFile,
    bind_name,
    claims,
    location_checker,
    plain,
    sockaddr,
    test_address,
    uri_of,
)

SCHEME = "unix-dgram"
MAX_MESSAGE = 65536  #: the largest message, in bytes
CAPABILITIES = Capabilities(
    direction=Direction.DUPLEX,
    boundaries=Boundaries.MESSAGE,
    connection=Connection.CONNECTIONLESS,
    lossless=True,
    ordered=True,
    intact=True,
    duplicate_free=True,
    scope=Scope.HOST,
    addressing=Addressing.NAMED,
    max_message_size=MAX_MESSAGE,
    reports_end=False,
)
OPTIONS = (MODE, ALLOW_UIDS)
SEND_SLICE = 0.05  #: seconds a send waits in the kernel before it checks for close()

_NOW = socket.MSG_DONTWAIT | socket.MSG_NOSIGNAL


@lru_cache(maxsize=256)
def _target(uri: str) -> bytes:
    """The socket name ``send_to(data, uri)`` sends to; InvalidAddress for another scheme."""
    address = Address.parse(uri)
    if address.scheme != SCHEME or address.layers:
        raise InvalidAddress(f"send_to needs a {SCHEME}:// address (a path or @name), not {uri!r}")
    return sockaddr(address.location)


class DatagramChannel(Channel):
    """A unix datagram socket ``sock``, which it owns, and the socket ``file`` it created.

    ``peer`` is the default peer of a ``connect()``-ed socket (``None`` for
    a bound one).  With a ``policy`` (a bound abstract name, whose socket
    has ``SO_PASSCRED``), datagrams from senders it does not admit are
    dropped.  See the module docstring for the semantics.
    """

    def __init__(
        self,
        sock: socket.socket,
        *,
        address: str | None,
        peer: str | None,
        file: SocketFile | None,
        policy: PeerPolicy | None = None,
    ) -> None:
        if sock.gettimeout() is not None:
            sock.settimeout(None)  # no timeout of Python's own: each call below sets its own
        ensure_send_buffer(sock, MAX_MESSAGE + SEND_BUFFER_OVERHEAD)
        self._sock = sock
        super().__init__(CAPABILITIES, address=address, peer=peer)
        self._file = file
        self._policy = policy
        self._room = CREDENTIALS_SPACE if policy is not None else 0

    def _send(self, data: memoryview, deadline: Deadline) -> None:
        self._transmit(data, None, deadline, "send")

    def _send_to(self, data: memoryview, address: str, deadline: Deadline) -> None:
        self._transmit(data, _target(address), deadline, f"send_to {address}")

    def _transmit(
        self, data: memoryview, target: bytes | None, deadline: Deadline, what: str
    ) -> None:
        """Send one datagram to ``target`` (the default peer if ``None``) before ``deadline``.

        A full queue is waited for by a blocking send with ``SO_SNDTIMEO``
        set to the next slice: the kernel wakes it as soon as there is room.
        """
        flags = _NOW
        wait: float | None = None
        while True:
            try:
                if wait is not None:
                    self._set_send_timeout(wait)
                if target is None:
                    self._sock.send(data, flags)
                else:
                    self._sock.sendto(data, flags, target)
                return
            except BlockingIOError:
                if self._waker.woken:
                    raise ChannelClosed(f"{self!r} was closed during {what}") from None
                left = deadline.remaining()
                if left == 0.0:
                    raise Timeout(f"{what} timed out: the receiver's queue stayed full") from None
                wait = SEND_SLICE if left is None else min(SEND_SLICE, left)
                flags = socket.MSG_NOSIGNAL  # from now on, wait in the kernel
            except OSError as exc:
                raise self._failure(exc, what) from exc

    def _set_send_timeout(self, seconds: float) -> None:
        """Make a blocking send give up after ``seconds`` (at least a microsecond: 0 is never)."""
        micros = max(1, int(seconds * 1_000_000))
        timeval = struct.pack("@ll", micros // 1_000_000, micros % 1_000_000)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeval)

    def _recv(self, deadline: Deadline) -> bytes:
        return self._receive(deadline, "recv")[0]

    def _recv_from(self, deadline: Deadline) -> tuple[bytes, str]:
        data, sender = self._receive(deadline, "recv_from")
        return data, sender or ""

    def _receive(self, deadline: Deadline, what: str) -> tuple[bytes, str | None]:
        """One whole datagram and its sender's URI (``None``: an unnamed sender)."""
        while True:
            try:
                data, ancillary, flags, name = self._sock.recvmsg(
                    MAX_MESSAGE, self._room, socket.MSG_DONTWAIT
                )
            except BlockingIOError:
                wait_for_fd(self._sock.fileno(), READABLE, deadline, self._waker, what)
                continue
            except OSError as exc:
                raise self._failure(exc, what) from exc
            sender = uri_of(SCHEME, name)
            if self._policy is not None:
                uid = sender_uid(ancillary)
                if uid is None or not self._policy.admits(uid):
                    log.warning(
                        "%s dropped a datagram from %s: %s",
                        self.address,
                        sender or "an unnamed sender",
                        self._policy.refusal(uid),
                    )
                    continue
            if flags & socket.MSG_TRUNC:
                raise MessageTooLarge(
                    f"{sender or 'an unnamed sender'} sent a datagram above this channel's "
                    f"max_message_size of {MAX_MESSAGE} bytes; it was discarded"
                )
            return data, sender

    def _failure(self, exc: OSError, what: str) -> IPCError:
        if self._closed:
            return ChannelClosed(f"{self!r} was closed during {what}")
        return map_os_error(exc, f"{what} on {self.address or SCHEME}")

    def _wait_fd(self) -> int | None:
        fd = self._sock.fileno()
        return fd if fd >= 0 else None

    def _close(self) -> None:
        if self._file is not None:
            self._file.remove()  # while the socket is open, no one else may have reclaimed it
        self._sock.close()


def bind(address: Address) -> Channel:
    """The named endpoint ``unix-dgram:///path`` or ``unix-dgram://@name``.

    Raises :class:`~anyipc.AddressInUse` when a live socket or a file that is
    not a socket is there, :class:`~anyipc.PermissionDenied` when the
    directory is not writable, :class:`~anyipc.InvalidAddress` when it does
    not exist.
    """
    name = plain(address)
    policy = policy_of(address)

    def credentials_on(sock: socket.socket) -> None:
        if policy is not None:  # before bind(): every datagram then carries its sender's uid
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)

    def finish(sock: socket.socket, file: SocketFile | None) -> Channel:
        return DatagramChannel(sock, address=name, peer=None, file=file, policy=policy)

    return bind_name(address, socket.SOCK_DGRAM, f"bind {name}", finish, credentials_on)


def connect(address: Address) -> Channel:
    """A channel whose default peer is the endpoint bound to ``address``.

    Raises :class:`~anyipc.ConnectionLost` when nothing is bound there (or
    what is there is not a datagram socket), :class:`~anyipc.PermissionDenied`
    without write permission on the socket file or when that socket is
    ``connect()``-ed to another one.
    """
    name = plain(address)
    context = f"connect to {name}"

    def connected(sock: socket.socket) -> Channel:
        sock.bind("")  # autobind: a fresh abstract name, so that replies reach this end
        sock.connect(sockaddr(address.location))
        local = uri_of(SCHEME, sock.getsockname())
        return DatagramChannel(sock, address=local, peer=name, file=None)

    try:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    except OSError as exc:
        raise map_os_error(exc, context) from exc
    return owned(sock, connected, lambda exc: map_os_error(exc, context))


@hookimpl
def anyipc_transports() -> list[TransportSpec]:
    return [
        TransportSpec(
            scheme=SCHEME,
            description="Unix domain datagram sockets: connectionless messages, never dropped",
            capabilities=claims(CAPABILITIES),
            check_location=location_checker(SCHEME),
            test_address=partial(test_address, SCHEME),
            options=OPTIONS,
            connect=connect,
            bind=bind,
        )
    ]
