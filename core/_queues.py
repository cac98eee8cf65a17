"""What the transports over named kernel message queues (``posixmq://``, ``sysvmq://``) share.

:class:`QueueEnd` is the base of their channels.  Such a queue has
receiving ends (the one that created it owns it and removes it on close)
and anonymous sending ends that enrol in its roster of senders while they
are open (see :mod:`anyipc._senders`).  A receiving end that follows its
senders reports their end once they are all gone and the queue holds
nothing more for it.

``send`` and ``recv`` take shorter paths here than a general
:class:`~anyipc.Channel`'s when no other thread sends (or receives) at
the same time: a ``send`` of ``bytes`` that finds room in the queue, and a
``recv`` that finds a message, are one attempt each (a timeout that is not
a number is then reported only by a call that has to wait).
"""

from __future__ import annotations

import abc
from collections.abc import Callable

from anyipc._capabilities import Capabilities
from anyipc._channel import BytesLike, Channel
from anyipc._deadline import Deadline
from anyipc._owner import OwnerLock
from anyipc._senders import Enrolment, Roster

__all__ = ["QueueEnd"]


class QueueEnd(Channel):
    """One end of a named message queue: a receiving end (``receiving``) or a sending end.

    ``uri`` is the queue's: the receiving end's address, a sending end's
    peer.  ``owner_file`` is the queue's owner file, ``owner`` the lock of
    the end that created the queue, ``roster`` the roster of senders that a
    receiving end follows, ``enrolment`` a sending end's ticket in it.
    Subclasses say how one message is put into the queue or taken from it
    without waiting (:meth:`_put`, :meth:`_take`), and how a receive waits
    once it found nothing (:meth:`_await_message`).
    """

    def __init__(
        self,
        capabilities: Capabilities,
        uri: str,
        *,
        receiving: bool,
        owner_file: str,
        owner: OwnerLock | None,
        roster: Roster | None,
        enrolment: Enrolment | None,
    ) -> None:
        self._owner_file = owner_file
        self._owner = owner
        self._roster = roster
        self._enrolment = enrolment
        super().__init__(
            capabilities,
            address=uri if receiving else None,
            peer=None if receiving else uri,
            can_send=not receiving,
            can_recv=receiving,
        )
        # the largest message the fast path of send takes: none on a receiving end
        self._fast_limit = -1 if receiving else (capabilities.max_message_size or 0)

    @abc.abstractmethod
    def _put(self, data: BytesLike) -> bool:
        """Queue ``data`` if there is room now: ``True``, or ``False`` when the queue is full."""

    @abc.abstractmethod
    def _take(self) -> bytes | None:
        """The next message for this end if there is one now, or ``None``."""

    @abc.abstractmethod
    def _await_message(self, deadline: Deadline) -> bytes:
        """The next message, waited for until ``deadline``: :meth:`_take` just found none."""

    def _recv(self, deadline: Deadline) -> bytes:
        message = self._take()
        return message if message is not None else self._await_message(deadline)

    def send(self, data: BytesLike, *, timeout: float | None = None) -> None:
        """Send one message; see :class:`~anyipc.Channel` (same semantics, fewer steps)."""
        if not (isinstance(data, bytes) and len(data) <= self._fast_limit and self._put_now(data)):
            super().send(data, timeout=timeout)

    def _put_now(self, data: bytes) -> bool:
        """Whether ``data`` went into the queue at once; not tried while another send runs."""
        lock = self._send_lock
        if not lock.acquire(blocking=False):
            return False
        try:
            return not self._closed and self._put(data)
        finally:
            lock.release()

    def recv(self, *, timeout: float | None = None) -> bytes:
        """Receive one message; see :class:`~anyipc.Channel` (same semantics, fewer steps)."""
        lock = self._recv_lock
        if self.can_recv and lock.acquire(blocking=False):
            try:
                if not self._closed:
                    message = self._take()
                    if message is not None:
                        return message
                    return self._await_message(Deadline(timeout))
            finally:
                lock.release()
        return super().recv(timeout=timeout)

    def _after_senders(self, roster: Roster, take: Callable[[], bytes | None]) -> bytes | None:
        """``None`` while senders are left; once all are gone, what ``take`` still finds.

        When it finds nothing, raises the end of the senders
        (:class:`~anyipc.EndOfChannel`, or :class:`~anyipc.ConnectionLost`
        when one was killed).
        """
        survey = roster.survey()
        if not survey.ended:
            return None
        message = take()  # what the last senders sent before they went
        if message is not None:
            return message
        roster.report_end()
        raise survey.end_error(f"recv on {self.address}")
