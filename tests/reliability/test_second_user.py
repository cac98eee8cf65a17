"""A second user gets into nothing the first one made, on every named transport (§6 P1, P7).

The first user is this process (root, here and in CI); the second is
uid 65534, a process of its own (``_access_peers.py intruder``), which
tries to connect to, open or signal what the first made with the default
options.  Root would pass every file permission, so the roles are never
the other way round.  The objects are made in a directory everyone may
enter, so that only their own modes refuse the intruder.  Each refusal must
be the documented error naming the object, the first user must receive
nothing, and a listener must hand nothing out.

So that these tests can fail, the same intruder is let in when the mode
is widened for it, and every message it sends then arrives, whole and in
order.  And while the first user makes a socket file or a FIFO again and
again, the second, connecting to its path as fast as it can, never once
gets in (§6 P3: a file born wider than its mode, even for a moment, would
let it in; the control, with the mode widened, does get in).

Figures: attempts per transport (the issue's floor is one; the long
profile makes 100), messages sent once let in, racing connects (the
issue's 1,000 in the long profile).
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import attrs
import pytest

import anyipc

from . import _access
from ._access import INTRUDER, Intruder, answered_while_accepting, checked, verified
from .conftest import figure

intruder = _access.intruder  # the fixtures
open_dir = _access.open_dir

ATTEMPTS = figure(3, 100)  #: refused attempts per transport
MESSAGES = figure(20, 1_000)  #: messages sent by the intruder once a widened mode lets it in
RACING = figure(300, 1_000)  #: connects that meet an endpoint being made again and again
_REFUSALS_BY_A_LISTENER = ("may not connect", f"uid {INTRUDER}")

Endpoint = anyipc.Listener | anyipc.Channel


@attrs.frozen
class Named:
    """A named transport: how the first user makes its endpoint, and what refuses the second."""

    scheme: str
    verb: str  #: listen or bind
    uri: Callable[[Path], str]  #: the endpoint's URI with default options, in a directory
    widened: str  #: a mode that lets the intruder in
    by_listener: bool = False  #: refused by the listener (abstract rendezvous), not the kernel
    ends: bool = False  #: the receiver sees its senders' end (end=senders)
    stream: bool = False  #: a byte stream: messages go over ``framed+``

    def open(self, directory: Path, **options: str) -> Endpoint:
        opener = anyipc.listen if self.verb == "listen" else anyipc.bind
        uri = self.uri(directory)
        return opener(f"framed+{uri}" if self.stream else uri, **options)


NAMED = [
    Named("unix", "listen", lambda d: f"unix://{d}/stream.sock", "666", stream=True),
    Named("unix-seqpacket", "listen", lambda d: f"unix-seqpacket://{d}/packets.sock", "666"),
    Named("unix-dgram", "bind", lambda d: f"unix-dgram://{d}/datagrams.sock", "666"),
    Named("fifo", "bind", lambda d: f"fifo://{d}/pipe.fifo", "622", stream=True),
    Named("posixmq", "bind", lambda d: "posixmq://", "622"),
    Named("posixmq-senders", "bind", lambda d: "posixmq://?end=senders", "622", ends=True),
    Named("sysvmq", "bind", lambda d: "sysvmq://", "622"),
    Named("sysvmq-senders", "bind", lambda d: "sysvmq://?end=senders", "622", ends=True),
    Named("shm", "listen", lambda d: "shm://", "606", by_listener=True),
    Named("sysvshm", "listen", lambda d: "sysvshm://", "606", by_listener=True),
    Named("mmap", "listen", lambda d: f"mmap://{d}/rings", "666"),
]


def _name_of(endpoint: Endpoint) -> str:
    """What a refusal must name: the endpoint's URI without options (mmap: its directory)."""
    assert endpoint.address is not None
    address = anyipc.Address.parse_syntax(endpoint.address)
    if address.scheme == "mmap":
        return address.location
    return str(address.replace(options={}, layers=()))


@pytest.mark.timeout(600)
@pytest.mark.parametrize("named", NAMED, ids=lambda named: named.scheme)
def test_the_second_user_is_refused(named: Named, intruder: Intruder, open_dir: Path) -> None:
    with named.open(open_dir) as endpoint:
        assert endpoint.address is not None
        name = _name_of(endpoint)
        for seq in range(ATTEMPTS):
            intruder.tell(do="connect", uri=endpoint.address, send=[checked(seq).hex()], recv=1)
            if isinstance(endpoint, anyipc.Listener):
                answer = answered_while_accepting(endpoint, intruder)
            else:
                answer = intruder.answer()
            assert not answer["ok"], f"attempt {seq}: the intruder got in: {answer}"
            if named.by_listener:
                assert answer["step"] in ("send", "recv"), answer
                assert "ConnectionLost" in answer["kinds"], answer
                assert all(part in str(answer["message"]) for part in _REFUSALS_BY_A_LISTENER)
            else:
                assert answer["step"] == "connect", answer
                assert "PermissionDenied" in answer["kinds"], answer
                assert name in str(answer["message"]), answer
        if isinstance(endpoint, anyipc.Channel):
            with pytest.raises(anyipc.Timeout):
                endpoint.recv(timeout=0.1)


def _receive_all(endpoint: Endpoint, count: int) -> Iterator[int]:
    """The sequence numbers of ``count`` messages the intruder sent to ``endpoint``."""
    with contextlib.ExitStack() as stack:
        if isinstance(endpoint, anyipc.Listener):
            channel = stack.enter_context(endpoint.accept(timeout=20))
        else:
            channel = endpoint
        framed = channel.capabilities.boundaries is anyipc.Boundaries.MESSAGE
        assert framed, f"{channel!r}: the test expects message boundaries"
        for _ in range(count):
            yield verified(channel.recv(timeout=20))


@pytest.mark.timeout(600)
@pytest.mark.parametrize("named", NAMED, ids=lambda named: named.scheme)
def test_a_widened_mode_lets_the_second_user_in(
    named: Named, intruder: Intruder, open_dir: Path
) -> None:
    with named.open(open_dir, mode=named.widened) as endpoint:
        assert endpoint.address is not None
        messages = [checked(seq).hex() for seq in range(MESSAGES)]
        intruder.tell(do="connect", uri=endpoint.address, send=messages)
        assert list(_receive_all(endpoint, MESSAGES)) == list(range(MESSAGES))
        answer = intruder.answer()
        assert answer["ok"], answer
        if named.ends:
            assert isinstance(endpoint, anyipc.Channel)
            with pytest.raises(anyipc.EndOfChannel):
                endpoint.recv(timeout=10)  # the intruder enrolled as a sender, then closed


def test_the_second_user_cannot_signal_the_first(intruder: Intruder) -> None:
    mine = f"signal://{os.getpid()}?signals=WINCH"
    for _ in range(ATTEMPTS):
        answer = intruder.ask(do="connect", uri=mine, send=[b"SIGWINCH".hex()])
        assert not answer["ok"], f"the intruder signalled this process: {answer}"
        assert answer["step"] == "connect" and "PermissionDenied" in answer["kinds"], answer
        assert f"signal://{os.getpid()}" in str(answer["message"]), answer
    own = f"signal://{intruder.pid}?signals=WINCH"  # the control: its own process it may signal
    assert intruder.ask(do="connect", uri=own, send=[b"SIGWINCH".hex()])["ok"]


@pytest.mark.parametrize("scheme", ["posixmq", "sysvmq"])
def test_the_files_beside_a_queue_are_closed_to_the_second_user(
    scheme: str, intruder: Intruder
) -> None:
    """The owner file and the roster of senders are the first user's alone (by default)."""
    from anyipc._owner import lock_path
    from anyipc._senders import roster_path

    with anyipc.bind(f"{scheme}://?end=senders") as queue:
        assert queue.address is not None
        location = anyipc.Address.parse_syntax(queue.address).location
        name = location if scheme == "posixmq" else f"{int(location, 0):08x}"
        owner, roster = lock_path(scheme, name), roster_path(scheme, name)
        assert os.path.exists(owner) and os.path.isdir(roster)
        for path, write in ((owner, False), (owner, True), (roster, False)):
            answer = intruder.ask(do="open", path=path, write=write)
            assert not answer["ok"], f"the intruder opened {path}: {answer}"
            assert "PermissionError" in answer["kinds"], answer
            assert f"[Errno {errno.EACCES}]" in str(answer["message"]), answer


@pytest.mark.timeout(600)
@pytest.mark.parametrize(("verb", "scheme"), [("listen", "unix"), ("bind", "fifo")])
@pytest.mark.parametrize("mode", ["600", "666"])
def test_racing_connects_never_get_in_while_the_endpoint_is_made(
    verb: str, scheme: str, mode: str, intruder: Intruder, open_dir: Path
) -> None:
    if scheme == "fifo" and mode == "666":
        mode = "622"  # a FIFO's reader keeps read and write; the others may write
    uri = f"{scheme}://{open_dir}/racing?mode={mode}"
    opener = anyipc.listen if verb == "listen" else anyipc.bind
    intruder.tell(do="race", uri=uri, met=RACING, seconds=60)
    made = 0
    while not intruder.has_answered():
        with opener(uri):
            made += 1
    answer = intruder.answer()
    assert answer["ok"], answer
    if mode == "600":
        assert answer["in"] == 0, f"connects got in ({made} endpoints made): {answer}"
        assert answer["refused"] == RACING, f"too few met the endpoint ({made} made): {answer}"
    else:
        assert answer["in"] > 0, f"the control never got in ({made} made): {answer}"
