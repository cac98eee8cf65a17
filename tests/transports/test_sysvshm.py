"""sysvshm://: SysV segments per connection, the backlog, and what a killed listener leaves.

What passes through the backlog and the reclaiming runs in both ring protocols.
"""

from __future__ import annotations

import signal
import subprocess

import pytest

import anyipc
from anyipc._shmlock import LOCK_FREE_PROTOCOL, LOCKED_PROTOCOL

from .conftest import Children

both_protocols = pytest.mark.parametrize("protocol", [LOCK_FREE_PROTOCOL, LOCKED_PROTOCOL])

pytestmark = pytest.mark.skipif(
    anyipc.transports()["sysvshm"].unavailable is not None, reason="sysvshm:// is unavailable"
)


def segments() -> dict[int, tuple[str, int]]:
    """shmid -> (octal perms, nattch) of this machine's IPC_PRIVATE segments."""
    with open("/proc/sysvipc/shm") as table:
        rows = [line.split() for line in table.readlines()[1:]]
    return {int(row[1]): (row[2], int(row[6])) for row in rows if row[0] == "0"}


@both_protocols
def test_a_client_may_send_and_close_before_it_is_accepted(protocol: str) -> None:
    with anyipc.listen(f"sysvshm://?protocol={protocol}") as listener:
        with anyipc.connect(listener.address) as client:
            client.send(b"sent before accept")
        with listener.accept(timeout=5) as server:
            assert server.recv(timeout=5) == b"sent before accept"
            with pytest.raises(anyipc.EndOfChannel):
                server.recv(timeout=5)


def test_a_segment_is_created_with_exactly_its_mode() -> None:
    with anyipc.listen("sysvshm://?mode=640") as listener:
        before = segments()
        with anyipc.connect(f"{listener.address}?mode=640"), listener.accept(timeout=5):
            made = {shmid: row for shmid, row in segments().items() if shmid not in before}
            assert [perms for perms, _ in made.values()] == ["1640"], made  # 1: marked for removal


@both_protocols
def test_a_closing_listener_removes_the_segments_of_clients_it_never_accepted(
    protocol: str,
) -> None:
    listener = anyipc.listen(f"sysvshm://?protocol={protocol}")
    client = anyipc.connect(listener.address)
    client.send(b"never read")
    client.close()
    listener.close()  # the leak check after the test finds no segment (or lock file) left


@both_protocols
def test_the_next_listen_reclaims_what_a_killed_listener_left(
    children: Children, protocol: str
) -> None:
    owner = children.python(
        "import sys, anyipc\n"
        "listener = anyipc.listen(sys.argv[1])\n"
        "print(listener.address, flush=True)\n"
        "sys.stdin.read()\n",
        f"sysvshm://?protocol={protocol}",
        stdin=subprocess.PIPE,
    )
    assert owner.stdout is not None
    uri = owner.stdout.readline().decode().strip()
    with anyipc.listen(f"sysvshm://?protocol={protocol}") as bystander:
        before = segments()
        for address in (uri, bystander.address):
            with anyipc.connect(address) as client:
                client.send(b"left behind")
        left = [shmid for shmid in segments() if shmid not in before]
        assert len(left) == 2, "each unaccepted client leaves its segment for the listener"
        owner.send_signal(signal.SIGKILL)
        owner.wait(10)
        with anyipc.listen(uri):
            remaining = [shmid for shmid in left if shmid in segments()]
        assert len(remaining) == 1, "the dead listener's segment was not the only one removed"
    assert remaining[0] not in segments(), "closing the bystander removes its client's segment"
