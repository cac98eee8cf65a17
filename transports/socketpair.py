"""``socketpair://`` — a connected pair of Unix domain sockets, for related processes.

Option ``type``:

* ``stream`` (the default): a duplex, lossless, ordered byte stream
  (``framed+socketpair://`` carries messages over it).
* ``seqpacket``: ``SOCK_SEQPACKET``, a duplex MESSAGE channel that is
  reliable, ordered, and reports the peer's close; each message is the
  socket's own unit, with no anyipc header, so a plain program reading the
  socket gets the same messages.  ``max_message_size`` is 65536 bytes
  (:data:`MAX_SEQPACKET`): the channel makes its send buffer large enough
  for it on every machine.  Zero-length messages are carried.  (Datagram
  sockets were not chosen: a ``SOCK_DGRAM`` pair never reports the peer's
  close, so it could not end in :class:`~anyipc.EndOfChannel`.)

Verbs:

* ``pair("socketpair://")`` returns two connected ends; either may send.
* ``connect("socketpair://fd/N")`` adopts descriptor ``N``, an end this
  process inherited; the channel owns it from then on (closing it closes
  ``N``).  The address must say the socket's type as its ``type`` option
  (the ends report it that way), because the capabilities follow from it.
  Errors: ``N`` not open here, :class:`~anyipc.ConnectionLost`; ``N`` not
  a Unix domain socket of the type the address says,
  :class:`~anyipc.InvalidAddress` (the descriptor is then left as it was).

The hand-off.  Each end's ``address`` is ``socketpair://fd/N`` (with
``?type=seqpacket`` where it applies) and its ``fds`` is ``(N,)``: start
a child with ``subprocess.Popen(..., pass_fds=end.fds)`` (or the ``fork``
start method), give it the address, close the parent's copy right away;
the child calls ``anyipc.connect(address)``.  Descriptors are created
close-on-exec, and an adopted one is made close-on-exec again (the flag is
the descriptor's own).  They stay in blocking mode, so a child that is
not anyipc can use them as plain descriptors: every anyipc call is made
non-blocking by its flags instead (``MSG_DONTWAIT``).  The seqpacket ends
also have ``SO_PASSCRED`` set (see :mod:`anyipc._seqpacket`), which a
plain reader does not notice.

Ends: the peer's orderly close after everything was received is
:class:`~anyipc.EndOfChannel`; a peer that closed (or was killed) with our
data unread resets the connection, :class:`~anyipc.ConnectionLost`, as
does sending after the peer closed (never SIGPIPE).  Stream semantics: see
:mod:`anyipc._sockets`.
"""

from __future__ import annotations

import socket
import stat

from anyipc import hookimpl
from anyipc._address import Address
from anyipc._capabilities import Addressing, Boundaries, Capabilities, Connection, Direction, Scope
from anyipc._channel import Channel
from anyipc._errors import InvalidAddress, map_os_error
from anyipc._inherited import (
    check_fd_location,
    fd_address,
    fd_number,
    fd_verbs,
    inherited_stat,
    keep_to_ourselves,
)
from anyipc._options import Option
from anyipc._records import TransportSpec
from anyipc._seqpacket import SeqpacketChannel
from anyipc._sockets import SocketChannel, owned

MAX_SEQPACKET = 65536  #: the largest message of ``type=seqpacket``

TYPE = Option(
    name="type",
    kind=str,
    default="stream",
    choices=("stream", "seqpacket"),
    doc="stream: a byte stream; seqpacket: messages (SOCK_SEQPACKET), at most 65536 bytes",
)
_KINDS = {"stream": socket.SOCK_STREAM, "seqpacket": socket.SOCK_SEQPACKET}
STREAM = Capabilities(
    direction=Direction.DUPLEX,
    boundaries=Boundaries.STREAM,
    connection=Connection.ORIENTED,
    lossless=True,
    ordered=True,
    intact=True,
    duplicate_free=True,
    scope=Scope.HOST,
    addressing=Addressing.INHERITED,
)
SEQPACKET = STREAM.evolve(boundaries=Boundaries.MESSAGE, max_message_size=MAX_SEQPACKET)


def _type(address: Address) -> str:
    value = address.get(TYPE)
    assert isinstance(value, str)
    return value


def capabilities(address: Address) -> Capabilities:
    """STREAM, or MESSAGE with ``type=seqpacket``."""
    return SEQPACKET if _type(address) == "seqpacket" else STREAM


class SocketpairStream(SocketChannel):
    """A stream end of a socket pair; ``fds`` is what a child must inherit to adopt it."""

    def __init__(self, sock: socket.socket, address: Address) -> None:
        super().__init__(sock, STREAM, address=fd_address(address, sock.fileno()), peer=None)
        self.fds = (sock.fileno(),)


class SocketpairPackets(SeqpacketChannel):
    """A seqpacket end of a socket pair; ``fds`` is what a child must inherit to adopt it."""

    def __init__(self, sock: socket.socket, address: Address) -> None:
        super().__init__(sock, SEQPACKET, address=fd_address(address, sock.fileno()), peer=None)
        self.fds = (sock.fileno(),)


def _end(sock: socket.socket, address: Address) -> Channel:
    if _type(address) == "seqpacket":
        return SocketpairPackets(sock, address)
    return SocketpairStream(sock, address)


def pair(address: Address) -> tuple[Channel, Channel]:
    """Two connected ends of the ``type`` the address says."""
    context = f"create a {_type(address)} socket pair"
    try:
        first, second = socket.socketpair(socket.AF_UNIX, _KINDS[_type(address)])
    except OSError as exc:
        raise map_os_error(exc, context) from exc
    try:
        one = owned(first, lambda s: _end(s, address), lambda exc: map_os_error(exc, context))
    except BaseException:
        second.close()
        raise
    try:
        return one, owned(
            second, lambda s: _end(s, address), lambda exc: map_os_error(exc, context)
        )
    except BaseException:
        one.close()
        raise


def connect(address: Address) -> Channel:
    """Adopt the inherited socket ``socketpair://fd/N``; see the module docstring."""
    fd = fd_number(address.location)
    assert fd is not None  # the bare address only pairs
    uri = str(address)
    if not stat.S_ISSOCK(inherited_stat(fd, uri).st_mode):
        raise InvalidAddress(f"{uri}: descriptor {fd} is not a socket")
    sock = socket.socket(fileno=fd)
    kinds = {kind: name for name, kind in _KINDS.items()}
    if sock.family != socket.AF_UNIX or sock.type not in kinds:
        sock.detach()  # leave the descriptor as it was
        raise InvalidAddress(
            f"{uri}: descriptor {fd} is not a Unix domain stream or seqpacket socket"
        )
    actual = kinds[sock.type]
    if actual != _type(address):
        sock.detach()
        correct = fd_address(address.replace(options={TYPE.name: actual}), fd)
        raise InvalidAddress(
            f"{uri}: descriptor {fd} is a {actual} socket; its address is {correct}"
        )
    keep_to_ourselves(fd)
    return owned(sock, lambda s: _end(s, address), lambda exc: map_os_error(exc, f"adopt {uri}"))


@hookimpl
def anyipc_transports() -> list[TransportSpec]:
    return [
        TransportSpec(
            scheme="socketpair",
            description="connected Unix socket pair, stream or seqpacket (fd/N adopts an end)",
            capabilities=capabilities,
            check_location=check_fd_location,
            test_address=lambda: "socketpair://",
            options=(TYPE,),
            connect=connect,
            pair=pair,
            verbs_for=fd_verbs,
        )
    ]
