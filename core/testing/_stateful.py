"""A hypothesis state machine that drives one conversation against a model of its claims.

The model is built from the capabilities: for a reliable MESSAGE channel a
queue per direction (each receive must equal the oldest unreceived send),
for a STREAM a byte buffer (what arrives must be a prefix of it, read
whole so that no state depends on how the kernel chunks it), and
for anything less than reliable the list of everything sent, against which
what arrives is checked as the claims allow (nothing fabricated, no
duplicates, order kept...).
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from anyipc._capabilities import Boundaries
from anyipc._errors import EndOfChannel, Timeout
from anyipc.testing._expect import check_delivery
from anyipc.testing._harness import Harness

__all__ = ["channel_machine", "payloads_for"]

BUDGET = 64 * 1024  #: bytes in flight at most, so that no send ever blocks on a full buffer
MESSAGES_IN_FLIGHT = 8  #: messages in flight at most (message queues hold as few as 10)


def payloads_for(harness: Harness, max_size: int = 4096) -> st.SearchStrategy[bytes]:
    """Valid messages for ``harness``'s transport: its own strategy, or bytes within the limit."""
    if harness.message_strategy is not None:
        strategy: st.SearchStrategy[bytes] = harness.message_strategy(harness.probe)
        return strategy
    limit = harness.capabilities.max_message_size
    top = max_size if limit is None else min(limit, max_size)
    minimum = 1 if harness.capabilities.boundaries is Boundaries.STREAM else 0
    return st.binary(min_size=minimum, max_size=max(top, minimum))


def channel_machine(harness: Harness) -> type[RuleBasedStateMachine]:
    """A state machine class bound to ``harness`` (run it with ``run_state_machine_as_test``)."""
    caps = harness.capabilities
    stream = caps.boundaries is Boundaries.STREAM
    payloads = payloads_for(harness)
    two_way = harness.duplex and not harness.connectionless

    class ChannelMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.conversation = harness.conversation()
            self.pending: dict[str, list[bytes]] = {"forward": [], "backward": []}
            self.sent: dict[str, list[bytes]] = {"forward": [], "backward": []}
            self.received: dict[str, list[bytes]] = {"forward": [], "backward": []}
            self.sender_closed = False

        def ends(self, direction: str) -> tuple[Any, Any]:
            conversation = self.conversation
            if direction == "forward":
                return conversation.sender, conversation.receiver
            return conversation.receiver, conversation.sender

        def in_flight(self) -> int:
            return sum(len(p) for queue in self.pending.values() for p in queue)

        def room(self) -> bool:
            """True when one more send cannot block on a full buffer."""
            messages = sum(len(queue) for queue in self.pending.values())
            return self.in_flight() < BUDGET and messages < MESSAGES_IN_FLIGHT

        def do_send(self, direction: str, payload: bytes) -> None:
            sender, _ = self.ends(direction)
            sender.send(payload, timeout=harness.patience)
            if stream and not payload:
                return
            self.pending[direction].append(payload)
            self.sent[direction].append(payload)

        def do_recv(self, direction: str) -> None:
            _, receiver = self.ends(direction)
            pending = self.pending[direction]
            if caps.reliable and stream:
                # How the bytes are chunked depends on timing, so the rule reads
                # all that is pending: the next state never depends on timing.
                expected = b"".join(pending)
                got = b""
                while len(got) < len(expected):
                    chunk = receiver.recv(timeout=harness.patience)
                    assert chunk, "a STREAM recv returned b''"
                    got += chunk
                    assert expected.startswith(got), "stream bytes out of order or damaged"
                pending.clear()
                return
            if caps.reliable:
                got = receiver.recv(timeout=harness.patience)
                assert got == pending.pop(0), "a message other than the oldest unreceived arrived"
                return
            try:
                got = receiver.recv(timeout=harness.quiet)
            except Timeout:
                pending.clear()  # whatever is still in flight may have been lost
                return
            except EndOfChannel:
                assert self.sender_closed, "EndOfChannel before the peer closed"
                pending.clear()  # the rest was lost before the end
                return
            self.received[direction].append(got)
            if pending:
                pending.pop(0)
            check_delivery(caps, self.sent[direction], self.received[direction], complete=False)

        @precondition(lambda self: not self.sender_closed and self.room())
        @rule(payload=payloads)
        def send_forward(self, payload: bytes) -> None:
            self.do_send("forward", payload)

        @precondition(lambda self: two_way and not self.sender_closed and self.room())
        @rule(payload=payloads)
        def send_backward(self, payload: bytes) -> None:
            self.do_send("backward", payload)

        @precondition(lambda self: bool(self.pending["forward"]))
        @rule()
        def recv_forward(self) -> None:
            self.do_recv("forward")

        @precondition(
            lambda self: two_way and bool(self.pending["backward"]) and not self.sender_closed
        )
        @rule()
        def recv_backward(self) -> None:
            self.do_recv("backward")

        @precondition(
            lambda self: not self.pending["forward"] and not self.sender_closed and caps.reliable
        )
        @rule()
        def recv_times_out_when_idle(self) -> None:
            _, receiver = self.ends("forward")
            try:
                got = receiver.recv(timeout=0.01)
            except Timeout:
                return
            raise AssertionError(f"recv on an idle channel returned {got!r}")

        # Closing with unread data is a reset on TCP (ConnectionLost), so the
        # sender first reads what was sent to it: the orderly close is tested.
        @precondition(
            lambda self: (
                not self.sender_closed
                and not harness.connectionless
                and caps.reports_end
                and not self.pending["backward"]
            )
        )
        @rule()
        def close_sender(self) -> None:
            self.conversation.sender.close()
            self.sender_closed = True

        @precondition(lambda self: self.sender_closed)
        @rule()
        def drain_to_end(self) -> None:
            _, receiver = self.ends("forward")
            arrived = []
            while True:
                try:
                    arrived.append(receiver.recv(timeout=harness.patience))
                except EndOfChannel:
                    break
            if caps.reliable:
                assert b"".join(arrived) == b"".join(self.pending["forward"]), (
                    "data lost before the end"
                )
            else:
                self.received["forward"].extend(arrived)
                check_delivery(caps, self.sent["forward"], self.received["forward"], complete=False)
            self.pending["forward"].clear()

        @invariant()
        def budget_respected(self) -> None:
            assert self.in_flight() <= BUDGET + 4096

        def teardown(self) -> None:
            harness.close_all()

    ChannelMachine.__name__ = f"ChannelMachine[{harness.uri}]"
    return ChannelMachine
