"""Malformed addresses: only ``InvalidAddress``, and nothing created on the OS.

The catalogue: an empty string, no scheme, unknown schemes and layers;
then, for every installed scheme and for each of ``listen``, ``connect``,
``bind`` and ``pair``: unknown, duplicated and badly valued options
(``mode=0777x``), %-escapes that are bad or not UTF-8, NUL bytes, lone
surrogates, a location of one MiB, fragments; and what is malformed for
that kind of location: IPv6 without its bracket, ports -1, 65536 (and 0 to
``connect`` to), user:pass@ on internet hosts; unix paths of 108 bytes and
more, abstract names with a NUL, relative paths and ``..``; components
over NAME_MAX; queue names, keys, pids and descriptors that cannot be.

Every call runs in a child interpreter (``_audited_verbs.py``) under an
audit hook that records what reaches the OS (sockets, name lookups, files
opened to write or create, FIFOs, directories, maps, processes...).  Each
must raise :class:`anyipc.InvalidAddress` and cause no such event.  The
objects that C extensions create, which no audit hook sees, are looked for
by the names the catalogue's addresses would give them: in ``/dev/shm``, the
temporary directory, the catalogue's own directory (which must stay empty),
and as POSIX queues and SysV keys.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import posix_ipc
import pytest
import sysv_ipc

import anyipc
from anyipc._registry import registry

from ._audited_verbs import HUGE
from .conftest import figure

VERBS = ("listen", "connect", "bind", "pair")
INET = ("tcp", "udp")
UNIX = ("unix", "unix-dgram", "unix-seqpacket")
ROUNDS = figure(1, 20)  #: times the whole catalogue is tried (a fresh child each time)
Case = tuple[object, str, dict[str, object]]  #: an address, a verb, keyword options


class Catalogue:
    """The malformed addresses for this test's directory, names and keys."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.token = secrets.token_hex(6)  #: in every name an address here would create
        self.key = 0x5A000000 + secrets.randbelow(0xFFFFFF)  #: a SysV key nothing uses

    def base(self, scheme: str) -> str:
        """A valid location of ``scheme``, to which the bad options and escapes are added."""
        if scheme in INET:
            return "127.0.0.1:0"
        if scheme in (*UNIX, "fifo"):
            return f"{self.directory}/{scheme}-{self.token}"
        if scheme == "mmap":
            return str(self.directory)
        if scheme in ("sysvmq", "sysvshm"):
            return str(self.key)
        if scheme == "signal":
            return "self"
        if scheme in ("pipe", "socketpair", "pty"):
            return ""
        return f"{scheme}-{self.token}"  # a name: mem, posixmq, shm, a plugin's

    def wrong_locations(self, scheme: str) -> list[str]:
        """Locations that are malformed for ``scheme`` in particular."""
        d = self.directory
        if scheme in INET:
            return [
                "[::1",
                "[::1]",
                "[::1]:",
                "[zz::1]:80",
                "127.0.0.1",
                ":80",
                "127.0.0.1:-1",
                "127.0.0.1:65536",
                "127.0.0.1:99999999999999999999",
                "user:pass@127.0.0.1:80",
                "127.0.0.1:80/path",
            ]
        if scheme in UNIX:
            return [
                "",
                "@",
                "/" + "x" * 108,
                "@" + "y" * 108,
                f"@a%00{self.token}",
                f"{d}/../{self.token}",
                f"relative/{self.token}",
                f"{d}/",
            ]
        if scheme == "fifo":
            return ["", f"relative/{self.token}", f"{d}/../{self.token}", f"{d}/" + "n" * 256]
        if scheme == "mmap":
            return ["", "relative", "/", f"{d}/../{self.token}", "/" + "n" * 256]
        if scheme == "posixmq":
            return [f"a/{self.token}", "..", "n" * 256]
        if scheme == "shm":
            return [f"bad name {self.token}", "x" * 65, f"a/{self.token}"]
        if scheme in ("sysvmq", "sysvshm"):
            return ["-1", "0", "abc", "0x1ffffffff", "99999999999"]
        if scheme == "signal":
            return ["-5", "0", "00", "abc", "4194305"]
        if scheme in ("pipe", "socketpair"):
            return ["fd/-1", "fd/abc", "fd/1/2", "fd/"]
        return []

    def for_scheme(self, scheme: str) -> list[tuple[object, dict[str, object]]]:
        """Every malformed address of ``scheme`` (with keywords where they are what is bad)."""
        base = f"{scheme}://{self.base(scheme)}"
        uris = [
            f"{base}?bogus=1",
            f"{base}?mode=0777x",
            f"{base}?bogus=1&bogus=1",
            f"{base}?mode=0600&mode=0600",
            f"{base}?mode=%ff",
            f"{base}?bogus=%00",
            f"{base}?&&",
            f"{base}%ff%fe",
            f"{base}%00",
            f"{base}%zz",
            f"{base}%",
            f"{base}\udcff",
            f"{base}#fragment",
            f"{scheme}://{HUGE}",
            f"{scheme.upper()}://{self.base(scheme)}",
            f"{scheme}:/{self.base(scheme)}",
            *(f"{scheme}://{location}" for location in self.wrong_locations(scheme)),
        ]
        cases: list[tuple[object, dict[str, object]]] = [(uri, {}) for uri in uris]
        cases += [(base, {"bogus": 1}), (base, {"mode": "0777x"}), (base, {"mode": 1.5})]
        return cases

    def cases(self) -> list[Case]:
        """The whole catalogue, each address with each verb."""
        addresses: list[tuple[object, dict[str, object]]] = [
            ("", {}),
            (None, {}),
            (42, {}),
            ("127.0.0.1:4242", {}),
            ("/tmp/x.sock", {}),
            ("://x", {}),
            (f"nosuch://{self.token}", {}),
            ("tcpp://127.0.0.1:1", {}),
            ("nosuch+tcp://127.0.0.1:0", {}),
            ("+tcp://127.0.0.1:0", {}),
            ("tcp+://127.0.0.1:0", {}),
            ("framed+udp://127.0.0.1:0", {}),  # framing a transport that has boundaries
            ("framed+tcp://127.0.0.1:0?max_message_size=-1", {}),
            ("framed+tcp://127.0.0.1:0?max_message_size=4294967296", {}),
            ("tls+tcp://127.0.0.1:0?handshake_timeout=-1", {}),
            ("tls+tcp://127.0.0.1:0?verify=maybe", {}),
        ]
        for scheme in sorted(anyipc.transports()):
            addresses += self.for_scheme(scheme)
        cases: list[Case] = [(uri, verb, kw) for uri, kw in addresses for verb in VERBS]
        for scheme in INET:  # port 0 is for listen and bind; nobody can be reached there
            cases += [(f"{layers}{scheme}://127.0.0.1:0", "connect", {}) for layers in ("", "tls+")]
        missing = f"{self.directory}/missing.pem"  # a server's certificate, checked by listen
        cases.append((f"tls+tcp://127.0.0.1:0?cert={missing}", "listen", {}))
        return cases


@pytest.fixture
def catalogue() -> Iterator[Catalogue]:
    directory = Path(tempfile.mkdtemp(prefix="anyipc-u-"))
    yield Catalogue(directory)
    shutil.rmtree(directory, ignore_errors=True)


def run_audited(cases: list[Case]) -> list[dict[str, object]]:
    """What each case raised and caused, from a fresh interpreter under an audit hook."""
    script = Path(__file__).with_name("_audited_verbs.py")
    done = subprocess.run(
        [sys.executable, str(script)],
        input=json.dumps({"cases": cases}).encode(),
        capture_output=True,
        cwd=tempfile.gettempdir(),
        timeout=100,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    results: list[dict[str, object]] = json.loads(done.stdout)
    return results


def named_objects(catalogue: Catalogue) -> list[str]:
    """What exists of the objects the catalogue's addresses name (there should be nothing)."""
    found = [f"{catalogue.directory}/{entry}" for entry in os.listdir(catalogue.directory)]
    for folder in ("/dev/shm", tempfile.gettempdir()):
        found += [f"{folder}/{e}" for e in os.listdir(folder) if catalogue.token in e]
    for name in (f"/posixmq-{catalogue.token}",):
        try:
            posix_ipc.MessageQueue(name).close()
            found.append(f"POSIX queue {name}")
        except (posix_ipc.ExistentialError, ValueError):
            pass
    for kind in (sysv_ipc.MessageQueue, sysv_ipc.SharedMemory):
        try:
            kind(catalogue.key)
            found.append(f"SysV {kind.__name__} key {catalogue.key:#x}")
        except sysv_ipc.ExistentialError:
            pass
    return found


@pytest.mark.timeout(300)
def test_malformed_addresses_raise_only_invalid_address_and_create_nothing(
    catalogue: Catalogue, record_property: Callable[[str, object], None]
) -> None:
    assert registry().layers(), "no layers are installed: the catalogue would miss them"
    cases = catalogue.cases()
    record_property("calls", len(cases) * ROUNDS)
    assert named_objects(catalogue) == []
    for _ in range(ROUNDS):
        results = run_audited(cases)
        assert len(results) == len(cases)
        wrong = [
            f"{verb}({str(uri)[:80]!r}, {kw}) -> {r['raised']}: {r['message']}; {r['events']}"
            for (uri, verb, kw), r in zip(cases, results, strict=True)
            if r["raised"] != "InvalidAddress" or r["events"]
        ]
        assert not wrong, f"{len(wrong)} of {len(cases)} cases:\n" + "\n".join(wrong[:40])
        assert named_objects(catalogue) == []


def test_the_audit_hook_sees_what_a_verb_creates(catalogue: Catalogue) -> None:
    """The check can fail: a well-formed address opens a socket and creates a file."""
    uri = f"unix://{catalogue.directory}/good-{catalogue.token}"
    [result] = run_audited([(uri, "listen", {})])
    assert result["raised"] == "nothing"
    events = " ".join(map(str, result["events"]))  # type: ignore[call-overload]
    assert "socket.__new__" in events and "socket.bind" in events
