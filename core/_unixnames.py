"""Unix domain socket names: what ``unix://``, ``unix-dgram://`` and ``unix-seqpacket://`` share.

Addresses.  ``scheme:///run/app.sock`` names a socket file (an absolute
path); ``scheme://@app`` a name in Linux's abstract namespace.  The size of
``sun_path`` (108 bytes) limits both: a path to 107 bytes (it needs its
terminating NUL), an abstract name to 107 bytes after the ``@`` (the NUL
that marks it takes the first byte).  Both are checked, in bytes of the
file-system encoding, before any system call (:func:`location_checker`).

Socket files (:func:`bind_name` on a path, which ``listen`` and ``bind`` use):

* Permissions: the file has exactly the ``mode`` option's bits (octal,
  default ``600``: only the owner's processes may connect or send, as both
  need write permission), and never more at any moment.  Before ``bind()``
  the socket's own inode gets ``mode`` with ``fchmod()``; Linux creates the
  file with those bits minus the umask, so it is born no wider than
  ``mode``; a ``chmod()`` then restores bits the umask took.  This changes
  no process-wide state (unlike a temporary umask) and binds the final path
  directly (unlike binding in a private directory and renaming, whose
  longer path may not fit ``sun_path`` and which the kernel would report
  from ``getsockname``).  The result is checked: a kernel that ignored the
  ``fchmod()`` is refused (:class:`~anyipc.TransportUnavailable`).
* Never stealing: ``bind()`` never replaces an existing file.  When the path
  exists, a probe socket of the same type connects to it.  A socket that
  takes the connection is live: :class:`~anyipc.AddressInUse` (a stream or
  seqpacket owner sees one connection opened and closed at once; a datagram
  owner sees nothing).  A socket that refuses (ECONNREFUSED: nobody owns
  it) is stale, left by a dead owner: it is unlinked, after checking that
  the path still names the same inode, and the bind is retried.  A stream
  or seqpacket socket whose owner bound but has not called ``listen()`` yet
  looks stale too; that window exists in every program that reclaims stale
  sockets.  Anything else (a regular file, a directory, a live socket of
  another type) is never removed: :class:`~anyipc.AddressInUse` saying what
  is there.
* The owner removes the file on close only if the path still names the
  inode it created (:class:`SocketFile`): a successor's socket is left alone.

Abstract names have no file and no permissions (the ``mode`` option is
refused there) and vanish with their last descriptor, so they are never
stale.  Who may talk to them is checked by uid instead, both ways: this
user, root, and the uids of the ``allow_uids`` option (refused on a socket
file, whose mode decides); see :mod:`anyipc._peercred`.
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
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

import attrs

from anyipc._address import Address
from anyipc._capabilities import Capabilities
from anyipc._errors import AddressInUse, InvalidAddress, TransportUnavailable, map_os_error
from anyipc._files import existing, unlink_if_same
from anyipc._files import identity as file_identity
from anyipc._options import Option, OptionValue
from anyipc._pathnames import path_problem
from anyipc._peercred import ALLOW_UIDS
from anyipc._sockets import listen_error, owned

__all__ = [
    "MAX_ABSTRACT",
    "MAX_PATH",
    "MODE",
    "SocketFile",
    "bind_name",
    "claims",
    "location_checker",
    "plain",
    "sockaddr",
    "test_address",
    "uri_of",
]

MAX_PATH = 107  #: bytes of a socket path (sun_path is 108 bytes, including the NUL)
MAX_ABSTRACT = 107  #: bytes of an abstract name (after the NUL that marks it)
_RECLAIM_ATTEMPTS = 3
_T = TypeVar("_T")


def _check_mode(value: OptionValue) -> str | None:
    if isinstance(value, str) and re.fullmatch(r"0?[0-7]{3}", value):
        return None
    return "must be octal permission bits such as 600, 660 or 666"


MODE = Option(
    name="mode",
    kind=str,
    default="600",
    check=_check_mode,
    doc="octal permissions of the socket file listen or bind creates (reaching it needs write)",
)


def _location_problem(scheme: str, location: str) -> str | None:
    if "\0" in location:
        return "a unix socket address cannot contain a NUL byte"
    if location.startswith("@"):
        if len(location) == 1:
            return f"empty abstract name: write {scheme}://@name"
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
            f"{what}: write an absolute path as {scheme}:///path, "
            f"or an abstract name as {scheme}://@name"
        )
    if location.endswith("/"):
        return f"{location!r} names a directory, not a socket file"
    problem = path_problem(location)
    if problem:
        return problem
    size = len(os.fsencode(location))
    if size > MAX_PATH:
        return (
            f"the path is {size} bytes; a unix socket path is at most {MAX_PATH} bytes "
            "(sun_path is 108 bytes, including the terminating NUL)"
        )
    return None


def location_checker(scheme: str) -> Callable[[str], str | None]:
    """The ``check_location`` of ``scheme``: a path or ``@name`` that fits ``sun_path``."""
    return partial(_location_problem, scheme)


def claims(capabilities: Capabilities) -> Callable[[Address], Capabilities]:
    """The ``capabilities`` of a unix-domain scheme: the same for every name.

    ``mode`` on an abstract name is refused (:class:`InvalidAddress`): it
    has no file, so no permissions.  ``allow_uids`` on a socket file is
    refused too: the file's mode decides who may reach it.
    """

    def of(address: Address) -> Capabilities:
        abstract = address.location.startswith("@")
        if abstract and MODE.name in address.query:
            raise InvalidAddress(
                f"{address.scheme}://@name: an abstract socket has no file, so no mode to set "
                f"(use {ALLOW_UIDS.name} to admit other users)"
            )
        if not abstract and ALLOW_UIDS.name in address.query:
            raise InvalidAddress(
                f"{address.scheme}:///path: a socket file's mode decides who may reach it; "
                f"{ALLOW_UIDS.name} is for abstract names (@name)"
            )
        return capabilities

    return of


def sockaddr(location: str) -> bytes:
    """The ``sun_path`` of a location: the path, or a NUL and the abstract name."""
    if location.startswith("@"):
        return b"\0" + os.fsencode(location[1:])
    return os.fsencode(location)


def plain(address: Address) -> str:
    """``address`` without its options: the name peers see."""
    return str(address.replace(options={}))


def uri_of(scheme: str, name: Any) -> str | None:
    """The URI of a raw AF_UNIX socket name; ``None`` for an unnamed socket."""
    raw = os.fsencode(name) if isinstance(name, str) else name
    if not raw:
        return None
    if raw.startswith(b"\0"):
        return str(Address(scheme, "@" + raw[1:].decode("utf-8", "replace"), {}))
    return str(Address(scheme, raw.decode("utf-8", "replace"), {}))


def test_address(scheme: str) -> str:
    """A fresh socket path in the temporary directory (``/tmp`` if that is too long)."""
    name = f"anyipc-{os.getpid()}-{uuid.uuid4().hex[:8]}.sock"
    path = os.path.join(tempfile.gettempdir(), name)
    if len(os.fsencode(path)) > MAX_PATH:
        path = os.path.join("/tmp", name)
    return str(Address(scheme, path, {}))


@attrs.frozen
class SocketFile:
    """A socket file this process created: its path and the inode that tells it from others."""

    path: bytes
    identity: tuple[int, int]

    def remove(self) -> None:
        """Unlink the file if the path still names it.

        Call it while the socket is still open: the file is live until then,
        so no one else may have reclaimed it.  A failure leaves a stale file,
        which the next owner reclaims.
        """
        with contextlib.suppress(OSError):
            unlink_if_same(self.path, self.identity)


def bind_name(
    address: Address,
    kind: int,
    context: str,
    finish: Callable[[socket.socket, SocketFile | None], _T],
    prepare: Callable[[socket.socket], None] | None = None,
) -> _T:
    """A new ``kind`` socket bound to the name of ``address``, handed to ``finish``.

    ``prepare(sock)``, if given, runs before ``bind()`` (socket options that
    must hold from the first datagram on).  ``finish(sock, file)`` makes the
    endpoint that owns the socket and its file (``None`` for an abstract
    name).  If it raises, the socket is closed and the file removed.  Raises
    :class:`~anyipc.AddressInUse` when
    a live socket or a file that is not a socket is there,
    :class:`~anyipc.PermissionDenied` when the directory is not writable,
    :class:`~anyipc.InvalidAddress` when it does not exist; ``context``
    ("listen on unix:///...") starts the message.
    """
    target = sockaddr(address.location)
    if address.location.startswith("@"):

        def bound(sock: socket.socket) -> _T:
            if prepare is not None:
                prepare(sock)
            sock.bind(target)
            return finish(sock, None)

        return owned(_new_socket(kind, context), bound, lambda exc: listen_error(exc, context))
    mode_text = address.get(MODE)
    assert isinstance(mode_text, str)
    mode = int(mode_text, 8)
    for _ in range(_RECLAIM_ATTEMPTS):
        sock = _new_socket(kind, context)
        try:
            os.fchmod(sock.fileno(), mode)  # bind() creates the file with these bits, minus umask
            if prepare is not None:
                prepare(sock)
            sock.bind(target)
        except OSError as exc:
            sock.close()
            if exc.errno != errno.EADDRINUSE:
                raise listen_error(exc, context) from exc
            _reclaim(target, kind, context)
            continue
        return owned(
            sock,
            lambda s: _publish(s, target, mode, context, finish),
            lambda exc: listen_error(exc, context),
        )
    raise AddressInUse(errno.EADDRINUSE, f"{context}: the path keeps being taken by others")


def _new_socket(kind: int, context: str) -> socket.socket:
    try:
        return socket.socket(socket.AF_UNIX, kind)
    except OSError as exc:
        raise map_os_error(exc, context) from exc


def _publish(
    sock: socket.socket,
    path: bytes,
    mode: int,
    context: str,
    finish: Callable[[socket.socket, SocketFile | None], _T],
) -> _T:
    """Give the freshly bound file exactly ``mode``, then ``finish``; remove it on failure."""
    info = os.lstat(path)
    file = SocketFile(path, file_identity(info))
    try:
        if stat.S_IMODE(info.st_mode) & ~mode:
            raise TransportUnavailable(
                f"{context}: the kernel created the socket file with mode "
                f"{stat.S_IMODE(info.st_mode):o}, wider than {mode:o}; refusing to use it"
            )
        if stat.S_IMODE(info.st_mode) != mode:
            os.chmod(path, mode)  # restore what the umask took
        return finish(sock, file)
    except BaseException:
        file.remove()
        raise


def _reclaim(path: bytes, kind: int, context: str) -> None:
    """Remove a stale socket at ``path``; :class:`AddressInUse` if what is there must stay."""
    before = existing(path, stat.S_ISSOCK, "a socket", context)
    if before is None:
        return  # gone meanwhile: bind again
    with _new_socket(kind, context) as probe:
        probe.setblocking(False)
        code = probe.connect_ex(path)
    if code == errno.ENOENT:
        return
    if code != errno.ECONNREFUSED:
        # EAGAIN: a listener with a full backlog; EPERM: a datagram socket connected to another
        if code in (0, errno.EAGAIN, errno.EPERM):
            why = "a live listener owns it" if kind != socket.SOCK_DGRAM else "a live socket has it"
        else:
            why = os.strerror(code)
        raise AddressInUse(errno.EADDRINUSE, f"{context}: in use ({why})")
    with contextlib.suppress(FileNotFoundError):
        unlink_if_same(path, file_identity(before))
