"""A signal storm on this process: SIGALRM every millisecond, and SIGUSR1 from another process.

Inside ``with Storm(peers) as storm:`` the interval timer
(``setitimer(ITIMER_REAL, 0.001, 0.001)``) raises SIGALRM every
millisecond, and a peer process sends SIGUSR1 about every millisecond; a
Python handler counts each (``storm.alarms``, ``storm.usr1``), so every
blocking system call of the main thread keeps being interrupted (EINTR) and
Python code runs in between, as in a program that uses signals itself.

The storm borrows SIGALRM and the real-time interval timer from whoever had
them (pytest-timeout's ``signal`` method arms them for the test's deadline):
while it blows, that owner's handler is still called once its deadline
passes, and at the end its handler and the time left on its timer are put
back.  SIGUSR1's handler is put back once the peer is dead and its last
signal was handled.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

from ._fault_control import Peers, Worker

__all__ = ["PERIOD", "Storm"]

PERIOD = 0.001  #: seconds between two signals of each kind

#: a signal's disposition, as signal.signal returns it
_Handler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None


class Storm:
    """SIGALRM and SIGUSR1, each about every :data:`PERIOD` seconds, counted."""

    def __init__(self, peers: Peers) -> None:
        self._peers = peers
        self.alarms = 0  #: SIGALRMs handled
        self.usr1 = 0  #: SIGUSR1s handled
        self.started = self.ended = 0.0  #: when the storm began and stopped (monotonic)
        self._pester: Worker | None = None
        self._alarm_owner: _Handler = signal.SIG_DFL
        self._usr1_owner: _Handler = signal.SIG_DFL
        self._owner_deadline: float | None = None  # when the borrowed timer would have fired

    def _on_alarm(self, signum: int, frame: FrameType | None) -> None:
        self.alarms += 1
        owner = self._alarm_owner
        if self._owner_deadline is not None and time.monotonic() >= self._owner_deadline:
            self._owner_deadline = None
            if callable(owner):
                owner(signum, frame)

    def _on_usr1(self, signum: int, frame: FrameType | None) -> None:
        self.usr1 += 1

    def __enter__(self) -> Storm:
        left, _ = signal.getitimer(signal.ITIMER_REAL)
        self._owner_deadline = time.monotonic() + left if left else None
        self._alarm_owner = signal.signal(signal.SIGALRM, self._on_alarm)
        self._usr1_owner = signal.signal(signal.SIGUSR1, self._on_usr1)
        try:
            self._pester = self._peers.start(
                "pester", target=os.getpid(), signum=int(signal.SIGUSR1), interval=PERIOD
            )
            self._pester.event("pestering")
        except BaseException:
            self._restore()
            raise
        self.started = time.monotonic()
        signal.setitimer(signal.ITIMER_REAL, PERIOD, PERIOD)
        return self

    def __exit__(self, *exc: object) -> None:
        self._restore()

    def _restore(self) -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        self.ended = time.monotonic()
        if self._pester is not None:
            self._pester.kill()
            self._pester.wait_exit()  # reaped: every signal it sent is delivered by now
            self._pester = None
        time.sleep(0.001)  # the handlers of signals delivered meanwhile run here
        signal.signal(signal.SIGUSR1, self._usr1_owner)
        signal.signal(signal.SIGALRM, self._alarm_owner)
        if self._owner_deadline is not None:
            left = max(self._owner_deadline - time.monotonic(), 0.001)
            signal.setitimer(signal.ITIMER_REAL, left)

    @property
    def seconds(self) -> float:
        """How long the storm blew."""
        return self.ended - self.started
