"""What both sides of a benchmark connection share: the :class:`Link` protocol and its messages.

A link carries fixed-size messages both ways between the measuring process
and its peer process, whatever lies beneath: an anyipc channel (or two, for
a SIMPLEX transport), a raw socket, a pair of pipes, two message queues,
``multiprocessing`` or ZeroMQ.  ``send`` sends one message of any size;
``recv(size)`` returns one whole message of exactly ``size`` bytes (on a
byte stream it reads exactly ``size`` bytes, so the stream carries the
same fixed-size messages) and raises :class:`BenchError` when a message of
another size arrives.  What ``recv`` returns may be a view of the link's
own buffer, valid until the next ``recv``.

Each call is bounded by its ``timeout`` (seconds) wherever the mechanism
can wait with one; the few raw calls that cannot are bounded by the
point's watchdog (see :mod:`anyipc.cli._bench_session`).

Two things only some links can do, each asked for on the command line:

* batches (``--batch N``, a :class:`BatchLink`): ``send_batch`` sends one
  message several times in one call and ``recv_batch`` receives up to so
  many in one, where the mechanism has calls for that (the shared-memory
  channels' ``send_many``/``recv_many``, the raw ring publishing several
  records at once); every other link is used one message at a time;
* views (``--zero-copy``, a :class:`ViewLink`): ``recv`` hands out a view
  of the message where it lies (the shared-memory channels' ``recv_view``,
  the raw ring's data area) instead of a copy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from anyipc._channel import BytesLike

__all__ = [
    "ACK_SIZE",
    "HELLO",
    "BatchLink",
    "BenchError",
    "Link",
    "StreamReader",
    "ViewLink",
    "ack",
    "acked",
    "check_size",
    "describe",
    "payload",
    "use_views",
]

#: what the peer of a connectionless link sends first, so that the measuring side learns its address
HELLO = b"hello"
#: the size of the acknowledgement that ends a throughput run: the count of messages received
ACK_SIZE = 8
#: the smallest buffer of a stream reader
CHUNK = 65536


class BenchError(Exception):
    """A benchmark went wrong in a way that is not the transport's own error (wrong size, peer)."""


class Link(Protocol):
    """One side of a benchmark connection: fixed-size messages both ways."""

    def send(self, data: BytesLike, timeout: float) -> None:
        """Send one message (all its bytes, on a stream)."""

    def recv(self, size: int, timeout: float) -> BytesLike:
        """Receive one message of exactly ``size`` bytes."""

    def close(self) -> None:
        """Release everything this side opened; idempotent."""


@runtime_checkable
class BatchLink(Protocol):
    """A link that sends and receives several messages per call."""

    def send_batch(self, data: BytesLike, count: int, timeout: float) -> None:
        """Send ``data`` as ``count`` messages, in as few calls as the mechanism allows."""

    def recv_batch(self, size: int, most: int, timeout: float) -> int:
        """Receive at least one and at most ``most`` messages of ``size`` bytes; how many."""


@runtime_checkable
class ViewLink(Protocol):
    """A link whose ``recv`` can hand out views of the messages instead of copies."""

    def receive_views(self, on: bool) -> bool:
        """Receive views (``on``) or copies from now on; whether views are what ``recv`` gives."""


def use_views(link: Link, on: bool) -> bool:
    """Ask ``link`` to receive views (``on``) or copies; whether it now receives views."""
    return isinstance(link, ViewLink) and link.receive_views(on)


def payload(size: int) -> bytes:
    """The message of ``size`` bytes that a benchmark sends (a repeating byte pattern)."""
    pattern = bytes(range(256))
    return (pattern * (size // len(pattern) + 1))[:size]


def ack(received: int) -> bytes:
    """The acknowledgement that ``received`` messages arrived."""
    return received.to_bytes(ACK_SIZE, "big")


def acked(message: BytesLike) -> int:
    """The count an acknowledgement carries."""
    return int.from_bytes(message, "big")


def check_size(got: int, size: int) -> None:
    """Raise :class:`BenchError` unless a message of ``got`` bytes is the ``size`` expected."""
    if got != size:
        raise BenchError(f"expected a message of {size} bytes, received {got} bytes")


def describe(exc: BaseException) -> str:
    """One line for what went wrong: the message, named by its type unless it is ours."""
    text = " ".join(str(exc).split())
    if isinstance(exc, BenchError):
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class StreamReader:
    """Fixed-size messages out of a byte stream, for the raw links.

    Reads into one buffer as much as arrives (as anyipc's stream channels
    do) and hands out one message at a time, as a view of the buffer that
    is valid until the next call; what arrived beyond a message is kept for
    the next.  ``read_into(view)`` reads at most ``len(view)`` bytes into
    ``view`` and returns how many, 0 at the end of the stream.
    """

    def __init__(self, read_into: Callable[[memoryview], int]) -> None:
        self._read_into = read_into
        self._bytes = bytearray(CHUNK)
        self._view = memoryview(self._bytes)
        self._start = self._end = 0  # the bytes received and not handed out yet

    def exactly(self, size: int) -> memoryview:
        """The next ``size`` bytes; :class:`BenchError` if the stream ends first."""
        if self._end - self._start < size:
            self._refill(size)
        start = self._start
        self._start += size
        return self._view[start : start + size]

    def _refill(self, size: int) -> None:
        held = self._end - self._start
        if len(self._bytes) < size:  # a larger buffer, the held bytes first
            grown = bytearray(max(size, CHUNK))
            grown[:held] = self._view[self._start : self._end]
            self._bytes, self._view = grown, memoryview(grown)
        elif self._start:  # the held bytes to the front (the same length: no resize)
            self._bytes[:held] = self._bytes[self._start : self._end]
        self._start, self._end = 0, held
        while self._end < size:
            count = self._read_into(self._view[self._end :])
            if not count:
                raise BenchError("the peer closed its end of the stream")
            self._end += count
