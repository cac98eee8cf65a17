"""Stamped messages for the fault tests: every one carries a sequence number and a CRC32.

A stamped message of ``size`` bytes (at least :data:`HEADER`'s 12) is the
header ``seq``, ``length`` (of the body) and ``crc`` (CRC32 of the first
eight header bytes and the body), three unsigned 32-bit big-endian numbers,
then a body of pseudo-random bytes drawn from ``seq``.  :func:`verify`
returns the sequence number of an intact message and raises
:class:`DamagedMessage` for anything else: a message cut short, grown,
or with one byte changed.

``signal://`` in ``rt`` mode carries exactly 4 bytes, so a message of
``size`` 4 is the compact form: the low 16 bits of ``seq``, then the low 16
bits of the CRC32 of those two bytes.

:func:`frame` wraps a message in the ``framed+`` wire format (a 4-byte
big-endian length, then the message), which a peer writes by hand on a raw
stream when it must stop inside a frame.

This module is imported by the tests and, as a sibling script module, by
the peer processes (:mod:`_fault_peers`).
"""

from __future__ import annotations

import random
import struct
import zlib

__all__ = ["COMPACT", "HEADER", "DamagedMessage", "frame", "stamp", "verify"]

HEADER = struct.Struct("!III")  #: seq, body length, CRC32
COMPACT = 4  #: the size of the compact form (signal:// rt)
_COMPACT = struct.Struct("!HH")
_FRAME_HEADER = struct.Struct("!I")


class DamagedMessage(AssertionError):
    """A received message is not one that was sent: cut, grown or changed."""


def stamp(seq: int, size: int) -> bytes:
    """The stamped message number ``seq``, ``size`` bytes long (4: the compact form)."""
    if size == COMPACT:
        low = seq & 0xFFFF
        return _COMPACT.pack(low, zlib.crc32(low.to_bytes(2, "big")) & 0xFFFF)
    if size < HEADER.size:
        raise ValueError(f"a stamped message takes at least {HEADER.size} bytes, not {size}")
    body = random.Random(seq).randbytes(size - HEADER.size)
    head = struct.pack("!II", seq, len(body))
    return head + struct.pack("!I", zlib.crc32(body, zlib.crc32(head))) + body


def verify(message: bytes) -> int:
    """The sequence number of an intact stamped message; :class:`DamagedMessage` otherwise."""
    if len(message) == COMPACT:
        low, check = _COMPACT.unpack(message)
        if zlib.crc32(low.to_bytes(2, "big")) & 0xFFFF != check:
            raise DamagedMessage(f"compact message {message!r}: its CRC does not match")
        return int(low)
    if len(message) < HEADER.size:
        raise DamagedMessage(f"a message of {len(message)} bytes is shorter than its header")
    seq, length, crc = HEADER.unpack_from(message)
    body = memoryview(message)[HEADER.size :]
    if length != len(body):
        raise DamagedMessage(f"message {seq}: {len(body)} body bytes where {length} were sent")
    if zlib.crc32(body, zlib.crc32(message[:8])) != crc:
        raise DamagedMessage(f"message {seq}: its CRC32 does not match its bytes")
    return int(seq)


def frame(message: bytes) -> bytes:
    """``message`` as one frame of the ``framed+`` wire format."""
    return _FRAME_HEADER.pack(len(message)) + message
