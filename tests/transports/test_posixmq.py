"""posixmq://: real POSIX message queues, real child processes, the kernel's real limits."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator

import posix_ipc
import pytest

import anyipc
from anyipc._owner import lock_path

pytestmark = pytest.mark.skipif(
    anyipc.transports()["posixmq"].unavailable is not None, reason="no POSIX message queues"
)


def sysctl(name: str) -> int:
    with open("/proc/sys/" + name.replace(".", "/")) as handle:
        return int(handle.read())


def name_of(uri: str) -> str:
    return anyipc.Address.parse_syntax(uri).location


def queue_exists(name: str) -> bool:
    """True when a queue has this name (/dev/mqueue is not mounted here, so ask mq_open)."""
    try:
        posix_ipc.MessageQueue("/" + name).close()
    except posix_ipc.ExistentialError:
        return False
    return True


def assert_gone(name: str) -> None:
    assert not queue_exists(name), f"the queue /{name} is still there"
    assert not os.path.exists(lock_path("posixmq", name)), "its owner file is still there"


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


@pytest.fixture
def fresh_name() -> str:
    return f"anyipc-test-{os.getpid()}-{uuid.uuid4().hex}"


@pytest.fixture
def bound() -> Iterator[anyipc.Channel]:
    with anyipc.bind("posixmq://") as channel:
        yield channel


# -- taxonomy and verbs ---------------------------------------------------------------
def test_the_binder_receives_and_connectors_send(bound: anyipc.Channel) -> None:
    caps = bound.capabilities
    assert caps.direction is anyipc.Direction.SIMPLEX
    assert caps.connection is anyipc.Connection.ORIENTED
    assert caps.reliable and caps.max_message_size == sysctl("fs.mqueue.msgsize_default")
    with anyipc.connect(bound.address) as sender:
        assert (sender.can_send, sender.can_recv) == (True, False)
        assert (bound.can_send, bound.can_recv) == (False, True)
        assert sender.peer == bound.address and sender.address is None
        assert bound.peer is None
        with pytest.raises(anyipc.NotSupported):
            bound.send(b"x")
        with pytest.raises(anyipc.NotSupported):
            sender.recv(timeout=0)
        with pytest.raises(anyipc.NotSupported):
            sender.fileno()
        assert bound.fileno() >= 0


def test_a_fresh_name_is_picked_when_none_is_given(bound: anyipc.Channel) -> None:
    name = name_of(bound.address)
    assert name.startswith(f"anyipc-{os.getpid()}-")
    assert queue_exists(name)


def test_zero_length_messages_are_messages(bound: anyipc.Channel) -> None:
    with anyipc.connect(bound.address) as sender:
        for payload in (b"", b"a", b"", bytearray(b"bc"), memoryview(b"")):
            sender.send(payload)
        assert [bound.recv(timeout=5) for _ in range(5)] == [b"", b"a", b"", b"bc", b""]


def test_priorities_higher_first_fifo_within_one(bound: anyipc.Channel) -> None:
    senders = {p: anyipc.connect(bound.address, priority=p) for p in (1, 5, 9)}
    try:
        senders[1].send(b"low")
        senders[5].send(b"mid-1")
        senders[9].send(b"high")
        senders[5].send(b"mid-2")
        received = [bound.recv(timeout=5) for _ in range(4)]
    finally:
        for sender in senders.values():
            sender.close()
    assert received == [b"high", b"mid-1", b"mid-2", b"low"]


def test_priority_from_the_uri(bound: anyipc.Channel) -> None:
    with (
        anyipc.connect(f"{bound.address}?priority=3") as urgent,
        anyipc.connect(bound.address) as plain,
    ):
        plain.send(b"normal")
        urgent.send(b"urgent")
        assert [bound.recv(timeout=5), bound.recv(timeout=5)] == [b"urgent", b"normal"]


def test_no_end_of_channel_recv_waits_for_its_timeout(bound: anyipc.Channel) -> None:
    sender = anyipc.connect(bound.address)
    sender.send(b"last")
    sender.close()
    assert bound.recv(timeout=5) == b"last"
    started = time.monotonic()
    with pytest.raises(anyipc.Timeout):
        bound.recv(timeout=0.2)
    assert time.monotonic() - started >= 0.2


# -- other processes ----------------------------------------------------------------------
def test_a_child_process_receives() -> None:
    process = child(
        """
        import anyipc
        with anyipc.bind("posixmq://") as channel:
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
    assert_gone(name_of(address))


# -- the binder's death, stale and foreign queues -----------------------------------------------
def test_a_queue_outlives_its_killed_owner_and_the_next_bind_reclaims_it(fresh_name: str) -> None:
    process = child(
        """
        import sys, anyipc
        channel = anyipc.bind("posixmq://" + sys.argv[1])
        print("bound", flush=True)
        sys.stdin.read()
        """,
        fresh_name,
    )
    assert process.stdout is not None and process.stdout.readline() == "bound\n"
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    for stream in (process.stdin, process.stdout):
        assert stream is not None
        stream.close()
    assert queue_exists(fresh_name), "kernel persistence: the queue outlives its owner"
    assert os.path.exists(lock_path("posixmq", fresh_name))
    with pytest.raises(anyipc.ConnectionLost, match="owner died"):
        anyipc.connect(f"posixmq://{fresh_name}")
    with anyipc.bind(f"posixmq://{fresh_name}") as again:
        with anyipc.connect(again.address) as sender:
            sender.send(b"fresh")
        assert again.recv(timeout=5) == b"fresh"
    assert_gone(fresh_name)


def test_a_queue_anyipc_did_not_create_is_never_taken(fresh_name: str) -> None:
    foreign = posix_ipc.MessageQueue("/" + fresh_name, posix_ipc.O_CREX)
    try:
        with pytest.raises(anyipc.AddressInUse, match="did not create it"):
            anyipc.bind(f"posixmq://{fresh_name}")
        assert queue_exists(fresh_name)
        assert not os.path.exists(lock_path("posixmq", fresh_name))
        with anyipc.connect(f"posixmq://{fresh_name}") as sender:  # a valid peer to send to
            sender.send(b"to a program without anyipc")
        assert foreign.receive(timeout=5) == (b"to a program without anyipc", 0)
    finally:
        foreign.unlink()
        foreign.close()


def test_bind_twice_is_address_in_use(bound: anyipc.Channel) -> None:
    with pytest.raises(anyipc.AddressInUse, match="a live process owns it"):
        anyipc.bind(bound.address)


# -- cleanup ---------------------------------------------------------------------------------
def test_close_removes_the_queue_and_its_owner_file(fresh_name: str) -> None:
    channel = anyipc.bind(f"posixmq://{fresh_name}")
    assert queue_exists(fresh_name)
    channel.close()
    channel.close()
    assert_gone(fresh_name)
    with pytest.raises(anyipc.ConnectionLost, match="nobody has bound it"):
        anyipc.connect(f"posixmq://{fresh_name}")


def test_a_sender_leaves_the_queue_alone(bound: anyipc.Channel) -> None:
    anyipc.connect(bound.address).close()
    assert queue_exists(name_of(bound.address))


def test_the_longest_name_works_and_is_cleaned_up() -> None:
    name = f"anyipc-{uuid.uuid4().hex}".ljust(255, "x")
    with anyipc.bind(f"posixmq://{name}") as channel, anyipc.connect(channel.address) as sender:
        sender.send(b"long")
        assert channel.recv(timeout=5) == b"long"
    assert_gone(name)


def test_a_forked_childs_copy_closes_without_removing_anything(bound: anyipc.Channel) -> None:
    name = name_of(bound.address)
    pid = os.fork()
    if pid == 0:  # the child: close its copy, report how that went, and leave at once
        try:
            bound.close()
        finally:
            os._exit(0 if bound.closed else 1)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    assert queue_exists(name) and os.path.exists(lock_path("posixmq", name))
    with pytest.raises(anyipc.AddressInUse):
        anyipc.bind(bound.address)
    with anyipc.connect(bound.address) as sender:
        sender.send(b"the parent still owns it")
    assert bound.recv(timeout=5) == b"the parent still owns it"


# -- limits ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("option", "limit"),
    [("max_messages", "fs.mqueue.msg_max"), ("max_message_size", "fs.mqueue.msgsize_max")],
)
def test_an_option_above_a_kernel_limit_names_it(option: str, limit: str) -> None:
    value = sysctl(limit)
    with pytest.raises(anyipc.InvalidAddress) as error:
        anyipc.bind(f"posixmq://x?{option}={value + 1}")
    message = str(error.value)
    assert limit in message and str(value) in message and "sysctl -w" in message


def test_a_queue_larger_than_rlimit_msgqueue_is_refused_before_creating_it() -> None:
    process = child(
        """
        import resource, anyipc
        hard = resource.getrlimit(resource.RLIMIT_MSGQUEUE)[1]
        resource.setrlimit(resource.RLIMIT_MSGQUEUE, (1000, hard))
        try:
            anyipc.bind("posixmq://")
        except anyipc.InvalidAddress as exc:
            print(exc)
        """
    )
    message = finish(process)
    assert "RLIMIT_MSGQUEUE = 1000 bytes" in message and "ulimit -q" in message


def test_a_spent_rlimit_msgqueue_is_transport_unavailable_naming_it() -> None:
    # A budget of exactly one queue of 1 x 1 byte (97 bytes): the second bind, or the
    # first if this user holds other queues right now, finds it spent (EMFILE).
    process = child(
        """
        import resource, anyipc
        hard = resource.getrlimit(resource.RLIMIT_MSGQUEUE)[1]
        resource.setrlimit(resource.RLIMIT_MSGQUEUE, (97, hard))
        opened = []
        try:
            for _ in range(2):
                opened.append(anyipc.bind("posixmq://?max_messages=1&max_message_size=1"))
        except anyipc.TransportUnavailable as exc:
            print(exc)
        finally:
            for channel in opened:
                channel.close()
        """
    )
    message = finish(process)
    assert "RLIMIT_MSGQUEUE = 97 bytes" in message and "ulimit -q" in message
    assert "maximum number of files" not in message


def test_running_out_of_descriptors_names_rlimit_nofile(bound: anyipc.Channel) -> None:
    process = child(
        """
        import os, resource, sys, anyipc
        anyipc.Address.parse(sys.argv[1])  # plugins loaded while descriptors are left
        lowest_free = os.open(os.devnull, os.O_RDONLY)
        os.close(lowest_free)
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        resource.setrlimit(resource.RLIMIT_NOFILE, (lowest_free, hard))
        try:
            anyipc.connect(sys.argv[1])
        except anyipc.TransportUnavailable as exc:
            print(exc)
        """,
        bound.address,
    )
    assert "RLIMIT_NOFILE" in finish(process)


def test_queues_max_is_transport_unavailable_naming_it() -> None:
    limit = sysctl("fs.mqueue.queues_max")
    created: list[posix_ipc.MessageQueue] = []
    try:
        while True:  # this machine's other queues count too
            try:
                created.append(
                    posix_ipc.MessageQueue(
                        f"/anyipc-fill-{uuid.uuid4().hex}",
                        posix_ipc.O_CREX,
                        max_messages=1,
                        max_message_size=1,
                    )
                )
            except OSError:
                break
            assert len(created) <= limit
        with pytest.raises(anyipc.TransportUnavailable) as error:
            anyipc.bind("posixmq://?max_messages=1&max_message_size=1")
    finally:
        for queue in created:
            queue.unlink()
            queue.close()
    assert f"fs.mqueue.queues_max = {limit} queues" in str(error.value)


def test_connect_learns_the_real_message_size(fresh_name: str) -> None:
    with anyipc.bind(f"posixmq://{fresh_name}?max_message_size=100&max_messages=3") as receiver:
        with anyipc.connect(f"posixmq://{fresh_name}") as sender:
            assert sender.capabilities.max_message_size == 100
            with pytest.raises(anyipc.MessageTooLarge):
                sender.send(b"x" * 101)
            sender.send(b"x" * 100)
            assert receiver.recv(timeout=5) == b"x" * 100
        with pytest.raises(anyipc.InvalidAddress, match="at most 100 bytes"):
            anyipc.connect(f"posixmq://{fresh_name}?max_message_size=101")
        with anyipc.connect(f"posixmq://{fresh_name}?max_message_size=10") as small:
            with pytest.raises(anyipc.MessageTooLarge):
                small.send(b"x" * 11)


def test_a_full_queue_blocks_the_send_until_its_timeout_and_loses_nothing(
    fresh_name: str,
) -> None:
    with (
        anyipc.bind(f"posixmq://{fresh_name}?max_messages=3") as receiver,
        anyipc.connect(receiver.address) as sender,
    ):
        for n in range(3):
            sender.send(bytes([n]))
        started = time.monotonic()
        with pytest.raises(anyipc.Timeout, match="stayed full") as error:
            sender.send(b"too many", timeout=0.2)
        assert time.monotonic() - started >= 0.2 and error.value.sent == 0
        assert [receiver.recv(timeout=5) for _ in range(3)] == [b"\x00", b"\x01", b"\x02"]
        sender.send(b"room again", timeout=5)
        assert receiver.recv(timeout=5) == b"room again"


def test_a_blocked_send_learns_that_the_receiver_closed(fresh_name: str) -> None:
    receiver = anyipc.bind(f"posixmq://{fresh_name}?max_messages=1")
    with anyipc.connect(receiver.address) as sender:
        sender.send(b"fills it")
        threading.Timer(0.2, receiver.close).start()
        started = time.monotonic()
        with pytest.raises(anyipc.ConnectionLost, match="receiver closed"):
            sender.send(b"blocked", timeout=10)
        assert time.monotonic() - started < 2.0


# -- permissions ----------------------------------------------------------------------------
@pytest.mark.parametrize(("mode", "expected"), [(None, 0o600), ("640", 0o640), ("666", 0o666)])
def test_the_queue_has_exactly_its_mode_whatever_the_umask(mode: str | None, expected: int) -> None:
    uri = "posixmq://" if mode is None else f"posixmq://?mode={mode}"
    old = os.umask(0o022)
    try:
        with anyipc.bind(uri) as channel:
            assert os.fstat(channel.fileno()).st_mode & 0o777 == expected
    finally:
        os.umask(old)


# -- readiness ------------------------------------------------------------------------------
def test_wait_reports_a_queue_with_a_message_and_consumes_nothing(bound: anyipc.Channel) -> None:
    assert anyipc.wait([bound], timeout=0.05) == []
    with anyipc.connect(bound.address) as sender:
        sender.send(b"ping")
        assert anyipc.wait([bound], timeout=5) == [bound]
        assert anyipc.wait([bound], timeout=0) == [bound]
        assert bound.recv(timeout=0) == b"ping"
    assert anyipc.wait([bound], timeout=0.05) == []


# -- addresses ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("uri", "problem"),
    [
        ("posixmq://a/b", "no '/'"),
        ("posixmq://.", "cannot name a queue"),
        ("posixmq://..", "cannot name a queue"),
        ("posixmq://a%00b", "NUL"),
        ("posixmq://" + "x" * 256, "NAME_MAX"),
        ("posixmq://q?priority=32768", "maximum"),
        ("posixmq://q?max_messages=0", "minimum"),
        ("posixmq://q?mode=999", "octal"),
    ],
)
def test_bad_addresses_are_invalid(uri: str, problem: str) -> None:
    with pytest.raises(anyipc.InvalidAddress, match=problem):
        anyipc.Address.parse(uri)


def test_connect_needs_a_name() -> None:
    with pytest.raises(anyipc.InvalidAddress, match="needs the queue's name"):
        anyipc.connect("posixmq://")
