"""One direction of a ``mem://`` channel: the queue of items waiting to be received.

A bounded queue of ``(data, sender)`` items with back-pressure (``send``
blocks while it holds ``capacity`` bytes), the end of the sender and the
departure of the receiver, and the wake-ups of :func:`anyipc.wait`.  The
transport is :mod:`anyipc.transports.mem`.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable

from anyipc._deadline import Deadline
from anyipc._errors import ConnectionLost, EndOfChannel, Timeout
from anyipc._readiness import Watchers


class Queue:
    """One direction: items waiting to be received, with back-pressure and end state."""

    def __init__(self, capacity: int, watchers: Watchers) -> None:
        self.items: deque[tuple[bytes, str | None]] = deque()
        self.size = 0
        self.capacity = capacity
        self.cond = threading.Condition()
        self.ended = False  # the sender closed: EndOfChannel once drained
        self.receiver_gone = False  # the receiver closed: sends fail
        self.watchers = watchers

    def wait_until(
        self, ready: Callable[[], object], deadline: Deadline, what: str, closed: Callable[[], None]
    ) -> None:
        """Wait (holding ``cond``) until ``ready()``; Timeout, or ``closed()`` raises."""
        while not ready():
            closed()
            if not self.cond.wait(deadline.remaining()) and deadline.expired():
                if not ready():
                    raise Timeout(f"{what} timed out")

    def put(
        self,
        items: list[bytes],
        sender: str | None,
        deadline: Deadline,
        closed: Callable[[], None],
        merge: bool = False,
    ) -> None:
        """Queue ``items``; with ``merge``, glue the first to the last unreceived item."""
        total = sum(map(len, items))
        with self.cond:

            def fits() -> bool:
                return self.receiver_gone or not self.items or self.size + total <= self.capacity

            self.wait_until(fits, deadline, "send", closed)
            if self.receiver_gone:
                raise ConnectionLost("the receiving end is closed")
            if merge and self.items and items:
                last, last_sender = self.items.pop()
                items = [last + items[0], *items[1:]]
                self.items.append((items[0], last_sender))
                items = items[1:]
            self.items.extend((item, sender) for item in items)
            self.size += total
            self.cond.notify_all()
        self.watchers.notify()

    def get(
        self, deadline: Deadline, closed: Callable[[], None], chunk: bool
    ) -> tuple[bytes, str | None]:
        with self.cond:
            self.wait_until(lambda: self.items or self.ended, deadline, "recv", closed)
            if not self.items:
                raise EndOfChannel("the peer closed the channel")
            if chunk:  # stream: everything available, up to 64 KiB
                parts: list[bytes] = []
                taken = 0
                while self.items and (not parts or taken + len(self.items[0][0]) <= 65536):
                    data, _ = self.items.popleft()
                    parts.append(data)
                    taken += len(data)
                item: tuple[bytes, str | None] = (b"".join(parts), None)
            else:
                item = self.items.popleft()
            self.size -= len(item[0])
            self.cond.notify_all()
            return item

    def end(self, *, sender: bool) -> None:
        with self.cond:
            if sender:
                self.ended = True
            else:
                self.receiver_gone = True
                self.items.clear()
                self.size = 0
            self.cond.notify_all()
        self.watchers.notify()
