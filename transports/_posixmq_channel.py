"""The open ends of a POSIX message queue: the binder's receiving end and the sending ends.

Receiving (with the survey of the senders under ``end=senders``), sending
(with the checks that the receiver still exists while the queue is full),
the waits between them, and the removal of the queue by its owner on close.
Creating and opening queues, and the semantics, are in
:mod:`anyipc.transports.posixmq`.
"""

from __future__ import annotations

import os
import time

import posix_ipc

from anyipc._capabilities import Capabilities
from anyipc._channel import BytesLike
from anyipc._deadline import Deadline
from anyipc._errors import ConnectionLost, Timeout
from anyipc._owner import OwnerLock, owner_alive
from anyipc._queues import QueueEnd
from anyipc._readiness import READABLE, WRITABLE, FdWaiter
from anyipc._senders import SURVEY_S, Enrolment, Roster

RECHECK_S = 0.5  #: at most how often sends that find the queue full check on the receiver


class PosixMQChannel(QueueEnd):
    """One end of a POSIX message queue: the binder's receiving end, or a sending end.

    The queue descriptor is non-blocking; waits poll it together with the
    waker, so ``close()`` from another thread ends them.  See
    :mod:`anyipc.transports.posixmq` for the semantics.
    """

    def __init__(
        self,
        queue: posix_ipc.MessageQueue,
        capabilities: Capabilities,
        *,
        name: str,
        uri: str,
        owner_file: str,
        owner: OwnerLock | None,
        priority: int = 0,
        roster: Roster | None = None,
        enrolment: Enrolment | None = None,
    ) -> None:
        self._queue = queue
        self._mqd: int = queue.mqd
        self._inode = os.fstat(self._mqd).st_ino
        self._name = name
        self._priority = priority
        self._poller: FdWaiter | None = None  # made by the first wait
        self._recheck_at = 0.0  # when a send that waits for room next checks the receiver
        super().__init__(
            capabilities,
            uri,
            receiving=owner is not None,
            owner_file=owner_file,
            owner=owner,
            roster=roster,
            enrolment=enrolment,
        )
        if roster is not None:
            self.poll_interval = SURVEY_S

    def _await_message(self, deadline: Deadline) -> bytes:
        while True:
            if self._roster is None:
                self._waiter().wait(deadline, "recv")
            else:
                message = self._after_senders(self._roster, self._take)
                if message is not None:
                    return message
                self._wait_a_while(deadline, SURVEY_S, "recv timed out")
            message = self._take()
            if message is not None:
                return message

    def _take(self) -> bytes | None:
        """The next message, or ``None`` when the queue is empty."""
        try:
            message: bytes = self._queue.receive()[0]
        except posix_ipc.BusyError:
            return None
        return message

    def _ready(self) -> bool:
        if self._roster is None or self._closed:
            return False
        survey = self._roster.survey()
        return survey.ended  # recv will report the end (or take what is left first)

    def _put(self, data: BytesLike) -> bool:
        try:
            self._queue.send(data, None, self._priority)  # timeout, priority: by position, faster
        except posix_ipc.BusyError:
            return False
        return True

    def _send(self, data: memoryview, deadline: Deadline) -> None:
        while not self._put(data):
            self._wait_for_room(deadline)

    def _wait_for_room(self, deadline: Deadline) -> None:
        """Wait until the full queue has room, at most until the receiver is next checked.

        The receiver is checked when RECHECK_S has passed since the last
        check (so the first time at once): a sender that finds the queue
        full again and again, as a fast one does, is not slowed down by a
        check at every message, and one that waits long checks every
        RECHECK_S.  Raises :class:`~anyipc.ConnectionLost` once it is gone.
        """
        now = time.monotonic()
        if now >= self._recheck_at:
            gone = self._receiver_gone()
            if gone:
                raise ConnectionLost(f"send to {self.peer}: {gone}")
            self._recheck_at = now + RECHECK_S
        self._wait_a_while(
            deadline,
            self._recheck_at - now,
            f"send to {self.peer} timed out: the queue stayed full",
        )

    def _waiter(self) -> FdWaiter:
        """What waits for the queue: readable on the receiving end, writable on a sending end.

        Made by the first wait, under the direction's lock.
        """
        if self._poller is None:
            self._poller = FdWaiter(self._mqd, READABLE if self.can_recv else WRITABLE, self._waker)
        return self._poller

    def _wait_a_while(self, deadline: Deadline, most: float, timed_out: str) -> None:
        """Wait until the queue is ready, at most ``most`` seconds or until ``deadline``.

        Raises :class:`~anyipc.Timeout` (``timed_out``) once the deadline has passed.
        """
        left = deadline.remaining()
        step = Deadline(most if left is None else min(left, most))
        try:
            self._waiter().wait(step, "wait")
        except Timeout:
            if deadline.expired():
                raise Timeout(timed_out) from None

    def _receiver_gone(self) -> str | None:
        """Why nobody will ever receive from this queue again, or ``None``."""
        if owner_alive(self._owner_file) is False:
            return "its owner died, so nobody receives"
        if not self._still_named():
            return "the receiver closed (the queue was removed)"
        return None

    def _still_named(self) -> bool:
        """True when the name still names this queue (or when that cannot be checked)."""
        try:
            probe = posix_ipc.MessageQueue(
                "/" + self._name, read=self.can_recv, write=self.can_send
            )
        except posix_ipc.ExistentialError:
            return False
        except (posix_ipc.Error, OSError):
            return True  # no permission or no descriptor left: assume it is
        try:
            return bool(os.fstat(probe.mqd).st_ino == self._inode)
        finally:
            probe.close()

    def _wait_fd(self) -> int | None:
        return self._mqd if self.can_recv else None

    def _close(self) -> None:
        try:
            if self._owner is not None and self._owner.mine and self._still_named():
                posix_ipc.unlink_message_queue("/" + self._name)
        except posix_ipc.Error:
            pass  # removed by someone else meanwhile
        finally:
            self._queue.close()
            if self._enrolment is not None:
                self._enrolment.withdraw()
            if self._roster is not None and self._owner is not None and self._owner.mine:
                self._roster.remove()
            if self._owner is not None:
                self._owner.release()
