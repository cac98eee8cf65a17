"""Checked records for the load tests: every message carries a sequence number and a CRC32.

A record is a 16-byte header, then a body: the sequence number (u64), the
body's length (u32) and the CRC32 of the sequence number, the length and the
body (u32), all big-endian.  A record received whole and unchanged parses
as intact; any damage (a flipped bit, a cut, bytes of another record)
fails the CRC or the length.

A transport whose messages are too small for the header (``signal://`` in
``rt`` mode carries 4 bytes) gets compact records: 20 bits of sequence
number and the low 12 bits of its CRC32, in one big-endian u32.

Used by the test processes and by the peer scripts beside them, which
import it by its file name.
"""

from __future__ import annotations

import struct
import zlib

__all__ = [
    "COMPACT",
    "HEADER",
    "Parsed",
    "RecordStream",
    "compact",
    "parse",
    "parse_compact",
    "record",
]

HEADER = struct.Struct(">QII")  #: sequence number, body length, CRC32
_SIGNED = struct.Struct(">QI")  #: what the CRC covers before the body
COMPACT = struct.Struct(">I")
COMPACT_SEQUENCES = 1 << 20  #: how many sequence numbers a compact record can carry
_COMPACT_CRC = 0xFFF

#: (sequence number, body, intact); a damaged record's sequence number and body mean nothing
Parsed = tuple[int, bytes, bool]


def _crc(sequence: int, body: bytes | memoryview) -> int:
    return zlib.crc32(body, zlib.crc32(_SIGNED.pack(sequence, len(body))))


def record(sequence: int, body: bytes | memoryview) -> bytes:
    """The record carrying ``body`` as message number ``sequence``."""
    return HEADER.pack(sequence, len(body), _crc(sequence, body)) + body


def parse(data: bytes) -> Parsed:
    """``data`` as one whole record; ``intact`` is False for anything damaged or cut."""
    if len(data) < HEADER.size:
        return -1, b"", False
    sequence, length, crc = HEADER.unpack_from(data)
    body = data[HEADER.size :]
    intact = length == len(body) and crc == _crc(sequence, body)
    return sequence, body, intact


def compact(sequence: int) -> bytes:
    """The 4-byte record of message number ``sequence`` (below :data:`COMPACT_SEQUENCES`)."""
    if not 0 <= sequence < COMPACT_SEQUENCES:
        raise ValueError(f"a compact record carries sequence numbers below {COMPACT_SEQUENCES}")
    check = zlib.crc32(COMPACT.pack(sequence)) & _COMPACT_CRC
    return COMPACT.pack(sequence << 12 | check)


def parse_compact(data: bytes) -> Parsed:
    """``data`` as one compact record (see :func:`compact`)."""
    if len(data) != COMPACT.size:
        return -1, b"", False
    (word,) = COMPACT.unpack(data)
    sequence = word >> 12
    intact = word & _COMPACT_CRC == zlib.crc32(COMPACT.pack(sequence)) & _COMPACT_CRC
    return sequence, b"", intact


class RecordStream:
    """Whole records out of a byte stream, which may split and join them anywhere.

    :meth:`feed` takes the next bytes and returns the records they complete.
    A header declaring a body longer than ``max_body`` is returned at once as
    a damaged record (it cannot be a record that was sent) and everything
    after it is unreadable: :attr:`lost_sync` turns true.
    """

    def __init__(self, max_body: int) -> None:
        self._max_body = max_body
        self._pending = bytearray()
        self.lost_sync = False

    @property
    def pending(self) -> int:
        """How many bytes of an incomplete record are held."""
        return len(self._pending)

    def feed(self, data: bytes) -> list[bytes]:
        if self.lost_sync:
            return []
        self._pending += data
        records = []
        start = 0
        while len(self._pending) - start >= HEADER.size:
            _, length, _ = HEADER.unpack_from(self._pending, start)
            if length > self._max_body:
                self.lost_sync = True
                records.append(bytes(self._pending[start : start + HEADER.size]))
                break
            end = start + HEADER.size + length
            if end > len(self._pending):
                break
            records.append(bytes(self._pending[start:end]))
            start = end
        del self._pending[:start]
        return records
