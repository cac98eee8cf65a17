"""How long a waiting end retries at once before it sleeps: spinning, paced by recent waits.

An end that waits for something no descriptor announces at once (a
shared-memory ring, a SysV message queue) can either check again and again
("spin"), which answers within a check but burns a CPU while it lasts, or
sleep, which costs nothing but answers only once it is woken or its nap is
over.  :class:`Pacer` picks between them from how long the end's recent
waits took.
"""

from __future__ import annotations

__all__ = ["MIN_SPIN_S", "Pacer"]

MIN_SPIN_S = 5e-6  #: the spin of an end whose recent waits were long


class Pacer:
    """How long a waiting end spins before it sleeps, from how long its recent waits took.

    Spinning pays only when the peer answers sooner than a sleeper could
    wake (20-25 µs between two CPUs here for a woken ``poll()``, 170 µs or
    more for the shortest timed nap).  While the recent waits average under ``spin``
    seconds, an end spins up to ``spin``, so that two ends in a fast
    exchange keep answering each other without sleeping (a shorter spin
    lets a single late answer tip both into sleeping every time); once the
    waits are longer, as on an idle or slow channel, it spins only
    :data:`MIN_SPIN_S` and sleeps, so an idle end costs no CPU.
    """

    __slots__ = ("_average", "_spin")

    def __init__(self, spin: float) -> None:
        self._spin = spin
        self._average = 0.0

    def budget(self) -> float:
        """Seconds to spin before sleeping."""
        return self._spin if self._average < self._spin else min(self._spin, MIN_SPIN_S)

    def waited(self, seconds: float) -> None:
        """Record how long a wait took (a moving average over about four waits)."""
        self._average += (seconds - self._average) / 4
