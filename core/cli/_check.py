"""``anyipc check``: a round trip with a peer in another process, over every available transport.

For each installed transport (and each layer that can sit on it, such as
``framed+``) whose scope is HOST or NETWORK and which has ``connect`` plus
``listen`` or ``bind``: this process listens (or binds) on the transport's
test address, starts ``python -m anyipc.cli._peer`` in a fresh interpreter,
and times ``--rounds`` round trips after one warm-up round; the table shows
the median.  A SIMPLEX transport is checked one way (the peer sends, this
process verifies).  Everything is bounded by ``--timeout`` per transport and
the peer is killed when anything fails, so the command never hangs.  The
other transports are listed as skipped, with the reason, as are layers
that cannot work without options of their own (``tls+`` needs
certificates: try ``anyipc conformance 'tls+tcp?cert=...'`` instead).  Exit
status 1 when any checked transport failed, else 0.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any

import attrs

import anyipc
from anyipc._address import Address
from anyipc._deadline import Deadline
from anyipc._records import LayerSpec, Role, TransportSpec
from anyipc._registry import registry
from anyipc.cli._output import PROG, count, format_table, seconds

__all__ = [
    "HELLO",
    "CheckFailed",
    "Outcome",
    "add_parsers",
    "check_all",
    "payload",
    "round_trip",
    "run",
]

#: what the peer of a connectionless transport sends first, so that this side learns its address
HELLO = b"anyipc check: hello"


def payload(index: int) -> bytes:
    """The ``index``-th test message of a check."""
    return b"anyipc check %d" % index


class CheckFailed(Exception):
    """A check went wrong in a way that is not an anyipc error (wrong data, peer failed)."""


@attrs.frozen
class Outcome:
    """One row of the report.

    ``result`` is ``ok``, ``ok (one way)``, ``FAIL: ...`` or ``skipped: ...``.
    """

    transport: str
    result: str
    latency_us: float | None = None  #: the median round trip, for duplex transports that passed

    @property
    def failed(self) -> bool:
        """True when the transport was checked and failed."""
        return self.result.startswith("FAIL")


def add_parsers(commands: Any) -> None:
    """Add the ``check`` sub-command to ``commands``."""
    parser = commands.add_parser(
        "check",
        help="round-trip a message with a peer process over every available transport",
        description="For each available transport that reaches other processes, a round trip "
        "with a peer in a fresh interpreter, and the median latency.",
    )
    parser.add_argument(
        "--timeout", type=seconds, default=10.0, metavar="SECONDS", help="per transport (10)"
    )
    parser.add_argument("--rounds", type=count, default=20, metavar="N", help="timed rounds (20)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Check every transport, print the table; exit status 1 when any failed."""
    outcomes = list(check_all(args.timeout, args.rounds))
    rows = [
        [outcome.transport, outcome.result, _microseconds(outcome.latency_us)]
        for outcome in outcomes
    ]
    print(format_table(("transport", "result", f"round trip (median of {args.rounds})"), rows))
    if registry().problems:
        print(
            f"{PROG}: note: {len(registry().problems)} plugin problem(s); see '{PROG} transports'",
            file=sys.stderr,
        )
    return 1 if any(outcome.failed for outcome in outcomes) else 0


def _microseconds(latency: float | None) -> str:
    return "-" if latency is None else f"{latency:.0f} us"


def check_all(timeout: float, rounds: int) -> Iterator[Outcome]:
    """One outcome per installed transport, then one per layer that can sit on it."""
    reg = registry()
    for scheme, provided in reg.transports().items():
        spec = provided.spec
        assert isinstance(spec, TransportSpec)
        try:
            reason = _skip_reason(spec)
        except Exception as exc:  # a plugin that fails here fails the check, not the command
            yield Outcome(scheme, f"FAIL: {_describe(exc)}")
            continue
        if reason:
            yield Outcome(scheme, f"skipped: {reason}")
            continue
        yield _checked(scheme, spec.test_address(), timeout, rounds)
        for layer, provided_layer in reg.layers().items():
            uri = f"{layer}+{spec.test_address()}"
            try:
                address = Address.parse(uri)
            except anyipc.InvalidAddress:  # this layer cannot sit on this transport
                continue
            assert isinstance(provided_layer.spec, LayerSpec)
            needs = _needs_options(provided_layer.spec, address)
            if needs:
                yield Outcome(f"{layer}+{scheme}", f"skipped: needs options: {needs}")
                continue
            yield _checked(f"{layer}+{scheme}", uri, timeout, rounds)


def _needs_options(layer: LayerSpec, address: Address) -> str | None:
    """Why ``layer`` cannot work on ``address`` without options of its own (TLS: certificates)."""
    if layer.check_role is None:
        return None
    for role in (Role.SERVER, Role.CLIENT):
        problem = layer.check_role(address, role)
        if problem:
            return problem
    return None


def _skip_reason(spec: TransportSpec) -> str | None:
    unavailable = spec.available()
    if unavailable:
        return f"unavailable: {unavailable}"
    address = Address.parse(spec.test_address())
    if registry().capabilities(address).scope is anyipc.Scope.PROCESS:
        return "in-process only (scope process)"
    verbs = spec.verbs_at(address)
    if "connect" not in verbs or not {"listen", "bind"} & set(verbs):
        return f"needs connect and listen or bind (has {', '.join(verbs)})"
    if spec.message_strategy is not None:
        return f"carries only special messages; try '{PROG} conformance {spec.scheme}'"
    return None


def _checked(name: str, uri: str, timeout: float, rounds: int) -> Outcome:
    try:
        latency = round_trip(uri, timeout, rounds)
    except Exception as exc:  # every failure of one transport is reported; the others still run
        return Outcome(name, f"FAIL: {_describe(exc)}")
    return Outcome(name, "ok" if latency is not None else "ok (one way)", latency)


def _describe(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, CheckFailed) else f"{type(exc).__name__}: {exc}"


def round_trip(uri: str, timeout: float, rounds: int) -> float | None:
    """Check ``uri`` against a peer process; the median round trip in µs (None: one way).

    Raises what the transport raised, :class:`anyipc.Timeout` when the
    ``timeout`` (seconds, for the whole check) passes, or
    :class:`CheckFailed` for wrong data or a failed peer.
    """
    deadline = Deadline(timeout)
    total = rounds + 1  # the first round warms up and is not timed
    with contextlib.ExitStack() as stack:
        address = Address.parse(uri)
        if "listen" in registry().transport(address.scheme).verbs_at(address):
            listener = stack.enter_context(anyipc.listen(uri))
            peer = stack.enter_context(_Peer(listener.address, total, timeout))
            channel = stack.enter_context(listener.accept(timeout=deadline.remaining()))
        else:
            channel = stack.enter_context(anyipc.bind(uri))
            if channel.address is None:
                raise CheckFailed(f"the channel bound to {uri} reports no address")
            peer = stack.enter_context(_Peer(channel.address, total, timeout))
        latency = _exchange(channel, total, deadline)
        channel.close()
        peer.finish(deadline)
        return latency


class _Peer:
    """The peer process of one check: started on creation, killed on exit if still running."""

    def __init__(self, address: str, total: int, timeout: float) -> None:
        command = [
            sys.executable,
            "-P",
            "-m",
            "anyipc.cli._peer",
            address,
            str(total),
            str(timeout),
        ]
        self._process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )

    def finish(self, deadline: Deadline) -> None:
        """Wait for the peer to exit; :class:`CheckFailed` unless it exits 0 in time."""
        try:
            _, said = self._process.communicate(timeout=deadline.remaining())
        except subprocess.TimeoutExpired:
            raise CheckFailed("the peer did not finish in time") from None
        if self._process.returncode:
            raise CheckFailed(f"the peer failed: {_text(said)}")

    def __enter__(self) -> _Peer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._process.returncode is not None:
            return
        self._process.kill()
        _, said = self._process.communicate(timeout=5)
        if isinstance(exc, Exception) and said.strip():
            raise CheckFailed(f"{_describe(exc)}; the peer said: {_text(said)}") from exc


def _text(said: bytes) -> str:
    return " ".join(said.decode(errors="replace").split()) or "(nothing)"


def _exchange(channel: anyipc.Channel, total: int, deadline: Deadline) -> float | None:
    """Play this side of the check on ``channel``; the median round trip in µs, or None."""
    capabilities = channel.capabilities
    stream = capabilities.boundaries is anyipc.Boundaries.STREAM
    if capabilities.direction is anyipc.Direction.SIMPLEX:
        expected = [payload(index) for index in range(total)]
        if stream:
            got = [b"".join(_until_end(channel, deadline))]
            expected = [b"".join(expected)]
        else:
            got = [channel.recv(timeout=deadline.remaining()) for _ in expected]
        if got != expected:
            raise CheckFailed(f"sent {expected!r}, received {got!r}")
        return None
    send, recv = _directed(channel, deadline)
    times = []
    for index in range(total):
        sent = payload(index)
        start = time.perf_counter_ns()
        send(sent)
        echoed = recv()
        while stream and len(echoed) < len(sent):
            echoed += recv()
        times.append(time.perf_counter_ns() - start)
        if echoed != sent:
            raise CheckFailed(f"sent {sent!r}, got back {echoed!r}")
    return statistics.median(times[1:]) / 1000


def _directed(
    channel: anyipc.Channel, deadline: Deadline
) -> tuple[Callable[[bytes], None], Callable[[], bytes]]:
    """``send`` and ``recv`` towards the peer (a connectionless peer announces itself first)."""
    if channel.capabilities.connection is anyipc.Connection.ORIENTED:
        return (
            lambda data: channel.send(data, timeout=deadline.remaining()),
            lambda: channel.recv(timeout=deadline.remaining()),
        )
    hello, peer = channel.recv_from(timeout=deadline.remaining())
    if hello != HELLO:
        raise CheckFailed(f"expected the peer's hello, received {hello!r}")
    return (
        lambda data: channel.send_to(data, peer, timeout=deadline.remaining()),
        lambda: channel.recv_from(timeout=deadline.remaining())[0],
    )


def _until_end(channel: anyipc.Channel, deadline: Deadline) -> Iterator[bytes]:
    while True:
        try:
            yield channel.recv(timeout=deadline.remaining())
        except anyipc.EndOfChannel:
            return
