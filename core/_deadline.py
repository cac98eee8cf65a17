"""Timeouts turned into deadlines, validated once at the public entry."""

from __future__ import annotations

import math
import time

__all__ = ["Deadline"]


class Deadline:
    """A point in monotonic time after which a blocking call gives up.

    ``Deadline(None)`` never expires.  A timeout must be a non-negative real
    number or ``None``; anything else raises ``ValueError`` / ``TypeError``.
    """

    __slots__ = ("_at",)

    def __init__(self, timeout: float | None) -> None:
        if timeout is None:
            self._at: float | None = None
            return
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
            raise TypeError(f"timeout must be a number of seconds or None, not {timeout!r}")
        if math.isnan(timeout) or timeout < 0:
            raise ValueError(f"timeout must be >= 0 seconds, not {timeout!r}")
        self._at = time.monotonic() + timeout

    @property
    def infinite(self) -> bool:
        """True when the deadline never expires."""
        return self._at is None

    def remaining(self) -> float | None:
        """Seconds left (never negative), or ``None`` for no deadline."""
        if self._at is None:
            return None
        return max(0.0, self._at - time.monotonic())

    def expired(self) -> bool:
        """True once the deadline has passed."""
        return self._at is not None and time.monotonic() >= self._at

    def poll_ms(self) -> int | None:
        """The remaining time in whole milliseconds, rounded up, for ``poll()``."""
        left = self.remaining()
        if left is None:
            return None
        return math.ceil(left * 1000)
