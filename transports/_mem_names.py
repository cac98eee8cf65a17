"""The process-wide table of ``mem://`` names: which listener or bound endpoint holds each.

Names live in this process only; :data:`NAMES` is the one table.  The
transport is :mod:`anyipc.transports.mem`.
"""

from __future__ import annotations

import itertools
import threading
from typing import TYPE_CHECKING

from anyipc._errors import AddressInUse
from anyipc.transports._mem_queue import Queue

if TYPE_CHECKING:
    from anyipc.transports.mem import MemListener


class Names:
    """The process-wide table of mem:// names: listeners and bound endpoints."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._listeners: dict[str, MemListener] = {}
        self._inboxes: dict[str, Queue] = {}
        self._counter = itertools.count(1)

    def fresh(self, prefix: str) -> str:
        return f"{prefix}-{next(self._counter)}"

    def claim(self, name: str, owner: MemListener | Queue) -> None:
        with self._lock:
            if name in self._listeners or name in self._inboxes:
                raise AddressInUse(f"mem://{name} is already in use in this process")
            if isinstance(owner, Queue):
                self._inboxes[name] = owner
            else:
                self._listeners[name] = owner

    def release(self, name: str) -> None:
        with self._lock:
            self._listeners.pop(name, None)
            self._inboxes.pop(name, None)

    def listener(self, name: str) -> MemListener | None:
        with self._lock:
            return self._listeners.get(name)

    def inbox_of(self, name: str) -> Queue | None:
        with self._lock:
            return self._inboxes.get(name)


NAMES = Names()
