"""The messages of ``signal://``: which signals can carry them, and how data maps to a signal.

``mode=classic`` sends and receives a signal's name (:class:`NameCodec`),
``mode=rt`` the 32-bit value one real-time signal carries (:class:`ValueCodec`).
A codec turns the bytes of a ``send`` into a signal number and value, and
a received ``signalfd`` record back into bytes.  The semantics are in
:mod:`anyipc.transports.signal`.
"""

from __future__ import annotations

import signal
import struct
from typing import TypeAlias

import attrs

from anyipc._signalfd import SigInfo

VALUE = struct.Struct(">i")

_NOT_MESSAGES = {
    signal.SIGKILL: "it cannot be caught or blocked",
    signal.SIGSTOP: "it cannot be caught or blocked",
    **dict.fromkeys(
        (
            signal.SIGSEGV,
            signal.SIGBUS,
            signal.SIGFPE,
            signal.SIGILL,
            signal.SIGTRAP,
            signal.SIGSYS,
        ),
        "it reports faults: blocking it cannot stop a real fault and would bypass its handler",
    ),
}
#: the standard signals a channel can carry, by canonical name
NAMES = {
    sig.name: sig for sig in signal.Signals if sig < signal.SIGRTMIN and sig not in _NOT_MESSAGES
}


def signal_name(signo: int) -> str:
    if signo >= signal.SIGRTMIN:
        return f"SIGRTMIN+{signo - signal.SIGRTMIN}"
    return signal.Signals(signo).name


def parse_signals(text: str) -> tuple[signal.Signals, ...]:
    """The signals a ``signals`` option names, by number; ``ValueError`` saying what is wrong."""
    found = set()
    for item in text.split(","):
        name = item.upper() if item.upper().startswith("SIG") else f"SIG{item.upper()}"
        member = signal.Signals.__members__.get(name)
        if member is None:
            raise ValueError(f"{item!r} is not a signal name")
        if member >= signal.SIGRTMIN:
            raise ValueError(f"{member.name} is a real-time signal: use mode=rt (option rtsig)")
        if member in _NOT_MESSAGES:
            raise ValueError(f"{member.name} cannot be a message: {_NOT_MESSAGES[member]}")
        found.add(member)
    return tuple(sorted(found))


@attrs.frozen
class NameCodec:
    """mode=classic: a message is a signal's name."""

    signals: tuple[signal.Signals, ...]

    queued = False

    @property
    def max_size(self) -> int:
        return max(len(sig.name) for sig in self.signals)

    def encode(self, data: bytes) -> tuple[int, int]:
        for sig in self.signals:
            if data == sig.name.encode():
                return sig, 0
        allowed = ", ".join(sig.name for sig in self.signals)
        raise ValueError(f"{data[:24]!r} is not a message of this channel: it carries {allowed}")

    def decode(self, info: SigInfo) -> bytes:
        return signal.Signals(info.signo).name.encode()


@attrs.frozen
class ValueCodec:
    """mode=rt: a message is the 4-byte big-endian value one real-time signal carries."""

    signo: int

    queued = True
    max_size = VALUE.size

    @property
    def signals(self) -> tuple[int, ...]:
        return (self.signo,)

    def encode(self, data: bytes) -> tuple[int, int]:
        if len(data) != VALUE.size:
            raise ValueError(
                f"a signal:// rt message is exactly {VALUE.size} bytes "
                f"(a big-endian 32-bit value), not {len(data)}"
            )
        return self.signo, VALUE.unpack(data)[0]

    def decode(self, info: SigInfo) -> bytes:
        return VALUE.pack(info.value)


Codec: TypeAlias = NameCodec | ValueCodec  #: how a channel's messages map to signals
