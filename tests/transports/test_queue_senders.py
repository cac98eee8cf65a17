"""``end=senders`` on posixmq:// and sysvmq://: a queue that ends with its senders, like a FIFO.

Senders run in fresh interpreters and are killed with SIGKILL where the
test is about a crash.  The roster of senders lives in /dev/shm next to the
queue's owner file; the leak snapshot around every test checks that
nothing of it is left.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import time
from collections.abc import Iterator

import pytest

import anyipc
from anyipc._senders import roster_path

from .conftest import Children

SCHEMES = ["posixmq", "sysvmq"]

SENDER = """
import sys, anyipc
channel = anyipc.connect(sys.argv[1])
size = int(sys.argv[2])
print("ready", flush=True)
n = 0
while True:
    channel.send(bytes([n % 251]) * size, timeout=30)
    n += 1
"""


def roster_of(channel: anyipc.Channel) -> str:
    address = anyipc.Address.parse_syntax(channel.address or "")
    name = address.location
    if address.scheme == "sysvmq":
        name = f"{int(name, 16):08x}"
    return roster_path(address.scheme, name)


@pytest.fixture(params=SCHEMES)
def scheme(request: pytest.FixtureRequest) -> str:
    if anyipc.transports()[request.param].unavailable is not None:
        pytest.skip(f"{request.param} is unavailable here")
    return str(request.param)


@pytest.fixture
def receiver(scheme: str) -> Iterator[anyipc.Channel]:
    with anyipc.bind(f"{scheme}://?end=senders") as channel:
        yield channel


def test_the_claims_follow_the_option(scheme: str, receiver: anyipc.Channel) -> None:
    assert receiver.capabilities.reports_end
    assert not anyipc.transports()[scheme].capabilities.reports_end  # the default: no end
    with anyipc.bind(f"{scheme}://") as plain:
        assert not plain.capabilities.reports_end
        assert not os.path.exists(roster_of(plain)), "a queue without end=senders has a roster"


def test_every_message_then_end_of_channel(receiver: anyipc.Channel) -> None:
    first = anyipc.connect(receiver.address or "")
    second = anyipc.connect(receiver.address or "")
    first.send(b"one")
    first.close()
    assert receiver.recv(timeout=5) == b"one"
    with pytest.raises(anyipc.Timeout):
        receiver.recv(timeout=0.3)  # a sender is still there
    second.send(b"two")
    second.send(b"")
    second.close()
    assert receiver.recv(timeout=5) == b"two"
    assert receiver.recv(timeout=5) == b""
    with pytest.raises(anyipc.EndOfChannel, match="every sender closed"):
        receiver.recv(timeout=5)
    with pytest.raises(anyipc.EndOfChannel):
        receiver.recv(timeout=5)  # it stays ended until a new sender comes
    assert anyipc.wait([receiver], timeout=0) == [receiver]


def test_a_new_sender_after_the_end_starts_a_new_round(receiver: anyipc.Channel) -> None:
    with anyipc.connect(receiver.address or "") as sender:
        sender.send(b"first round")
    assert list(receiver) == [b"first round"]
    with anyipc.connect(receiver.address or "") as sender:
        sender.send(b"second round")
        assert receiver.recv(timeout=5) == b"second round"
        with pytest.raises(anyipc.Timeout):
            receiver.recv(timeout=0.3)
    with pytest.raises(anyipc.EndOfChannel):
        receiver.recv(timeout=5)


def test_no_sender_yet_is_no_end(receiver: anyipc.Channel) -> None:
    with pytest.raises(anyipc.Timeout):
        receiver.recv(timeout=0.3)
    assert anyipc.wait([receiver], timeout=0.3) == []


def test_a_sender_killed_mid_stream_is_connection_lost_within_two_seconds(
    receiver: anyipc.Channel, children: Children
) -> None:
    size = receiver.capabilities.max_message_size
    assert size is not None
    sender = children.python(SENDER, receiver.address or "", str(size))
    assert sender.stdout is not None and sender.stdout.readline() == b"ready\n"
    received = [receiver.recv(timeout=10) for _ in range(20)]
    sender.send_signal(signal.SIGKILL)
    sender.wait(10)
    killed = time.monotonic()
    with pytest.raises(anyipc.ConnectionLost, match="killed"):
        while True:
            received.append(receiver.recv(timeout=5))
    assert time.monotonic() - killed < 2.0, "the death was reported late"
    for number, message in enumerate(received):
        assert message == bytes([number % 251]) * size, f"message {number} is damaged"


def test_a_death_among_several_senders_is_reported_once_all_are_gone(
    receiver: anyipc.Channel, children: Children
) -> None:
    survivor = anyipc.connect(receiver.address or "")
    victim = children.python(SENDER, receiver.address or "", "16")
    assert victim.stdout is not None and victim.stdout.readline() == b"ready\n"
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)
    drained = 0
    with pytest.raises(anyipc.Timeout):  # the survivor still sends: no end yet
        while True:
            assert receiver.recv(timeout=0.5) == bytes([drained % 251]) * 16
            drained += 1
    survivor.send(b"last")
    survivor.close()
    assert receiver.recv(timeout=5) == b"last"
    with pytest.raises(anyipc.ConnectionLost, match="killed"):
        receiver.recv(timeout=5)


def test_wait_reports_the_end(receiver: anyipc.Channel, children: Children) -> None:
    sender = children.python(SENDER, receiver.address or "", "8")
    assert sender.stdout is not None and sender.stdout.readline() == b"ready\n"
    sender.send_signal(signal.SIGKILL)
    sender.wait(10)
    with pytest.raises(anyipc.ConnectionLost):
        while True:
            assert anyipc.wait([receiver], timeout=5) == [receiver]
            receiver.recv(timeout=0)


@pytest.mark.parametrize(("mode", "expected"), [("600", 0o700), ("622", 0o1733), ("620", 0o1730)])
def test_the_roster_admits_exactly_who_may_send(scheme: str, mode: str, expected: int) -> None:
    with anyipc.bind(f"{scheme}://?end=senders&mode={mode}") as channel:
        assert stat.S_IMODE(os.lstat(roster_of(channel)).st_mode) == expected


def test_close_removes_the_roster_with_its_tickets(receiver: anyipc.Channel) -> None:
    path = roster_of(receiver)
    sender = anyipc.connect(receiver.address or "")
    assert len(os.listdir(path)) == 1, "the sender has no ticket"
    receiver.close()
    assert not os.path.exists(path)
    sender.close()


def test_a_roster_left_by_a_dead_owner_is_reclaimed(scheme: str, children: Children) -> None:
    owner = children.python(
        "import sys, anyipc\n"
        "channel = anyipc.bind(sys.argv[1] + '://?end=senders')\n"
        "print(channel.address, flush=True)\n"
        "sys.stdin.read()\n",
        scheme,
        stdin=subprocess.PIPE,
    )
    assert owner.stdout is not None
    following = owner.stdout.readline().decode().strip()
    uri = f"{scheme}://{anyipc.Address.parse_syntax(following).location}"
    owner.send_signal(signal.SIGKILL)
    owner.wait(10)
    with anyipc.bind(uri) as plain:  # the default, end=never: the dead owner's roster goes
        assert not os.path.exists(roster_of(plain))
    with anyipc.bind(following) as again:
        assert os.listdir(roster_of(again)) == []


def test_a_sender_of_a_foreign_program_is_not_counted(receiver: anyipc.Channel) -> None:
    if receiver.address and receiver.address.startswith("sysvmq"):
        import sysv_ipc

        key = int(anyipc.Address.parse_syntax(receiver.address).location, 16)
        sysv_ipc.MessageQueue(key - (1 << 32) if key >= 1 << 31 else key).send(b"raw", type=1)
    else:
        import posix_ipc

        name = anyipc.Address.parse_syntax(receiver.address or "").location
        raw = posix_ipc.MessageQueue("/" + name, write=True, read=False)
        raw.send(b"raw")
        raw.close()
    assert receiver.recv(timeout=5) == b"raw"
    with pytest.raises(anyipc.Timeout):
        receiver.recv(timeout=0.3)  # nobody enrolled: no end


def test_sysvmq_end_senders_needs_the_owner() -> None:
    with pytest.raises(anyipc.InvalidAddress, match="create=true"):
        anyipc.bind("sysvmq://0x1234?create=false&end=senders")


def test_a_bad_end_value_names_the_choices(scheme: str) -> None:
    with pytest.raises(anyipc.InvalidAddress, match="never, senders"):
        anyipc.bind(f"{scheme}://?end=sometimes")
