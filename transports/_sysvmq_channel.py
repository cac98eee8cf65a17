"""The open ends of a System V message queue: receiving ends (owner or not) and sending ends.

SysV queues have no descriptor, so every wait here is a loop of
non-blocking attempts with growing sleeps; receiving surveys the senders
under ``end=senders``, :func:`anyipc.wait` is served by taking the next
message of the end's type ahead of ``recv``, sending checks that the owner
lives while the queue is full, and the owner removes the queue on close.
The semantics are in :mod:`anyipc.transports.sysvmq`.
"""

from __future__ import annotations

import errno
import threading
import time

import sysv_ipc

from anyipc._capabilities import Capabilities
from anyipc._deadline import Deadline
from anyipc._errors import ChannelClosed, ConnectionLost, Timeout
from anyipc._owner import OwnerLock, owner_alive
from anyipc._queues import QueueEnd
from anyipc._senders import SURVEY_S, Enrolment, Roster

FIRST_NAP_S = 0.0001  #: the first sleep of a wait; it doubles up to LAST_NAP_S
LAST_NAP_S = 0.005
RECHECK_S = 0.5  #: how often a send blocked on a full queue checks that the owner lives


class SysvMQChannel(QueueEnd):
    """One end of a SysV message queue: a receiving end (owner or not) or a sending end.

    See :mod:`anyipc.transports.sysvmq` for the semantics, waiting and ``wait``.
    """

    def __init__(
        self,
        queue: sysv_ipc.MessageQueue,
        capabilities: Capabilities,
        *,
        owner_file: str,
        uri: str,
        kind: int,
        receiving: bool,
        owner: OwnerLock | None = None,
        roster: Roster | None = None,
        enrolment: Enrolment | None = None,
    ) -> None:
        self._queue = queue
        self._kind = kind
        self._held: bytes | None = None  # a message taken by _ready(), for the next recv
        self._holding = threading.Lock()
        super().__init__(
            capabilities,
            uri,
            receiving=receiving,
            owner_file=owner_file,
            owner=owner,
            roster=roster,
            enrolment=enrolment,
        )
        if receiving:
            self.poll_interval = LAST_NAP_S

    def _recv(self, deadline: Deadline) -> bytes:
        nap = FIRST_NAP_S
        survey_due = Deadline(0)
        while True:
            message = self._next()
            if message is not None:
                return message
            if self._roster is not None and survey_due.expired():
                message = self._after_senders(self._roster, self._next)
                if message is not None:
                    return message
                survey_due = Deadline(SURVEY_S)
            nap = self._nap(deadline, nap, "recv timed out")

    def _next(self) -> bytes | None:
        """The message ``_ready`` took, or the next one of this end's type, or ``None``."""
        with self._holding:
            message, self._held = self._held, None
            return message if message is not None else self._take()

    def _take(self) -> bytes | None:
        """The next message of this end's type, or ``None`` when there is none now."""
        try:
            message: bytes = self._queue.receive(block=False, type=self._kind)[0]
        except sysv_ipc.BusyError:
            return None
        except (sysv_ipc.Error, OSError) as exc:
            raise _failure(exc, f"recv on {self.address}") from exc
        return message

    def _ready(self) -> bool:
        if self._closed:
            return True
        if not self.can_recv:
            return False  # a sending end never has anything to receive
        with self._holding:
            if self._held is None:
                try:
                    self._held = self._take()
                except ConnectionLost:
                    return True  # recv reports it
            if self._held is not None:
                return True
        return self._roster is not None and self._roster.survey().ended

    def _send(self, data: memoryview, deadline: Deadline) -> None:
        nap = FIRST_NAP_S
        recheck = Deadline(0)
        while True:
            try:
                self._queue.send(data, block=False, type=self._kind)
            except sysv_ipc.BusyError:
                pass
            except (sysv_ipc.Error, OSError) as exc:
                raise _failure(exc, f"send to {self.peer}") from exc
            else:
                return
            if recheck.expired():
                if owner_alive(self._owner_file) is False:
                    raise ConnectionLost(f"send to {self.peer}: its owner died, so nobody receives")
                recheck = Deadline(RECHECK_S)
            nap = self._nap(deadline, nap, f"send to {self.peer} timed out: the queue stayed full")

    def _nap(self, deadline: Deadline, nap: float, timed_out: str) -> float:
        """Sleep before the next attempt; :class:`Timeout` once the deadline has passed."""
        if deadline.expired():
            raise Timeout(timed_out)
        left = deadline.remaining()
        time.sleep(nap if left is None else min(nap, left))
        if self._waker.woken:
            raise ChannelClosed("the channel was closed while waiting")
        return min(nap * 2, LAST_NAP_S)

    def _close(self) -> None:
        self._held = None
        if self._enrolment is not None:
            self._enrolment.withdraw()
        if self._owner is None:
            return
        try:
            if self._owner.mine:  # not in a forked child: the parent owns the queue
                self._queue.remove()
                if self._roster is not None:
                    self._roster.remove()
        except sysv_ipc.Error:
            pass  # removed by someone else already
        finally:
            self._owner.release()


def _failure(exc: Exception, what: str) -> ConnectionLost:
    """A failed msgsnd/msgrcv: the queue was removed (EIDRM, EINVAL), or it broke otherwise."""
    if isinstance(exc, sysv_ipc.ExistentialError) or (
        isinstance(exc, OSError) and exc.errno in (errno.EIDRM, errno.EINVAL)
    ):
        return ConnectionLost(f"{what}: the queue was removed (its owner closed it)")
    return ConnectionLost(f"{what}: {exc}")
