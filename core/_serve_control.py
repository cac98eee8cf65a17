"""How a server is told what to do: its signals, read from ``signal://self``, and a doorbell.

A server never installs a signal handler.  :class:`Control` binds
``signal://self`` for the signals of its *signal map* (and ``SIGCHLD``
where the server has children to reap), so the signals wait in the kernel
until the server's loop reads them, between two steps of its own, and
each one becomes an :class:`Action`.  The map is the ``signals`` argument
of :class:`anyipc.Server`: signals (names such as ``"TERM"`` or
``"SIGTERM"``, any case, or :class:`signal.Signals` members) to action
names; :data:`DEFAULT_SIGNALS` is Apache's::

    TERM, INT  stop     stop at once: children told to stop, killed after stop_timeout
    HUP        reload   call the reload callback, then replace the children gracefully
    USR1       restart  replace the children gracefully

``SIGCHLD`` cannot be mapped (the server reaps its children with it), nor
can ``SIGKILL`` and ``SIGSTOP`` (no process may catch them); the fault
signals (``SIGSEGV``...) are refused by ``signal://`` itself.  A signal left
out of the map keeps its usual disposition (``SIGTERM`` then kills the
server without an orderly stop).

A forked child must not keep the server's signals: :meth:`Control.in_child`
gives every signal of the map and ``SIGCHLD`` its default disposition and
unblocks it there, so that the child can be stopped with ``SIGTERM``.

:class:`Doorbell` wakes the loop from another thread of the server
(:meth:`anyipc.Server.stop`, a handler thread that ends).
"""

from __future__ import annotations

import enum
import signal
import threading
from collections.abc import Mapping
from types import MappingProxyType

from anyipc._api import bind, pair
from anyipc._channel import Channel
from anyipc._wait import wait

__all__ = ["DEFAULT_SIGNALS", "Action", "Control", "Doorbell", "signal_actions"]


class Action(enum.Enum):
    """What a signal asks of the server."""

    STOP = "stop"  #: stop accepting, tell the children to stop, kill them after stop_timeout
    RELOAD = "reload"  #: call the reload callback, then replace the children gracefully
    RESTART = "restart"  #: replace the children gracefully (none of their connections is cut)


#: the signal map of a server that is given none
DEFAULT_SIGNALS: Mapping[str | signal.Signals, str] = MappingProxyType(
    {"TERM": "stop", "INT": "stop", "HUP": "reload", "USR1": "restart"}
)

_RESERVED = {
    signal.SIGCHLD: "the server reaps its children with it",
    signal.SIGKILL: "no process can catch it",
    signal.SIGSTOP: "no process can catch it",
}


def _signal(name: object) -> signal.Signals:
    if isinstance(name, signal.Signals):
        return name
    if not isinstance(name, str):
        raise TypeError(f"a signal is named by a str such as 'TERM', not {name!r}")
    text = name.strip().upper()
    member = signal.Signals.__members__.get(text if text.startswith("SIG") else f"SIG{text}")
    if member is None:
        raise ValueError(f"{name!r} is not a signal name (say 'TERM', 'HUP', 'USR1'...)")
    return member


def signal_actions(mapping: Mapping[str | signal.Signals, str]) -> dict[signal.Signals, Action]:
    """The signal map ``mapping`` as signals and actions; ``ValueError`` saying what is wrong."""
    actions: dict[signal.Signals, Action] = {}
    for name, action in mapping.items():
        signo = _signal(name)
        if signo in _RESERVED:
            raise ValueError(f"{signo.name} cannot control a server: {_RESERVED[signo]}")
        try:
            actions[signo] = Action(action)
        except ValueError:
            valid = ", ".join(repr(member.value) for member in Action)
            raise ValueError(
                f"{signo.name} is mapped to {action!r}; the actions are {valid}"
            ) from None
    return actions


class Control:
    """The server's ``signal://self`` channel: what its signals ask, and when a child ended.

    Binding happens here, in the calling thread, which must be the only
    thread of the process or every other thread must block these signals
    (:class:`~anyipc.TransportUnavailable` otherwise, from ``signal://``).
    ``channel`` is ``None`` when there is nothing to bind.
    """

    def __init__(self, actions: Mapping[signal.Signals, Action], *, reap: bool) -> None:
        self._actions = dict(actions)
        self._signals = sorted({*self._actions, *([signal.SIGCHLD] if reap else [])})
        names = ",".join(signo.name for signo in self._signals)
        self.channel: Channel | None = bind(f"signal://self?signals={names}") if names else None

    def take(self) -> list[tuple[signal.Signals, Action]]:
        """The signals that arrived, as read, with their actions; never blocks.

        Signals of one kind that arrived together count once.  ``SIGCHLD``
        has no action: it only wakes the loop that waits on :attr:`channel`,
        which reaps then.
        """
        actions: list[tuple[signal.Signals, Action]] = []
        # Only a signal known to be there is received: a receive that had to wait would give
        # the channel a waker, which forked children would share, and their close() would
        # then wake this process's waits.
        while self.channel is not None and wait([self.channel], timeout=0):
            signo = signal.Signals[self.channel.recv(timeout=0).decode()]
            if signo != signal.SIGCHLD:
                actions.append((signo, self._actions[signo]))
        return actions

    def in_child(self) -> None:
        """In a forked child: default dispositions, signals unblocked, the channel dropped.

        The dispositions come first, so that a ``SIGTERM`` the server sent
        while the child was starting takes effect as soon as it is unblocked.
        """
        for signo in self._signals:
            signal.signal(signo, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, self._signals)
        if self.channel is not None:
            self.channel.close()

    def close(self) -> None:
        """Unbind: pending signals are discarded and the mask is restored (idempotent)."""
        if self.channel is not None:
            self.channel.close()


class Doorbell:
    """Wakes the server's loop from another thread: :meth:`ring`, then the loop :meth:`clear` s.

    ``receiver`` is what the loop waits on; however often it rings, one
    message at most is queued.
    """

    def __init__(self) -> None:
        self._ringer, self.receiver = pair("mem://")
        self._lock = threading.Lock()
        self._rung = False

    def ring(self) -> None:
        """Make the loop's next (or current) wait return; does nothing once closed."""
        with self._lock:
            if not self._rung and not self._ringer.closed:
                self._rung = True
                self._ringer.send(b"")

    def clear(self) -> None:
        """Take the ring, so that the next wait sleeps again."""
        with self._lock:
            if self._rung:
                self.receiver.recv(timeout=0)
                self._rung = False

    def close(self) -> None:
        """Release both ends (idempotent)."""
        with self._lock:
            self._ringer.close()
            self.receiver.close()
