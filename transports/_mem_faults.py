"""Fault injection for ``mem://``: the seeded faults applied to each outgoing message.

Each fault (``lose``, ``duplicate``, ``reorder``, ``corrupt``, ``split``,
``merge``) strikes a message with its probability, drawn from a generator
seeded by the address's ``seed`` and the end's stream, so a run misbehaves
reproducibly.  The options and the honest capabilities are in
:mod:`anyipc.transports.mem`.
"""

from __future__ import annotations

import random

FAULTS = ("lose", "duplicate", "reorder", "corrupt", "split", "merge")


class Faults:
    """Applies the seeded faults to each outgoing message."""

    def __init__(self, rates: dict[str, float], seed: int, stream_seed: int) -> None:
        self.rates = rates
        self.random = random.Random(seed * 1_000_003 + stream_seed)
        self.held: bytes | None = None  # a message overtaken by the next one

    def hit(self, fault: str) -> bool:
        rate = self.rates.get(fault, 0.0)
        return rate > 0 and self.random.random() < rate

    def apply(self, data: bytes) -> tuple[list[bytes], bool]:
        """The messages to queue for ``data``, and whether to glue them to the last queued one."""
        if not self.rates:
            return [data], False
        merge = self.hit("merge")
        if self.hit("lose"):
            return [], False
        if self.hit("corrupt"):
            if data:
                index = self.random.randrange(len(data))
                data = data[:index] + bytes([data[index] ^ 0xFF]) + data[index + 1 :]
            else:
                data = b"\x00"
        out = [data]
        if self.hit("split") and len(data) >= 2:
            cut = self.random.randrange(1, len(data))
            out = [data[:cut], data[cut:]]
        if self.hit("duplicate"):
            out = out + out
        if self.held is not None:
            out, self.held = out + [self.held], None
        elif self.hit("reorder"):
            self.held, out = out[-1], out[:-1]
        return out, merge

    def flush(self) -> list[bytes]:
        """What is still held back, to be delivered before the end."""
        rest = [] if self.held is None else [self.held]
        self.held = None
        return rest
