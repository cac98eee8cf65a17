"""Running handlers, and a server's child processes: forked, always reaped, stopped in time.

:func:`run_handler` is how every model runs a handler on a connection: an
exception is logged (logger ``anyipc.serve``) and goes no further, and the
connection is closed afterwards whatever happened.

:class:`Children` forks the children of the ``fork`` and ``prefork``
models and keeps their pids.  Reaping waits for those pids only, never for
``-1``, so the children of other code in the server process (a
``subprocess`` the reload callback runs) keep their exit statuses.  The
server reaps after every wake-up of its loop, and ``SIGCHLD`` (read from
``signal://self``, never from a handler) wakes it as soon as a child ends,
so a dead child is a zombie only for the moment that takes.  A child that
ends abnormally (a non-zero status, a signal) is logged as a warning.

A child runs ``work`` and leaves with ``os._exit`` and its status: it
never returns into the server's code, and of what it inherited it closes
only what it is given to close (its connection, its copy of the server's
signal channel), so nothing the server owns (a listener's socket file,
say) is removed by a child.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Callable

from anyipc._channel import Channel
from anyipc._deadline import Deadline
from anyipc._errors import ChannelClosed
from anyipc._serve_control import Control
from anyipc._wait import wait

__all__ = ["LOG", "Children", "Handler", "run_handler"]

LOG = logging.getLogger("anyipc.serve")

#: what a server calls with each connection; what it returns is ignored
Handler = Callable[[Channel], object]


def run_handler(handler: Handler, channel: Channel, stopping: Callable[[], bool]) -> bool:
    """Call ``handler(channel)``, then close ``channel``; False when the handler raised.

    The exception is logged with its traceback, except a
    :class:`~anyipc.ChannelClosed` while ``stopping()`` says the server
    is stopping (it closed the connection itself).
    """
    try:
        handler(channel)
        return True
    except Exception as exc:
        if isinstance(exc, ChannelClosed) and stopping():
            LOG.debug("a handler ended as the server closed its connection: %s", exc)
        else:
            where = channel.peer or channel.address or "an unnamed peer"
            LOG.exception("the handler failed on a connection with %s", where)
        return False
    finally:
        channel.close()


def _exit_status(exc: SystemExit) -> int:
    if exc.code is None:
        return 0
    return exc.code if isinstance(exc.code, int) else 1


class Children:
    """The server's child processes; see the module docstring.

    ``in_child`` runs first in every child (the server's signals given
    back to it).  Only the thread that forks may use this object.
    """

    def __init__(self, in_child: Callable[[], None]) -> None:
        self._in_child = in_child
        self._alive: set[int] = set()
        self._stopping = False

    def __len__(self) -> int:
        """How many children are alive or not yet reaped."""
        return len(self._alive)

    def spawn(self, work: Callable[[], int]) -> int:
        """Fork a child that runs ``work`` and exits with the status it returns; its pid.

        In the child, an exception from ``work`` is logged and the status is
        1; ``SystemExit`` gives its code.
        """
        pid = os.fork()
        if pid:
            self._alive.add(pid)
            return pid
        status = 1
        try:
            self._in_child()
            status = work()
        except SystemExit as exc:
            status = _exit_status(exc)
        except BaseException:
            LOG.exception("server child %d failed", os.getpid())
        finally:
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except (OSError, ValueError, AttributeError):  # closed, or no stream at all
                    pass
            os._exit(status)

    def reap(self) -> None:
        """Reap the children that ended (never blocks)."""
        for pid in list(self._alive):
            try:
                done, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:  # reaped by other code of this process: gone all the same
                done, status = pid, 0
            if done:
                self._alive.remove(pid)
                self._report(pid, status)

    def _report(self, pid: int, status: int) -> None:
        code = os.waitstatus_to_exitcode(status)
        if code == 0:
            LOG.debug("child %d ended", pid)
        elif code > 0:
            LOG.warning("child %d exited with status %d", pid, code)
        elif self._stopping and -code in (signal.SIGTERM, signal.SIGKILL):
            LOG.debug("child %d stopped by %s", pid, signal.Signals(-code).name)
        else:
            LOG.warning("child %d was killed by %s", pid, signal.Signals(-code).name)

    def _signal_all(self, signo: int) -> None:
        for pid in self._alive:
            os.kill(pid, signo)  # an unreaped child still exists, so this cannot fail

    def stop(self, control: Control, timeout: float) -> None:
        """``SIGTERM`` every child; ``SIGKILL`` those still alive after ``timeout``; reap all.

        Waits on ``control`` (which receives ``SIGCHLD``); other signals that
        arrive meanwhile are discarded.  Returns with no child left.
        """
        assert control.channel is not None, "the children's server must receive SIGCHLD"
        self._stopping = True
        self._signal_all(signal.SIGTERM)
        deadline = Deadline(timeout)
        self.reap()
        while self._alive and not deadline.expired():
            wait([control.channel], timeout=deadline.remaining())
            control.take()
            self.reap()
        if not self._alive:
            return
        LOG.warning(
            "%d children still running %.3g s after SIGTERM: killing them",
            len(self._alive),
            timeout,
        )
        self._signal_all(signal.SIGKILL)
        for pid in list(self._alive):
            _, status = os.waitpid(pid, 0)  # SIGKILL cannot be caught: it ends at once
            self._alive.remove(pid)
            self._report(pid, status)
