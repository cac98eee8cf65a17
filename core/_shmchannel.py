"""A duplex message channel over two shared-memory rings, with a socket beside them.

The shared-memory transports (``shm://``, ``sysvshm://``, ``mmap://``) map
one *segment* into both processes::

    segment header (4096 bytes: magic, capacity)
    ring to the connecting end   (see anyipc._shmring)
    ring to the accepting end

Messages travel only through the rings.  Each connection also has a
connected Unix stream socket, used for two things that shared memory cannot
do:

* Wake-ups.  A receiver that finds its ring empty spins for a while
  (see :class:`~anyipc._pacer.Pacer`), then says it is waiting and sleeps
  in ``poll()`` on the socket; a sender that sees the flag writes one byte
  to the socket.  A sender waiting for room does the same the other way.  So
  latency stays near the spinning floor while an idle channel takes no CPU.
  Sleeps are cut into slices of at most :data:`SLICE_S`, after which the
  rings are checked again whatever happened, so that a lost wake-up could
  only ever delay a message by one slice.
* The peer's life.  The kernel closes a dead process's socket, so a
  sleeper wakes at once to the end of file.  Whatever the peer published
  is received first; then ``recv`` raises :class:`~anyipc.EndOfChannel` if
  the peer had closed in order (it marks its ring before closing), or
  :class:`~anyipc.ConnectionLost` if it died; ``send`` raises
  :class:`~anyipc.ConnectionLost`.

A message is one record of a ring, so it is MESSAGE, lossless, ordered,
intact and duplicate-free, and it is never torn (see
:mod:`anyipc._shmring`).  A message larger than the ring's data area is
refused with :class:`~anyipc.MessageTooLarge` before anything is written.

``anyipc.wait()`` works: readiness checks the ring and, when it is empty,
asks the sender for a wake-up byte on the socket, which is this channel's
``fileno()``.
"""

from __future__ import annotations

import functools
import os
import socket
import time
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

from anyipc._capabilities import Capabilities
from anyipc._channel import BytesLike, Channel, as_byte_view
from anyipc._deadline import Deadline
from anyipc._errors import ConnectionLost, EndOfChannel, Timeout
from anyipc._pacer import Pacer
from anyipc._readiness import READABLE, wait_for_fd
from anyipc._shmlock import LockedRing, RingLock
from anyipc._shmring import CorruptRing, Ring, ring_bytes

__all__ = ["SEGMENT_HEADER", "SLICE_S", "Mapping", "ShmChannel", "segment_bytes"]

SEGMENT_HEADER = 4096
SLICE_S = 0.05  #: the longest sleep before the rings are checked again
_DOORBELL = b"\x01"
_Payload = TypeVar("_Payload", bytes, memoryview)
_FLAGS = socket.MSG_DONTWAIT | socket.MSG_NOSIGNAL


def segment_bytes(capacity: int) -> int:
    """The size of a segment whose two rings each hold ``capacity`` bytes."""
    return SEGMENT_HEADER + 2 * ring_bytes(capacity)


class Mapping(Protocol):
    """A segment mapped into this process."""

    @property
    def memory(self) -> memoryview:
        """The whole segment, writable."""

    def close(self) -> None:
        """Unmap it (every view into it has been released)."""

    def sync(self) -> None:
        """Write what changed back to the segment's file and wait for it (files only)."""


class ShmChannel(Channel):
    """One end of a shared-memory connection; see the module docstring.

    ``accepting`` tells which ring is whose: the accepting end sends on the
    first ring (number 0) and receives on the second.  With ``lock`` (the
    connection's :class:`~anyipc._shmlock.RingLock`) the rings run the
    locked protocol, without it the lock-free one.  The channel owns
    ``mapping``, ``sock`` and ``lock`` and releases them on close.
    """

    def __init__(
        self,
        capabilities: Capabilities,
        mapping: Mapping,
        sock: socket.socket,
        *,
        capacity: int,
        accepting: bool,
        spin: float,
        sync: bool = False,
        address: str | None,
        peer: str | None,
        lock: RingLock | None = None,
    ) -> None:
        memory = mapping.memory
        size = ring_bytes(capacity)
        views = [memory[start : start + size] for start in (SEGMENT_HEADER, SEGMENT_HEADER + size)]
        sending, receiving = (0, 1) if accepting else (1, 0)
        self._out = _ring(views[sending], capacity, lock, sending, producing=True)
        self._in = _ring(views[receiving], capacity, lock, receiving, producing=False)
        self._lock = lock
        self._mapping = mapping
        self._sock = sock
        self._pacer = Pacer(spin)
        self._sync = sync
        self._peer_gone = False
        self._refusal = ""
        self._armed_by_wait = False
        self._pid = os.getpid()
        self._max_message = capabilities.max_message_size or 0
        # the largest message the fast path of send takes: none when each is synced
        self._fast_limit = -1 if sync else self._max_message
        super().__init__(capabilities, address=address, peer=peer)

    # -- the fast paths: a message that fits now, or one that is there now ---------------
    def send(self, data: BytesLike, *, timeout: float | None = None) -> None:
        """Send one message; see :class:`~anyipc.Channel` (same semantics, fewer steps)."""
        if isinstance(data, bytes) and len(data) <= self._fast_limit:
            lock = self._send_lock
            if lock.acquire(blocking=False):
                try:
                    if not self._closed and self._out.try_write(data):
                        if self._out.consumer_waiting():
                            self._ring_doorbell()
                        return
                finally:
                    lock.release()
        super().send(data, timeout=timeout)

    def recv(self, *, timeout: float | None = None) -> bytes:
        """Receive one message; see :class:`~anyipc.Channel` (same semantics, fewer steps)."""
        lock = self._recv_lock
        if not self._closed and not self._armed_by_wait and lock.acquire(blocking=False):
            try:
                if not self._closed:
                    payload = self._in.try_read()
                    if payload is not None:
                        if self._in.producer_blocked():
                            self._ring_doorbell()
                        return payload
            except CorruptRing:
                pass  # the general path reports it
            finally:
                lock.release()
        return super().recv(timeout=timeout)

    # -- batches ---------------------------------------------------------------------------
    def send_many(self, messages: Sequence[BytesLike], *, timeout: float | None = None) -> None:
        """Send ``messages`` in order, each as one message, publishing as many at once as fit.

        The same as calling ``send`` for each, at a fraction of the cost for
        small messages.  A message over ``max_message_size`` raises
        :class:`~anyipc.MessageTooLarge` before any is sent.  On
        :class:`~anyipc.Timeout`, ``sent`` is the number of messages sent
        (they will arrive); the others were not.
        """
        views = [m if isinstance(m, bytes) else as_byte_view(m) for m in messages]
        self._check_can_send()
        limit = self._max_message
        for view in views:
            if len(view) > limit:
                self._check_size(as_byte_view(view))  # raises MessageTooLarge
        deadline = Deadline(timeout)
        self._locked(self._send_lock, deadline, "send")
        try:
            self._check_open()
            out = self._out
            before = self._mapping.sync if self._sync else None
            done = 0
            while done < len(views):
                written = out.try_write_many(views[done:], before)
                if written:
                    done += written
                    if before is not None:
                        before()
                    if out.consumer_waiting():
                        self._ring_doorbell()
                    continue
                if self._peer_gone:
                    raise ConnectionLost(self._gone(f"send to {self.peer}"))
                room = functools.partial(out.has_room, len(views[done]))
                try:
                    self._await(room, out.set_blocked, deadline, "send")
                except Timeout as exc:
                    raise Timeout(f"{exc}: {done} of {len(views)} sent", sent=done) from None
        finally:
            self._send_lock.release()

    def recv_many(self, most: int, *, timeout: float | None = None) -> list[bytes]:
        """Up to ``most`` messages: those there now, or, if none is, the first that comes.

        Never returns an empty list: it waits like ``recv`` (and raises what
        ``recv`` raises) until at least one message is there.
        """
        if most < 1:
            raise ValueError(f"most must be at least 1, not {most}")
        first = self.recv(timeout=timeout)
        if most == 1:
            return [first]
        with self._recv_lock:
            if self._closed:
                return [first]
            more = self._in.try_read_many(most - 1)
            if more and self._in.producer_blocked():
                self._ring_doorbell()
            return [first, *more]

    # -- sending -------------------------------------------------------------------------
    def _send(self, data: memoryview, deadline: Deadline) -> None:
        out = self._out
        before = self._mapping.sync if self._sync else None
        while not out.try_write(data, before_publishing=before):
            if self._peer_gone:
                raise ConnectionLost(self._gone(f"send to {self.peer}"))
            self._await(lambda: out.has_room(len(data)), out.set_blocked, deadline, "send")
        if before is not None:
            before()  # and now the head that publishes it
        if out.consumer_waiting():
            self._ring_doorbell()

    # -- receiving -----------------------------------------------------------------------
    def recv_view(self, *, timeout: float | None = None) -> memoryview:
        """Receive one message as a read-only view into the ring, without copying it.

        The view stays valid until the next ``recv``/``recv_view`` or
        ``close`` of this channel, which releases it (views derived from it
        then show whatever the ring holds next); until then the sender
        cannot reuse its space.  Otherwise the same as ``recv``.
        """
        self._check_can_recv()
        deadline = Deadline(timeout)
        self._locked(self._recv_lock, deadline, "recv")
        try:
            self._check_open()
            return self._receive(self._in.try_read_view, deadline)
        finally:
            self._recv_lock.release()

    def _recv(self, deadline: Deadline) -> bytes:
        return self._receive(self._in.try_read, deadline)

    def _receive(self, take: Callable[[], _Payload | None], deadline: Deadline) -> _Payload:
        inbound = self._in
        where = self.address or self.peer
        while True:
            try:
                payload = take()
            except CorruptRing as exc:
                self._peer_gone = True
                raise ConnectionLost(f"recv on {where}: {exc}") from exc
            if payload is not None:
                if self._armed_by_wait:
                    self._armed_by_wait = False
                    inbound.set_waiting(False)
                if inbound.producer_blocked():
                    self._ring_doorbell()
                return payload
            if inbound.producer_blocked():  # the view just released may be the room it awaits
                self._ring_doorbell()
            if self._peer_gone:
                if inbound.readable():
                    continue
                if inbound.closed_in_order:
                    raise EndOfChannel(f"recv on {where}: the peer closed")
                raise ConnectionLost(self._gone(f"recv on {where}"))
            self._await(inbound.readable, inbound.set_waiting, deadline, "recv")

    # -- waiting -------------------------------------------------------------------------
    def _await(
        self,
        ready: Callable[[], bool],
        announce: Callable[[bool], None],
        deadline: Deadline,
        what: str,
    ) -> None:
        """Return once ``ready()`` or the peer is gone; spin first, then sleep on the socket.

        ``announce(True)`` tells the peer that this end sleeps and wants a
        wake-up; ``announce(False)`` withdraws that.  Raises
        :class:`~anyipc.Timeout` once the deadline has passed.
        """
        began = time.perf_counter()
        try:
            self._spin_then_sleep(ready, announce, deadline, what, began + self._pacer.budget())
        finally:
            self._pacer.waited(time.perf_counter() - began)

    def _spin_then_sleep(
        self,
        ready: Callable[[], bool],
        announce: Callable[[bool], None],
        deadline: Deadline,
        what: str,
        spin_until: float,
    ) -> None:
        while time.perf_counter() < spin_until:
            if ready():
                return
        announce(True)
        try:
            while not ready() and not self._peer_gone:
                left = deadline.remaining()
                step = Deadline(SLICE_S if left is None else min(left, SLICE_S))
                try:
                    wait_for_fd(self._sock.fileno(), READABLE, step, self._waker, what)
                except Timeout:
                    if deadline.expired():
                        raise Timeout(f"{what} timed out") from None
                    continue
                self._drain_doorbell()
        finally:
            announce(False)

    def _drain_doorbell(self) -> None:
        """Consume wake-up bytes; note the peer's end of file."""
        try:
            received = self._sock.recv(4096, socket.MSG_DONTWAIT)
        except BlockingIOError:
            return
        except OSError:
            self._peer_gone = True
            return
        if not received:
            self._peer_gone = True
        elif received.strip(_DOORBELL):  # the listener's last word: why it refused us
            self._refusal = received.strip(_DOORBELL).decode("ascii", "replace").strip()

    def _gone(self, what: str) -> str:
        """Why the peer is gone, for ``what`` ("recv on ...")."""
        if self._refusal:
            return f"{what}: the listener {self._refusal}"
        return f"{what}: the peer died"

    def _ring_doorbell(self) -> None:
        try:
            self._sock.send(_DOORBELL, _FLAGS)
        except BlockingIOError:
            pass  # the socket is full of wake-ups already
        except OSError:
            self._peer_gone = True  # it will be reported by the next wait

    def _ready(self) -> bool:
        if self._closed or self._peer_gone or self._in.readable():
            return True
        self._armed_by_wait = True
        self._in.set_waiting(True)  # anyipc.wait sleeps on the socket: ask for a wake-up
        return self._in.readable()

    def _wait_fd(self) -> int:
        return self._sock.fileno()

    def _close(self) -> None:
        if os.getpid() == self._pid:  # a forked child's copy does not end the conversation
            self._out.close_in_order()
        self._out.release()
        self._in.release()
        if self._lock is not None:
            self._lock.close()
        self._mapping.close()
        self._sock.close()


def _ring(
    memory: memoryview, capacity: int, lock: RingLock | None, number: int, *, producing: bool
) -> Ring:
    """Ring ``number`` of a segment: lock-free without ``lock``, on the locked protocol with it."""
    if lock is None:
        return Ring(memory, capacity)
    return LockedRing(memory, capacity, lock, number, producing=producing)
