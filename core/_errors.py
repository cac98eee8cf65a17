"""The error hierarchy of anyipc, and the one place where OS errors are mapped.

Every error a channel raises derives from :class:`IPCError`, and each one is
also the builtin exception a caller would already catch for that condition
(``ValueError``, ``TimeoutError``, ``ConnectionError``, ``OSError``...), so
existing ``except`` clauses keep working.  The OS error that caused a mapped
error is kept as ``__cause__``.
"""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Iterator

from anyipc._limits import rlimit_nofile, sysctl

__all__ = [
    "AddressInUse",
    "AuthenticationError",
    "ChannelClosed",
    "ConnectionLost",
    "EndOfChannel",
    "IPCError",
    "InvalidAddress",
    "MessageTooLarge",
    "NotSupported",
    "PermissionDenied",
    "Timeout",
    "TransportUnavailable",
]


class IPCError(Exception):
    """Base class of every error anyipc raises on purpose."""


class InvalidAddress(IPCError, ValueError):
    """A URI, scheme or option is malformed or unknown.

    Raised before anything is created on the OS.  The message names what is
    valid (the known options, the installed schemes and the closest one).
    """


class NotSupported(IPCError):
    """The transport lacks this verb or operation (e.g. ``recv`` on a write end).

    Raised immediately, before any system call.
    """


class TransportUnavailable(IPCError):
    """The mechanism cannot be used here (platform, kernel, module, plugin conflict).

    The message says why.  Also raised when a kernel limit leaves no room
    for what an operation would create; running out of descriptors (EMFILE,
    ENFILE) names the limit, ``RLIMIT_NOFILE`` (or ``fs.file-max``), with its
    value at that moment.
    """


class MessageTooLarge(IPCError, ValueError):
    """The message exceeds the transport's ``max_message_size``.

    Raised before anything is sent: the channel stays usable and the peer
    sees nothing of the message.
    """


class Timeout(IPCError, TimeoutError):
    """The operation did not complete within its timeout.

    On ``recv`` nothing was received.  On a stream ``send``, :attr:`sent`
    says how many bytes of the data were handed to the transport before the
    deadline (they will arrive).  On a message ``send``, ``sent == 0`` means
    the message was not sent; a transport that carries messages over a
    stream (``framed+``) may have handed over part of it, and then
    ``sent > 0`` means the message is committed: it arrives whole once the
    next ``send`` completes (closing first truncates it, and the peer sees
    :class:`ConnectionLost`); it must not be sent again.
    """

    def __init__(self, message: str = "timed out", *, sent: int = 0) -> None:
        super().__init__(message)
        self.sent = sent


class ChannelClosed(IPCError):
    """This end was closed (``close()`` was called); every later use raises it."""


class EndOfChannel(ChannelClosed):
    """The peer closed in an orderly way and everything it sent was received.

    Not a failure: it is how a receiver learns that the conversation is over.
    """


class ConnectionLost(ChannelClosed, ConnectionError):
    """The peer vanished: crash, reset, truncated frame, dead process.

    Data in flight may be lost, but no partial message is ever delivered.
    """


class AddressInUse(IPCError, OSError):
    """Another live endpoint owns this address; it is never taken over."""


class PermissionDenied(IPCError, PermissionError):
    """The OS refused access to the named object."""


class AuthenticationError(PermissionDenied):
    """The peer did not prove that it holds the shared key (``auth+``), or refused ours.

    Raised by the first ``send`` or ``recv`` of a channel whose handshake
    failed, on the side that found out, and by every later call: a wrong key,
    no key (a peer without ``auth+``), a peer that does not speak the
    handshake, or no proof within ``auth_timeout``.  Nothing the peer sent
    after its failed proof is ever delivered.
    """


_LOST_ERRNOS = frozenset(
    {
        errno.EPIPE,
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.ENOTCONN,
        errno.ESHUTDOWN,
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
        errno.ENETDOWN,
        errno.ETIMEDOUT,
    }
)
_REFUSED_ERRNOS = frozenset({errno.ECONNREFUSED, errno.ENOENT, errno.ENXIO})
_PERMISSION_ERRNOS = frozenset({errno.EACCES, errno.EPERM})
#: running out of descriptors: this process's RLIMIT_NOFILE (EMFILE), or the system's (ENFILE)
OUT_OF_DESCRIPTORS = frozenset({errno.EMFILE, errno.ENFILE})


def map_os_error(exc: OSError, context: str) -> IPCError:
    """Translate an ``OSError`` into the most specific anyipc error.

    ``context`` says what was being done ("connect to tcp://...") and starts
    the message.  The caller raises the result ``from exc`` so that the OS
    error stays visible as ``__cause__``.  Unknown errors become
    :class:`ConnectionLost`: a broken channel, never a crash.
    """
    detail = f"{context}: {exc.strerror or exc}"
    if exc.errno == errno.EADDRINUSE:
        return AddressInUse(exc.errno, detail)
    if exc.errno in _PERMISSION_ERRNOS:
        return PermissionDenied(exc.errno, detail)
    if exc.errno in _REFUSED_ERRNOS:
        return ConnectionLost(f"{detail} (nobody is listening there)")
    if exc.errno in _LOST_ERRNOS:
        return ConnectionLost(detail)
    if exc.errno in OUT_OF_DESCRIPTORS:
        return _out_of_descriptors(exc, detail)
    return ConnectionLost(detail)


def _out_of_descriptors(exc: OSError, detail: str) -> TransportUnavailable:
    """The error for EMFILE/ENFILE: the limit by name, its value now, and how to raise it."""
    if exc.errno == errno.ENFILE:
        limit = sysctl("fs.file-max", "descriptors on this machine")
        holder = "the system has"
    else:
        limit = rlimit_nofile()
        holder = "this process has"
    return TransportUnavailable(
        f"{detail}: {holder} as many descriptors open as {limit.describe()} allows; "
        f"close some channels, or {limit.how_to_raise}"
    )


@contextlib.contextmanager
def descriptors_mapped(context: str) -> Iterator[None]:
    """Run the block; running out of descriptors in it raises :class:`TransportUnavailable`.

    For the verbs (``connect``, ``listen``...), whose transports create
    descriptors in many places (sockets, owner files, segments, the files of
    a certificate): whichever call meets the limit, the caller gets the
    error :func:`map_os_error` gives for it, naming the limit and its value,
    never a raw ``OSError``.  Every other exception passes unchanged.
    """
    try:
        yield
    except OSError as exc:
        if isinstance(exc, IPCError) or exc.errno not in OUT_OF_DESCRIPTORS:
            raise
        raise map_os_error(exc, context) from exc
