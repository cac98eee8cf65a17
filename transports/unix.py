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
the client's URI if the client bound a name.  ``connect`` raises
:class:`~anyipc.ConnectionLost` when nobody listens there; errors of both
verbs: see :func:`anyipc._unixconnections.connected_spec`.

Socket files and abstract names, as for every unix-domain scheme (see
:mod:`anyipc._unixnames`): ``listen`` on a path creates the file with
exactly the ``mode`` option's bits (octal, default ``600``: only the
owner's processes may connect, as connecting needs write permission) and
never wider at any moment; it never replaces a live socket or a file that
is not a socket (:class:`~anyipc.AddressInUse`), and reclaims a stale socket
left by a dead owner; the listener removes its file on close if the path
still names it.  Abstract names have no file, so ``mode`` is refused there.

Who may connect to an abstract name, and to whom a client connects, is
checked by uid instead (see :mod:`anyipc._peercred`): this user, root, and
the uids of ``allow_uids`` (``allow_uids=1001,1002``, or ``any``; refused
on a socket file).  A client whose uid the listener does not admit is
closed unread and never returned by ``accept``; a listener whose uid the
client does not admit (someone else took the name) makes ``connect`` raise
:class:`~anyipc.PermissionDenied`.

Other options: ``connect_timeout`` (seconds, default 10), also covering a
listener whose backlog stays full.  Stream semantics and SIGPIPE: see
:mod:`anyipc._sockets`.
"""

from __future__ import annotations

import socket

from anyipc import hookimpl
from anyipc._capabilities import Addressing, Boundaries, Capabilities, Connection, Direction, Scope
from anyipc._records import TransportSpec
from anyipc._sockets import SocketChannel
from anyipc._unixconnections import connected_spec

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


@hookimpl
def anyipc_transports() -> list[TransportSpec]:
    return [
        connected_spec(
            scheme="unix",
            description="Unix domain stream sockets (socket files and abstract names)",
            kind=socket.SOCK_STREAM,
            capabilities=CAPABILITIES,
            channel=SocketChannel,
        )
    ]
