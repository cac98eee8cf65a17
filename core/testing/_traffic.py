"""Moving traffic for the checks: background senders, receiving until the end, limits.

Shared by the in-process checks (:mod:`anyipc.testing._checks`) and the
cross-process ones (:mod:`anyipc.testing._processes`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from anyipc._capabilities import Boundaries
from anyipc._channel import Channel
from anyipc._errors import EndOfChannel, Timeout
from anyipc.testing._harness import Conversation, Harness

__all__ = [
    "WAIT",
    "Sender",
    "fits",
    "is_stream",
    "receive_all",
    "recv_exactly",
    "send_and_collect",
]

WAIT = 10.0  #: how long a background sender may take before it is a failure


def fits(harness: Harness, payload: bytes) -> bool:
    """True when ``payload`` is within the transport's maximum message size."""
    limit = harness.capabilities.max_message_size
    return limit is None or len(payload) <= limit


def is_stream(harness: Harness) -> bool:
    return harness.capabilities.boundaries is Boundaries.STREAM


def _reliable_count(harness: Harness) -> bool:
    caps = harness.capabilities
    return caps.lossless and caps.duplicate_free and caps.boundaries is Boundaries.MESSAGE


class Sender(threading.Thread):
    """Sends ``payloads`` on ``channel`` in the background, then closes it if asked."""

    def __init__(
        self,
        send: Callable[[bytes], None],
        payloads: Sequence[bytes],
        close: Callable[[], None] | None,
    ) -> None:
        super().__init__(name="anyipc-conformance-sender", daemon=True)
        self._send = send
        self._payloads = payloads
        self._close = close
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            for payload in self._payloads:
                self._send(payload)
            if self._close is not None:
                self._close()
        except BaseException as exc:  # re-raised in the checking thread
            self.error = exc

    def finish(self) -> None:
        self.join(WAIT * 3)
        assert not self.is_alive(), "send did not finish: the transport deadlocked"
        if self.error is not None:
            raise self.error


def receive_all(
    harness: Harness, receiver: Channel, expected: int | None, *, first: float | None = None
) -> tuple[list[bytes], bool]:
    """Receive until the orderly end, ``expected`` messages, or silence.

    ``first``: how long the first message may take at least, for a sender
    that is still starting (a silence of ``harness.quiet`` would end a lossy
    transport's receiving before it sent anything).  Returns the messages
    and whether the receiver saw everything there was to see (the end of
    the channel, or the expected count).
    """
    received: list[bytes] = []
    patient = harness.capabilities.lossless
    while True:
        if expected is not None and _reliable_count(harness) and len(received) >= expected:
            return received, True
        timeout = harness.patience if patient else harness.quiet
        if first is not None and not received:
            timeout = max(timeout, first)
        try:
            received.append(receiver.recv(timeout=timeout))
        except EndOfChannel:
            return received, True
        except Timeout:
            if harness.connectionless or not patient:
                return received, False
            raise AssertionError(
                f"nothing arrived for {harness.patience} s after {len(received)} messages "
                "and no end of channel"
            ) from None


def send_and_collect(
    harness: Harness, conversation: Conversation, payloads: Sequence[bytes]
) -> tuple[list[bytes], bool]:
    """Send ``payloads`` from a background thread and receive what arrives (see receive_all)."""
    closes = not harness.connectionless
    sender = Sender(
        lambda data: conversation.sender.send(data, timeout=WAIT * 3),
        payloads,
        conversation.sender.close if closes else None,
    )
    sender.start()
    try:
        received, complete = receive_all(harness, conversation.receiver, len(payloads))
        # Silence while the sender is still sending is a stall (a busy machine), not the end.
        while not complete and sender.is_alive():
            more, complete = receive_all(
                harness, conversation.receiver, len(payloads) - len(received)
            )
            received.extend(more)
        return received, complete
    finally:
        sender.finish()


def recv_exactly(harness: Harness, receiver: Channel, size: int) -> bytes:
    if not is_stream(harness):
        return receiver.recv(timeout=harness.patience)
    data = bytearray()
    while len(data) < size:
        chunk = receiver.recv(timeout=harness.patience)
        assert chunk, "a STREAM recv returned b''"
        data += chunk
    return bytes(data)
