"""``model="thread"``: each connection in a thread of the server, at most ``workers`` at once.

A thread is started per connection (and ends with it), so ``workers``
bounds the threads as well as the handlers.  The threads are started by the
loop's thread, after the server bound its signals, and inherit its blocked
mask: they never receive the server's signals.

Stopping closes every connection still being handled, which wakes a
handler blocked in ``send``/``recv``/``accept`` (they raise
:class:`~anyipc.ChannelClosed`, which is not logged as a failure), then
waits up to ``stop_timeout`` for the threads to end.  A thread cannot be
killed: one still running after that (a handler that computes, or sleeps)
is logged and left behind, a daemon thread that does not keep the
interpreter alive.
"""

from __future__ import annotations

import itertools
import threading

from anyipc._channel import Channel, Listener
from anyipc._deadline import Deadline
from anyipc._serve_children import LOG, Handler, run_handler
from anyipc._serve_control import Control, Doorbell
from anyipc._serve_models import AcceptingModel

__all__ = ["ThreadModel"]


class ThreadModel(AcceptingModel):
    """See the module docstring; ``doorbell`` wakes the loop when a handler ends."""

    def __init__(
        self, listener: Listener, workers: int, handler: Handler, doorbell: Doorbell
    ) -> None:
        super().__init__(listener, workers, handler)
        self._doorbell = doorbell
        self._running: dict[Channel, threading.Thread] = {}
        self._lock = threading.Lock()
        self._stopping = False
        self._numbers = itertools.count(1)

    def busy(self) -> int:
        """How many handler threads run now."""
        with self._lock:
            return len(self._running)

    def hand_over(self, channel: Channel) -> None:
        """Start a thread running the current handler on ``channel``."""
        thread = threading.Thread(
            target=self._run,
            args=(self.handler, channel),
            name=f"anyipc.serve-{next(self._numbers)}",
            daemon=True,
        )
        with self._lock:
            self._running[channel] = thread
        thread.start()

    def _run(self, handler: Handler, channel: Channel) -> None:
        try:
            run_handler(handler, channel, lambda: self._stopping)
        finally:
            with self._lock:
                del self._running[channel]
            self._doorbell.ring()

    def tick(self) -> None:
        """Nothing to do: a thread that ends rings the doorbell, and that is all."""

    def stop(self, control: Control, timeout: float) -> None:
        """Close the connections being handled; wait up to ``timeout`` for their threads."""
        self._stopping = True
        with self._lock:
            running = dict(self._running)
        for channel in running:
            channel.close()
        deadline = Deadline(timeout)
        for thread in running.values():
            thread.join(deadline.remaining())
        stuck = [thread.name for thread in running.values() if thread.is_alive()]
        if stuck:
            LOG.warning(
                "%d handler threads still running %.3g s after their connections were "
                "closed are left behind: %s",
                len(stuck),
                timeout,
                ", ".join(stuck),
            )
