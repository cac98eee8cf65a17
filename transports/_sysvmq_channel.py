"""The open ends of a System V message queue: receiving ends (owner or not) and sending ends.

SysV queues have no descriptor, so every wait here is a loop of
non-blocking attempts: again at once (spinning, yielding the CPU between
attempts) for as long as the end's :class:`~anyipc._pacer.Pacer` allows,
then with growing naps.  Receiving surveys the senders under
``end=senders``, :func:`anyipc.wait` is served by taking the next message
of the end's type ahead of ``recv``, sending checks that the owner lives
while the queue stays full, and the owner removes the queue on close.  The
semantics are in :mod:`anyipc.transports.sysvmq`.
"""

from __future__ import annotations

import errno
import os
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import sysv_ipc

from anyipc._capabilities import Capabilities
from anyipc._channel import BytesLike
from anyipc._deadline import Deadline
from anyipc._errors import ChannelClosed, ConnectionLost, Timeout
from anyipc._owner import OwnerLock, owner_alive
from anyipc._pacer import Pacer
from anyipc._queues import QueueEnd
from anyipc._senders import SURVEY_S, Enrolment, Roster

SPIN_S = 0.0005  #: the longest a waiting end tries again at once before it naps (see Pacer)
FIRST_NAP_S = 0.0001  #: the first nap of a wait; it doubles up to LAST_NAP_S
LAST_NAP_S = 0.005
RECHECK_S = 0.5  #: how often a send blocked on a full queue checks that the owner lives

_T = TypeVar("_T")


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
        self._pacer = Pacer(SPIN_S)
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

    def _await_message(self, deadline: Deadline) -> bytes:
        roster = self._roster
        return self._persist(
            self._take,
            deadline,
            "recv timed out",
            None if roster is None else lambda: self._after_senders(roster, self._take),
            SURVEY_S,
        )

    def _take(self) -> bytes | None:
        """The message ``_ready`` took, or the next one of this end's type, or ``None``."""
        with self._holding:
            message, self._held = self._held, None
            return message if message is not None else self._receive()

    def _receive(self) -> bytes | None:
        """The next message of this end's type, or ``None`` when there is none now."""
        try:
            # block=False, type=kind, by position: keywords take a quarter of the call's time
            message: bytes = self._queue.receive(False, self._kind)[0]
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
                    self._held = self._receive()
                except ConnectionLost:
                    return True  # recv reports it
            if self._held is not None:
                return True
        return self._roster is not None and self._roster.survey().ended

    def _send(self, data: memoryview, deadline: Deadline) -> None:
        if self._put(data):
            return
        self._persist(
            lambda: self._put(data) or None,
            deadline,
            f"send to {self.peer} timed out: the queue stayed full",
            self._check_owner,
            RECHECK_S,
        )

    def _put(self, data: BytesLike) -> bool:
        try:
            self._queue.send(data, False, self._kind)  # block=False, type=kind, as above
            return True
        except sysv_ipc.BusyError:
            return False
        except (sysv_ipc.Error, OSError) as exc:
            raise _failure(exc, f"send to {self.peer}") from exc

    def _check_owner(self) -> None:
        """Raise :class:`ConnectionLost` when the queue's owner died, so that nobody receives."""
        if owner_alive(self._owner_file) is False:
            raise ConnectionLost(f"send to {self.peer}: its owner died, so nobody receives")

    def _persist(
        self,
        attempt: Callable[[], _T | None],
        deadline: Deadline,
        timed_out: str,
        check: Callable[[], _T | None] | None,
        every: float,
    ) -> _T:
        """What ``attempt()`` returns once it is not ``None``, after an attempt that found nothing.

        It is tried again at once for as long as the pacer allows (see
        :class:`~anyipc._pacer.Pacer`), then after each nap.  Once napping,
        ``check()`` is called too, at once and then every ``every`` seconds:
        it may raise, or return what to return instead.  Raises
        :class:`Timeout` (``timed_out``) once the deadline has passed and
        :class:`ChannelClosed` once the channel was closed.
        """
        began = time.perf_counter()
        left = deadline.remaining()
        spin = self._pacer.budget()
        spin_until = began + (spin if left is None else min(spin, left))
        nap = FIRST_NAP_S
        check_due = began
        try:
            while True:
                now = time.perf_counter()
                if now < spin_until:
                    if self._waker.woken:
                        raise ChannelClosed("the channel was closed while waiting")
                    os.sched_yield()  # a runnable thread on this CPU (the peer?) goes first
                else:
                    if check is not None and now >= check_due:
                        result = check()
                        if result is not None:
                            return result
                        check_due = now + every
                    nap = self._nap(deadline, nap, timed_out)
                result = attempt()
                if result is not None:
                    return result
        finally:
            self._pacer.waited(time.perf_counter() - began)

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
