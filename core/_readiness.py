"""Blocking on descriptors with a deadline, and waking blocked callers on close.

Every channel that blocks on a descriptor waits here, together with its
:class:`Waker`, so that ``close()`` from another thread interrupts the wait:
once with :func:`wait_for_fd`, or again and again with an :class:`FdWaiter`.
Channels without a descriptor of their own (in-process transports) keep a
:class:`Watchers` list that :func:`anyipc.wait` uses instead.
"""

from __future__ import annotations

import os
import select
import threading
from collections.abc import Callable

from anyipc._deadline import Deadline
from anyipc._errors import ChannelClosed, Timeout

__all__ = ["READABLE", "WRITABLE", "FdWaiter", "Waker", "Watchers", "wait_for_fd"]

READABLE = select.POLLIN | select.POLLPRI
WRITABLE = select.POLLOUT
_FAILED = select.POLLERR | select.POLLHUP | select.POLLNVAL


class Waker:
    """An eventfd, created on first use, that makes :func:`wait_for_fd` return.

    ``wake()`` is called by ``close()``; after it every wait raises
    :class:`ChannelClosed`.  ``release()`` closes the eventfd.

    The eventfd belongs to the process that made it.  A forked child that
    inherited it never writes to it (closing the child's copy of a channel
    must not wake the parent's waits, nor the other way round): the child
    makes an eventfd of its own when it first waits.
    """

    __slots__ = ("_fd", "_lock", "_pid", "_woken")

    def __init__(self) -> None:
        self._fd = -1
        self._pid = 0  # the process that made ``_fd``
        self._lock = threading.Lock()
        self._woken = False

    def fileno(self) -> int:
        """This process's eventfd, created on first use."""
        with self._lock:
            if self._fd >= 0 and self._pid != os.getpid():
                self._drop_inherited()
            if self._fd < 0:
                self._fd = os.eventfd(1 if self._woken else 0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
                self._pid = os.getpid()
            return self._fd

    @property
    def woken(self) -> bool:
        """True once :meth:`wake` was called."""
        return self._woken

    def wake(self) -> None:
        """Wake every current and future waiter of this process."""
        with self._lock:
            self._woken = True
            if self._fd >= 0:
                if self._pid == os.getpid():
                    os.eventfd_write(self._fd, 1)
                else:
                    self._drop_inherited()

    def release(self) -> None:
        """Close the eventfd (after :meth:`wake`; waiters have been told)."""
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1

    def _drop_inherited(self) -> None:
        """Close this process's copy of an eventfd its parent made (the parent keeps its own)."""
        os.close(self._fd)
        self._fd = -1


def wait_for_fd(fd: int, events: int, deadline: Deadline, waker: Waker, what: str) -> int:
    """Block until ``fd`` has one of ``events`` (or an error/hang-up condition).

    Returns the events seen.  Raises :class:`Timeout` (message ``what``) when
    the deadline passes first and :class:`ChannelClosed` when the waker was
    woken.  ``EINTR`` is retried with the remaining time (PEP 475).  A call
    that waits on the same descriptor again and again keeps an
    :class:`FdWaiter` instead, which registers it once.
    """
    if waker.woken:  # before asking a released waker for an eventfd, which it would make anew
        raise ChannelClosed("the channel is closed")
    return FdWaiter(fd, events, waker).wait(deadline, what)


class FdWaiter:
    """:func:`wait_for_fd` for one descriptor and events, with the poll object built once.

    A channel keeps one per direction and creates it on its first wait (that
    creates the waker's eventfd), while it holds that direction's lock; the
    lock also keeps two threads from waiting on it at once, which ``poll``
    objects refuse.  It holds no descriptor of its own and needs no closing;
    after the channel is closed its registrations are stale, and :meth:`wait`
    raises :class:`ChannelClosed` before polling them.
    """

    __slots__ = ("_events", "_fd", "_pid", "_poller", "_wake_fd", "_waker")

    def __init__(self, fd: int, events: int, waker: Waker) -> None:
        self._fd, self._events, self._waker = fd, events, waker
        self._register()

    def _register(self) -> None:
        self._pid = os.getpid()
        self._wake_fd = self._waker.fileno()
        self._poller = select.poll()
        self._poller.register(self._fd, self._events)
        self._poller.register(self._wake_fd, select.POLLIN)

    def wait(self, deadline: Deadline, what: str) -> int:
        """Block until the descriptor is ready, as :func:`wait_for_fd` does; the events seen."""
        if self._waker.woken:
            raise ChannelClosed("the channel is closed")
        if self._pid != os.getpid():  # a forked child: its own waker's eventfd
            self._register()
        while True:
            ready = self._poller.poll(deadline.poll_ms())
            if not ready:
                if deadline.expired():
                    raise Timeout(f"{what} timed out")
                continue
            seen = 0
            for ready_fd, mask in ready:
                if ready_fd == self._wake_fd:
                    raise ChannelClosed("the channel was closed while waiting")
                seen |= mask
            if seen & (self._events | _FAILED):
                return seen


class Watchers:
    """Callbacks run whenever an fd-less channel may have become ready.

    Used by :func:`anyipc.wait`; a transport calls :meth:`notify` whenever
    data arrives, the peer closes, or the channel closes.
    """

    __slots__ = ("_callbacks", "_lock")

    def __init__(self) -> None:
        self._callbacks: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    def add(self, callback: Callable[[], None]) -> None:
        """Register ``callback``."""
        with self._lock:
            self._callbacks.append(callback)

    def remove(self, callback: Callable[[], None]) -> None:
        """Unregister ``callback`` (no error if absent)."""
        with self._lock:
            if callback in self._callbacks:
                self._callbacks.remove(callback)

    def notify(self) -> None:
        """Run every registered callback."""
        with self._lock:
            callbacks = list(self._callbacks)
        for callback in callbacks:
            callback()
