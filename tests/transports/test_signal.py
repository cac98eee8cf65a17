"""signal:// specifics: real signals between real processes, masks, threads, limits, errors.

Every signal a test sends to this process is one that an open ``signal://self``
channel of the test binds at that moment, so pytest itself (and
pytest-timeout's SIGALRM) is never disturbed; tests that would kill the
process if the transport failed (a pending signal not discarded at close)
run in a child.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator

import pytest

import anyipc

USR = {signal.SIGUSR1, signal.SIGUSR2}
Spawn = Callable[[str], subprocess.Popen[str]]


def blocked() -> set[int]:
    """This thread's blocked signals."""
    return {int(sig) for sig in signal.pthread_sigmask(signal.SIG_BLOCK, [])}


@pytest.fixture
def spawn() -> Iterator[Spawn]:
    """``spawn(code)``: a Python child running ``code`` with text pipes; always reaped."""
    children: list[subprocess.Popen[str]] = []

    def start(code: str) -> subprocess.Popen[str]:
        child = subprocess.Popen(
            [sys.executable, "-P", "-c", textwrap.dedent(code)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        children.append(child)
        return child

    yield start
    for child in children:
        if child.poll() is None:
            child.kill()
        child.wait()
        for stream in (child.stdin, child.stdout):
            if stream is not None:
                stream.close()


def line(child: subprocess.Popen[str], timeout: float = 10.0) -> str:
    """The child's next line of output (failing after ``timeout`` seconds)."""
    assert child.stdout is not None
    ready, _, _ = select.select([child.stdout], [], [], timeout)
    assert ready, f"the child said nothing for {timeout} s"
    return child.stdout.readline().strip()


def tell(child: subprocess.Popen[str], text: str) -> None:
    assert child.stdin is not None
    child.stdin.write(text + "\n")
    child.stdin.flush()


# -- addresses and options -----------------------------------------------------------------
@pytest.mark.parametrize(
    "location", ["0", "-1", "01", "abc", "", "self/x", "4194305", "１２", "12 "]
)
@pytest.mark.parametrize("verb", ["connect", "bind"])
def test_a_location_that_is_not_a_process_is_refused_before_any_system_call(
    location: str, verb: str, no_new_fds: None
) -> None:
    with pytest.raises(anyipc.InvalidAddress, match="signal://PID|largest pid"):
        getattr(anyipc, verb)(f"signal://{location}")
    assert blocked() == set()


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ("signals=KILL", "cannot be caught or blocked"),
        ("signals=STOP", "cannot be caught or blocked"),
        ("signals=SEGV", "reports faults"),
        ("signals=RTMIN", "mode=rt"),
        ("signals=FOO,HUP", "'FOO' is not a signal name"),
        ("signals=USR1,", "'' is not a signal name"),
        ("mode=rt&signals=HUP", "signals is for mode=classic"),
        ("rtsig=2", "rtsig is for mode=rt"),
        ("mode=rt&rtsig=31", "above its maximum"),
        ("mode=fast", "not one of: classic, rt"),
    ],
)
def test_bad_options_are_refused_naming_what_is_valid(query: str, problem: str) -> None:
    with pytest.raises(anyipc.InvalidAddress, match=problem):
        anyipc.connect(f"signal://self?{query}")
    assert blocked() == set()


def test_names_may_be_written_without_sig_and_in_any_case() -> None:
    with anyipc.bind("signal://self?signals=hup,SigUsr1") as rx:
        assert blocked() == {signal.SIGHUP, signal.SIGUSR1}
        with anyipc.connect(rx.address) as tx:
            tx.send(b"SIGHUP")
            assert rx.recv(timeout=5) == b"SIGHUP"


def test_capabilities_follow_the_mode() -> None:
    classic = anyipc.transports()["signal"].capabilities
    assert (classic.lossless, classic.ordered, classic.intact, classic.duplicate_free) == (
        False,
        False,
        True,
        True,
    )
    assert classic.direction is anyipc.Direction.SIMPLEX
    assert classic.connection is anyipc.Connection.CONNECTIONLESS
    assert classic.max_message_size == len("SIGUSR1")
    with anyipc.connect(f"signal://{os.getpid()}?signals=HUP,WINCH") as tx:
        assert tx.capabilities.max_message_size == len("SIGWINCH")
    with anyipc.connect("signal://self?mode=rt") as tx:
        assert tx.capabilities.reliable
        assert tx.capabilities.max_message_size == 4


def test_a_bound_channel_reports_a_connectable_address() -> None:
    with anyipc.bind("signal://self?signals=USR2") as rx:
        assert rx.address == f"signal://{os.getpid()}?signals=USR2"
        assert rx.peer is None
        with anyipc.connect(rx.address) as tx:
            assert tx.peer == f"signal://{os.getpid()}"
            assert tx.address is None
            tx.send(b"SIGUSR2")
            assert rx.recv_from(timeout=5) == (b"SIGUSR2", f"signal://{os.getpid()}")


def test_only_this_process_can_be_bound() -> None:
    with pytest.raises(anyipc.NotSupported, match="supports: connect"):
        anyipc.bind(f"signal://{os.getppid()}")
    with anyipc.bind(f"signal://{os.getpid()}") as rx:
        assert rx.can_recv and not rx.can_send


# -- the server use, across processes ------------------------------------------------------
SERVER = """
    import anyipc
    listener = anyipc.listen("unix://@{name}")
    signals = anyipc.bind("signal://self?signals=HUP,TERM,USR1")
    print("ready", flush=True)
    running = True
    while running:
        for ready in anyipc.wait([listener, signals]):
            if ready is listener:
                with listener.accept(timeout=5) as connection:
                    connection.send(b"served")
            else:
                name, sender = signals.recv_from()
                print(name.decode(), sender, flush=True)
                running = name != b"SIGTERM"
    signals.close()
    listener.close()
"""


def test_a_server_handles_hup_usr1_and_term_in_its_main_loop(spawn: Spawn) -> None:
    name = f"anyipc-signal-test-{uuid.uuid4().hex}"
    child = spawn(SERVER.format(name=name))
    assert line(child) == "ready"
    with anyipc.connect(f"unix://@{name}") as client:
        assert client.recv(timeout=5) == b"served"
    me = f"signal://{os.getpid()}"
    with anyipc.connect(f"signal://{child.pid}?signals=HUP,TERM,USR1") as control:
        for name_sent in (b"SIGHUP", b"SIGUSR1", b"SIGTERM"):
            control.send(name_sent)
            assert line(child) == f"{name_sent.decode()} {me}"
    assert child.wait(10) == 0


# -- rt: queued, ordered, carrying values ----------------------------------------------------
COUNTER = """
    import json, anyipc
    with anyipc.bind("signal://self?mode=rt") as values:
        print("ready", flush=True)
        got = [int.from_bytes(values.recv(timeout=10), "big", signed=True) for _ in range({n})]
    print(json.dumps(got), flush=True)
"""


def test_rt_delivers_a_thousand_values_in_order(spawn: Spawn) -> None:
    sent = list(range(-500, 500))
    child = spawn(COUNTER.format(n=len(sent)))
    assert line(child) == "ready"
    with anyipc.connect(f"signal://{child.pid}?mode=rt") as tx:
        for value in sent:
            tx.send(value.to_bytes(4, "big", signed=True), timeout=10)
    assert json.loads(line(child)) == sent
    assert child.wait(10) == 0


def test_rt_values_are_four_big_endian_bytes() -> None:
    with anyipc.bind("signal://self?mode=rt&rtsig=3") as rx, anyipc.connect(rx.address) as tx:
        for value in (0, 1, -1, 2**31 - 1, -(2**31)):
            tx.send(value.to_bytes(4, "big", signed=True))
        assert [rx.recv(timeout=5) for _ in range(5)] == [
            b"\x00\x00\x00\x00",
            b"\x00\x00\x00\x01",
            b"\xff\xff\xff\xff",
            b"\x7f\xff\xff\xff",
            b"\x80\x00\x00\x00",
        ]


@pytest.mark.skipif(shutil.which("kill") is None, reason="no kill command")
def test_programs_without_anyipc_are_peers() -> None:
    me = str(os.getpid())
    with anyipc.bind("signal://self?mode=rt") as rx:
        subprocess.run(["kill", "-s", "RTMIN+1", "-q", "42", me], check=True)
        assert rx.recv(timeout=5) == (42).to_bytes(4, "big")
        os.kill(os.getpid(), signal.SIGRTMIN + 1)  # a plain kill carries no value: 0
        assert rx.recv(timeout=5) == bytes(4)
    with anyipc.bind("signal://self") as rx:
        shell = subprocess.Popen(["kill", "-USR1", me])
        shell.wait()
        assert rx.recv_from(timeout=5) == (b"SIGUSR1", f"signal://{shell.pid}")


RLIMITED = """
    import json, resource, anyipc
    resource.setrlimit(resource.RLIMIT_SIGPENDING, (64, 64))
    with anyipc.bind("signal://self?mode=rt") as values:
        print("ready", flush=True)
        input()
        got = []
        try:
            while True:
                got.append(int.from_bytes(values.recv(timeout=0.5), "big"))
        except anyipc.Timeout:
            pass
    print(json.dumps(got), flush=True)
"""


def test_rt_send_times_out_when_the_queue_is_full_and_loses_nothing(spawn: Spawn) -> None:
    child = spawn(RLIMITED)
    assert line(child) == "ready"
    accepted = 0
    with anyipc.connect(f"signal://{child.pid}?mode=rt") as tx:
        with pytest.raises(anyipc.Timeout, match="RLIMIT_SIGPENDING is 64") as info:
            while accepted <= 64:
                tx.send(accepted.to_bytes(4, "big"), timeout=0.2)
                accepted += 1
    assert info.value.sent == 0
    tell(child, "go")
    assert json.loads(line(child)) == list(range(accepted))


# -- classic: merging and order ------------------------------------------------------------
def test_classic_signals_sent_while_one_is_pending_merge_into_it() -> None:
    with anyipc.bind("signal://self") as rx, anyipc.connect(rx.address) as tx:
        for _ in range(100):
            tx.send(b"SIGUSR1")
        assert rx.recv(timeout=5) == b"SIGUSR1"
        with pytest.raises(anyipc.Timeout):
            rx.recv(timeout=0.2)


def test_classic_signals_arrive_lowest_number_first_not_in_sending_order() -> None:
    with anyipc.bind("signal://self?signals=HUP,USR2") as rx, anyipc.connect(rx.address) as tx:
        tx.send(b"SIGUSR2")
        tx.send(b"SIGHUP")
        assert [rx.recv(timeout=5), rx.recv(timeout=5)] == [b"SIGHUP", b"SIGUSR2"]


# -- what is not a message -----------------------------------------------------------------
@pytest.mark.parametrize("data", [b"SIGUSR2", b"USR1", b"sigusr1", b"SIGUSR", b""])
def test_a_name_outside_the_channel_is_refused_before_sending(data: bytes) -> None:
    with anyipc.bind("signal://self") as rx:
        with anyipc.connect("signal://self?signals=USR1") as tx:
            with pytest.raises(ValueError, match="not a message of this channel"):
                tx.send(data)
            with pytest.raises(anyipc.Timeout):
                rx.recv(timeout=0.1)
            tx.send(b"SIGUSR1")
            assert rx.recv(timeout=5) == b"SIGUSR1"


def test_an_rt_message_is_exactly_four_bytes() -> None:
    with anyipc.bind("signal://self?mode=rt") as rx, anyipc.connect(rx.address) as tx:
        with pytest.raises(ValueError, match="exactly 4 bytes"):
            tx.send(b"abc")
        with pytest.raises(anyipc.MessageTooLarge):
            tx.send(b"abcde")
        with pytest.raises(anyipc.Timeout):
            rx.recv(timeout=0.1)
        tx.send(b"abcd")
        assert rx.recv(timeout=5) == b"abcd"


def test_send_to_names_any_process() -> None:
    with anyipc.bind("signal://self") as rx, anyipc.connect("signal://self") as tx:
        tx.send_to(b"SIGUSR2", "signal://self")
        tx.send_to(b"SIGUSR1", f"signal://{os.getpid()}")
        assert {rx.recv(timeout=5), rx.recv(timeout=5)} == {b"SIGUSR1", b"SIGUSR2"}
        for wrong in ("signal://0", "signal://self?signals=USR1", "tcp://127.0.0.1:1"):
            with pytest.raises(anyipc.InvalidAddress):
                tx.send_to(b"SIGUSR1", wrong)
        with pytest.raises(anyipc.NotSupported):
            rx.send(b"SIGUSR1")
        with pytest.raises(anyipc.NotSupported):
            tx.recv(timeout=0)


# -- errors from the OS ----------------------------------------------------------------------
def test_a_process_that_is_gone_is_connection_lost() -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    with pytest.raises(anyipc.ConnectionLost, match=f"signal://{gone.pid}"):
        anyipc.connect(f"signal://{gone.pid}")
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        with anyipc.connect(f"signal://{sleeper.pid}") as tx:
            sleeper.kill()
            sleeper.wait()
            with pytest.raises(anyipc.ConnectionLost):
                tx.send(b"SIGUSR1")
    finally:
        sleeper.kill()
        sleeper.wait()


def _refused_as_another_user(target: int) -> int:
    """In a child that became uid 65534: 0 if connect and send_to to ``target`` are refused."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 1
        try:
            os.setuid(65534)
            try:
                anyipc.connect(f"signal://{target}?signals=WINCH")
            except anyipc.PermissionDenied:
                with anyipc.connect("signal://self?signals=WINCH") as tx:
                    try:
                        tx.send_to(b"SIGWINCH", f"signal://{target}")
                    except anyipc.PermissionDenied:
                        code = 0
        finally:
            os._exit(code)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def test_a_process_of_another_user_is_permission_denied() -> None:
    if os.getuid() == 0:
        # as uid 65534 signal this root process; SIGWINCH is harmless if it were delivered
        assert _refused_as_another_user(os.getpid()) == 0
    elif os.stat("/proc/1").st_uid != os.getuid():
        with pytest.raises(anyipc.PermissionDenied):
            anyipc.connect("signal://1?signals=WINCH")
    else:
        pytest.skip("neither root (to become another user) nor facing another user's pid 1")


# -- timeouts, close, wait -------------------------------------------------------------------
def test_recv_honours_its_timeout() -> None:
    with anyipc.bind("signal://self") as rx:
        started = time.monotonic()
        with pytest.raises(anyipc.Timeout):
            rx.recv(timeout=0.2)
        assert 0.2 <= time.monotonic() - started < 2


def test_close_wakes_a_blocked_recv() -> None:
    rx = anyipc.bind("signal://self")
    outcome: list[BaseException] = []

    def receive() -> None:
        try:
            rx.recv(timeout=10)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=receive)
    thread.start()
    time.sleep(0.1)
    rx.close()
    thread.join(5)
    assert not thread.is_alive()
    assert isinstance(outcome[0], anyipc.ChannelClosed)
    assert blocked() == set()


def test_wait_reports_a_signal_channel_ready_without_consuming() -> None:
    with anyipc.bind("signal://self") as rx, anyipc.connect(rx.address) as tx:
        assert anyipc.wait([rx], timeout=0.05) == []
        tx.send(b"SIGUSR2")
        assert anyipc.wait([rx], timeout=5) == [rx]
        assert anyipc.wait([rx], timeout=5) == [rx]
        assert rx.recv(timeout=0) == b"SIGUSR2"
        assert anyipc.wait([rx], timeout=0.05) == []


def test_close_restores_the_mask_exactly() -> None:
    before = blocked()
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR2})  # blocked by the user, not anyipc
    try:
        with anyipc.bind("signal://self?signals=HUP,USR1,USR2"):
            assert blocked() == before | {signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2}
        assert blocked() == before | {signal.SIGUSR2}
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGUSR2})
    assert blocked() == before


DISCARDS = """
    import os, signal, anyipc
    with anyipc.bind("signal://self") as rx:
        os.kill(os.getpid(), signal.SIGUSR1)
        os.kill(os.getpid(), signal.SIGUSR2)
    print("alive", signal.pthread_sigmask(signal.SIG_BLOCK, []) == set(), flush=True)
"""


def test_close_discards_pending_signals_before_unblocking(spawn: Spawn) -> None:
    # Were SIGUSR1 still pending when close unblocks it, its default action would kill the child.
    child = spawn(DISCARDS)
    assert line(child) == "alive True"
    assert child.wait(10) == 0


def test_close_from_another_thread_warns_and_leaves_the_binding_thread_blocked() -> None:
    rx = anyipc.bind("signal://self")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        closer = threading.Thread(target=rx.close)
        closer.start()
        closer.join(5)
    assert [str(w.message) for w in caught if w.category is RuntimeWarning] == [
        "signal://self closed from another thread than the one that bound it: SIGUSR1, "
        "SIGUSR2 stay blocked in that thread; close it there, or unblock them there with "
        "signal.pthread_sigmask(signal.SIG_UNBLOCK, ...)"
    ]
    assert blocked() == USR
    signal.pthread_sigmask(signal.SIG_UNBLOCK, USR)  # nothing is pending: close drained it


# -- one binding per signal, every thread blocking -------------------------------------------
def test_a_signal_can_be_bound_once_per_process() -> None:
    with anyipc.bind("signal://self?signals=USR1,USR2"):
        with pytest.raises(anyipc.AddressInUse, match="SIGUSR2 already received"):
            anyipc.bind("signal://self?signals=USR2,HUP")
        assert blocked() == USR
        with anyipc.bind("signal://self?signals=HUP"):
            assert blocked() == USR | {signal.SIGHUP}
    with anyipc.bind("signal://self?signals=USR2"):
        assert blocked() == {signal.SIGUSR2}


def _idle_thread(name: str) -> tuple[threading.Thread, threading.Event]:
    done = threading.Event()
    thread = threading.Thread(target=done.wait, name=name)
    thread.start()
    return thread, done


def test_a_thread_that_does_not_block_the_signals_is_refused() -> None:
    thread, done = _idle_thread("lax-worker")
    try:
        with pytest.raises(anyipc.TransportUnavailable, match="'lax-worker'.*SIGUSR1, SIGUSR2"):
            anyipc.bind("signal://self")
        assert blocked() == set()
    finally:
        done.set()
        thread.join()


def test_threads_started_with_the_signals_blocked_are_fine() -> None:
    signal.pthread_sigmask(signal.SIG_BLOCK, USR)
    thread, done = _idle_thread("careful-worker")  # inherits the mask
    signal.pthread_sigmask(signal.SIG_UNBLOCK, USR)
    try:
        with anyipc.bind("signal://self") as rx, anyipc.connect(rx.address) as tx:
            tx.send(b"SIGUSR1")
            assert rx.recv(timeout=5) == b"SIGUSR1"
    finally:
        done.set()
        thread.join()
    assert blocked() == set()
