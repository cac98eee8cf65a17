"""Every named object is its owner's alone by default, widened only on request, never wider (§6 P4).

Three checks, over every named transport (socket files of the three unix
schemes, FIFOs, POSIX and SysV queues with their owner files and rosters
of senders, shared-memory segments of the three shm schemes and the mmap
directory and ring files):

* the default: each object has mode ``600`` (directories ``700``), made
  under umask 0, so nothing relies on a umask to narrow it;
* a widened ``mode=660``: exactly that (and what follows from it for the
  companion files), under umask ``077``, which must not narrow it;
* never wider on the way: the process that makes them all is traced
  (``strace``, umask 0), and every mode each object had, from the call that
  created it through every later ``chmod``, is within the mode it ended
  with.  A socket file bound before its mode is set, or a directory made
  ``777`` and narrowed afterwards, fails this.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import posix_ipc
import pytest
import sysv_ipc

import anyipc
from anyipc._owner import lock_path
from anyipc._senders import roster_path

from ._access import PEERS
from ._mode_trace import TRACED, mode_histories, wider_than_final
from .conftest import figure

ROUNDS = figure(1, 20)  #: times the traced process makes every object, per mode

DEFAULT = {
    "unix socket file": 0o600,
    "unix-seqpacket socket file": 0o600,
    "unix-dgram socket file": 0o600,
    "fifo": 0o600,
    "posixmq queue": 0o600,
    "posixmq owner file": 0o600,
    "posixmq roster": 0o700,
    "sysvmq queue": 0o600,
    "sysvmq owner file": 0o600,
    "sysvmq roster": 0o700,
    "shm segment": 0o600,
    "sysvshm segment": 0o600,
    "mmap directory": 0o700,
    "mmap ring file": 0o600,
}
WIDENED = {  # mode=660: the group may connect and send
    **{what: 0o660 for what in DEFAULT},
    "posixmq owner file": 0o640,  # the group may check that the owner lives
    "sysvmq owner file": 0o640,
    "posixmq roster": 0o1730,  # the group may enrol, and remove only its own tickets
    "sysvmq roster": 0o1730,
    "shm segment": 0o600,  # passed by descriptor: mode says who may connect, not who maps
    "mmap directory": 0o730,  # the group may make its ring files there
}


@contextlib.contextmanager
def _umask(mask: int) -> Iterator[None]:
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


def _mode(path: str | Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def _location(endpoint: anyipc.Listener | anyipc.Channel) -> str:
    assert endpoint.address is not None
    return anyipc.Address.parse_syntax(endpoint.address).location


def _posix_queue_mode(name: str) -> int:
    queue = posix_ipc.MessageQueue("/" + name)
    try:
        return stat.S_IMODE(os.fstat(queue.mqd).st_mode)
    finally:
        queue.close()


def _shm_segment_modes() -> list[int]:
    """The modes of the POSIX segments this process has mapped (their names are gone)."""
    modes = []
    with open("/proc/self/maps") as maps:
        for line in maps:
            if "/dev/shm/anyipc-shm." in line:
                span = line.split()[0]
                modes.append(stat.S_IMODE(os.stat(f"/proc/self/map_files/{span}").st_mode))
    return modes


def _sysv_segment_modes() -> list[int]:
    """The modes of the SysV segments this process created (``/proc/sysvipc/shm``)."""
    with open("/proc/sysvipc/shm") as table:
        rows = [line.split() for line in table.readlines()[1:]]
    # columns: key shmid perms size cpid ...; perms also has SHM_DEST (01000) once marked
    return [int(row[2], 8) & 0o777 for row in rows if int(row[4]) == os.getpid()]


def _made(directory: Path, options: dict[str, str]) -> dict[str, int]:
    """Make one object of every kind with ``options``, and return the mode of each."""
    modes: dict[str, int] = {}
    with contextlib.ExitStack() as stack:

        def opened(verb: str, uri: str) -> anyipc.Listener | anyipc.Channel:
            return stack.enter_context(getattr(anyipc, verb)(uri, **options))

        for scheme, verb in (
            ("unix", "listen"),
            ("unix-seqpacket", "listen"),
            ("unix-dgram", "bind"),
        ):
            path = _location(opened(verb, f"{scheme}://{directory}/{scheme}.sock"))
            modes[f"{scheme} socket file"] = _mode(path)
        modes["fifo"] = _mode(_location(opened("bind", f"fifo://{directory}/pipe.fifo")))
        for scheme in ("posixmq", "sysvmq"):
            location = _location(opened("bind", f"{scheme}://?end=senders"))
            stack.enter_context(anyipc.connect(f"{scheme}://{location}"))  # enrols a sender
            name = location if scheme == "posixmq" else f"{int(location, 0):08x}"
            modes[f"{scheme} owner file"] = _mode(lock_path(scheme, name))
            modes[f"{scheme} roster"] = _mode(roster_path(scheme, name))
            if scheme == "posixmq":
                modes["posixmq queue"] = _posix_queue_mode(location)
            else:
                modes["sysvmq queue"] = sysv_ipc.MessageQueue(int(location, 0)).mode & 0o7777
        for scheme, where in (("shm", ""), ("sysvshm", ""), ("mmap", f"{directory}/rings")):
            listener = opened("listen", f"{scheme}://{where}")
            assert isinstance(listener, anyipc.Listener)
            stack.enter_context(anyipc.connect(listener.address, **options))  # makes the segment
            stack.enter_context(listener.accept(timeout=10))
        (modes["shm segment"],) = set(_shm_segment_modes())
        (modes["sysvshm segment"],) = set(_sysv_segment_modes())
        rings = directory / "rings"
        modes["mmap directory"] = _mode(rings)
        (modes["mmap ring file"],) = {_mode(ring) for ring in rings.glob("*.ring")}
    return modes


@pytest.fixture
def directory() -> Iterator[Path]:
    path = Path(f"/tmp/anyipc-modes-{secrets.token_hex(4)}")
    path.mkdir(mode=0o700)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_every_object_is_its_owner_s_alone_by_default(directory: Path) -> None:
    with _umask(0):
        assert _made(directory, {}) == DEFAULT


def test_a_widened_mode_is_exactly_what_was_asked(directory: Path) -> None:
    with _umask(0o077):
        assert _made(directory, {"mode": "660"}) == WIDENED


def _plan(directory: Path, mode: str) -> list[tuple[str, str]]:
    """What the traced process opens: one object of every kind, with ``mode``."""
    tag = secrets.token_hex(4)
    key = f"{secrets.randbelow(0xFFFFFFF) + 1:#x}"
    query = f"mode={mode}"
    plan = [
        ("listen", f"unix://{directory}/{tag}.sock?{query}"),
        ("listen", f"unix-seqpacket://{directory}/{tag}.packets?{query}"),
        ("bind", f"unix-dgram://{directory}/{tag}.datagrams?{query}"),
        ("bind", f"fifo://{directory}/{tag}.fifo?{query}"),
        ("bind", f"posixmq://anyipc-modes-{tag}?end=senders&{query}"),
        ("connect", f"posixmq://anyipc-modes-{tag}"),
        ("bind", f"sysvmq://{key}?end=senders&{query}"),
        ("connect", f"sysvmq://{key}"),
    ]
    for scheme, name in (("shm", f"modes-{tag}"), ("sysvshm", key), ("mmap", f"{directory}/{tag}")):
        plan += [
            ("listen", f"{scheme}://{name}?{query}"),
            ("connect", f"{scheme}://{name}?{query}"),
        ]
        plan.append(("accept", ""))
    return plan


def _kind(key: str) -> str | None:
    """Which kind of object the trace key ``key`` names (``None``: not one of anyipc's)."""
    kinds = (
        (".sock", "unix socket file"),
        (".packets", "unix-seqpacket socket file"),
        (".datagrams", "unix-dgram socket file"),
        (".fifo", "fifo"),
        (".owner", "owner file"),
        (".senders", "roster"),
        (".ring", "mmap ring file"),
    )
    for suffix, kind in kinds:
        if key.endswith(suffix) and "/.anyipc-" not in key:
            return kind
    if key.startswith("mq:anyipc-modes-"):
        return "posixmq queue"
    if key.startswith("msg:"):
        return "sysvmq queue"
    if key.startswith("shm:"):
        return "sysvshm segment"
    if key.startswith("/dev/shm/anyipc-shm.modes-"):
        return "shm segment"
    if re.fullmatch(r"/tmp/anyipc-modes-[0-9a-f]+/[0-9a-f]+", key):
        return "mmap directory"
    return None


def test_no_object_is_ever_wider_than_the_mode_it_ends_with(directory: Path) -> None:
    if shutil.which("strace") is None:
        pytest.skip("strace is not installed")
    directory.chmod(0o755)
    rounds = [_plan(directory, mode) for _ in range(ROUNDS) for mode in ("600", "660")]
    trace = directory / "trace"
    command = ["strace", "-qq", "-o", str(trace), "-e", f"trace={TRACED}"]
    run = subprocess.run(
        [*command, sys.executable, str(PEERS), "opener", json.dumps(rounds)],
        capture_output=True,
        timeout=120,
    )
    if run.returncode and b"ptrace" in run.stderr:
        pytest.skip(f"strace cannot trace here: {run.stderr.decode().strip()}")
    assert run.returncode == 0, run.stderr.decode()
    histories, untracked = mode_histories(trace.read_text().splitlines())
    assert not untracked, f"modes changed through descriptors the replay cannot follow: {untracked}"
    assert not wider_than_final(histories)
    finals: dict[str, set[int]] = {}
    for key, history in histories.items():
        kind = _kind(key)
        if kind is not None:
            finals.setdefault(kind, set()).add(history[-1][0])
    expected = {
        "unix socket file": {0o600, 0o660},
        "unix-seqpacket socket file": {0o600, 0o660},
        "unix-dgram socket file": {0o600, 0o660},
        "fifo": {0o600, 0o660},
        "owner file": {0o600, 0o640},
        "roster": {0o700, 0o1730},
        "posixmq queue": {0o600, 0o660},
        "sysvmq queue": {0o600, 0o660},
        "sysvshm segment": {0o600, 0o660},
        "shm segment": {0o600},
        "mmap directory": {0o700, 0o730},
        "mmap ring file": {0o600, 0o660},
    }
    assert finals == expected  # every kind was seen made, and ended as asked


def test_the_replay_catches_an_object_that_was_wider_for_a_moment() -> None:
    """The check above can fail: a socket bound before its mode is set, a directory narrowed."""
    trace = [
        "socket(AF_UNIX, SOCK_STREAM|SOCK_CLOEXEC, 0) = 3",
        'bind(3, {sa_family=AF_UNIX, sun_path="/tmp/late.sock"}, 16) = 0',
        'chmod("/tmp/late.sock", 0600) = 0',
        "socket(AF_UNIX, SOCK_STREAM|SOCK_CLOEXEC, 0) = 4",
        "fchmod(4, 0600) = 0",
        'bind(4, {sa_family=AF_UNIX, sun_path="/tmp/early.sock"}, 17) = 0',
        'mkdir("/tmp/wide", 0777) = 0',
        'chmod("/tmp/wide", 0700) = 0',
        'openat(AT_FDCWD, "/tmp/narrow", O_RDWR|O_CREAT|O_EXCL|O_CLOEXEC, 0400) = 5',
        "fchmod(5, 0640) = 0",
    ]
    histories, untracked = mode_histories(trace)
    assert not untracked
    assert set(wider_than_final(histories)) == {"/tmp/late.sock", "/tmp/wide"}
    assert histories["/tmp/narrow"] == [(0o400, "openat"), (0o640, "fchmod")]
