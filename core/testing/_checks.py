"""The conformance checks: plain functions over a :class:`Harness`, usable without pytest.

The cross-process checks (F) are in :mod:`anyipc.testing._processes`.
Each check opens what it needs through the harness, asserts one property
of CONFORMANCE.md (its letter and number are in the docstring), and raises
:class:`NotApplicable` when the transport's capabilities make the property
meaningless.  The caller closes everything with ``harness.close_all()``.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from functools import partial

import anyipc
from anyipc._address import Address
from anyipc._capabilities import Boundaries, Connection, Direction
from anyipc._channel import Channel
from anyipc._errors import (
    AddressInUse,
    ChannelClosed,
    ConnectionLost,
    EndOfChannel,
    InvalidAddress,
    IPCError,
    MessageTooLarge,
    NotSupported,
    Timeout,
)
from anyipc.testing._expect import check_delivery
from anyipc.testing._harness import Harness, NotApplicable, fd_count
from anyipc.testing._traffic import (
    WAIT,
    Sender,
    fits,
    is_stream,
    receive_all,
    recv_exactly,
    send_and_collect,
)

__all__ = [
    "check_absent_operations",
    "check_address_roundtrip",
    "check_backpressure",
    "check_burst",
    "check_close_idempotent",
    "check_close_wakes_recv",
    "check_connect_refused",
    "check_declarations",
    "check_duplex",
    "check_invalid_address",
    "check_large_payloads",
    "check_listen_twice",
    "check_many_connections",
    "check_max_size",
    "check_orderly_close",
    "check_recv_timeout",
    "check_reply",
    "check_roundtrip",
    "check_sequence",
]


# -- A. Declarations -------------------------------------------------------------------
def check_declarations(harness: Harness) -> None:
    """A1: the claims are consistent and match the objects returned."""
    caps = harness.capabilities
    conversation = harness.conversation()
    for end in (conversation.sender, conversation.receiver):
        assert isinstance(end, Channel), f"{end!r} is not an anyipc.Channel"
        assert end.capabilities == caps, f"{end!r} claims {end.capabilities}, the transport {caps}"
    assert conversation.sender.can_send, "the sending end cannot send"
    assert conversation.receiver.can_recv, "the receiving end cannot receive"
    if caps.direction is Direction.SIMPLEX:
        assert not conversation.sender.can_recv, "SIMPLEX, but the sending end can also receive"
        assert not conversation.receiver.can_send, "SIMPLEX, but the receiving end can also send"
    if caps.boundaries is Boundaries.STREAM:
        assert caps.max_message_size is None, "a STREAM has no max_message_size"


def check_absent_operations(harness: Harness) -> None:
    """A2: what is not declared is absent, and says so at once with NotSupported."""
    conversation = harness.conversation()
    caps = harness.capabilities
    if caps.direction is Direction.SIMPLEX:
        _expect_not_supported(
            lambda: conversation.sender.recv(timeout=0), "recv on the sending end"
        )
        _expect_not_supported(
            lambda: conversation.receiver.send(b"x", timeout=0), "send on the receiving end"
        )
    if caps.connection is Connection.ORIENTED:
        _expect_not_supported(
            lambda: conversation.sender.send_to(b"x", "x://y", timeout=0), "send_to"
        )
        _expect_not_supported(lambda: conversation.receiver.recv_from(timeout=0), "recv_from")
    for verb in ("connect", "listen", "bind", "pair"):
        if verb in harness.verbs:
            continue
        try:
            getattr(anyipc, verb)(harness.fresh_uri())
        except NotSupported as exc:
            for supported in harness.verbs:
                assert supported in str(exc), (
                    f"NotSupported for {verb} does not name {supported}: {exc}"
                )
        else:
            raise AssertionError(f"{verb}() is not declared but did not raise NotSupported")


def _expect_not_supported(operation: Callable[[], object], what: str) -> None:
    started = time.monotonic()
    try:
        operation()
    except NotSupported:
        assert time.monotonic() - started < 1.0, f"{what} raised NotSupported, but not at once"
    else:
        raise AssertionError(f"{what} should raise NotSupported")


# -- B. Delivery -----------------------------------------------------------------------
def check_roundtrip(harness: Harness, payload: bytes) -> None:
    """B1: one message round-trips byte for byte; bytes, bytearray and memoryview all work."""
    if not fits(harness, payload):
        raise NotApplicable("payload above max_message_size")
    if not harness.capabilities.reliable:
        raise NotApplicable("the transport does not claim reliable delivery")
    conversation = harness.conversation()
    for form in (bytes(payload), bytearray(payload), memoryview(payload)):
        if not payload and is_stream(harness):
            conversation.sender.send(
                form, timeout=harness.patience
            )  # an empty stream send is a no-op
            continue
        conversation.sender.send(form, timeout=harness.patience)
        got = recv_exactly(harness, conversation.receiver, len(payload))
        assert got == payload, f"sent {len(payload)} bytes, received {len(got)} different bytes"


def check_sequence(harness: Harness, payloads: Sequence[bytes]) -> float:
    """B2–B6: what arrives is what the claims allow (equal when reliable; see _expect).

    Returns the share of the messages that arrived (duplicates counted once).
    """
    payloads = [p for p in payloads if fits(harness, p)]
    conversation = harness.conversation()
    received, complete = send_and_collect(harness, conversation, payloads)
    check_delivery(harness.capabilities, payloads, received, complete=complete)
    return _delivered_share(payloads, received)


def _delivered_share(sent: Sequence[bytes], received: Sequence[bytes]) -> float:
    """The share of ``sent`` that arrived unchanged, duplicates counted once (1.0 for none sent)."""
    if not sent:
        return 1.0
    return sum((Counter(sent) & Counter(received)).values()) / len(sent)


def check_burst(harness: Harness, count: int = 400, seed: int = 0) -> float:
    """B4/B5: a burst of distinct, numbered messages of random sizes arrives as claimed.

    Returns the share delivered.  A transport that may lose must still
    deliver ``harness.delivery_floor`` of the burst (environment variable
    ``ANYIPC_CONFORMANCE_DELIVERY_FLOOR``, default 0.1): "received ⊆ sent"
    alone would pass a transport that delivers nothing.  The floor is low
    because the burst leaves one thread faster than the receiving thread is
    scheduled, so a datagram transport delivers about what its receive
    buffer holds (UDP with Linux's default buffer: about a quarter).
    """
    generator = random.Random(seed)
    limit = harness.capabilities.max_message_size
    largest = 2048 if limit is None else min(limit, 2048)
    payloads = []
    for number in range(count):
        size = generator.randrange(8, max(9, largest + 1))
        tag = number.to_bytes(8, "big")
        payloads.append((tag + generator.randbytes(size))[: max(largest, 8)])
    share = check_sequence(harness, payloads)
    floor = harness.delivery_floor
    assert harness.capabilities.lossless or share >= floor, (
        f"only {share:.0%} of a burst of {count} messages arrived, below the floor of "
        f"{floor:.0%} (set ANYIPC_CONFORMANCE_DELIVERY_FLOOR to change it)"
    )
    return share


def check_duplex(harness: Harness, size: int = 1 << 20) -> None:
    """B7: both directions at once under heavy traffic, without deadlock or damage."""
    if harness.capabilities.direction is Direction.SIMPLEX or harness.connectionless:
        raise NotApplicable("not a duplex connection")
    if not harness.capabilities.reliable:
        raise NotApplicable("the transport does not claim reliable delivery")
    conversation = harness.conversation()
    chunk = (
        4096
        if harness.capabilities.max_message_size is None
        else min(4096, harness.capabilities.max_message_size)
    )
    data = random.Random(1).randbytes(size)
    pieces = [data[i : i + chunk] for i in range(0, size, chunk)]
    results: dict[str, bytes] = {}

    def pump(name: str, send: Channel, recv: Channel) -> None:
        sender = Sender(lambda p: send.send(p, timeout=harness.patience * 3), pieces, None)
        sender.start()
        got = bytearray()
        while len(got) < size:
            got += recv.recv(timeout=harness.patience)
        sender.finish()
        results[name] = bytes(got)

    errors: list[BaseException] = []

    def run(name: str, send: Channel, recv: Channel) -> None:
        try:
            pump(name, send, recv)
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=run, args=("forward", conversation.sender, conversation.receiver)),
        threading.Thread(target=run, args=("backward", conversation.receiver, conversation.sender)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(harness.patience * 6)
    assert not any(thread.is_alive() for thread in threads), "duplex traffic deadlocked"
    if errors:
        raise errors[0]
    assert results["forward"] == data and results["backward"] == data, "duplex data damaged"


# -- C. Connections ----------------------------------------------------------------------
def check_connect_refused(harness: Harness) -> None:
    """C1: connecting with nobody there is a typed error and leaks nothing."""
    if "connect" not in harness.verbs or not ({"listen", "bind"} & set(harness.verbs)):
        raise NotApplicable("no connect to a named endpoint")
    address, endpoint = harness.passive_endpoint()
    endpoint.close()
    before = fd_count()
    try:
        channel = anyipc.connect(address)
    except IPCError:
        pass
    else:
        channel.close()
        if not harness.connectionless:
            raise AssertionError(f"connect to {address} succeeded with nobody listening")
    assert fd_count() == before, "a failed connect leaked a descriptor"


def check_listen_twice(harness: Harness) -> None:
    """C2: a second listener (or bind) on a live address is AddressInUse, never a theft."""
    address, _endpoint = harness.passive_endpoint()
    verb = "listen" if "listen" in harness.verbs else "bind"
    try:
        second = getattr(anyipc, verb)(address)
    except AddressInUse:
        return
    second.close()
    raise AssertionError(f"a second {verb} on live {address} did not raise AddressInUse")


def check_many_connections(harness: Harness, count: int = 5) -> None:
    """C3: N connects give N distinct accepted channels, each talking to its own client."""
    if "listen" not in harness.verbs:
        raise NotApplicable("no listen")
    listener = harness.listen(harness.fresh_uri())
    clients = [harness.connect(listener.address) for _ in range(count)]
    servers = []
    for _ in range(count):
        server = listener.accept(timeout=harness.patience)
        harness.track(server)
        servers.append(server)
    assert len({id(s) for s in servers}) == count
    if harness.capabilities.direction is Direction.SIMPLEX:
        return
    for number, server in enumerate(servers):
        server.send(f"#{number}".encode(), timeout=harness.patience)
    replies = sorted(recv_exactly(harness, client, 2).decode() for client in clients)
    assert replies == sorted(f"#{n}" for n in range(count)), f"connections crossed: {replies}"


def check_reply(harness: Harness) -> None:
    """C4: recv_from reports the sender, and send_to that address reaches it.

    On a transport that may lose, the exchange is retried up to 20 times.
    """
    if not harness.connectionless:
        raise NotApplicable("connection-oriented")
    if harness.capabilities.direction is Direction.SIMPLEX:
        raise NotApplicable("simplex: no replies")
    caps = harness.capabilities
    wait = harness.patience if caps.lossless else harness.quiet
    conversation = harness.conversation()
    for _ in range(20):
        conversation.sender.send(b"ping", timeout=harness.patience)
        try:
            data, source = conversation.receiver.recv_from(timeout=wait)
            assert data == b"ping" or not caps.intact, f"sent b'ping', received {data!r}"
            assert source, "recv_from reported no sender"
            conversation.receiver.send_to(b"pong", source, timeout=harness.patience)
            reply = conversation.sender.recv(timeout=wait)
        except Timeout:
            if caps.lossless:
                raise
            continue
        assert reply == b"pong" or not caps.intact, f"replied b'pong', received {reply!r}"
        return
    raise AssertionError("no ping/pong exchange succeeded in 20 attempts")


# -- D. Ends, closes, timeouts -------------------------------------------------------------
def check_close_idempotent(harness: Harness) -> None:
    """D1: close() twice is fine; every use after it raises ChannelClosed."""
    conversation = harness.conversation()
    for end in (conversation.sender, conversation.receiver):
        end.close()
        end.close()
        assert end.closed
        for operation in (partial(end.recv, timeout=0), partial(end.send, b"x", timeout=0)):
            try:
                operation()
            except ChannelClosed as exc:
                assert not isinstance(exc, EndOfChannel | ConnectionLost), (
                    f"{type(exc).__name__} after our own close"
                )
            else:
                raise AssertionError("an operation after close() did not raise ChannelClosed")


def check_orderly_close(harness: Harness) -> None:
    """D2: after the peer's orderly close, all data first, then EndOfChannel (every time)."""
    if harness.connectionless or not harness.capabilities.reports_end:
        raise NotApplicable("the receiver is not told of the sender's end (reports_end is false)")
    conversation = harness.conversation()
    payloads = [b"first", b"second", b"third"]
    for payload in payloads:
        conversation.sender.send(payload, timeout=harness.patience)
    conversation.sender.close()
    received, complete = receive_all(harness, conversation.receiver, None)
    assert complete
    check_delivery(harness.capabilities, payloads, received, complete=True)
    for _ in range(2):
        try:
            conversation.receiver.recv(timeout=harness.patience)
        except EndOfChannel:
            continue
        raise AssertionError("recv after the end did not raise EndOfChannel again")


def check_recv_timeout(harness: Harness, timeout: float, message: bytes = b"after-timeout") -> None:
    """D4: recv(timeout=t) on an idle channel waits at least t, then the channel still works."""
    conversation = harness.conversation()
    started = time.monotonic()
    try:
        got = conversation.receiver.recv(timeout=timeout)
    except Timeout:
        pass
    else:
        raise AssertionError(f"recv on an idle channel returned {got!r}")
    waited = time.monotonic() - started
    assert waited >= timeout, f"recv(timeout={timeout}) gave up after only {waited:.4f} s"
    if not harness.capabilities.reliable:
        return
    conversation.sender.send(message, timeout=harness.patience)
    assert recv_exactly(harness, conversation.receiver, len(message)) == message


def check_close_wakes_recv(harness: Harness) -> None:
    """D5: a recv blocked in one thread is woken by close() from another: ChannelClosed."""
    conversation = harness.conversation()
    outcome: list[BaseException | bytes] = []

    def blocked() -> None:
        try:
            outcome.append(conversation.receiver.recv(timeout=harness.patience * 2))
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=blocked)
    thread.start()
    time.sleep(0.1)
    started = time.monotonic()
    conversation.receiver.close()
    thread.join(harness.patience)
    assert not thread.is_alive(), "close() did not wake the blocked recv"
    assert time.monotonic() - started < 3.0, "close() took too long to wake the blocked recv"
    assert isinstance(outcome[0], ChannelClosed) and not isinstance(outcome[0], EndOfChannel), (
        f"the blocked recv ended with {outcome[0]!r}, not ChannelClosed"
    )


# -- E. Limits ----------------------------------------------------------------------------
def check_max_size(harness: Harness, exact: bytes | None = None) -> None:
    """E1/E2: exactly max_message_size round-trips; one byte more is MessageTooLarge, harmlessly.

    ``exact`` is a valid message of exactly the maximum size (random bytes
    when not given, for transports that carry any bytes).
    """
    limit = harness.capabilities.max_message_size
    if limit is None:
        raise NotApplicable("no max_message_size")
    conversation = harness.conversation()
    too_big = b"\x01" * (limit + 1)
    try:
        conversation.sender.send(too_big, timeout=harness.patience)
    except MessageTooLarge:
        pass
    else:
        raise AssertionError(f"a message of max_message_size+1 = {limit + 1} bytes was accepted")
    if exact is None:
        exact = bytes(random.Random(2).randbytes(limit))
    assert len(exact) == limit
    received, _ = send_and_collect(harness, conversation, [exact])
    if harness.capabilities.reliable:
        assert received == [exact], (
            "the maximum-size message did not arrive intact (or the oversize one did)"
        )


def check_large_payloads(harness: Harness) -> None:
    """E3: 1 MiB (and 16 MiB where unlimited) round-trips exactly."""
    if not harness.capabilities.reliable:
        raise NotApplicable("the transport does not claim reliable delivery")
    limit = harness.capabilities.max_message_size
    sizes = [s for s in (1 << 20, 16 << 20) if limit is None or s <= limit]
    if not sizes:
        raise NotApplicable(f"max_message_size {limit} is below 1 MiB")
    for size in sizes:
        conversation = harness.conversation()
        payload = random.Random(size).randbytes(size)
        received, _ = send_and_collect(harness, conversation, [payload])
        got = b"".join(received)
        assert got == payload, f"a {size}-byte payload arrived as {len(got)} different bytes"


def check_backpressure(harness: Harness) -> None:
    """E4: with nobody reading, send blocks then times out, and nothing is lost."""
    if not harness.capabilities.lossless or harness.connectionless:
        raise NotApplicable("only lossless connections promise back-pressure")
    conversation = harness.conversation()
    limit = harness.capabilities.max_message_size
    chunk = 65536 if limit is None else min(limit, 65536)
    accepted: list[bytes] = []
    partial = b""
    committed = False
    for number in range(100_000):
        payload = number.to_bytes(8, "big") * max(1, chunk // 8)
        try:
            conversation.sender.send(payload, timeout=0.05)
        except Timeout as exc:
            if is_stream(harness):
                partial = payload[: exc.sent]
            elif exc.sent:  # committed: it arrives whole once the next send completes
                accepted.append(payload)
                committed = True
            break
        accepted.append(payload)
    else:
        raise AssertionError("100000 sends never blocked: the buffer looks unbounded")
    final = [b"final"] if committed else []
    accepted.extend(final)
    sender = Sender(
        lambda data: conversation.sender.send(data, timeout=WAIT * 3),
        final,
        conversation.sender.close,
    )
    sender.start()
    received, complete = receive_all(harness, conversation.receiver, len(accepted))
    sender.finish()
    assert complete
    if is_stream(harness):
        assert b"".join(received) == b"".join(accepted) + partial, (
            "bytes lost or added under back-pressure"
        )
    else:
        check_delivery(harness.capabilities, accepted, received, complete=True)


# -- G. Addresses ------------------------------------------------------------------------------
def check_address_roundtrip(harness: Harness, uri: str) -> None:
    """G1: parse(str(a)) == a for a valid address."""
    address = Address.parse(uri)
    again = Address.parse(str(address))
    assert again == address, f"{uri} -> {address} -> {str(address)} -> {again}"


def check_invalid_address(harness: Harness, uri: str) -> None:
    """G1: an invalid address raises InvalidAddress without touching the OS."""
    before = fd_count()
    try:
        Address.parse(uri)
    except InvalidAddress:
        pass
    else:
        raise AssertionError(f"{uri!r} was accepted")
    for verb in harness.verbs:
        try:
            getattr(anyipc, verb)(uri)
        except InvalidAddress:
            continue
        raise AssertionError(f"{verb}({uri!r}) did not raise InvalidAddress")
    assert fd_count() == before, "an invalid address opened a descriptor"
