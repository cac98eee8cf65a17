"""fifo:// specifics: permissions, removal, never stealing, the end of all writers, atomicity."""

from __future__ import annotations

import contextlib
import os
import stat
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import anyipc

WRITERS = 4
MESSAGES = 150


@contextlib.contextmanager
def _umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def _identity(path: Path) -> tuple[int, int]:
    info = os.lstat(path)
    return info.st_dev, info.st_ino


@pytest.fixture
def path(short_dir: Path) -> Path:
    return short_dir / "f.fifo"


# -- the file ------------------------------------------------------------------------------
@pytest.mark.parametrize("umask", [0, 0o022, 0o777])
def test_bind_creates_a_fifo_only_the_owner_may_open(path: Path, umask: int) -> None:
    with _umask(umask), anyipc.bind(f"fifo://{path}") as reader:
        assert stat.S_ISFIFO(os.lstat(path).st_mode)
        assert _mode(path) == 0o600
        assert reader.address == f"fifo://{path}"
        assert reader.can_recv and not reader.can_send
    assert not path.exists(), "close removes the FIFO"


@pytest.mark.parametrize("mode", ["620", "622", "666", "0660"])
def test_the_mode_option_gives_exactly_its_bits(path: Path, mode: str) -> None:
    with _umask(0o077), anyipc.bind(f"fifo://{path}?mode={mode}"):
        assert _mode(path) == int(mode, 8)


@pytest.mark.parametrize(("mode", "problem"), [("400", "include 600"), ("9", "octal")])
def test_a_bad_mode_is_refused_before_anything_is_created(
    path: Path, mode: str, problem: str
) -> None:
    with pytest.raises(anyipc.InvalidAddress, match=problem):
        anyipc.bind(f"fifo://{path}?mode={mode}")
    assert not list(path.parent.iterdir())


def test_close_leaves_a_successor_alone(path: Path) -> None:
    reader = anyipc.bind(f"fifo://{path}")
    os.unlink(path)
    os.mkfifo(path)  # someone else's FIFO now
    reader.close()
    assert stat.S_ISFIFO(os.lstat(path).st_mode)


def test_bind_leaves_no_temporary_file_behind(path: Path) -> None:
    with anyipc.bind(f"fifo://{path}"):
        assert [p.name for p in path.parent.iterdir()] == [path.name]
        with pytest.raises(anyipc.AddressInUse):
            anyipc.bind(f"fifo://{path}")
        assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_bind_in_a_missing_directory_is_an_invalid_address(short_dir: Path) -> None:
    with pytest.raises(anyipc.InvalidAddress, match="No such file"):
        anyipc.bind(f"fifo://{short_dir}/missing/f.fifo")


@pytest.mark.parametrize("location", ["relative/f", "", "/tmp/dir/", "/tmp/a%00b"])
def test_malformed_addresses_are_rejected(location: str) -> None:
    with pytest.raises(anyipc.InvalidAddress):
        anyipc.bind(f"fifo://{location}")


# -- never stealing --------------------------------------------------------------------------
def test_a_live_fifo_is_in_use_and_its_reader_is_not_disturbed(path: Path) -> None:
    with anyipc.bind(f"fifo://{path}") as reader:
        before = _identity(path)
        with pytest.raises(anyipc.AddressInUse, match="an anyipc reader"):
            anyipc.bind(f"fifo://{path}")
        assert _identity(path) == before
        with pytest.raises(anyipc.Timeout):
            reader.recv(timeout=0.2)  # the probe did not look like a writer that came and went
        with anyipc.connect(reader.address) as writer:
            writer.send(b"still mine")
        assert reader.recv(timeout=5) == b"still mine"


OTHER_READER = """
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_NONBLOCK)
print("reading", flush=True)
sys.stdin.read()
"""


def test_a_fifo_another_program_reads_is_in_use(path: Path, children) -> None:
    os.mkfifo(path, 0o600)
    before = _identity(path)
    child = children.python(OTHER_READER, str(path), stdin=subprocess.PIPE)
    assert child.stdout.readline() == b"reading\n"
    with pytest.raises(anyipc.AddressInUse, match="another program reads it"):
        anyipc.bind(f"fifo://{path}")
    assert _identity(path) == before
    child.communicate(b"", timeout=10)
    os.unlink(path)


def test_a_stale_fifo_is_reclaimed(path: Path) -> None:
    os.mkfifo(path, 0o644)  # nobody reads it
    with anyipc.bind(f"fifo://{path}") as reader:
        assert _mode(path) == 0o600
        with anyipc.connect(reader.address) as writer:
            writer.send(b"reclaimed")
        assert reader.recv(timeout=5) == b"reclaimed"


KILLED_READER = """
import sys, anyipc
reader = anyipc.bind(sys.argv[1])
print("bound", flush=True)
sys.stdin.read()
"""


def test_the_fifo_of_a_killed_reader_is_reclaimed(path: Path, children) -> None:
    child = children.python(KILLED_READER, f"fifo://{path}", stdin=subprocess.PIPE)
    assert child.stdout.readline() == b"bound\n"
    with pytest.raises(anyipc.AddressInUse):
        anyipc.bind(f"fifo://{path}")
    child.kill()
    child.wait(10)
    assert path.exists(), "a killed reader leaves its FIFO behind"
    with anyipc.bind(f"fifo://{path}"):
        pass
    assert not path.exists()


@pytest.mark.parametrize("kind", ["regular file", "directory", "symbolic link"])
def test_what_is_not_a_fifo_is_never_removed(path: Path, kind: str) -> None:
    if kind == "regular file":
        path.write_bytes(b"precious")
    elif kind == "directory":
        path.mkdir()
    else:
        path.symlink_to(path.parent / "nowhere")
    with pytest.raises(anyipc.AddressInUse, match=f"not a FIFO \\(a {kind}\\)"):
        anyipc.bind(f"fifo://{path}")
    assert os.path.lexists(path)
    if kind == "regular file":
        assert path.read_bytes() == b"precious"


# -- connecting ------------------------------------------------------------------------------
def test_connect_with_nobody_reading_fails_at_once(path: Path, no_new_fds: None) -> None:
    os.mkfifo(path)
    started = time.monotonic()
    with pytest.raises(anyipc.ConnectionLost, match="nobody reads"):
        anyipc.connect(f"fifo://{path}")
    with pytest.raises(anyipc.ConnectionLost, match="no FIFO there"):
        anyipc.connect(f"fifo://{path}.missing")
    assert time.monotonic() - started < 1


def test_connect_to_what_is_not_a_fifo_writes_nothing(path: Path, no_new_fds: None) -> None:
    path.write_bytes(b"precious")
    with pytest.raises(anyipc.ConnectionLost, match="not a FIFO"):
        anyipc.connect(f"fifo://{path}")
    assert path.read_bytes() == b"precious"


@pytest.mark.skipif(os.geteuid() == 0, reason="root bypasses file permissions")
def test_connect_without_write_permission_is_permission_denied(path: Path) -> None:
    with anyipc.bind(f"fifo://{path}"):
        path.chmod(0o400)
        with pytest.raises(anyipc.PermissionDenied):
            anyipc.connect(f"fifo://{path}")


# -- the end of all writers ------------------------------------------------------------------
def test_the_reader_waits_for_a_first_writer_then_ends_with_the_last(path: Path) -> None:
    with anyipc.bind(f"fifo://{path}") as reader:
        assert anyipc.wait([reader], timeout=0.1) == []
        with pytest.raises(anyipc.Timeout):
            reader.recv(timeout=0.2)  # no writer yet: not the end
        first = anyipc.connect(reader.address)
        second = anyipc.connect(reader.address)
        assert first.peer == reader.address and first.address is None
        first.send(b"one")
        first.close()
        assert reader.recv(timeout=5) == b"one"
        with pytest.raises(anyipc.Timeout):
            reader.recv(timeout=0.2)  # a writer is still there
        second.send(b"two")
        second.close()
        assert reader.recv(timeout=5) == b"two"
        for _ in range(2):
            with pytest.raises(anyipc.EndOfChannel):
                reader.recv(timeout=5)
        with anyipc.connect(reader.address) as late:  # the FIFO outlives its writers
            late.send(b"later")
        assert reader.recv(timeout=5) == b"later"


def test_a_writer_that_sends_nothing_still_ends_the_channel(path: Path) -> None:
    with anyipc.bind(f"fifo://{path}") as reader:
        anyipc.connect(reader.address).close()
        with pytest.raises(anyipc.EndOfChannel):
            reader.recv(timeout=5)


def test_close_wakes_a_recv_waiting_for_the_first_writer(path: Path) -> None:
    reader = anyipc.bind(f"fifo://{path}")
    outcome: list[BaseException] = []

    def blocked() -> None:
        try:
            reader.recv(timeout=10)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=blocked)
    thread.start()
    time.sleep(0.1)
    reader.close()
    thread.join(5)
    assert not thread.is_alive()
    assert type(outcome[0]) is anyipc.ChannelClosed
    assert not path.exists()


SIGPIPE_WRITER = """
import signal, sys, anyipc
signal.signal(signal.SIGPIPE, signal.SIG_DFL)
with anyipc.connect(sys.argv[1]) as writer:
    print("connected", flush=True)
    sys.stdin.readline()
    try:
        writer.send(b"anyone?", timeout=5)
    except anyipc.ConnectionLost:
        print("lost")
print("alive")
"""


def test_a_writer_whose_reader_is_gone_lives_with_sigpipe_at_default(path: Path, children) -> None:
    reader = anyipc.bind(f"fifo://{path}")
    child = children.python(SIGPIPE_WRITER, reader.address, stdin=subprocess.PIPE)
    assert child.stdout.readline() == b"connected\n"
    reader.close()
    out, err = child.communicate(b"go\n", timeout=10)
    assert child.returncode == 0, f"the writer died: {child.returncode} {err.decode()}"
    assert out.split() == [b"lost", b"alive"]


# -- framed+fifo: several writers, whole messages --------------------------------------------
def test_framed_fifo_messages_fit_one_atomic_write(path: Path) -> None:
    with anyipc.bind(f"framed+fifo://{path}") as reader:
        assert reader.capabilities.max_message_size == 4096 - 4
        with anyipc.connect(reader.address) as writer:
            with pytest.raises(anyipc.MessageTooLarge):
                writer.send(b"x" * 4093)
            writer.send(b"x" * 4092)
        assert reader.recv(timeout=5) == b"x" * 4092
    with anyipc.bind(f"framed+fifo://{path}?max_message_size=100") as reader:
        assert reader.capabilities.max_message_size == 100
    with pytest.raises(anyipc.InvalidAddress, match="written atomically"):
        anyipc.bind(f"framed+fifo://{path}?max_message_size=5000")


FRAMED_WRITER = """
import random, sys, anyipc
number, count = int(sys.argv[2]), int(sys.argv[3])
generator = random.Random(number)
with anyipc.connect(sys.argv[1]) as writer:
    print("connected", flush=True)
    sys.stdin.readline()
    for sequence in range(count):
        size = generator.randrange(5, 4093)
        head = bytes([number]) + sequence.to_bytes(4, "big")
        writer.send(head + bytes([(number * 31 + sequence) % 251]) * (size - 5), timeout=30)
"""


def test_several_writer_processes_never_interleave_framed_messages(path: Path, children) -> None:
    with anyipc.bind(f"framed+fifo://{path}") as reader:
        writers = [
            children.python(
                FRAMED_WRITER, reader.address, str(n), str(MESSAGES), stdin=subprocess.PIPE
            )
            for n in range(WRITERS)
        ]
        for writer in writers:
            assert writer.stdout.readline() == b"connected\n"
        for writer in writers:  # all at once, so that their writes contend for the pipe
            writer.stdin.write(b"go\n")
            writer.stdin.flush()
        received: dict[int, list[int]] = {n: [] for n in range(WRITERS)}
        for message in reader:
            number, sequence = message[0], int.from_bytes(message[1:5], "big")
            fill = bytes([(number * 31 + sequence) % 251])
            assert message[5:] == fill * (len(message) - 5), "a message was mixed with another"
            received[number].append(sequence)
        for writer in writers:
            assert writer.wait(10) == 0
    assert received == {n: list(range(MESSAGES)) for n in range(WRITERS)}
