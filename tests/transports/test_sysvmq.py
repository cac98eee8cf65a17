"""sysvmq://: real SysV message queues, real child processes, the kernel's real limits."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator

import pytest
import sysv_ipc

import anyipc
from anyipc._owner import lock_path

pytestmark = pytest.mark.skipif(
    anyipc.transports()["sysvmq"].unavailable is not None, reason="no SysV message queues"
)


def sysctl(name: str) -> int:
    with open("/proc/sys/" + name.replace(".", "/")) as handle:
        return int(handle.read())


def key_of(uri: str) -> int:
    return int(anyipc.Address.parse_syntax(uri).location, 0)


def queue_exists(key: int) -> bool:
    try:
        sysv_ipc.MessageQueue(key)
    except sysv_ipc.ExistentialError:
        return False
    return True


def assert_gone(key: int) -> None:
    assert not queue_exists(key), f"the queue {key:#x} is still there"
    assert not os.path.exists(lock_path("sysvmq", f"{key:08x}")), "its owner file is still there"


def child(code: str, *args: str) -> subprocess.Popen[str]:
    """A fresh interpreter running ``code`` (argv[1:] = ``args``), talking on stdin/stdout."""
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str]) -> str:
    """Everything the child printed; it must exit 0."""
    out, _ = process.communicate(timeout=30)
    assert process.returncode == 0, f"the child failed ({process.returncode}): {out}"
    return out


def kill(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    for stream in (process.stdin, process.stdout):
        assert stream is not None
        stream.close()


@pytest.fixture
def fresh_key() -> int:
    """A key with no queue (random, so that concurrent runs do not meet)."""
    while True:
        key = secrets.randbelow(0x7FFFFFFF) + 1
        if not queue_exists(key):
            return key


@pytest.fixture
def bound() -> Iterator[anyipc.Channel]:
    with anyipc.bind("sysvmq://") as channel:
        yield channel


# -- taxonomy and verbs ------------------------------------------------------------------
def test_the_binder_receives_and_connectors_send(bound: anyipc.Channel) -> None:
    caps = bound.capabilities
    assert caps.direction is anyipc.Direction.SIMPLEX
    assert caps.connection is anyipc.Connection.ORIENTED
    assert caps.reliable and caps.max_message_size == sysctl("kernel.msgmax")
    with anyipc.connect(bound.address) as sender:
        assert (sender.can_send, sender.can_recv, bound.can_send, bound.can_recv) == (
            True,
            False,
            False,
            True,
        )
        assert sender.peer == bound.address and bound.peer is None
        with pytest.raises(anyipc.NotSupported):
            bound.send(b"x")
        with pytest.raises(anyipc.NotSupported):
            sender.recv(timeout=0)
        with pytest.raises(anyipc.NotSupported, match="anyipc.wait"):
            bound.fileno()


def test_a_random_key_is_picked_when_none_is_given(bound: anyipc.Channel) -> None:
    location = anyipc.Address.parse_syntax(bound.address).location
    assert location.startswith("0x") and len(location) == 10
    assert queue_exists(key_of(bound.address))


def test_zero_length_messages_are_messages(bound: anyipc.Channel) -> None:
    with anyipc.connect(bound.address) as sender:
        for payload in (b"", b"a", b"", bytearray(b"bc"), memoryview(b"")):
            sender.send(payload)
        assert [bound.recv(timeout=5) for _ in range(5)] == [b"", b"a", b"", b"bc", b""]


def test_no_end_of_channel_recv_waits_for_its_timeout(bound: anyipc.Channel) -> None:
    sender = anyipc.connect(bound.address)
    sender.send(b"last")
    sender.close()
    assert bound.recv(timeout=5) == b"last"
    started = time.monotonic()
    with pytest.raises(anyipc.Timeout):
        bound.recv(timeout=0.2)
    assert time.monotonic() - started >= 0.2


def test_close_wakes_a_blocked_recv_at_once(bound: anyipc.Channel) -> None:
    threading.Timer(0.1, bound.close).start()
    started = time.monotonic()
    with pytest.raises(anyipc.ChannelClosed):
        bound.recv(timeout=10)
    assert time.monotonic() - started < 1.0


def test_an_idle_receiver_naps_instead_of_spinning() -> None:
    """Waits that find nothing for a long time spin only briefly: an idle end costs little CPU.

    Measured in a child, whose CPU time is only the receiver's.
    """
    used = finish(
        child(
            """
            import resource, anyipc
            def cpu():
                usage = resource.getrusage(resource.RUSAGE_SELF)
                return usage.ru_utime + usage.ru_stime
            with anyipc.bind("sysvmq://") as channel:
                before = cpu()
                for _ in range(10):
                    try:
                        channel.recv(timeout=0.15)
                    except anyipc.Timeout:
                        pass
                print(cpu() - before)
            """
        )
    )
    assert float(used) < 0.3, f"10 idle waits of 0.15 s used {float(used):.3f} s of CPU"


# -- typed channels on one queue ------------------------------------------------------------
def test_typed_channels_share_one_queue(fresh_key: int) -> None:
    with (
        anyipc.bind(f"sysvmq://{fresh_key}") as ones,
        anyipc.bind(f"sysvmq://{fresh_key}?type=2&create=false") as twos,
        anyipc.connect(f"sysvmq://{fresh_key}") as send_one,
        anyipc.connect(twos.address) as send_two,
    ):
        assert twos.address == f"sysvmq://{fresh_key}?type=2"
        send_two.send(b"two-a")
        send_one.send(b"one-a")
        send_two.send(b"two-b")
        assert ones.recv(timeout=5) == b"one-a"
        assert [twos.recv(timeout=5), twos.recv(timeout=5)] == [b"two-a", b"two-b"]
        with pytest.raises(anyipc.Timeout):
            ones.recv(timeout=0.05)
    assert_gone(fresh_key)


def test_type_zero_receives_every_type_in_order(fresh_key: int) -> None:
    with anyipc.bind(f"sysvmq://{fresh_key}?type=0") as anything:
        assert anything.address == f"sysvmq://{fresh_key}"  # senders default to type 1
        senders = [anyipc.connect(f"sysvmq://{fresh_key}?type={t}") for t in (7, 3, 7)]
        try:
            for number, sender in enumerate(senders):
                sender.send(f"#{number}".encode())
            assert [anything.recv(timeout=5) for _ in senders] == [b"#0", b"#1", b"#2"]
        finally:
            for sender in senders:
                sender.close()


def test_a_program_without_anyipc_is_a_peer(bound: anyipc.Channel) -> None:
    raw = sysv_ipc.MessageQueue(key_of(bound.address))
    raw.send(b"mtype 1 from sysv_ipc", type=1)
    assert bound.recv(timeout=5) == b"mtype 1 from sysv_ipc"
    with anyipc.connect(f"{bound.address}?type=9") as sender:
        sender.send(b"typed")
    assert raw.receive(block=False, type=9) == (b"typed", 9)


def test_when_the_owner_closes_every_typed_end_learns_it(fresh_key: int) -> None:
    owner = anyipc.bind(f"sysvmq://{fresh_key}")
    with (
        anyipc.bind(f"sysvmq://{fresh_key}?type=5&create=false") as fives,
        anyipc.connect(fives.address) as sender,
    ):
        owner.close()
        with pytest.raises(anyipc.ConnectionLost, match="removed"):
            fives.recv(timeout=5)
        with pytest.raises(anyipc.ConnectionLost, match="removed"):
            sender.send(b"x", timeout=5)
    assert_gone(fresh_key)


def test_create_false_needs_an_existing_queue(fresh_key: int) -> None:
    with pytest.raises(anyipc.ConnectionLost, match="nobody has bound it"):
        anyipc.bind(f"sysvmq://{fresh_key}?create=false")
    with pytest.raises(anyipc.InvalidAddress, match="needs the key"):
        anyipc.bind("sysvmq://?create=false")


# -- other processes ---------------------------------------------------------------------------
def test_a_child_process_receives() -> None:
    process = child(
        """
        import anyipc
        with anyipc.bind("sysvmq://") as channel:
            print(channel.address, flush=True)
            print(" ".join(channel.recv(timeout=10).hex() or "-" for _ in range(3)))
        """
    )
    assert process.stdout is not None
    address = process.stdout.readline().strip()
    with anyipc.connect(address) as sender:
        for payload in (b"one", b"", b"three"):
            sender.send(payload, timeout=10)
    assert finish(process).split() == [b"one".hex(), "-", b"three".hex()]
    assert_gone(key_of(address))


# -- the owner's death, stale and foreign queues ------------------------------------------------
def _killed_owner(key: int) -> None:
    process = child(
        """
        import sys, anyipc
        channel = anyipc.bind("sysvmq://" + sys.argv[1])
        print("bound", flush=True)
        sys.stdin.read()
        """,
        str(key),
    )
    assert process.stdout is not None and process.stdout.readline() == "bound\n"
    kill(process)


def test_a_queue_outlives_its_killed_owner_and_the_next_bind_reclaims_it(fresh_key: int) -> None:
    _killed_owner(fresh_key)
    assert queue_exists(fresh_key), "kernel persistence: the queue outlives its owner"
    assert os.path.exists(lock_path("sysvmq", f"{fresh_key:08x}"))
    with pytest.raises(anyipc.ConnectionLost, match="owner died"):
        anyipc.connect(f"sysvmq://{fresh_key}")
    with anyipc.bind(f"sysvmq://{fresh_key}") as again:
        with anyipc.connect(again.address) as sender:
            sender.send(b"fresh")
        assert again.recv(timeout=5) == b"fresh"
    assert_gone(fresh_key)


def test_a_blocked_send_learns_that_the_owner_died(fresh_key: int) -> None:
    process = child(
        """
        import sys, anyipc
        channel = anyipc.bind("sysvmq://" + sys.argv[1] + "?queue_bytes=10")
        print("bound", flush=True)
        sys.stdin.read()
        """,
        str(fresh_key),
    )
    assert process.stdout is not None and process.stdout.readline() == "bound\n"
    try:
        with anyipc.connect(f"sysvmq://{fresh_key}") as sender:
            sender.send(b"x" * 10)
            threading.Timer(0.2, kill, (process,)).start()
            started = time.monotonic()
            with pytest.raises(anyipc.ConnectionLost, match="owner died"):
                sender.send(b"blocked", timeout=10)
            assert time.monotonic() - started < 2.0
    finally:
        process.wait(10)
        anyipc.bind(f"sysvmq://{fresh_key}").close()  # reclaim the abandoned queue
    assert_gone(fresh_key)


def test_a_queue_anyipc_did_not_create_is_never_taken(fresh_key: int) -> None:
    foreign = sysv_ipc.MessageQueue(fresh_key, sysv_ipc.IPC_CREX)
    try:
        with pytest.raises(anyipc.AddressInUse, match="ipcrm -Q"):
            anyipc.bind(f"sysvmq://{fresh_key}")
        assert queue_exists(fresh_key)
        with anyipc.connect(f"sysvmq://{fresh_key}") as sender:
            sender.send(b"to a program without anyipc")
        assert foreign.receive(block=False) == (b"to a program without anyipc", 1)
    finally:
        foreign.remove()


def test_bind_twice_is_address_in_use(bound: anyipc.Channel) -> None:
    with pytest.raises(anyipc.AddressInUse, match="a live process owns it"):
        anyipc.bind(bound.address)


# -- cleanup --------------------------------------------------------------------------------
def test_close_removes_the_queue_and_its_owner_file(fresh_key: int) -> None:
    channel = anyipc.bind(f"sysvmq://{fresh_key:#x}")
    assert channel.address == f"sysvmq://{fresh_key:#x}"
    channel.close()
    channel.close()
    assert_gone(fresh_key)
    with pytest.raises(anyipc.ConnectionLost, match="nobody has bound it"):
        anyipc.connect(f"sysvmq://{fresh_key}")


def test_non_owners_leave_the_queue_alone(bound: anyipc.Channel) -> None:
    anyipc.connect(bound.address).close()
    anyipc.bind(f"{bound.address}?type=4&create=false").close()
    assert queue_exists(key_of(bound.address))


def test_a_forked_childs_copy_closes_without_removing_anything(bound: anyipc.Channel) -> None:
    name = key_of(bound.address)
    pid = os.fork()
    if pid == 0:  # the child: close its copy, report how that went, and leave at once
        try:
            bound.close()
        finally:
            os._exit(0 if bound.closed else 1)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    assert queue_exists(name) and os.path.exists(lock_path("sysvmq", f"{name:08x}"))
    with pytest.raises(anyipc.AddressInUse):
        anyipc.bind(bound.address)
    with anyipc.connect(bound.address) as sender:
        sender.send(b"the parent still owns it")
    assert bound.recv(timeout=5) == b"the parent still owns it"


# -- limits ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("option", "limit"), [("max_message_size", "kernel.msgmax"), ("queue_bytes", "kernel.msgmnb")]
)
def test_an_option_above_a_kernel_limit_names_it(option: str, limit: str) -> None:
    value = sysctl(limit)
    with pytest.raises(anyipc.InvalidAddress) as error:
        anyipc.bind(f"sysvmq://?{option}={value + 1}")
    message = str(error.value)
    assert limit in message and str(value) in message and "sysctl -w" in message


def test_a_message_must_fit_into_the_queue() -> None:
    with pytest.raises(anyipc.InvalidAddress, match="never fit"):
        anyipc.bind("sysvmq://?queue_bytes=100&max_message_size=101")
    with anyipc.bind("sysvmq://?queue_bytes=100") as small:
        assert small.capabilities.max_message_size == 100


def test_connect_learns_what_fits_into_the_queue(fresh_key: int) -> None:
    with anyipc.bind(f"sysvmq://{fresh_key}?queue_bytes=1000") as receiver:
        with anyipc.connect(f"sysvmq://{fresh_key}") as sender:
            assert sender.capabilities.max_message_size == 1000
            with pytest.raises(anyipc.MessageTooLarge):
                sender.send(b"x" * 1001)
            sender.send(b"x" * 1000)
            assert receiver.recv(timeout=5) == b"x" * 1000
        with pytest.raises(anyipc.InvalidAddress, match="at most 1000 bytes fit"):
            anyipc.connect(f"sysvmq://{fresh_key}?max_message_size=1001")


def test_a_full_queue_blocks_the_send_until_its_timeout_and_loses_nothing(
    fresh_key: int,
) -> None:
    with (
        anyipc.bind(f"sysvmq://{fresh_key}?queue_bytes=30") as receiver,
        anyipc.connect(receiver.address) as sender,
    ):
        for n in range(3):
            sender.send(bytes([n]) * 10)
        started = time.monotonic()
        with pytest.raises(anyipc.Timeout, match="stayed full") as error:
            sender.send(b"too many", timeout=0.2)
        assert time.monotonic() - started >= 0.2 and error.value.sent == 0
        assert [receiver.recv(timeout=5) for _ in range(3)] == [bytes([n]) * 10 for n in range(3)]
        sender.send(b"room again", timeout=5)
        assert receiver.recv(timeout=5) == b"room again"


def test_a_blocked_send_goes_on_once_there_is_room(fresh_key: int) -> None:
    with (
        anyipc.bind(f"sysvmq://{fresh_key}?queue_bytes=10") as receiver,
        anyipc.connect(receiver.address) as sender,
    ):
        sender.send(b"0123456789")
        threading.Timer(0.1, receiver.recv, kwargs={"timeout": 5}).start()
        sender.send(b"next", timeout=5)
        assert receiver.recv(timeout=5) == b"next"


# -- permissions ----------------------------------------------------------------------------
@pytest.mark.parametrize(("mode", "expected"), [(None, 0o600), ("640", 0o640), ("666", 0o666)])
def test_the_queue_has_exactly_its_mode(mode: str | None, expected: int) -> None:
    uri = "sysvmq://" if mode is None else f"sysvmq://?mode={mode}"
    with anyipc.bind(uri) as channel:
        assert sysv_ipc.MessageQueue(key_of(channel.address)).mode & 0o777 == expected


# -- readiness ------------------------------------------------------------------------------
def test_wait_reports_a_message_of_the_channels_type_only(fresh_key: int) -> None:
    with (
        anyipc.bind(f"sysvmq://{fresh_key}") as ones,
        anyipc.connect(f"sysvmq://{fresh_key}?type=2") as other_type,
        anyipc.connect(f"sysvmq://{fresh_key}") as sender,
    ):
        other_type.send(b"not for ones")
        assert anyipc.wait([ones], timeout=0.05) == []
        threading.Timer(0.1, sender.send, (b"for ones",)).start()
        assert anyipc.wait([ones], timeout=5) == [ones]
        assert anyipc.wait([ones], timeout=0) == [ones]  # consumes nothing
        assert ones.recv(timeout=0) == b"for ones"
        assert anyipc.wait([ones, sender], timeout=0.05) == []


def test_wait_on_a_sending_end_takes_nothing(bound: anyipc.Channel) -> None:
    with anyipc.connect(bound.address) as sender:
        sender.send(b"for the receiver")
        assert anyipc.wait([sender], timeout=0.05) == []
        assert bound.recv(timeout=0) == b"for the receiver"


# -- addresses ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("uri", "problem"),
    [
        ("sysvmq://0", "IPC_PRIVATE"),
        ("sysvmq://0x0", "IPC_PRIVATE"),
        ("sysvmq://4294967296", "32 bits"),
        ("sysvmq://-5", "not a key"),
        ("sysvmq://0x1234abcde", "not a key"),
        ("sysvmq://key", "not a key"),
        ("sysvmq://1?type=2147483648", "maximum"),
        ("sysvmq://1?mode=8", "octal"),
    ],
)
def test_bad_addresses_are_invalid(uri: str, problem: str) -> None:
    with pytest.raises(anyipc.InvalidAddress, match=problem):
        anyipc.Address.parse(uri)


def test_keys_above_2_31_name_the_same_queue_in_hex_and_decimal() -> None:
    key = 0xFFFF0000 + secrets.randbelow(0xFFFF)
    with anyipc.bind(f"sysvmq://{key:#x}") as receiver, anyipc.connect(f"sysvmq://{key}") as sender:
        sender.send(b"high key")
        assert receiver.recv(timeout=5) == b"high key"
    assert_gone(key)


def test_a_sender_needs_a_type() -> None:
    with pytest.raises(anyipc.InvalidAddress, match="type of 1 or more"):
        anyipc.connect("sysvmq://1?type=0")
    with pytest.raises(anyipc.InvalidAddress, match="needs the queue's key"):
        anyipc.connect("sysvmq://")
