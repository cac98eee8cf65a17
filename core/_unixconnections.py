"""Connection-oriented unix-domain sockets: what ``unix://`` and ``unix-seqpacket://`` share.

:func:`connected_spec` makes the transport record of such a scheme: ``listen``
binds the name (see :mod:`anyipc._unixnames` for socket files, their modes and
stale ones) and accepts connections, ``connect`` opens one.  On an abstract
name both ends check who is at the other end (see :mod:`anyipc._peercred`):
``accept`` hands out only the clients whose uid the listener admits, and
``connect`` refuses a listener whose uid the client does not admit.
"""

from __future__ import annotations

import errno
import os
import socket
from functools import partial
from typing import Protocol

from anyipc._address import Address
from anyipc._capabilities import Capabilities
from anyipc._channel import Channel, Listener
from anyipc._errors import PermissionDenied, map_os_error
from anyipc._peercred import ALLOW_UIDS, PeerPolicy, log, peer_uid, policy_of
from anyipc._records import TransportSpec
from anyipc._sockets import (
    CONNECT_TIMEOUT,
    SocketListener,
    connect_stream,
    connect_timeout,
    owned,
    peer_name,
)
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

__all__ = ["ChannelClass", "UnixListener", "connected_spec"]


class ChannelClass(Protocol):
    """What makes a channel of a connected socket (:class:`~anyipc.kit.SocketChannel`...)."""

    def __call__(
        self,
        sock: socket.socket,
        capabilities: Capabilities,
        *,
        address: str | None,
        peer: str | None,
    ) -> Channel: ...


class UnixListener(SocketListener):
    """A listening unix socket; removes its socket file on close if it is still its own.

    On an abstract name, ``policy`` says which clients' uids ``accept``
    admits; the others are closed unread (see :mod:`anyipc._peercred`).
    """

    def __init__(
        self,
        sock: socket.socket,
        capabilities: Capabilities,
        address: Address,
        file: SocketFile | None,
        channel: ChannelClass,
        policy: PeerPolicy | None = None,
    ) -> None:
        super().__init__(sock, capabilities, str(address))
        self._name = plain(address)
        self._scheme = address.scheme
        self._file = file
        self._make = channel
        self._policy = policy

    def _admits(self, sock: socket.socket) -> bool:
        if self._policy is None:
            return True
        uid = peer_uid(sock)
        if self._policy.admits(uid):
            return True
        log.warning("%s refused a client: %s", self._name, self._policy.refusal(uid))
        return False

    def _channel(self, sock: socket.socket) -> Channel:
        peer = uri_of(self._scheme, peer_name(sock))
        return self._make(sock, self.capabilities, address=self._name, peer=peer)

    def _close(self) -> None:
        if self._file is not None:
            self._file.remove()
        super()._close()


def _listen(
    address: Address, kind: int, capabilities: Capabilities, channel: ChannelClass
) -> Listener:
    """Listen on the name of ``address``; see :func:`connected_spec`.

    A seqpacket listener has ``SO_PASSCRED`` set before it listens, so every
    accepted socket has it from the start (:mod:`anyipc._seqpacket` tells an
    empty message from the end by it).
    """

    policy = policy_of(address)
    public = address
    if ALLOW_UIDS.name in address.query:  # what clients of the admitted uids connect to
        public = address.replace(options={**address.query, ALLOW_UIDS.name: str(os.geteuid())})

    def finish(sock: socket.socket, file: SocketFile | None) -> Listener:
        if kind == socket.SOCK_SEQPACKET:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        sock.listen(socket.SOMAXCONN)
        return UnixListener(sock, capabilities, public, file, channel, policy)

    return bind_name(address, kind, f"listen on {plain(address)}", finish)


def _connect(
    address: Address, kind: int, capabilities: Capabilities, channel: ChannelClass
) -> Channel:
    """Connect to the listener on the name of ``address``; see :func:`connected_spec`."""
    name = plain(address)
    context = f"connect to {name}"
    policy = policy_of(address)
    sock = connect_stream(
        socket.AF_UNIX, sockaddr(address.location), connect_timeout(address), context, kind=kind
    )

    def connected(sock: socket.socket) -> Channel:
        if policy is not None:
            uid = peer_uid(sock)
            if not policy.admits(uid):
                raise PermissionDenied(
                    errno.EACCES,
                    f"{context}: the listener there runs as {policy.refusal(uid)} "
                    f"(add it to {ALLOW_UIDS.name} if it is the one you mean)",
                )
        return channel(sock, capabilities, address=None, peer=name)

    return owned(sock, connected, lambda exc: map_os_error(exc, context))


def connected_spec(
    *,
    scheme: str,
    description: str,
    kind: int,
    capabilities: Capabilities,
    channel: ChannelClass,
) -> TransportSpec:
    """The spec of a connection-oriented unix-domain scheme (``kind`` sockets).

    Verbs ``listen`` and ``connect``; options ``mode`` (socket files),
    ``allow_uids`` (abstract names) and ``connect_timeout``; connections
    become ``channel(sock, capabilities, address=..., peer=...)``.  A
    connecting client's ``peer`` is the listener's URI (without options) and
    its ``address`` is ``None`` (it is unnamed); an accepted channel's
    ``address`` is the listener's URI and its ``peer`` is ``None``, or the
    client's URI if the client bound a name.  A listener given
    ``allow_uids`` names its own uid there in its ``address`` instead, so
    that the clients it admits, who connect to that address, admit it.

    ``listen`` raises :class:`~anyipc.AddressInUse` when a live socket or a
    file that is not a socket is there, :class:`~anyipc.PermissionDenied`
    when the directory is not writable, :class:`~anyipc.InvalidAddress` when
    it does not exist.  ``connect`` raises :class:`~anyipc.ConnectionLost`
    when nobody listens there (or the socket there is of another type),
    :class:`~anyipc.PermissionDenied` without write permission on the socket
    file, or when the listener on an abstract name runs as a uid that
    ``allow_uids`` does not admit, :class:`~anyipc.Timeout` after
    ``connect_timeout`` (which also covers a listener whose backlog stays
    full).  On an abstract name, ``accept`` hands out only the clients
    whose uid it admits (see :mod:`anyipc._peercred`).
    """

    def listen(address: Address) -> Listener:
        return _listen(address, kind, capabilities, channel)

    def connect(address: Address) -> Channel:
        return _connect(address, kind, capabilities, channel)

    return TransportSpec(
        scheme=scheme,
        description=description,
        capabilities=claims(capabilities),
        check_location=location_checker(scheme),
        test_address=partial(test_address, scheme),
        options=(MODE, ALLOW_UIDS, CONNECT_TIMEOUT),
        connect=connect,
        listen=listen,
    )
