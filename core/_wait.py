"""``anyipc.wait``: select()/poll() over channels and listeners of any transport."""

from __future__ import annotations

import os
import select
from collections.abc import Iterable
from typing import TypeVar

from anyipc._deadline import Deadline
from anyipc._endpoint import Endpoint
from anyipc._readiness import READABLE

__all__ = ["wait"]

_E = TypeVar("_E", bound=Endpoint)


def _poll_ms(deadline: Deadline, intervals: list[float]) -> int | None:
    """How long one poll may sleep: until the deadline, or the shortest re-check interval."""
    left = deadline.poll_ms()
    if not intervals:
        return left
    step = max(1, int(min(intervals) * 1000))
    return step if left is None else min(left, step)


def wait(endpoints: Iterable[_E], timeout: float | None = None) -> list[_E]:
    """Wait until some of ``endpoints`` are ready and return those, in the given order.

    A channel is ready when ``recv`` (or ``recv_from``) would not block: a
    message or bytes are there, the peer's end or loss is there to report,
    or the channel is closed.  A listener is ready when ``accept`` would not
    block.  Works for every transport, with or without a descriptor of its
    own (endpoints that cannot signal readiness are re-checked at their
    ``poll_interval``).  Returns an empty list when ``timeout`` passes
    first; never returns early otherwise.  ``wait`` consumes nothing: the next call is ready again
    until the data is received.
    """
    items = list(endpoints)
    deadline = Deadline(timeout)
    by_fd: dict[int, list[_E]] = {}
    fdless: list[_E] = []
    for endpoint in items:
        fd = None if endpoint.closed else endpoint._wait_fd()
        if fd is None:
            fdless.append(endpoint)
        else:
            by_fd.setdefault(fd, []).append(endpoint)
    doorbell = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK) if fdless else -1

    def ring() -> None:
        try:
            os.eventfd_write(doorbell, 1)
        except OSError:  # the wait is over and the doorbell closed
            pass

    polled = [e.poll_interval for e in items if e.poll_interval is not None]
    for endpoint in fdless:
        endpoint.watchers.add(ring)
    try:
        poller = select.poll()
        for fd in by_fd:
            poller.register(fd, READABLE)
        if doorbell >= 0:
            poller.register(doorbell, select.POLLIN)
        while True:
            ready_fds = set()
            ready_list = [e for e in items if e.closed or e._ready()]
            if not ready_list:
                events = poller.poll(_poll_ms(deadline, polled))
                ready_fds = {fd for fd, _ in events}
                if doorbell in ready_fds:
                    os.eventfd_read(doorbell)
                ready_list = [
                    e
                    for e in items
                    if e.closed or e._ready() or any(e in by_fd.get(fd, ()) for fd in ready_fds)
                ]
            if ready_list or deadline.expired():
                return ready_list
    finally:
        for endpoint in fdless:
            endpoint.watchers.remove(ring)
        if doorbell >= 0:
            os.close(doorbell)
