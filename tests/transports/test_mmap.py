"""mmap://: ring files that outlive both ends, and what the next listener gets from them.

Recovery and ``sync`` run in both ring protocols, and a file is recovered
whichever protocol wrote it.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import anyipc
from anyipc._shmlock import LOCK_FREE_PROTOCOL, LOCKED_PROTOCOL

from .conftest import Children

PROTOCOLS = [LOCK_FREE_PROTOCOL, LOCKED_PROTOCOL]

pytestmark = pytest.mark.skipif(
    anyipc.transports()["mmap"].unavailable is not None, reason="mmap:// is unavailable"
)

LISTENER = """
import sys, anyipc
listener = anyipc.listen(sys.argv[1])
print("listening", flush=True)
sys.stdin.read()
"""

CLIENT = """
import sys, anyipc
channel = anyipc.connect(sys.argv[1])
for number in range(int(sys.argv[2])):
    channel.send(b"message %d" % number)
if sys.argv[3] == "close":
    channel.close()
print("sent", flush=True)
sys.stdin.read()
"""


@pytest.fixture
def directory(tmp_path: Path) -> Iterator[str]:
    path = tmp_path / "inbox"
    yield str(path)
    assert not path.exists(), "the directory the listener made is still there"


def start(children: Children, code: str, *args: str) -> subprocess.Popen[bytes]:
    child = children.python(code, *args, stdin=subprocess.PIPE)
    assert child.stdout is not None
    child.stdout.readline()
    return child


def kill(*processes: subprocess.Popen[bytes]) -> None:
    for process in processes:
        process.send_signal(signal.SIGKILL)
        process.wait(10)


@pytest.mark.parametrize(
    ("how", "end", "written", "read"),
    [
        ("crash", anyipc.ConnectionLost, LOCK_FREE_PROTOCOL, LOCK_FREE_PROTOCOL),
        ("close", anyipc.EndOfChannel, LOCK_FREE_PROTOCOL, LOCK_FREE_PROTOCOL),
        ("crash", anyipc.ConnectionLost, LOCKED_PROTOCOL, LOCKED_PROTOCOL),
        ("close", anyipc.EndOfChannel, LOCKED_PROTOCOL, LOCK_FREE_PROTOCOL),
        ("crash", anyipc.ConnectionLost, LOCK_FREE_PROTOCOL, LOCKED_PROTOCOL),
    ],
)
def test_what_a_client_sent_survives_the_death_of_both_ends(
    directory: str, children: Children, how: str, end: type[Exception], written: str, read: str
) -> None:
    uri = f"mmap://{directory}?protocol={written}"
    listener = start(children, LISTENER, uri)
    client = start(children, CLIENT, uri, "100", how)
    kill(listener, client)
    assert len([name for name in os.listdir(directory) if name.endswith(".ring")]) == 1
    with (
        anyipc.listen(f"mmap://{directory}?protocol={read}") as again,
        again.accept(timeout=5) as recovered,
    ):
        for number in range(100):
            assert recovered.recv(timeout=5) == b"message %d" % number
        with pytest.raises(end):
            recovered.recv(timeout=5)


def test_a_live_clients_file_is_never_taken(directory: str, children: Children) -> None:
    uri = f"mmap://{directory}"
    listener = start(children, LISTENER, uri)
    client = start(children, CLIENT, uri, "3", "keep")
    kill(listener)
    with anyipc.listen(uri) as again:
        with pytest.raises(anyipc.Timeout):
            again.accept(timeout=0.5)
    assert [name for name in os.listdir(directory) if name.endswith(".ring")], "a live file went"
    kill(client)
    with anyipc.listen(uri) as last, last.accept(timeout=5) as recovered:
        assert recovered.recv(timeout=5) == b"message 0"


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_sync_writes_each_message_back_and_still_delivers_it(directory: str, protocol: str) -> None:
    uri = f"mmap://{directory}?sync=true&protocol={protocol}"
    with anyipc.listen(uri) as listener:
        with anyipc.connect(listener.address) as client, listener.accept(timeout=5) as server:
            client.send(b"durable")
            assert server.recv(timeout=5) == b"durable"
            server.send(b"reply")
            assert client.recv(timeout=5) == b"reply"


def test_the_directory_is_made_owner_only_and_removed_with_the_last_end(directory: str) -> None:
    listener = anyipc.listen(f"mmap://{directory}")
    assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
    client = anyipc.connect(listener.address)
    server = listener.accept(timeout=5)
    ring = [name for name in os.listdir(directory) if name.endswith(".ring")]
    assert [stat.S_IMODE(os.stat(os.path.join(directory, name)).st_mode) for name in ring] == [
        0o600
    ]
    listener.close()
    assert os.path.isdir(directory), "the listener removed a directory its connections use"
    client.close()
    server.close()


def test_a_directory_the_user_made_is_kept(tmp_path: Path) -> None:
    with anyipc.listen(f"mmap://{tmp_path}") as listener:
        with anyipc.connect(listener.address), listener.accept(timeout=5):
            pass
    assert tmp_path.is_dir() and os.listdir(tmp_path) == []


def test_a_file_in_the_way_is_invalid_address(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(anyipc.InvalidAddress, match="not a directory"):
        anyipc.listen(f"mmap://{tmp_path / 'file'}")
