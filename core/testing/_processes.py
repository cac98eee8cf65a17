"""The cross-process checks (F): the peer in a fresh interpreter, named or handed an end.

Plain functions over a :class:`Harness`, like :mod:`anyipc.testing._checks`.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial

import attrs

import anyipc
from anyipc._capabilities import Direction
from anyipc._channel import Channel
from anyipc._errors import ConnectionLost, EndOfChannel, Timeout
from anyipc.testing._expect import check_delivery
from anyipc.testing._harness import Harness, NotApplicable
from anyipc.testing._peer import HELLO, PeerProcess
from anyipc.testing._traffic import Sender, fits, is_stream, receive_all

__all__ = ["check_peer_death", "check_peer_echoes", "check_peer_sends"]

DEATH_BOUND = 2.0  #: how soon a dead peer must be reported


@attrs.define
class _Remote:
    """The child's side of a cross-process conversation, and the parent's."""

    peer: PeerProcess
    address: str  #: what the child connects to
    endpoint: Channel | anyipc.Listener  #: the parent's listener, bound channel or pair end

    def local(self, harness: Harness) -> Channel:
        """The parent's channel (accepting the child's connection if need be)."""
        if isinstance(self.endpoint, anyipc.Listener):
            channel = self.endpoint.accept(timeout=harness.patience)
            harness.track(channel)
            return channel
        return self.endpoint


@contextmanager
def _remote(harness: Harness, peer: PeerProcess | None) -> Iterator[_Remote]:
    """A place for a child to connect: a named endpoint, or an inherited end handed over.

    F2: an inherited end is passed to a fresh child (``pass_fds``), which
    opens it from its URI; the parent closes its own copy right away.  An end
    with no ``fds`` (``tls+socketpair://``: its handshake runs in this process)
    cannot be handed over: NotApplicable.
    """
    if not harness.inherited:
        assert peer is not None, "a named transport needs the class's peer process"
        address, endpoint = harness.passive_endpoint()
        yield _Remote(peer, address, endpoint)
        return
    first, second = anyipc.pair(harness.fresh_uri())
    harness.track(second)
    fds = getattr(first, "fds", None)
    handed = first.address
    try:
        if not fds:
            raise NotApplicable(f"{first!r} has no descriptors (fds) to hand to a child process")
        assert handed, f"{first!r} is inherited but names no address to open it from"
        child = PeerProcess(pass_fds=fds)
        child.start()
    finally:
        first.close()  # the parent's copy goes right after the hand-off
    try:
        yield _Remote(child, str(handed), second)
    finally:
        child.close()


def check_peer_sends(harness: Harness, peer: PeerProcess | None, payloads: Sequence[bytes]) -> None:
    """F1/F2: B2–B6 with the sender in another process (named, or handed an inherited end)."""
    payloads = [p for p in payloads if fits(harness, p)]
    with _remote(harness, peer) as remote:
        remote.peer.request("send", remote.address, payloads=[p.hex() for p in payloads])
        receiver = remote.local(harness)
        # The child's cold start (a fresh interpreter importing anyipc) outlasts the quiet
        # that ends a lossy transport's receiving: its first message gets the patience.
        first = harness.patience if payloads else None
        received, complete = receive_all(harness, receiver, len(payloads), first=first)
        answer = remote.peer.result()
    assert answer.get("ok"), f"the peer process failed: {answer}"
    check_delivery(harness.capabilities, payloads, received, complete=complete)


def check_peer_echoes(
    harness: Harness, peer: PeerProcess | None, payloads: Sequence[bytes]
) -> None:
    """F1/F2: the peer in another process receives and answers (both directions)."""
    if harness.capabilities.direction is Direction.SIMPLEX:
        raise NotApplicable("simplex: no answers")
    payloads = [p for p in payloads if fits(harness, p) and (p or not is_stream(harness))]
    with _remote(harness, peer) as remote:
        remote.peer.request(
            "echo",
            remote.address,
            count=None if not harness.connectionless else len(payloads),
            timeout=harness.quiet if not harness.capabilities.lossless else harness.patience,
        )
        channel = remote.local(harness)
        received, complete = _exchange(harness, channel, payloads)
        answer = remote.peer.result()
    assert answer.get("ok"), f"the peer process failed: {answer}"
    check_delivery(harness.capabilities, payloads, received, complete=complete)


def _exchange(
    harness: Harness, channel: Channel, payloads: Sequence[bytes]
) -> tuple[list[bytes], bool]:
    """Send ``payloads`` to an echoing child and collect what comes back."""
    send: Callable[[bytes], None]
    if harness.connectionless:
        hello, child = channel.recv_from(timeout=harness.patience)
        assert hello == HELLO or not harness.capabilities.intact
        send = partial(_send_to, channel, address=child, timeout=harness.patience)
    else:
        send = partial(_send, channel, timeout=harness.patience)
    sender = Sender(send, payloads, None)
    sender.start()
    received: list[bytes] = []
    if is_stream(harness):
        total = sum(map(len, payloads))
        while sum(map(len, received)) < total:
            received.append(channel.recv(timeout=harness.patience))
        complete = True
    else:
        received, complete = receive_all(harness, channel, len(payloads))
    sender.finish()
    if not harness.connectionless:
        channel.close()
    return received, complete


def _send(channel: Channel, data: bytes, *, timeout: float) -> None:
    channel.send(data, timeout=timeout)


def _send_to(channel: Channel, data: bytes, *, address: str, timeout: float) -> None:
    channel.send_to(data, address, timeout=timeout)


def check_peer_death(harness: Harness, seed: int = 0) -> None:
    """D3: the peer is killed while sending: end or loss reported in time, no partial message.

    The peer is a process of its own, started and reaped here.  Where the
    claims say the end is not reported (``reports_end`` false), the receiver
    must still never hang nor see a partial message.
    """
    if harness.connectionless:
        raise NotApplicable("connectionless: there is no connection to lose")
    if not harness.cross_process:
        raise NotApplicable("the peer cannot live in another process")
    own = None if harness.inherited else PeerProcess()
    try:
        with _remote(harness, own) as remote:
            _peer_dies(harness, remote, seed)
    finally:
        if own is not None:
            own.close()


def _peer_dies(harness: Harness, remote: _Remote, seed: int) -> None:
    generator = random.Random(seed)
    limit = harness.capabilities.max_message_size
    size = 1 << 20 if limit is None else min(limit, 1 << 20)
    count = 64
    payloads = [bytes([n % 251]) * size for n in range(count)]
    delay = generator.uniform(0.05, 0.3)
    remote.peer.request(
        "send",
        remote.address,
        generate={"count": count, "size": size},
        end="die_during",
        delay=delay,
    )
    receiver = remote.local(harness)
    received: list[bytes] = []
    try:
        received.append(receiver.recv(timeout=harness.patience))
        while True:
            received.append(receiver.recv(timeout=DEATH_BOUND))
    except (EndOfChannel, ConnectionLost):
        pass
    except Timeout:
        # Without reports_end, silence is all a receiver can see: never a hang.
        if harness.capabilities.reports_end:
            raise AssertionError(
                f"the peer's death was not reported within {DEATH_BOUND} s"
            ) from None
    assert remote.peer.result(timeout=harness.patience).get("died"), "the peer was expected to die"
    check_delivery(harness.capabilities, payloads, received, complete=False)
