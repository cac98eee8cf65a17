"""How two processes set up a shared-memory connection: a listener, a rendezvous, a segment.

A shared-memory listener is a Unix stream socket in Linux's abstract
namespace, ``@anyipc.<scheme>.<name>``: it has no file to leave behind, and
the kernel frees the name when its owner dies, so a listener killed with
SIGKILL never blocks the next ``listen`` on its name (while a live one
always does: :class:`~anyipc.AddressInUse`).

``connect`` creates the connection's segment itself (through the
transport's :class:`Backend`), connects to the listener, and sends one
setup line with the segment's descriptor and, in the locked protocol, the
connection's ring lock file (:mod:`anyipc._shmsetup`: what the line says,
and why a client whose ``size`` or ``protocol`` differs is refused).  It
does not wait for ``accept``: like a TCP connection in a backlog, the
channel is usable at once, and what it sends waits in the rings.
``accept`` maps the segment, checks its header and opens the lock file.
The socket then stays open beside the segment for wake-ups and the peer's
life (see :mod:`anyipc._shmchannel`).

Who may connect.  Abstract sockets have no permission bits, so the
listener checks each client's credentials (``SO_PEERCRED``) against its
``mode`` option: the owner's uid always, the owner's group with ``06x0``
bits, anyone with ``0x06``; root is always allowed.  A refused client is
told why in one line and disconnected; its ``recv`` or ``send`` then
raises :class:`~anyipc.ConnectionLost` naming the reason.

A client that connects and says nothing never holds up ``accept``: clients
whose setup line has not arrived wait in a pending set, ``accept`` returns
the first that completes, and one that has not completed within
:data:`SETUP_TIMEOUT_S` is dropped by the ``accept`` that finds it so.  A
setup line comes whole: one that arrives a piece at a time is refused at its
first piece.  The listener's descriptor (``fileno()``, what
:func:`anyipc.wait` polls) is an epoll set of the listening socket and the
pending clients, so it turns readable when a client connects and when a
pending client's setup line arrives.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import socket
import struct
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from anyipc._channel import Channel, Listener
from anyipc._deadline import Deadline
from anyipc._errors import (
    AddressInUse,
    ChannelClosed,
    ConnectionLost,
    IPCError,
    Timeout,
    map_os_error,
)
from anyipc._readiness import READABLE
from anyipc._shmchannel import Mapping, ShmChannel, segment_bytes
from anyipc._shmlock import RingLock
from anyipc._shmsetup import (
    Handoff,
    Terms,
    belongs_to,
    mark_segment,
    parse_setup,
    receive_setup,
    send_setup,
)
from anyipc._sockets import connect_stream, listen_error

__all__ = ["SETUP_TIMEOUT_S", "Backend", "ShmListener", "shm_connect", "shm_listen"]

SETUP_TIMEOUT_S = 5.0  #: how long a connected client may take to send its setup line
_CREDENTIALS = struct.Struct("3i")  # struct ucred: pid, uid, gid


class Backend(Protocol):
    """Where a transport's segments come from."""

    def create(self, tag: str, size: int) -> tuple[Mapping, Handoff]:
        """A new segment of ``size`` bytes for a connection to the listener ``tag`` names."""

    def attach(self, size: int, handoff: Handoff) -> Mapping:
        """Map the segment the connecting end handed over; ``ValueError`` if it is unfit."""

    def done(self, handoff: Handoff) -> None:
        """The connecting end handed ``handoff`` over: release what it holds for that."""

    def discard(self, handoff: Handoff) -> None:
        """The listener closes without accepting ``handoff``'s connection: free its segment."""

    def recovered(self, size: int) -> Sequence[Mapping]:
        """Segments of conversations whose two ends died, for the listener to accept first."""


class ShmListener(Listener):
    """Accepts shared-memory connections; see the module docstring."""

    def __init__(
        self,
        terms: Terms,
        backend: Backend,
        sock: socket.socket,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(terms.capabilities, terms.uri)
        self._on_close = on_close
        self._terms = terms
        self._backend = backend
        self._sock = sock
        self._pending: dict[int, tuple[socket.socket, float]] = {}
        # What anyipc.wait() polls: the listening socket and every pending client, so that a
        # setup line that comes after accept() took its client in shows too.
        self._arrivals = select.epoll()
        self._arrivals.register(sock.fileno(), select.EPOLLIN)
        self._recovered = list(backend.recovered(segment_bytes(terms.capacity)))

    def _accept(self, deadline: Deadline) -> Channel:
        if self._recovered:
            return self._orphan(self._recovered.pop(0))
        while True:
            self._take_new_clients()
            for fd in list(self._pending):
                channel = self._try_setup(fd)
                if channel is not None:
                    return channel
            self._wait(deadline)

    def _take_new_clients(self) -> None:
        while True:
            try:
                client, _ = self._sock.accept()
            except BlockingIOError:
                return
            except OSError as exc:
                raise map_os_error(exc, f"accept on {self.address}") from exc
            client.setblocking(False)
            self._pending[client.fileno()] = (client, time.monotonic())
            self._arrivals.register(client.fileno(), select.EPOLLIN)

    def _leave_pending(self, fd: int) -> socket.socket:
        """Take pending client ``fd`` out of the pending set (and of what wait() polls)."""
        client, _ = self._pending.pop(fd)
        self._arrivals.unregister(fd)
        return client

    def _try_setup(self, fd: int) -> Channel | None:
        """The channel of pending client ``fd`` once its setup line came; drop it if it failed."""
        client, since = self._pending[fd]
        try:
            line, fds = receive_setup(client)
        except BlockingIOError:
            if time.monotonic() - since > SETUP_TIMEOUT_S:
                self._drop(fd, "no setup line in time")
            return None
        except OSError:
            self._drop(fd, None)
            return None
        try:
            mapping, lock = self._attach(client, line, fds)
        except ValueError as exc:
            self._drop(fd, str(exc))
            return None
        finally:
            for passed in fds:  # before the lock is used: a copy would keep a dead client's lock
                os.close(passed)
        self._leave_pending(fd)
        return self._make_channel(mapping, client, lock)

    def _attach(
        self, client: socket.socket, line: bytes, fds: list[int]
    ) -> tuple[Mapping, RingLock | None]:
        """The client's segment, mapped and checked, and in the locked protocol our ring lock."""
        refusal = _refusal(client, self._terms.mode)
        if refusal:
            self._discard_refused(line, fds)
            raise ValueError(refusal)
        handoff, lock_fd = parse_setup(line, fds, self._terms)
        mapping = self._backend.attach(segment_bytes(self._terms.capacity), handoff)
        try:
            if not belongs_to(mapping.memory, self._terms):
                raise ValueError("the segment is not an anyipc segment of this version for us")
            return mapping, None if lock_fd is None else RingLock.join(lock_fd)
        except BaseException:
            mapping.close()
            raise

    def _discard_refused(self, line: bytes, fds: list[int]) -> None:
        """Free the segment of a client refused by uid: nobody will ever attach it.

        (A SysV segment is only marked for removal once attached, so it would
        outlive both ends.)  Its descriptors stay the caller's to close.
        """
        try:
            handoff, _ = parse_setup(line, fds, self._terms)
        except ValueError:
            return  # not a setup line of ours: there is no segment of ours to free
        self._backend.discard(Handoff(token=handoff.token))

    def _orphan(self, mapping: Mapping) -> Channel:
        """A channel on a recovered segment: what its dead client sent, then its end.

        Its rings need no lock in either protocol: nobody else writes them
        any more, and the kernel ordered the dead ends' stores before the
        release of their file locks, which the backend found free.
        """
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        theirs.close()  # the client is gone: this end reads its end of file at once
        return self._make_channel(mapping, mine, None)

    def _make_channel(
        self, mapping: Mapping, sock: socket.socket, lock: RingLock | None
    ) -> Channel:
        try:
            return ShmChannel(
                self._terms.capabilities,
                mapping,
                sock,
                capacity=self._terms.capacity,
                accepting=True,
                spin=self._terms.spin,
                sync=self._terms.sync,
                address=self.address,
                peer=None,
                lock=lock,
            )
        except BaseException:
            mapping.close()
            sock.close()
            if lock is not None:
                lock.close()
            raise

    def _drop(self, fd: int, reason: str | None) -> None:
        client = self._leave_pending(fd)
        if reason:
            try:
                client.send(f"refused: {reason}\n".encode(), socket.MSG_DONTWAIT)
            except OSError:
                pass
        client.close()

    def _wait(self, deadline: Deadline) -> None:
        """Sleep until a client connects or a pending one speaks (or a pending one expires)."""
        poller = select.poll()
        for fd in (self._sock.fileno(), *self._pending, self._waker.fileno()):
            poller.register(fd, READABLE)
        step = deadline
        if self._pending:
            oldest = min(since for _, since in self._pending.values())
            expiry = Deadline(max(0.0, oldest + SETUP_TIMEOUT_S - time.monotonic()))
            if deadline.infinite or (expiry.remaining() or 0.0) < (deadline.remaining() or 0.0):
                step = expiry
        ready = poller.poll(step.poll_ms())
        if self._waker.woken:
            raise ChannelClosed("the listener was closed while accepting")
        if not ready and deadline.expired():
            raise Timeout("accept timed out")

    def _wait_fd(self) -> int:
        return self._arrivals.fileno()

    def _ready(self) -> bool:
        return bool(self._recovered)

    def _close(self) -> None:
        """Refuse every client not accepted yet, freeing the segments they made."""
        try:
            self._take_new_clients()
        except IPCError:
            pass  # the listening socket failed: the pending clients are all there is
        for fd in list(self._pending):
            client, _ = self._pending[fd]
            try:
                line, fds = receive_setup(client)
            except OSError:
                fds = None  # it never said which segment it made
            if fds is not None:
                try:
                    handoff, lock_fd = parse_setup(line, fds, self._terms)
                except ValueError:
                    for passed in fds:
                        os.close(passed)
                else:
                    self._backend.discard(handoff)
                    if lock_fd is not None:
                        os.close(lock_fd)
            self._drop(fd, "the listener closed")
        for mapping in self._recovered:
            mapping.close()  # left for the next listener
        self._sock.close()
        self._arrivals.close()
        if self._on_close is not None:
            self._on_close()


def _refusal(client: socket.socket, mode: int) -> str | None:
    """Why the client on ``client`` may not connect under ``mode``, or ``None``."""
    _, uid, gid = _CREDENTIALS.unpack(
        client.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _CREDENTIALS.size)
    )
    if uid in (0, os.geteuid()) or mode & 0o006:
        return None
    if mode & 0o060 and gid == os.getegid():
        return None
    return f"uid {uid} may not connect (the listener's mode is {mode:03o})"


def shm_listen(
    terms: Terms,
    backend: Backend,
    on_close: Callable[[], None] | None = None,
    claimed: Callable[[], None] | None = None,
) -> ShmListener:
    """Listen on ``terms.sockaddr``; :class:`~anyipc.AddressInUse` when a live listener has it.

    ``claimed`` runs once the name is this listener's (bound) and before any
    client can connect (not yet listening): where what dead predecessors left
    is reclaimed, so that a live listener's is never touched and a new
    client's never mistaken for a dead one's.
    """
    context = f"listen on {terms.uri}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        sock.setblocking(False)
        sock.bind(terms.sockaddr)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise AddressInUse(exc.errno, f"{context}: a live listener has that name") from exc
        raise listen_error(exc, context) from exc
    try:
        if claimed is not None:
            claimed()
        sock.listen(socket.SOMAXCONN)
        return ShmListener(terms, backend, sock, on_close)
    except OSError as exc:
        sock.close()
        raise listen_error(exc, context) from exc
    except BaseException:
        sock.close()
        raise


def shm_connect(terms: Terms, backend: Backend, deadline: Deadline) -> Channel:
    """Make a segment, connect to the listener and hand it over; see the module docstring."""
    context = f"connect to {terms.uri}"
    with contextlib.ExitStack() as undo:  # what the channel does not own yet, if it fails
        sock = connect_stream(socket.AF_UNIX, terms.sockaddr, deadline, context)
        undo.callback(sock.close)
        lock = RingLock.create() if terms.locked else None
        if lock is not None:
            undo.callback(lock.close)
        mapping, handoff = backend.create(terms.tag, segment_bytes(terms.capacity))
        undo.callback(mapping.close)
        mark_segment(mapping.memory, terms)
        try:
            send_setup(sock, terms, handoff, None if lock is None else lock.fileno())
        except OSError as exc:
            raise ConnectionLost(f"{context}: the listener went away ({exc.strerror})") from exc
        finally:
            backend.done(handoff)
        channel = ShmChannel(
            terms.capabilities,
            mapping,
            sock,
            capacity=terms.capacity,
            accepting=False,
            spin=terms.spin,
            sync=terms.sync,
            address=None,
            peer=terms.uri,
            lock=lock,
        )
        undo.pop_all()
    return channel
