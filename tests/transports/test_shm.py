"""shm://: real POSIX shared memory, peers in fresh interpreters, crashes by SIGKILL.

The tests of the rings run in both protocols (``protocol=lockfree`` and
``protocol=locked``).  ``ANYIPC_STRESS_MESSAGES`` sets how many messages the
cross-process stress run checks in each (default 20,000; the long profile
uses millions).
"""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import threading
import time
import zlib
from collections.abc import Iterator

import posix_ipc
import pytest

import anyipc
from anyipc._shmlock import LOCK_FREE_PROTOCOL, LOCKED_PROTOCOL
from anyipc._shmring import RECORD_HEADER
from anyipc._shmspec import lock_free_problem, protocol_note

from .conftest import Children

pytestmark = pytest.mark.skipif(
    anyipc.transports()["shm"].unavailable is not None, reason="shm:// is unavailable here"
)

STRESS_MESSAGES = int(os.environ.get("ANYIPC_STRESS_MESSAGES", "20000"))

# A sender of numbered messages with a CRC: 8-byte number, 4-byte CRC32 of the rest, random body.
SENDER = """
import os, random, struct, sys, zlib, anyipc
channel = anyipc.connect(sys.argv[1])
count, largest = int(sys.argv[2]), int(sys.argv[3])
print("ready", flush=True)
rng = random.Random(7)
for number in range(count):
    body = os.urandom(rng.randrange(0, largest - 12))
    channel.send(struct.pack(">QI", number, zlib.crc32(body)) + body, timeout=30)
channel.close()
"""


def check(message: bytes, expected_number: int) -> None:
    number, crc = struct.unpack(">QI", message[:12])
    assert number == expected_number, f"message {expected_number} arrived as {number}"
    assert zlib.crc32(message[12:]) == crc, f"message {number} is corrupted"


@pytest.fixture(params=[LOCK_FREE_PROTOCOL, LOCKED_PROTOCOL])
def protocol(request: pytest.FixtureRequest) -> str:
    """The ring protocol under test."""
    return str(request.param)


@pytest.fixture
def listener(protocol: str) -> Iterator[anyipc.Listener]:
    with anyipc.listen(f"shm://?size=65536&protocol={protocol}") as listening:
        yield listening


def test_a_cross_process_stress_run_keeps_every_message_whole_and_in_order(
    listener: anyipc.Listener, children: Children
) -> None:
    sender = children.python(SENDER, listener.address, str(STRESS_MESSAGES), "20000")
    assert sender.stdout is not None and sender.stdout.readline() == b"ready\n"
    with listener.accept(timeout=10) as channel:
        for number in range(STRESS_MESSAGES):
            check(channel.recv(timeout=30), number)
        with pytest.raises(anyipc.EndOfChannel):
            channel.recv(timeout=10)
    assert sender.wait(30) == 0


def test_a_writer_killed_mid_message_never_shows_a_torn_one(
    listener: anyipc.Listener, children: Children
) -> None:
    sender = children.python(SENDER, listener.address, "100000000", "60000")
    assert sender.stdout is not None and sender.stdout.readline() == b"ready\n"
    with listener.accept(timeout=10) as channel:
        received = 0
        for _ in range(50):
            check(channel.recv(timeout=10), received)
            received += 1
        sender.send_signal(signal.SIGKILL)
        sender.wait(10)
        killed = time.monotonic()
        with pytest.raises(anyipc.ConnectionLost, match="died"):
            while True:
                check(channel.recv(timeout=5), received)
                received += 1
        assert time.monotonic() - killed < 2.0, "the death was reported late"


def test_the_largest_message_fits_and_one_more_byte_is_refused(
    listener: anyipc.Listener,
) -> None:
    with anyipc.connect(listener.address) as client, listener.accept(timeout=5) as server:
        largest = 65536 - RECORD_HEADER
        assert client.capabilities.max_message_size == largest
        with pytest.raises(anyipc.MessageTooLarge):
            client.send(b"x" * (largest + 1))
        client.send(b"y" * largest)
        assert server.recv(timeout=5) == b"y" * largest
        client.send(b"still works")
        assert server.recv(timeout=5) == b"still works"


def test_a_full_ring_blocks_send_until_its_timeout_and_loses_nothing(
    listener: anyipc.Listener,
) -> None:
    with anyipc.connect(listener.address) as client, listener.accept(timeout=5) as server:
        sent = 0
        with pytest.raises(anyipc.Timeout):
            while True:
                client.send(sent.to_bytes(4, "big") * 256, timeout=0.2)
                sent += 1
        assert sent == 65536 // (RECORD_HEADER + 1024)
        for number in range(sent):
            assert server.recv(timeout=5) == number.to_bytes(4, "big") * 256
        with pytest.raises(anyipc.Timeout):
            server.recv(timeout=0.1)


def test_a_client_with_another_size_is_refused_and_told_why(
    listener: anyipc.Listener, protocol: str
) -> None:
    name = anyipc.Address.parse_syntax(listener.address).location
    with anyipc.connect(f"shm://{name}?size=8192&protocol={protocol}") as client:
        with pytest.raises(anyipc.Timeout):
            listener.accept(timeout=0.5)
        with pytest.raises(anyipc.ConnectionLost, match="size=65536"):
            client.recv(timeout=5)


def test_a_client_with_another_protocol_is_refused_and_told_why() -> None:
    with anyipc.listen(f"shm://?protocol={LOCKED_PROTOCOL}") as listener:
        assert listener.address.endswith(f"?protocol={LOCKED_PROTOCOL}"), "the address hides it"
        name = anyipc.Address.parse_syntax(listener.address).location
        with anyipc.connect(f"shm://{name}?protocol={LOCK_FREE_PROTOCOL}") as client:
            with pytest.raises(anyipc.Timeout):
                listener.accept(timeout=0.3)
            with pytest.raises(anyipc.ConnectionLost, match="protocol=locked, not lockfree"):
                client.recv(timeout=5)
        with anyipc.connect(listener.address) as client, listener.accept(timeout=5) as server:
            client.send(b"agreed")
            assert server.recv(timeout=5) == b"agreed"


def test_the_protocol_option_is_checked_and_described() -> None:
    with pytest.raises(anyipc.InvalidAddress, match="lockfree, locked"):
        anyipc.listen("shm://?protocol=fast")
    problem = lock_free_problem("aarch64")
    assert problem is not None and "aarch64" in problem and "protocol=locked" in problem
    assert lock_free_problem("x86_64") is None
    assert protocol_note("aarch64").startswith("locked rings by default")
    assert protocol_note("x86_64").startswith("lock-free rings by default")
    for scheme in ("shm", "sysvshm", "mmap"):
        info = anyipc.transports()[scheme]
        assert info.unavailable is None and info.description.endswith(protocol_note())


def test_a_writer_killed_holding_the_ring_lock_does_not_wedge_the_reader(
    children: Children,
) -> None:
    with anyipc.listen(f"shm://?protocol={LOCKED_PROTOCOL}") as listener:
        holder = children.python(
            "import sys, anyipc\n"
            "channel = anyipc.connect(sys.argv[1])\n"
            "channel.send(b'before')\n"
            "assert channel._lock.acquire(1)  # its ring's lock, as in the middle of an exchange\n"
            "print('holding', flush=True)\n"
            "sys.stdin.read()\n",
            listener.address,
            stdin=subprocess.PIPE,
        )
        assert holder.stdout is not None and holder.stdout.readline() == b"holding\n"
        with listener.accept(timeout=10) as channel:
            with pytest.raises(anyipc.Timeout):
                channel.recv(timeout=0.3)  # published, but the lock to see it is held
            holder.send_signal(signal.SIGKILL)
            holder.wait(10)
            killed = time.monotonic()
            assert channel.recv(timeout=5) == b"before"
            with pytest.raises(anyipc.ConnectionLost, match="died"):
                channel.recv(timeout=5)
            assert time.monotonic() - killed < 2.0, "the death was reported late"


def test_connect_with_nobody_listening_is_connection_lost() -> None:
    with pytest.raises(anyipc.ConnectionLost):
        anyipc.connect("shm://anyipc-nobody-listens-here")


def test_listen_twice_is_address_in_use_and_a_killed_listener_frees_the_name(
    children: Children,
) -> None:
    owner = children.python(
        "import sys, anyipc\n"
        "listener = anyipc.listen('shm://anyipc-test-killed-owner')\n"
        "print('listening', flush=True)\n"
        "sys.stdin.read()\n",
        stdin=subprocess.PIPE,
    )
    assert owner.stdout is not None and owner.stdout.readline() == b"listening\n"
    with pytest.raises(anyipc.AddressInUse):
        anyipc.listen("shm://anyipc-test-killed-owner")
    owner.send_signal(signal.SIGKILL)
    owner.wait(10)
    with anyipc.listen("shm://anyipc-test-killed-owner") as again:
        assert again.address == "shm://anyipc-test-killed-owner"


def test_segment_names_of_dead_creators_are_reclaimed_and_live_ones_kept(
    children: Children,
) -> None:
    dead = children.python("pass")
    dead.wait(10)
    stale = f"/anyipc-shm.anyipc-test-reclaim.{dead.pid}.0badc0de"
    live = f"/anyipc-shm.anyipc-test-reclaim.{os.getpid()}.0badc0de"
    for name in (stale, live):
        posix_ipc.SharedMemory(name, posix_ipc.O_CREX, mode=0o600, size=4096).close_fd()
    try:
        with anyipc.listen("shm://anyipc-test-reclaim"):
            assert not os.path.exists("/dev/shm" + stale), "a dead creator's segment is left"
            assert os.path.exists("/dev/shm" + live), "a live creator's segment was taken"
    finally:
        for name in (stale, live):
            try:
                posix_ipc.unlink_shared_memory(name)
            except posix_ipc.ExistentialError:
                pass


def test_no_segment_name_stays_in_dev_shm(listener: anyipc.Listener) -> None:
    before = set(os.listdir("/dev/shm"))
    with anyipc.connect(listener.address), listener.accept(timeout=5):
        assert {name for name in os.listdir("/dev/shm") if name.startswith("anyipc-shm.")} <= before


def test_an_idle_receiver_sleeps(listener: anyipc.Listener, children: Children) -> None:
    receiver = children.python(
        "import resource, sys, anyipc\n"
        "channel = anyipc.connect(sys.argv[1])\n"
        "print('ready', flush=True)\n"
        "start = resource.getrusage(resource.RUSAGE_SELF)\n"
        "try:\n"
        "    channel.recv(timeout=2)\n"
        "except anyipc.Timeout:\n"
        "    pass\n"
        "end = resource.getrusage(resource.RUSAGE_SELF)\n"
        "print(end.ru_utime + end.ru_stime - start.ru_utime - start.ru_stime)\n"
        "channel.close()\n",
        listener.address,
    )
    assert receiver.stdout is not None and receiver.stdout.readline() == b"ready\n"
    with listener.accept(timeout=10):
        cpu = float(receiver.stdout.readline())
    assert cpu < 0.02, f"an idle receiver used {cpu:.3f} s of CPU in 2 s (over 1 % of a core)"


def _refused_as_another_user(uri: str) -> int:
    """In a forked child that became uid 65534: 0 if the listener refused it, naming its uid."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 1
        try:
            os.setgid(65534)
            os.setuid(65534)
            with anyipc.connect(uri) as channel:
                try:
                    channel.recv(timeout=5)
                except anyipc.ConnectionLost as exc:
                    code = 0 if "uid 65534 may not connect" in str(exc) else 2
        finally:
            os._exit(code)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root, to become another user")
def test_another_user_is_refused(listener: anyipc.Listener) -> None:
    outcome: list[int] = []
    thread = threading.Thread(
        target=lambda: outcome.append(_refused_as_another_user(listener.address))
    )
    thread.start()
    with pytest.raises(anyipc.Timeout):
        listener.accept(timeout=1.5)  # the listener refuses it and goes on waiting
    thread.join(10)
    assert outcome == [0]


def test_recv_view_lends_the_ring_until_the_next_receive(protocol: str) -> None:
    with anyipc.listen(f"shm://?size=4096&protocol={protocol}") as listener:
        with anyipc.connect(listener.address) as client, listener.accept(timeout=5) as server:
            client.send(b"a" * 1000)
            view = server.recv_view(timeout=5)
            assert view.readonly and bytes(view) == b"a" * 1000
            sent = 0
            with pytest.raises(anyipc.Timeout):  # its space stays taken: the ring fills up
                while True:
                    client.send(b"b" * 1000, timeout=0.2)
                    sent += 1
            assert sent == 3, "the lent message's space was reused"
            assert bytes(view) == b"a" * 1000, "the sender overwrote a lent message"
            assert server.recv(timeout=5) == b"b" * 1000
            with pytest.raises(ValueError):
                bytes(view)  # released by the next receive
            assert [server.recv(timeout=5) for _ in range(sent - 1)] == [b"b" * 1000] * 2
            for _ in range(8):  # records that wrap around the end come back whole too
                client.send(bytes(range(256)) * 3)
                assert bytes(server.recv_view(timeout=5)) == bytes(range(256)) * 3


def test_batches_are_the_same_messages_in_the_same_order(protocol: str) -> None:
    with anyipc.listen(f"shm://?size=4096&protocol={protocol}") as listener:
        with anyipc.connect(listener.address) as client, listener.accept(timeout=5) as server:
            messages = [bytes([n]) * (n * 7) for n in range(200)]  # more than the ring holds
            sender = threading.Thread(target=client.send_many, args=(messages,))
            sender.start()
            received: list[bytes] = []
            while len(received) < len(messages):
                received += server.recv_many(50, timeout=5)
            sender.join(10)
            assert received == messages
            with pytest.raises(anyipc.MessageTooLarge):
                client.send_many([b"ok", b"x" * 5000])
            with pytest.raises(anyipc.Timeout):
                server.recv(timeout=0.1)  # nothing of a refused batch was sent


def test_a_batch_that_times_out_says_how_many_went(protocol: str) -> None:
    with anyipc.listen(f"shm://?size=4096&protocol={protocol}") as listener:
        with anyipc.connect(listener.address) as client, listener.accept(timeout=5):
            with pytest.raises(anyipc.Timeout) as raised:
                client.send_many([b"y" * 1000] * 10, timeout=0.2)
            assert raised.value.sent == 4096 // 1008
