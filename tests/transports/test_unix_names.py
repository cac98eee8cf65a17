"""Names and socket files of unix-dgram:// and unix-seqpacket:// (anyipc._unixnames).

unix:// shares the same code; its own tests are in test_unix.py.  Here
each test runs for the datagram endpoint (``bind``) and the seqpacket
listener (``listen``): name limits, permissions, stale sockets reclaimed,
live ones never stolen, files removed by their owner only.
"""

from __future__ import annotations

import os
import socket
import stat
import uuid
from pathlib import Path
from typing import NamedTuple

import pytest

import anyipc
from anyipc._registry import registry


class Kind(NamedTuple):
    scheme: str
    verb: str  #: what creates the named endpoint
    type: int  #: its socket type

    def open(self, uri: str, **options: object) -> anyipc.Channel | anyipc.Listener:
        endpoint: anyipc.Channel | anyipc.Listener = getattr(anyipc, self.verb)(uri, **options)
        return endpoint


KINDS = [
    Kind("unix-dgram", "bind", socket.SOCK_DGRAM),
    Kind("unix-seqpacket", "listen", socket.SOCK_SEQPACKET),
]
TYPES = {
    "stream": socket.SOCK_STREAM,
    "dgram": socket.SOCK_DGRAM,
    "seqpacket": socket.SOCK_SEQPACKET,
}


@pytest.fixture(params=KINDS, ids=[kind.scheme for kind in KINDS])
def kind(request: pytest.FixtureRequest) -> Kind:
    chosen: Kind = request.param
    return chosen


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def _reachable(kind: Kind, endpoint: anyipc.Channel | anyipc.Listener) -> None:
    """One message reaches ``endpoint`` through a fresh connection to its address."""
    assert endpoint.address is not None
    with anyipc.connect(endpoint.address) as client:
        client.send(b"reached", timeout=5)
        if isinstance(endpoint, anyipc.Listener):
            with endpoint.accept(timeout=5) as server:
                assert server.recv(timeout=5) == b"reached"
        else:
            assert endpoint.recv(timeout=5) == b"reached"


@pytest.mark.parametrize(
    ("location", "problem"),
    [
        ("relative", "relative path: write an absolute path as {scheme}:///path"),
        ("", "empty address"),
        ("@", "empty abstract name: write {scheme}://@name"),
        ("/tmp/" + "a" * 200, "at most 107 bytes"),
        ("@" + "a" * 108, "at most 107 fit"),
        ("/tmp/a%00b", "NUL"),
        ("/tmp/dir/", "directory"),
    ],
)
@pytest.mark.parametrize("verb", ["create", "connect"])
def test_malformed_addresses_are_rejected_before_any_system_call(
    kind: Kind, verb: str, location: str, problem: str, no_new_fds: None
) -> None:
    uri = f"{kind.scheme}://{location}"
    with pytest.raises(anyipc.InvalidAddress, match=problem.format(scheme=kind.scheme)):
        kind.open(uri) if verb == "create" else anyipc.connect(uri)
    if location.startswith("/tmp/a"):
        assert not Path(location).exists()


def test_the_longest_path_and_abstract_name_fit(kind: Kind, short_dir: Path) -> None:
    base = f"{short_dir}/"
    longest_path = base + "p" * (107 - len(base))
    longest_name = "@" + uuid.uuid4().hex + "n" * (107 - 32)
    for location in (longest_path, longest_name):
        with kind.open(f"{kind.scheme}://{location}") as endpoint:
            assert endpoint.address == f"{kind.scheme}://{location}"
            _reachable(kind, endpoint)
    with pytest.raises(anyipc.InvalidAddress, match="108 bytes"):
        kind.open(f"{kind.scheme}://{longest_path}p")
    assert not Path(longest_path + "p").exists()


@pytest.mark.parametrize(
    ("umask", "options", "expected"),
    [
        (0, {}, 0o600),
        (0o077, {}, 0o600),
        (0o077, {"mode": "660"}, 0o660),
        (0o022, {"mode": "0666"}, 0o666),
    ],
)
def test_the_socket_file_has_exactly_its_mode_whatever_the_umask(
    kind: Kind, short_dir: Path, umask: int, options: dict[str, str], expected: int
) -> None:
    path = short_dir / "s.sock"
    old = os.umask(umask)
    try:
        with kind.open(f"{kind.scheme}://{path}", **options) as endpoint:
            assert stat.S_ISSOCK(os.lstat(path).st_mode)
            assert _mode(path) == expected
            _reachable(kind, endpoint)
    finally:
        os.umask(old)


@pytest.mark.parametrize("mode", ["999", "rw-", "7777", "60"])
def test_mode_must_be_octal_permissions(kind: Kind, mode: str, short_dir: Path) -> None:
    with pytest.raises(anyipc.InvalidAddress, match="mode"):
        kind.open(f"{kind.scheme}://{short_dir}/s.sock", mode=mode)
    assert not (short_dir / "s.sock").exists()


def test_mode_is_refused_for_an_abstract_name(kind: Kind) -> None:
    with pytest.raises(anyipc.InvalidAddress, match="abstract socket has no file"):
        kind.open(f"{kind.scheme}://@anyipc-{uuid.uuid4().hex}?mode=600")


def test_the_owner_removes_its_file_on_close(kind: Kind, short_dir: Path) -> None:
    path = short_dir / "s.sock"
    endpoint = kind.open(f"{kind.scheme}://{path}")
    assert path.is_socket()
    endpoint.close()
    assert not path.exists()


def test_close_leaves_a_file_that_replaced_the_socket(kind: Kind, short_dir: Path) -> None:
    path = short_dir / "s.sock"
    endpoint = kind.open(f"{kind.scheme}://{path}")
    path.unlink()
    path.write_text("successor")
    endpoint.close()
    assert path.read_text() == "successor"


@pytest.mark.parametrize("dead", sorted(TYPES))
def test_a_stale_socket_file_is_reclaimed(kind: Kind, dead: str, short_dir: Path) -> None:
    path = short_dir / "s.sock"
    with socket.socket(socket.AF_UNIX, TYPES[dead]) as owner:
        owner.bind(str(path))  # and dies without unlinking it
    with pytest.raises(anyipc.ConnectionLost, match="nobody is listening"):
        anyipc.connect(f"{kind.scheme}://{path}")
    with kind.open(f"{kind.scheme}://{path}") as endpoint:
        assert _mode(path) == 0o600
        _reachable(kind, endpoint)
    assert not path.exists()


@pytest.mark.parametrize("live", sorted(TYPES))
def test_a_live_socket_is_never_stolen(kind: Kind, live: str, short_dir: Path) -> None:
    path = short_dir / "s.sock"
    with socket.socket(socket.AF_UNIX, TYPES[live]) as owner:
        owner.bind(str(path))
        if live != "dgram":
            owner.listen()
        inode = os.lstat(path).st_ino
        expected = "live" if TYPES[live] == kind.type else "Protocol wrong type"
        with pytest.raises(anyipc.AddressInUse, match=expected):
            kind.open(f"{kind.scheme}://{path}")
        assert os.lstat(path).st_ino == inode


def test_a_live_datagram_socket_connected_elsewhere_is_never_stolen(short_dir: Path) -> None:
    path, other = short_dir / "s.sock", short_dir / "other.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as target:
        target.bind(str(other))
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as owner:
            owner.bind(str(path))
            owner.connect(str(other))  # a probe connect() to it fails with EPERM
            with pytest.raises(anyipc.AddressInUse, match="a live socket has it"):
                anyipc.bind(f"unix-dgram://{path}")
            assert path.is_socket()


def test_the_owner_of_an_abstract_name_keeps_it(kind: Kind) -> None:
    uri = f"{kind.scheme}://@anyipc-{uuid.uuid4().hex}"
    with kind.open(uri) as first:
        with pytest.raises(anyipc.AddressInUse):
            kind.open(uri)
        _reachable(kind, first)
    with kind.open(uri) as successor:  # the name vanished with its last descriptor
        _reachable(kind, successor)


@pytest.mark.parametrize("what", ["file", "directory"])
def test_something_that_is_not_a_socket_is_left_alone(
    kind: Kind, what: str, short_dir: Path
) -> None:
    path = short_dir / "s.sock"
    if what == "file":
        path.write_text("precious")
    else:
        path.mkdir()
    with pytest.raises(anyipc.AddressInUse, match="is not a socket"):
        kind.open(f"{kind.scheme}://{path}")
    assert path.read_text() == "precious" if what == "file" else path.is_dir()


def test_a_missing_directory_is_an_invalid_address(kind: Kind, short_dir: Path) -> None:
    with pytest.raises(anyipc.InvalidAddress, match="No such file"):
        kind.open(f"{kind.scheme}://{short_dir}/missing/s.sock")


def test_test_addresses_are_fresh_and_fit(kind: Kind) -> None:
    spec = registry().transport(kind.scheme)
    first, second = spec.test_address(), spec.test_address()
    assert first != second
    location = anyipc.Address.parse(first).location
    assert len(os.fsencode(location)) <= 107
    with kind.open(first) as endpoint:
        assert endpoint.address == first
    assert not os.path.exists(location)
