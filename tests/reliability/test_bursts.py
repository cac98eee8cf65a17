"""Backpressure, nothing lost: a burst through a slow reader on every lossless transport.

For each transport whose capabilities say lossless (and that reaches another
process), and ``framed+`` over each stream transport, ``tls+tcp`` and
``signal://`` in ``rt`` mode: a sender process sends :data:`MESSAGES`
records (sequence number and CRC32 in each, random sizes up to 64 KiB or the
transport's largest message) as fast as the transport takes them, to a
reader process that sleeps 1 ms every 100 records (``_burst_peers.py``).
The reader must get every record once, in order and intact: 0 lost, 0
duplicated, 0 reordered, 0 corrupted.

Memory stays bounded: the peak resident set of each process during the
burst grows by less than twice the transport's buffer in that process (the
rings a shared-memory connection maps, two of ``size`` bytes; otherwise the
largest message) plus :data:`ALLOWANCE_KIB`.  A burst of 100,000 records
carries 400 MiB (queues, at most 8 KiB a message) to 3 GiB: neither end may
keep what it sends or receives.

Figures (``figure(fast, long)``): the long profile sends the issue's 100,000
records per transport (3 to 15 s each on two cores, some 2 minutes in all).
CI sends 2,000 (about a second per transport, mostly starting the two
processes), which keeps the 22 transports within its budget.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import anyipc
from anyipc.testing import Harness

from ._load_processes import Children, report, start
from .conftest import figure

MESSAGES = figure(2_000, 100_000)
SEED = 20240607
PATIENCE = figure(60.0, 600.0)  #: seconds a whole burst may take
ALLOWANCE_KIB = 16 * 1024  #: the interpreter's own growth: allocator pools, message objects
LARGEST_KIB = 64


def _stacks() -> list[str]:
    """Every lossless transport that reaches another process, and its framed+ and tls+ forms."""
    stacks = []
    for scheme, info in sorted(anyipc.transports().items()):
        claims = info.capabilities
        if claims.scope is anyipc.Scope.PROCESS:
            continue
        if claims.lossless:
            stacks.append(scheme)
            if claims.boundaries is anyipc.Boundaries.STREAM:
                stacks.append(f"framed+{scheme}")
        if scheme == "tcp":
            stacks += ["tls+tcp", "framed+tls+tcp"]
        if scheme == "signal":
            stacks.append("signal?mode=rt")  # real-time signals queue: lossless
    return stacks


@pytest.fixture
def children() -> Iterator[Children]:
    started = Children()
    yield started
    started.reap()


@pytest.fixture(scope="module")
def tls_query(tmp_path_factory: pytest.TempPathFactory) -> str:
    from ..transports.conftest import TLSFiles

    files = TLSFiles(tmp_path_factory.mktemp("tls"))
    return f"cert={files.server}&ca={files.ca}"


@pytest.fixture(params=_stacks())
def harness(request: pytest.FixtureRequest) -> Harness:
    """The transport under test, opened by bare scheme (a fresh address each time)."""
    stack: str = request.param
    if "tls+" in stack:
        stack += "?" + request.getfixturevalue("tls_query")
    opened = Harness(stack)
    unavailable = opened.transport.available()
    if unavailable:
        pytest.skip(f"{stack}: {unavailable}")
    assert opened.capabilities.lossless, f"{stack} does not claim to be lossless"
    return opened


def _buffer_kib(harness: Harness) -> int:
    """What one connection keeps in each process: its mapped rings, or the largest message."""
    for option in harness.transport.options:
        if option.name == "size":  # the shared-memory rings: one of `size` bytes per direction
            size = harness.probe.get(option)
            assert isinstance(size, int)
            return 2 * size // 1024
    return LARGEST_KIB


def _run_burst(harness: Harness, children: Children) -> tuple[dict[str, Any], dict[str, Any]]:
    """The sender's and the reader's reports."""
    uri = harness.fresh_uri()
    if harness.inherited:
        first, second = anyipc.pair(uri)
        try:
            if not (first.address and second.address):
                pytest.skip(f"{uri}: an end of its pairs cannot be handed to another process")
            target = first.address
            sender = start(children, "_burst_peers.py", "send", MESSAGES, SEED, pass_fds=first.fds)
            reader = start(
                children,
                "_burst_peers.py",
                "read",
                "connect",
                second.address,
                MESSAGES,
                pass_fds=second.fds,
            )
        finally:
            first.close()  # the children hold their own copies
            second.close()
        report(reader, PATIENCE)
    else:
        sender = start(children, "_burst_peers.py", "send", MESSAGES, SEED)
        verb = "listen" if "listen" in harness.verbs else "bind"
        reader = start(children, "_burst_peers.py", "read", verb, uri, MESSAGES)
        target = report(reader, PATIENCE)["address"]
    assert sender.stdin is not None
    sender.stdin.write(f"{target}\n".encode())
    sent = report(sender, PATIENCE)
    received = report(reader, PATIENCE)
    for child in (sender, reader):
        child.communicate(timeout=PATIENCE)
        assert child.returncode == 0, f"{child.args[2]} ended with {child.returncode}"
    return sent, received


@pytest.mark.timeout(1200)
def test_a_burst_through_a_slow_reader_arrives_whole_once_and_in_order(
    harness: Harness, children: Children
) -> None:
    sent, received = _run_burst(harness, children)
    bound = 2 * _buffer_kib(harness) + ALLOWANCE_KIB
    growth = {
        role: outcome["peak_kib"] - outcome["rss_kib"]
        for role, outcome in (("sender", sent), ("reader", received))
    }
    print(
        f"{harness.uri.split('?cert=')[0]}: {sent['sent']} sent in {sent['seconds']} s, "
        f"{received['received']} received in {received['seconds']} s; lost "
        f"{received['lost']}, duplicated {received['duplicated']}, reordered "
        f"{received['reordered']}, corrupted {received['corrupted']}; peak growth "
        f"sender {growth['sender']} KiB, reader {growth['reader']} KiB (bound {bound} KiB)"
    )
    tally = {key: received[key] for key in ("lost", "duplicated", "reordered", "corrupted")}
    assert tally == dict.fromkeys(tally, 0), received
    assert received["received"] == sent["sent"] == MESSAGES
    assert received["left_over_bytes"] == 0
    assert received["ended"] in ("end of channel", "silence"), received
    assert max(growth.values()) < bound, f"memory grew by {growth} KiB, over {bound} KiB"
