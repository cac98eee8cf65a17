"""pipe:// specifics: real pipes, ends handed to real children (anyipc and not), SIGPIPE, ends."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import tempfile
import termios
import threading
import time
from collections.abc import Iterator

import pytest

import anyipc
from anyipc import _fdstream

WRITE = """
import sys, anyipc
with anyipc.connect(sys.argv[1]) as end:
    end.send(sys.argv[2].encode(), timeout=10)
"""
READ_ALL = """
import sys, anyipc
with anyipc.connect(sys.argv[1]) as end:
    sys.stdout.buffer.write(b"".join(end))
"""


@pytest.fixture
def ends() -> Iterator[tuple[anyipc.Channel, anyipc.Channel]]:
    writer, reader = anyipc.pair("pipe://")
    yield writer, reader
    writer.close()
    reader.close()


@pytest.fixture(params=["private descriptor", "no /proc"])
def sending_ends(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[anyipc.Channel, anyipc.Channel]]:
    """A pipe's ends, sends writing their own non-blocking descriptor, or the shared blocking one.

    The second is what happens where ``/proc/self/fd`` cannot reopen the pipe.
    """
    if request.param == "no /proc":
        monkeypatch.setattr(_fdstream, "_reopen_non_blocking", lambda fd: -1)
    writer, reader = anyipc.pair("pipe://")
    yield writer, reader
    writer.close()
    reader.close()


def _fd(end: anyipc.Channel) -> int:
    fds: tuple[int, ...] = end.fds  # type: ignore[attr-defined]
    assert len(fds) == 1
    return fds[0]


def _read_until_end(reader: anyipc.Channel, timeout: float = 10) -> bytes:
    data = bytearray()
    while True:
        try:
            data += reader.recv(timeout=timeout)
        except anyipc.EndOfChannel:
            return bytes(data)


def test_the_first_end_writes_and_the_second_reads(ends) -> None:
    writer, reader = ends
    assert (writer.can_send, writer.can_recv, reader.can_send, reader.can_recv) == (
        True,
        False,
        False,
        True,
    )
    writer.send(b"through the pipe")
    assert reader.recv(timeout=5) == b"through the pipe"


def test_each_end_names_its_descriptor(ends) -> None:
    for end in ends:
        fd = _fd(end)
        assert end.address == f"pipe://fd/{fd}"
        assert end.peer is None
        assert not os.get_inheritable(fd), "created close-on-exec: only pass_fds hands it on"
        assert os.get_blocking(fd), "blocking mode, for a child that is not anyipc"
    assert ends[1].fileno() == _fd(ends[1])


def test_the_wrong_direction_is_not_supported_at_once(ends) -> None:
    writer, reader = ends
    started = time.monotonic()
    with pytest.raises(anyipc.NotSupported, match="supports send, not recv"):
        writer.recv(timeout=5)
    with pytest.raises(anyipc.NotSupported, match="supports recv, not send"):
        reader.send(b"x", timeout=5)
    assert time.monotonic() - started < 0.5


def test_the_end_of_the_writer_is_the_end_of_the_channel_after_all_data(ends) -> None:
    writer, reader = ends
    writer.send(b"last words")
    writer.close()
    assert _read_until_end(reader) == b"last words"
    with pytest.raises(anyipc.EndOfChannel):
        reader.recv(timeout=5)


def test_a_recv_timeout_is_honoured_and_the_channel_stays_usable(ends) -> None:
    writer, reader = ends
    started = time.monotonic()
    with pytest.raises(anyipc.Timeout):
        reader.recv(timeout=0.2)
    assert time.monotonic() - started >= 0.2
    writer.send(b"after the timeout")
    assert reader.recv(timeout=5) == b"after the timeout"
    assert os.get_blocking(_fd(reader))


def test_close_from_another_thread_wakes_a_blocked_recv(ends) -> None:
    _, reader = ends
    outcome: list[BaseException] = []

    def blocked() -> None:
        try:
            reader.recv(timeout=10)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=blocked)
    thread.start()
    time.sleep(0.1)
    started = time.monotonic()
    reader.close()
    thread.join(5)
    assert not thread.is_alive()
    assert time.monotonic() - started < 2
    assert isinstance(outcome[0], anyipc.ChannelClosed)
    assert not isinstance(outcome[0], anyipc.EndOfChannel)


def test_a_full_pipe_times_out_after_filling_it_and_loses_nothing(sending_ends) -> None:
    writer, reader = sending_ends
    payload = os.urandom(1 << 20)
    with pytest.raises(anyipc.Timeout) as caught:
        writer.send(payload, timeout=0.2)
    sent = caught.value.sent
    capacity = fcntl.fcntl(_fd(writer), fcntl.F_GETPIPE_SZ)
    assert sent == capacity, "sends fill the whole pipe before timing out"
    writer.close()
    assert _read_until_end(reader) == payload[:sent]


def test_a_large_send_to_a_slow_reader_times_out_on_time_and_loses_nothing(sending_ends) -> None:
    writer, reader = sending_ends
    payload = os.urandom(1 << 20)
    received = bytearray()

    def slow_reader() -> None:  # 4 KiB every 5 ms at most: over a second for all of it
        buffer = bytearray(4096)
        with contextlib.suppress(anyipc.EndOfChannel):
            while True:
                received.extend(buffer[: reader.recv_into(buffer, timeout=10)])
                time.sleep(0.005)

    thread = threading.Thread(target=slow_reader)
    thread.start()
    started = time.monotonic()
    try:
        with pytest.raises(anyipc.Timeout) as caught:
            writer.send(payload, timeout=0.3)
        elapsed = time.monotonic() - started
    finally:
        writer.close()
        thread.join(10)
    assert 0.3 <= elapsed < 1.0
    assert 0 < caught.value.sent < len(payload)
    assert bytes(received) == payload[: caught.value.sent], "exactly what it says it sent"


def test_close_from_another_thread_wakes_a_blocked_large_send(sending_ends) -> None:
    writer, reader = sending_ends
    payload = os.urandom(1 << 20)
    closer = threading.Timer(0.2, writer.close)  # by then the pipe is full and the send waits
    closer.start()
    started = time.monotonic()
    try:
        with pytest.raises(anyipc.ChannelClosed):
            writer.send(payload, timeout=10)
    finally:
        closer.join(5)
    assert time.monotonic() - started < 2
    capacity = fcntl.fcntl(_fd(reader), fcntl.F_GETPIPE_SZ)
    # The end follows the data: no descriptor of the write end stayed open.
    assert _read_until_end(reader) == payload[:capacity]


def _open_on(fd: int) -> int:
    """How many descriptors of this process are open on the pipe of ``fd`` (either end)."""
    pipe = os.fstat(fd)
    count = 0
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            count += os.path.samestat(os.stat(f"/proc/self/fd/{name}"), pipe)
    return count


def test_sends_write_a_private_descriptor_and_leave_the_shared_one_as_it_was(ends) -> None:
    writer, reader = ends
    flags = fcntl.fcntl(_fd(writer), fcntl.F_GETFL)
    assert _open_on(_fd(reader)) == 2
    writer.send(b"first ")
    writer.send(b"second")
    assert _open_on(_fd(reader)) == 3, "the first send opened one more, the second none"
    assert fcntl.fcntl(_fd(writer), fcntl.F_GETFL) == flags, "still blocking, for a child"
    assert writer.fds == (_fd(writer),), "children are handed the original alone"
    writer.close()
    assert _open_on(_fd(reader)) == 1, "closing the end closed both"
    assert _read_until_end(reader) == b"first second"


def test_wait_reports_the_read_end_once_data_is_there(ends) -> None:
    writer, reader = ends
    assert anyipc.wait([reader], timeout=0.05) == []
    writer.send(b"ready")
    assert anyipc.wait([reader], timeout=5) == [reader]


# -- adopting descriptors -------------------------------------------------------------------
def test_connect_adopts_either_end_by_its_access_mode() -> None:
    read_fd, write_fd = os.pipe()
    os.set_inheritable(write_fd, True)
    with anyipc.connect(f"pipe://fd/{write_fd}") as writer:
        with anyipc.connect(f"pipe://fd/{read_fd}") as reader:
            assert writer.can_send and not writer.can_recv
            assert reader.can_recv and not reader.can_send
            assert not os.get_inheritable(write_fd), "an adopted end is close-on-exec again"
            writer.send(b"adopted")
            assert reader.recv(timeout=5) == b"adopted"
    for fd in (read_fd, write_fd):
        with pytest.raises(OSError):
            os.fstat(fd)  # closing the channel closed the adopted descriptor


def test_adopting_a_descriptor_that_is_not_open_is_connection_lost() -> None:
    read_fd, write_fd = os.pipe()
    os.close(read_fd)
    os.close(write_fd)
    with pytest.raises(anyipc.ConnectionLost, match="not open in this process.*pass_fds"):
        anyipc.connect(f"pipe://fd/{write_fd}")


def test_adopting_something_else_is_refused_and_leaves_it_alone() -> None:
    with tempfile.TemporaryFile() as regular:
        os.set_inheritable(regular.fileno(), True)
        with pytest.raises(anyipc.InvalidAddress, match="is not a pipe"):
            anyipc.connect(f"pipe://fd/{regular.fileno()}")
        assert os.get_inheritable(regular.fileno())
        regular.write(b"still usable")


def test_adopting_a_fifo_opened_for_reading_and_writing_is_refused(tmp_path) -> None:
    os.mkfifo(tmp_path / "both")
    fd = os.open(tmp_path / "both", os.O_RDWR)
    try:
        with pytest.raises(anyipc.InvalidAddress, match="reading and writing"):
            anyipc.connect(f"pipe://fd/{fd}")
        os.fstat(fd)  # still open
    finally:
        os.close(fd)


@pytest.mark.parametrize(
    "location", ["fd/", "fd/-1", "fd/01", "fd/x", "5", "fd/5/6", "fd/99999999999", "/dev/fd/5"]
)
def test_malformed_addresses_are_rejected_before_any_system_call(location: str) -> None:
    with pytest.raises(anyipc.InvalidAddress, match="fd/N"):
        anyipc.connect(f"pipe://{location}")


def test_each_address_form_has_its_verb() -> None:
    with pytest.raises(anyipc.NotSupported, match="supports: pair"):
        anyipc.connect("pipe://")
    with pytest.raises(anyipc.NotSupported, match="supports: connect"):
        anyipc.pair("pipe://fd/3")


# -- hand-off to real children ----------------------------------------------------------------
def test_the_write_end_handed_to_an_anyipc_child(ends, children) -> None:
    writer, reader = ends
    child = children.python(WRITE, writer.address, "from the child", pass_fds=writer.fds)
    writer.close()  # the parent's copy goes at once
    assert _read_until_end(reader) == b"from the child"
    assert child.wait(10) == 0


def test_the_read_end_handed_to_an_anyipc_child(ends, children) -> None:
    writer, reader = ends
    child = children.python(READ_ALL, reader.address, pass_fds=reader.fds)
    reader.close()
    payload = os.urandom(1 << 20)
    writer.send(payload, timeout=10)
    writer.close()
    out, err = child.communicate(timeout=10)
    assert (child.returncode, err) == (0, b"")
    assert out == payload


def test_a_shell_writes_to_an_inherited_descriptor_by_its_number(ends, children) -> None:
    bash = shutil.which("bash")  # dash redirects descriptors 0-9 only; pipes get higher numbers
    if bash is None:
        pytest.skip("bash is not installed")
    writer, reader = ends
    child = children.run([bash, "-c", f"echo hi >&{_fd(writer)}"], pass_fds=writer.fds)
    writer.close()
    assert _read_until_end(reader) == b"hi\n"
    assert child.wait(10) == 0


def test_cat_reads_an_inherited_read_end_in_blocking_mode(ends, children) -> None:
    writer, reader = ends
    child = children.run(["cat"], stdin=_fd(reader))  # shares the open file description
    reader.close()
    time.sleep(0.2)  # cat is now reading an empty pipe: a non-blocking one would fail it (EAGAIN)
    payload = b"meow\n" * 20000
    writer.send(payload, timeout=10)
    writer.close()
    out, err = child.communicate(timeout=10)
    assert (child.returncode, err) == (0, b"")
    assert out == payload


def test_a_shell_writes_to_an_inherited_write_end(ends, children) -> None:
    writer, reader = ends
    child = children.run(["sh", "-c", "sleep 0.2; echo hi"], stdout=_fd(writer))
    writer.close()
    assert _read_until_end(reader) == b"hi\n"
    assert child.wait(10) == 0


def test_a_reader_that_goes_away_is_connection_lost_for_the_writer(ends, children) -> None:
    writer, reader = ends
    child = children.run(["head", "-c", "5"], stdin=_fd(reader))
    reader.close()
    writer.send(b"hello", timeout=5)
    out, _ = child.communicate(timeout=10)
    assert out == b"hello"
    with pytest.raises(anyipc.ConnectionLost, match="nobody reads"):
        writer.send(b" and more", timeout=5)


SIGPIPE_AT_DEFAULT = """
import signal, threading, anyipc
signal.signal(signal.SIGPIPE, signal.SIG_DFL)
outcomes = []

def attempt():
    writer, reader = anyipc.pair("pipe://")
    reader.close()
    try:
        writer.send(b"into the void", timeout=5)
    except anyipc.ConnectionLost:
        outcomes.append("lost")
    finally:
        writer.close()

attempt()
thread = threading.Thread(target=attempt)
thread.start()
thread.join()
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGPIPE})  # the host blocks it itself
attempt()
assert signal.SIGPIPE in signal.pthread_sigmask(signal.SIG_BLOCK, set()), "mask restored"
assert not signal.sigpending(), "no SIGPIPE left pending"
print(" ".join(outcomes), "alive")
"""


def test_sigpipe_at_its_default_never_kills_the_writer(children) -> None:
    child = children.python(SIGPIPE_AT_DEFAULT)
    out, err = child.communicate(timeout=20)
    assert child.returncode == 0, f"the child died: {child.returncode} {err.decode()}"
    assert out.split() == [b"lost", b"lost", b"lost", b"alive"]


MID_MESSAGE = """
import sys, anyipc
with anyipc.connect(sys.argv[1]) as end:
    end.send(b"whole", timeout=10)
    print("sent", flush=True)
    end.send(b"x" * (8 << 20), timeout=60)  # nobody reads yet: blocks mid-message
"""


def _queued(fd: int) -> int:
    return int.from_bytes(fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"), "little")


def test_a_writer_killed_mid_message_never_delivers_part_of_it(children) -> None:
    writer, reader = anyipc.pair("framed+pipe://")
    with writer, reader:
        assert writer.address == f"framed+pipe://fd/{_fd(writer)}"
        child = children.python(MID_MESSAGE, writer.address, pass_fds=writer.fds)
        writer.close()
        assert child.stdout is not None and child.stdout.readline() == b"sent\n"
        capacity = fcntl.fcntl(_fd(reader), fcntl.F_GETPIPE_SZ)
        deadline = time.monotonic() + 10
        while _queued(_fd(reader)) < capacity - 4096 and time.monotonic() < deadline:
            time.sleep(0.01)  # until the child is stuck inside the big message
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        assert reader.recv(timeout=5) == b"whole"
        started = time.monotonic()
        with pytest.raises(anyipc.ConnectionLost, match="truncated frame"):
            reader.recv(timeout=5)
        assert time.monotonic() - started < 2
