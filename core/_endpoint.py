"""What channels and listeners share: closing, waking, readiness, ResourceWarning."""

from __future__ import annotations

import threading
import warnings
from types import TracebackType
from typing import Self

from anyipc._capabilities import Capabilities
from anyipc._deadline import Deadline
from anyipc._errors import ChannelClosed, NotSupported, Timeout
from anyipc._readiness import Waker, Watchers

#: how long ``close()`` waits for calls blocked in other threads to leave, in seconds
CALLERS_WAIT_S = 2.0
#: how long a ``close()`` waits for another thread's ``close()`` to finish releasing, in seconds
CLOSE_WAIT_S = 10.0

__all__ = ["Endpoint"]


class Endpoint:
    """Base of :class:`~anyipc.Channel` and :class:`~anyipc.Listener`.

    ``close()`` is idempotent and safe from any thread: it marks the endpoint
    closed, wakes every call blocked on it (they raise :class:`ChannelClosed`),
    waits briefly for them to leave, then releases the OS objects through
    :meth:`_close`.  An endpoint collected without ``close()`` emits a
    ``ResourceWarning`` and is closed then.
    """

    _closed = True  # until __init__ has run, so __del__ on a half-built object is quiet

    #: For endpoints whose readiness neither a descriptor nor a notification
    #: of their watchers shows (a SysV queue fed by another process, a queue's
    #: senders going away): :func:`anyipc.wait` re-checks ``_ready()`` at this
    #: interval, in seconds.  ``None``: no need.
    poll_interval: float | None = None

    def __init__(self, capabilities: Capabilities, address: str | None) -> None:
        self.capabilities = capabilities
        self.address = address
        self._closed = False
        self._waker = Waker()
        self.watchers = Watchers()
        # Held by a send (resp. a receive or accept) for its whole duration, so
        # that messages never interleave and close() can wait for callers to leave.
        self._send_lock = threading.Lock()
        self._recv_lock = threading.Lock()
        # Held by close() while it releases: a second close() returns once the first is done
        # (re-entrant: a close() that runs inside the first, from __del__ say, returns at once).
        self._close_guard = threading.RLock()

    # -- for implementers -------------------------------------------------------
    def _close(self) -> None:
        """Release the OS objects (called once, by :meth:`close`)."""

    def _interrupt(self) -> None:
        """Wake calls blocked on something other than a descriptor (called by close)."""

    def _wait_fd(self) -> int | None:
        """A descriptor that polls readable when a receive/accept will not block."""
        return None

    def _ready(self) -> bool:
        """True when a receive/accept would not block for a reason no fd shows."""
        return False

    # -- public -------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closed

    def fileno(self) -> int:
        """The descriptor to poll for readiness; :class:`NotSupported` if there is none.

        Use :func:`anyipc.wait` to wait on any endpoint, with or without one.
        """
        self._check_open()
        fd = self._wait_fd()
        if fd is None:
            raise NotSupported(f"{type(self).__name__} has no descriptor; use anyipc.wait()")
        return fd

    def close(self) -> None:
        """Close this end and release what it created; idempotent, thread-safe.

        Returns once the OS objects are released, also when another thread
        is closing the endpoint at the same moment: that call waits for the
        first (at most :data:`CLOSE_WAIT_S` seconds).
        """
        if not self._close_guard.acquire(timeout=CLOSE_WAIT_S):
            return  # another thread's close() is stuck releasing; it will finish it
        try:
            if self._closed:
                return
            self._closed = True
            self._waker.wake()
            self._interrupt()
            self.watchers.notify()
            locks = (self._send_lock, self._recv_lock)
            held = [lock for lock in locks if lock.acquire(timeout=CALLERS_WAIT_S)]
            try:
                self._close()
            finally:
                for lock in held:
                    lock.release()
                self._waker.release()
        finally:
            self._close_guard.release()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __del__(self) -> None:
        if not self._closed:
            warnings.warn(f"unclosed {self!r}", ResourceWarning, stacklevel=2, source=self)
            self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<{type(self).__name__} {self.address or '?'} {state}>"

    def _locked(self, lock: threading.Lock, deadline: Deadline, what: str) -> None:
        """Take ``lock`` before ``deadline``; the caller releases it."""
        if not lock.acquire(blocking=False):  # free, as it mostly is: no clock to read
            left = deadline.remaining()
            if not lock.acquire(timeout=-1 if left is None else left):
                raise Timeout(f"{what} timed out waiting for another thread's {what}")
        if self._closed:
            lock.release()
            raise ChannelClosed(f"{self!r} is closed")

    def _check_open(self) -> None:
        if self._closed:
            raise ChannelClosed(f"{self!r} is closed")
