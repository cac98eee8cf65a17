"""Abstract unix sockets let in only the uids they admit (§6 P2).

An abstract name has no file and no permissions: the kernel lets any user
connect (the intruder, uid 65534, does).  So a listener on ``@name`` reads
each client's uid (``SO_PEERCRED``) before anything else and closes, unread,
a client it does not admit (default: its own user and root; ``allow_uids``
adds more), without handing it out: ``accept`` keeps serving the others.
The intruder sends a message before the listener looks at it; its
connection is then reset, which the kernel does only when the listener
closed with that message unread.  A client likewise refuses a listener of
another user, which may have taken the name first; and a datagram endpoint
on ``@name`` drops, unread, what foreign uids send it.

Figures: foreign connections (or datagrams) refused per case, and checked
messages exchanged with each admitted peer.
"""

from __future__ import annotations

import logging
import os
import uuid

import pytest

import anyipc

from ..transports.conftest import Children
from . import _access
from ._access import INTRUDER, Intruder, answered_while_accepting, checked, verified
from .conftest import figure

intruder = _access.intruder  # the fixture

ATTEMPTS = figure(5, 200)  #: foreign connections or datagrams refused per case
MESSAGES = figure(20, 1_000)  #: checked messages exchanged with an admitted peer
CONNECTED = ["unix", "unix-seqpacket"]

_SAME_USER_CLIENT = """
import sys, anyipc
with anyipc.connect(sys.argv[1]) as channel:
    for message in map(bytes.fromhex, sys.argv[2:]):
        channel.send(message, timeout=10)
        assert channel.recv(timeout=10) == message
"""


def _abstract(scheme: str) -> str:
    return f"{scheme}://@anyipc-acc-{uuid.uuid4().hex}"


def _framed(scheme: str) -> str:
    """The stack that carries messages over ``scheme``."""
    return "framed+unix" if scheme == "unix" else scheme


def _refusals(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "anyipc.access"]


def _serve_same_user_client(listener: anyipc.Listener) -> None:
    """A client of this user, in a process of its own, is accepted and served (checked echoes)."""
    messages = [checked(seq).hex() for seq in range(MESSAGES)]
    children = Children()
    try:
        client = children.python(_SAME_USER_CLIENT, listener.address, *messages)
        with listener.accept(timeout=20) as server:
            for seq in range(MESSAGES):
                message = server.recv(timeout=20)
                assert verified(message) == seq
                server.send(message, timeout=20)
        assert client.wait(timeout=20) == 0, client.communicate(timeout=10)[1].decode()
    finally:
        children.reap()


@pytest.mark.timeout(600)
@pytest.mark.parametrize("scheme", CONNECTED)
def test_a_foreign_uid_is_refused_before_anything_is_read(
    scheme: str, intruder: Intruder, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="anyipc.access")
    with anyipc.listen(_abstract(_framed(scheme))) as listener:
        for seq in range(ATTEMPTS):
            payload = checked(seq, bytes(1000)).hex()
            intruder.tell(do="connect", uri=listener.address, send=[payload], recv=1, announce=True)
            assert intruder.answer() == {"sent": 1}  # the kernel took the connection and the bytes
            answer = answered_while_accepting(listener, intruder)
            assert not answer["ok"] and answer["step"] == "recv", answer
            assert "ConnectionLost" in answer["kinds"], answer
            assert "reset" in str(answer["message"]), f"read before the refusal? {answer}"
        _serve_same_user_client(listener)
    refused = _refusals(caplog)
    assert len(refused) == ATTEMPTS, refused
    assert all(f"uid {INTRUDER}" in message for message in refused), refused


@pytest.mark.timeout(600)
@pytest.mark.parametrize("scheme", CONNECTED)
@pytest.mark.parametrize("allowed", [str(INTRUDER), f"1000,{INTRUDER}", "any"])
def test_allow_uids_admits_the_uids_it_names(
    scheme: str, allowed: str, intruder: Intruder, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="anyipc.access")
    with anyipc.listen(_abstract(_framed(scheme)), allow_uids=allowed) as listener:
        assert f"allow_uids={os.geteuid()}" in listener.address  # what its clients must admit
        messages = [checked(seq).hex() for seq in range(MESSAGES)]
        intruder.tell(do="connect", uri=listener.address, send=messages)
        with listener.accept(timeout=20) as server:
            assert [verified(server.recv(timeout=20)) for _ in messages] == list(range(MESSAGES))
            with pytest.raises(anyipc.EndOfChannel):
                server.recv(timeout=20)
        assert intruder.answer()["ok"]
    assert not _refusals(caplog)


@pytest.mark.parametrize("scheme", CONNECTED)
def test_a_client_refuses_a_listener_of_another_user(scheme: str, intruder: Intruder) -> None:
    """The intruder took the name first: a client of this user does not talk to it."""
    answer = intruder.ask(do="listen", uri=_abstract(scheme))
    assert answer["ok"], answer
    address = str(answer["address"])
    intruder.tell(do="echo", timeout=20)  # the control: admitted, it is the one it talks to
    with anyipc.connect(address, allow_uids=str(INTRUDER)) as admitted:
        admitted.send(checked(0), timeout=20)
        echoed = admitted.recv(timeout=20)
        if scheme == "unix":
            while len(echoed) < len(checked(0)):
                echoed += admitted.recv(timeout=20)
        assert verified(echoed) == 0
    assert intruder.answer()["ok"]
    for _ in range(ATTEMPTS):
        with pytest.raises(anyipc.PermissionDenied, match=f"uid {INTRUDER}") as refused:
            anyipc.connect(address)
        assert address in str(refused.value)


def test_a_datagram_from_a_foreign_uid_is_dropped_unread(
    intruder: Intruder, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="anyipc.access")
    with anyipc.bind(_abstract("unix-dgram")) as inbox:
        foreign = [checked(seq).hex() for seq in range(ATTEMPTS)]
        intruder.tell(do="connect", uri=inbox.address, send=foreign)
        while not intruder.has_answered():  # recv drops them (and must return none) meanwhile
            with pytest.raises(anyipc.Timeout):
                delivered = inbox.recv(timeout=0.05)
                pytest.fail(f"a datagram of the intruder was delivered: {delivered!r}")
        assert intruder.answer()["ok"]
        with anyipc.connect(inbox.address) as mine:  # a sender of this user goes through
            mine.send(checked(ATTEMPTS), timeout=10)
            assert verified(inbox.recv(timeout=10)) == ATTEMPTS
        with pytest.raises(anyipc.Timeout):
            inbox.recv(timeout=0.2)
    refused = _refusals(caplog)
    assert len(refused) == ATTEMPTS and all(f"uid {INTRUDER}" in m for m in refused), refused


def test_allow_uids_admits_a_foreign_uid_s_datagrams(intruder: Intruder) -> None:
    with anyipc.bind(_abstract("unix-dgram"), allow_uids=str(INTRUDER)) as inbox:
        messages = [checked(seq).hex() for seq in range(MESSAGES)]
        intruder.tell(do="connect", uri=inbox.address, send=messages)
        assert [verified(inbox.recv(timeout=20)) for _ in messages] == list(range(MESSAGES))
        assert intruder.answer()["ok"]


def test_allow_uids_is_for_abstract_names_only() -> None:
    with pytest.raises(anyipc.InvalidAddress, match="allow_uids"):
        anyipc.listen("unix:///tmp/anyipc-never-made.sock", allow_uids="1000")
    with pytest.raises(anyipc.InvalidAddress, match="allow_uids"):
        anyipc.listen(_abstract("unix"), allow_uids="root")
