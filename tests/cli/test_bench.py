"""``anyipc bench``: what it measures, prints and writes, its errors, and that it cleans up.

Smoke runs only (``--quick``, tiny sizes): nothing here asserts a timing.
Each run gets a private TMPDIR, so that socket files and FIFOs left
behind, and peer processes still alive, can be told from everyone else's.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from anyipc.cli import _bench_raw_sockets
from anyipc.cli._bench import message_sizes
from anyipc.cli._bench_link import Link
from anyipc.cli._bench_measure import Settings
from anyipc.cli._bench_session import Contender, Group, Plan, Session, Stack

ANYIPC = shutil.which("anyipc", path=os.path.dirname(sys.executable)) or "anyipc"
TARGETS = ("tcp://127.0.0.1:0", "unix", "pipe://", "posixmq://")
ALTERNATIVES = {"mp.Pipe", "mp.Queue"}


def _peers_of(tmpdir: Path, grace: float = 5.0) -> list[str]:
    """Processes running with ``tmpdir`` as their TMPDIR (a bench and its peers) after ``grace``.

    ``grace`` lets helpers that end on their own (multiprocessing's resource
    tracker) go away.
    """
    marker = f"TMPDIR={tmpdir}".encode()
    deadline = time.monotonic() + grace
    while True:
        found = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            with contextlib.suppress(OSError):
                if marker in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
                    found.append(pid)
        if not found or time.monotonic() >= deadline:
            return found
        time.sleep(0.05)


def _mqueues() -> set[str]:
    try:
        return set(os.listdir("/dev/mqueue"))
    except OSError:  # not mounted here: the queues cannot be listed
        return set()


class Bench:
    """Runs ``anyipc bench`` in a scratch directory with a TMPDIR of its own."""

    def __init__(self, root: Path) -> None:
        self.cwd = root
        self.tmpdir = root / "tmp"
        self.tmpdir.mkdir()

    def __call__(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
        queues = _mqueues()
        env = {**os.environ, "TMPDIR": str(self.tmpdir)}
        result = subprocess.run(
            [ANYIPC, "bench", *args], cwd=self.cwd, env=env, capture_output=True, timeout=timeout
        )
        assert list(self.tmpdir.iterdir()) == [], "files left behind"
        assert _peers_of(self.tmpdir) == [], "peer processes left running"
        assert not {q for q in _mqueues() - queues if q.startswith("anyipc-bench")}
        return result


@pytest.fixture
def bench(tmp_path: Path, require: Callable[[str], None]) -> Bench:
    for uri in TARGETS:
        require(uri)
    return Bench(tmp_path)


def _table(stdout: bytes) -> tuple[dict[tuple[str, str], list[str]], list[str]]:
    """The main table as {(transport, size): cells}, and the lines after it."""
    lines = stdout.decode().splitlines()
    assert lines[0].split() == ["transport", "size", "latency", "median", "latency", "p99"] + [
        "messages/s",
        "MB/s",
    ]
    rows: dict[tuple[str, str], list[str]] = {}
    index = 1
    while index < len(lines) and lines[index].strip():
        name, number, unit, *cells = lines[index].split()
        if name == "raw":  # "raw tcp"
            name, number, unit, *cells = f"raw {number}", unit, *cells
        rows[(name, f"{number} {unit}")] = cells
        index += 1
    return rows, lines[index:]


def test_the_table_has_every_transport_its_raw_equivalent_and_the_ratios(bench: Bench) -> None:
    result = bench(
        "--quick", "--sizes", "64,64K", *TARGETS, "--baseline", "--json", "out.json", timeout=180
    )
    assert result.returncode == 0, result.stderr.decode()
    rows, rest = _table(result.stdout)
    names = {name for name, _ in rows}
    transports = {"tcp", "unix", "pipe", "posixmq"}
    assert transports | {f"raw {t}" for t in transports} | ALTERNATIVES <= names
    assert not [row for row, cells in rows.items() if "error" in cells], rows
    posixmq_too_large = rows[("posixmq", "64 KiB")] + rows[("raw posixmq", "64 KiB")]
    assert set(posixmq_too_large) == {"\u2013"}  # above its largest message: skipped
    assert any("ratios" in line for line in rest)
    header = next(line for line in rest if line.startswith("transport"))
    assert header.split()[:4] == ["transport", "size", "vs", "raw"]
    assert "vs mp.Pipe" in header and "vs mp.Queue" in header
    ratios = {tuple(line.split()[:3]): line.split()[3:] for line in rest[rest.index(header) + 1 :]}
    for transport in transports:
        latency, slash, throughput = ratios[(transport, "64", "B")][:3]
        assert slash == "/" and float(latency) > 0 and float(throughput) > 0

    document = json.loads((bench.cwd / "out.json").read_text())
    results = {entry["name"]: entry for entry in document["results"]}
    assert results["tcp"]["group"] == "anyipc" and results["raw tcp"]["group"] == "raw"
    assert results["mp.Queue"]["group"] == "alternative"
    assert document["settings"]["sizes"] == [64, 65536]
    skipped = results["posixmq"]["points"][1]
    assert skipped["size"] == 65536 and "largest message" in skipped["skipped"]
    assert any(r["transport"] == "unix" and r["against"] == "raw" for r in document["ratios"])


def test_batches_views_and_memcpy(bench: Bench, require: Callable[[str], None]) -> None:
    require("shm://")
    args = ("--quick", "--sizes", "64,64K", "shm", "--baseline", "--batch", "16", "--zero-copy")
    result = bench(*args, "--json", "out.json", timeout=180)
    assert result.returncode == 0, result.stderr.decode()
    note, *table = result.stdout.decode().splitlines(keepends=True)
    assert note.startswith("measured with throughput in batches of up to 16 messages")
    assert "zero-copy receive" in note
    rows, rest = _table("".join(table).encode())
    assert not [row for row, cells in rows.items() if "error" in cells], rows
    assert rows[("memcpy", "64 KiB")][:2] == ["\u2013", "\u2013"]  # no latency, a throughput
    header = next(line for line in rest if line.startswith("transport"))
    assert header.split()[-2:] == ["vs", "memcpy"]
    document = json.loads((bench.cwd / "out.json").read_text())
    assert document["settings"]["batch"] == 16 and document["settings"]["zero_copy"] is True
    results = {entry["name"]: entry for entry in document["results"]}
    assert {"shm", "raw shm", "memcpy"} <= set(results)
    assert results["memcpy"]["group"] == "reference"
    for point in results["memcpy"]["points"]:
        assert point["latency"] is None and point["throughput"]["mb_per_s"] > 0
    against_memcpy = [r for r in document["ratios"] if r["against"] == "memcpy"]
    assert {r["size"] for r in against_memcpy} == {64, 65536}
    assert all(r["latency"] is None and 0 < r["throughput"] for r in against_memcpy)


def test_json_on_stdout_replaces_the_table(bench: Bench) -> None:
    result = bench("--quick", "--sizes", "4K", "tcp://127.0.0.1:0", "--json", "-")
    assert result.returncode == 0, result.stderr.decode()
    document = json.loads(result.stdout)
    (entry,) = document["results"]  # no baseline: the one transport only
    assert entry["name"] == "tcp" and entry["detail"] == "tcp://127.0.0.1:0"
    (point,) = entry["points"]
    assert point["error"] is None and point["skipped"] is None
    assert point["latency"]["median_us"] > 0
    assert point["latency"]["p99_us"] >= point["latency"]["median_us"]
    assert point["throughput"]["messages_per_s"] > 0 and point["throughput"]["mb_per_s"] > 0
    assert document["ratios"] == []
    assert {"anyipc", "python", "platform", "units"} <= set(document)


def needs_matplotlib() -> None:
    """Skip without matplotlib, which is not imported here: its numpy starts threads."""
    if importlib.util.find_spec("matplotlib") is None:
        pytest.skip("--plot needs matplotlib")


def test_the_plot_is_a_png(bench: Bench) -> None:
    needs_matplotlib()
    result = bench("--quick", "--sizes", "64,1K", "unix", "--plot", "bench.png")
    assert result.returncode == 0, result.stderr.decode()
    assert (bench.cwd / "bench.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_ctrl_c_stops_the_run_and_cleans_up(bench: Bench) -> None:
    env = {**os.environ, "TMPDIR": str(bench.tmpdir)}
    with subprocess.Popen(
        [ANYIPC, "bench", "posixmq://", "unix"],
        cwd=bench.cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as process:
        assert process.stderr is not None
        assert process.stderr.readline().startswith(b"anyipc: bench [1/8] posixmq 64 B: ")
        process.send_signal(signal.SIGINT)  # the second point is being measured
        assert process.wait(timeout=60) == 130
        assert b"Traceback" not in process.stderr.read()
    assert list(bench.tmpdir.iterdir()) == []
    assert _peers_of(bench.tmpdir) == []


def _one_error_line(result: subprocess.CompletedProcess[bytes]) -> str:
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("anyipc: error: ")
    return lines[0]


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("mme://x",), "did you mean 'mem'?"),
        (("tcpp",), "did you mean 'tcp'?"),
        (("--sizes", "64,12Q", "tcp"), "'12Q' is not a size"),
        (("--sizes", "0", "tcp"), "sizes go from 1 byte"),
        (("mem",), "in-process only"),
        (("tcp", "--plot", "bench.txt"), "--plot bench.txt"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(
    bench: Bench, args: tuple[str, ...], said: str
) -> None:
    if "--plot" in args:
        needs_matplotlib()
    result = bench(*args)
    assert result.returncode == 2
    assert said in _one_error_line(result)
    assert result.stdout == b""


def test_plot_without_matplotlib_is_one_line_exit_2(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['matplotlib'] = None; from anyipc.cli import main; "
        "raise SystemExit(main(['bench', 'tcp', '--plot', 'x.png']))"
    )
    result = subprocess.run(
        [sys.executable, "-P", "-c", code], cwd=tmp_path, capture_output=True, timeout=60
    )
    assert result.returncode == 2
    assert "--plot needs matplotlib" in _one_error_line(result)


def test_message_sizes() -> None:
    assert message_sizes("64,4K,64K,1M") == (64, 4096, 65536, 1 << 20)
    assert message_sizes("1m, 100 ,100b,2KiB") == (100, 2048, 1 << 20)


class _Deaf:
    """A link whose sends go nowhere: every round trip stalls."""

    def __init__(self, link: Link) -> None:
        self._link = link
        self.recv = link.recv
        self.close = link.close

    def send(self, data: Any, timeout: float) -> None:
        pass


def _stalling(stack: Stack, timeout: float) -> Plan:
    plan = _bench_raw_sockets.prepare("socketpair", stack, timeout)

    def finish(ready: dict[str, Any]) -> Link:
        return _Deaf(plan.finish(ready))

    return Plan(start=plan.start, finish=finish, handed=plan.handed)


def test_a_stalled_point_is_an_error_and_the_run_goes_on() -> None:
    stalls = Contender("deaf", Group.RAW, "sends go nowhere", _stalling)
    with Session(stalls, Settings(seconds=0.01, repeat=1, timeout=0.3)) as session:
        points = [session.measure(size) for size in (64, 128)]
    for point in points:  # each point opened a fresh peer, stalled, and cleaned up
        assert point.error  # this side timed out, or the peer did first and went away
        assert point.latency is None and point.throughput is None
