"""``unix:///path`` and ``unix://@name`` — Unix domain stream sockets.

``unix:///run/app.sock`` names a socket file (an absolute path);
``unix://@app`` a name in Linux's abstract namespace.  The size of
``sun_path`` (108 bytes) limits both: a path to 107 bytes (it needs its
terminating NUL), an abstract name to 107 bytes after the ``@`` (the NUL
that marks it takes the first byte).  Both are checked, in bytes of the
file-system encoding, before any system call.

Verbs: ``listen`` and ``connect``.  A connecting client's ``peer`` is the
listener's URI and its ``address`` is ``None`` (it is unnamed); an accepted
channel's ``address`` is the listener's URI and its ``peer`` is ``None``, or
the client's URI if the client bound a name.

Socket files (``listen`` on a path):

* Permissions: the file has exactly the ``mode`` option's bits (octal,
  default ``600``: only the owner's processes may connect, as connecting
  needs write permission), and never more at any moment.  Before ``bind()``
  the socket's own inode gets ``mode`` with ``fchmod()``; Linux creates the
  file with those bits minus the umask, so it is born no wider than
  ``mode``; a ``chmod()`` then restores bits the umask took.  This changes
  no process-wide state (unlike a temporary umask) and binds the final path
  directly (unlike binding in a private directory and renaming, whose
  longer path may not fit ``sun_path`` and which the kernel would report
  from ``getsockname``).  ``listen`` checks the result and refuses a kernel
  that ignored the ``fchmod()``.
* Never stealing: ``bind()`` never replaces an existing file.  When the path
  exists, a socket there that accepts a connection is live:
  :class:`~anyipc.AddressInUse` (its owner sees one connection opened and
  closed at once).  A socket that refuses (ECONNREFUSED: nobody accepts) is
  stale, left by a dead owner: it is unlinked, after checking that the path
  still names the same inode, and the bind is retried.  A socket whose owner
  bound but has not called ``listen()`` yet looks stale too; that window
  exists in every program that reclaims stale sockets.  Anything that is not
  a stream socket (a regular file, a directory, a datagram socket) is never
  removed: :class:`~anyipc.AddressInUse` saying what is there.
* ``close()`` removes the file only if the path still names the inode this
  listener created (a successor's socket is left alone).

Abstract names have no file and no permissions (any process in the same
network namespace may connect; the ``mode`` option is refused) and vanish
with their last descriptor, so they are never stale.

Other options: ``connect_timeout`` (seconds, default 10), also covering a
listener whose backlog stays full.  Stream semantics and SIGPIPE: see
:mod:`anyipc._sockets`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import socket
import stat
import tempfile
import uuid
from typing import Any

from anyipc import hookimpl
from anyipc._address import Address
from anyipc._capabilities import Addressing, Boundaries, Capabilities, Connection, Direction, Scope
from anyipc._channel import Channel, Listener
from anyipc._errors import AddressInUse, InvalidAddress, TransportUnavailable, map_os_error
from anyipc._files import existing, unlink_if_same
from anyipc._files import identity as file_identity
from anyipc._options import Option, OptionValue
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
    scope=Scope.HOST,
    addressing=Addressing.NAMED,
)
MAX_PATH = 107  #: bytes of a socket path (sun_path is 108 bytes, including the NUL)
MAX_ABSTRACT = 107  #: bytes of an abstract name (after the NUL that marks it)


def _check_mode(value: OptionValue) -> str | None:
    if isinstance(value, str) and re.fullmatch(r"0?[0-7]{3}", value):
        return None
    return "must be octal permission bits such as 600, 660 or 666"


MODE = Option(
    name="mode",
    kind=str,
    default="600",
    check=_check_mode,
    doc="octal permissions of the socket file a listener creates (connecting needs write)",
)
OPTIONS = (MODE, CONNECT_TIMEOUT)
_RECLAIM_ATTEMPTS = 3


def _check_location(location: str) -> str | None:
    if "\0" in location:
        return "a unix socket address cannot contain a NUL byte"
    if location.startswith("@"):
        if len(location) == 1:
            return "empty abstract name: write unix://@name"
        size = len(os.fsencode(location[1:]))
        if size > MAX_ABSTRACT:
            return (
                f"the abstract name is {size} bytes; at most {MAX_ABSTRACT} fit "
                "(sun_path is 108 bytes and its first is the NUL that marks the name abstract)"
            )
        return None
    if not location.startswith("/"):
        what = f"{location!r} is a relative path" if location else "empty address"
        return (
            f"{what}: write an absolute path as unix:///path, or an abstract name as unix://@name"
        )
    if location.endswith("/"):
        return f"{location!r} names a directory, not a socket file"
    size = len(os.fsencode(location))
    if size > MAX_PATH:
        return (
            f"the path is {size} bytes; a unix socket path is at most {MAX_PATH} bytes "
            "(sun_path is 108 bytes, including the terminating NUL)"
        )
    return None


def capabilities(address: Address) -> Capabilities:
    """The claims of every unix:// address; ``mode`` on an abstract name is refused."""
    if address.location.startswith("@") and MODE.name in address.query:
        raise InvalidAddress("unix://@name: an abstract socket has no file, so no mode to set")
    return CAPABILITIES


def _sockaddr(location: str) -> bytes:
    if location.startswith("@"):
        return b"\0" + os.fsencode(location[1:])
    return os.fsencode(location)


def _plain(address: Address) -> str:
    return str(address.replace(options={}))


def _uri_of(name: Any) -> str | None:
    """The URI of a raw AF_UNIX socket name; ``None`` for an unnamed socket."""
    raw = os.fsencode(name) if isinstance(name, str) else name
    if not raw:
        return None
    if raw.startswith(b"\0"):
        return str(Address("unix", "@" + raw[1:].decode("utf-8", "replace"), {}))
    return str(Address("unix", raw.decode("utf-8", "replace"), {}))


class UnixListener(SocketListener):
    """A listening unix socket; removes its socket file on close if it is still its own."""

    def __init__(
        self, sock: socket.socket, address: Address, identity: tuple[int, int] | None
    ) -> None:
        super().__init__(sock, CAPABILITIES, str(address))
        self._name = _plain(address)
        self._path = _sockaddr(address.location)
        self._identity = identity

    def _channel(self, sock: socket.socket) -> Channel:
        peer = _uri_of(peer_name(sock))
        return SocketChannel(sock, CAPABILITIES, address=self._name, peer=peer)

    def _close(self) -> None:
        # While the socket is open the file is live, so no one else may have reclaimed it:
        # remove it first, then close.  A failure leaves a stale file, which is reclaimable.
        if self._identity is not None:
            with contextlib.suppress(OSError):
                unlink_if_same(self._path, self._identity)
        super()._close()


def listen(address: Address) -> Listener:
    """Listen on ``unix:///path`` or ``unix://@name``; see the module docstring.

    Raises :class:`~anyipc.AddressInUse` when a live socket or a file that is
    not a socket is there, :class:`~anyipc.PermissionDenied` when the
    directory is not writable, :class:`~anyipc.InvalidAddress` when it does
    not exist.
    """
    context = f"listen on {_plain(address)}"
    target = _sockaddr(address.location)
    if address.location.startswith("@"):

        def bound(sock: socket.socket) -> Listener:
            sock.bind(target)
            sock.listen(socket.SOMAXCONN)
            return UnixListener(sock, address, None)

        return owned(_new_socket(), bound, lambda exc: listen_error(exc, context))
    mode_text = address.get(MODE)
    assert isinstance(mode_text, str)
    return _listen_on_path(address, target, int(mode_text, 8), context)


def _new_socket() -> socket.socket:
    return socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)


def _listen_on_path(address: Address, path: bytes, mode: int, context: str) -> Listener:
    for _ in range(_RECLAIM_ATTEMPTS):
        sock = _new_socket()
        try:
            os.fchmod(sock.fileno(), mode)  # bind() creates the file with these bits, minus umask
            sock.bind(path)
        except OSError as exc:
            sock.close()
            if exc.errno != errno.EADDRINUSE:
                raise listen_error(exc, context) from exc
            _reclaim(path, context)
            continue
        return owned(
            sock,
            lambda s: _publish(s, address, path, mode, context),
            lambda exc: listen_error(exc, context),
        )
    raise AddressInUse(errno.EADDRINUSE, f"{context}: the path keeps being taken by others")


def _publish(
    sock: socket.socket, address: Address, path: bytes, mode: int, context: str
) -> Listener:
    """Give the freshly bound file exactly ``mode`` and start listening."""
    info = os.lstat(path)
    identity = file_identity(info)
    try:
        if stat.S_IMODE(info.st_mode) & ~mode:
            raise TransportUnavailable(
                f"{context}: the kernel created the socket file with mode "
                f"{stat.S_IMODE(info.st_mode):o}, wider than {mode:o}; refusing to use it"
            )
        if stat.S_IMODE(info.st_mode) != mode:
            os.chmod(path, mode)  # restore what the umask took
        sock.listen(socket.SOMAXCONN)
        return UnixListener(sock, address, identity)
    except BaseException:
        with contextlib.suppress(OSError):
            unlink_if_same(path, identity)
        raise


def _reclaim(path: bytes, context: str) -> None:
    """Remove a stale socket at ``path``; :class:`AddressInUse` if what is there must stay."""
    before = existing(path, stat.S_ISSOCK, "a socket", context)
    if before is None:
        return  # gone meanwhile: bind again
    with _new_socket() as probe:
        probe.setblocking(False)
        code = probe.connect_ex(path)
    if code == errno.ENOENT:
        return
    if code != errno.ECONNREFUSED:
        why = "a live listener owns it" if code in (0, errno.EAGAIN) else os.strerror(code)
        raise AddressInUse(errno.EADDRINUSE, f"{context}: in use ({why})")
    with contextlib.suppress(FileNotFoundError):
        unlink_if_same(path, file_identity(before))


def connect(address: Address) -> Channel:
    """Connect to the listener on ``unix:///path`` or ``unix://@name``.

    Raises :class:`~anyipc.ConnectionLost` when nobody listens there,
    :class:`~anyipc.PermissionDenied` without write permission on the
    socket file, :class:`~anyipc.Timeout` after ``connect_timeout``.
    """
    name = _plain(address)
    context = f"connect to {name}"
    sock = connect_stream(
        socket.AF_UNIX, _sockaddr(address.location), connect_timeout(address), context
    )
    return owned(
        sock,
        lambda s: SocketChannel(s, CAPABILITIES, address=None, peer=name),
        lambda exc: map_os_error(exc, context),
    )


def _test_address() -> str:
    name = f"anyipc-{os.getpid()}-{uuid.uuid4().hex[:8]}.sock"
    path = os.path.join(tempfile.gettempdir(), name)
    if len(os.fsencode(path)) > MAX_PATH:
        path = os.path.join("/tmp", name)
    return str(Address("unix", path, {}))


@hookimpl
def anyipc_transports() -> list[TransportSpec]:
    return [
        TransportSpec(
            scheme="unix",
            description="Unix domain stream sockets (socket files and abstract names)",
            capabilities=capabilities,
            check_location=_check_location,
            test_address=_test_address,
            options=OPTIONS,
            connect=connect,
            listen=listen,
        )
    ]
