"""unix:// specifics: name limits, socket files (permissions, stale, never stolen), peers."""

from __future__ import annotations

import os
import socket
import stat
import uuid
from pathlib import Path

import pytest

import anyipc
from anyipc._registry import registry


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.mark.parametrize(
    ("location", "problem"),
    [
        ("relative", "relative path"),
        ("", "empty address"),
        ("@", "empty abstract name"),
        ("/tmp/" + "a" * 200, "at most 107 bytes"),
        ("@" + "a" * 108, "at most 107 fit"),
        ("/tmp/a%00b", "NUL"),
        ("/tmp/dir/", "directory"),
    ],
)
@pytest.mark.parametrize("verb", ["listen", "connect"])
def test_malformed_addresses_are_rejected_before_any_system_call(
    location: str, problem: str, verb: str, no_new_fds: None
) -> None:
    with pytest.raises(anyipc.InvalidAddress, match=problem):
        getattr(anyipc, verb)(f"unix://{location}")
    if location.startswith("/tmp/a"):
        assert not Path(location).exists()


def test_the_path_limit_is_exact(short_dir: Path, recv_exactly) -> None:
    base = f"{short_dir}/"
    longest = base + "p" * (107 - len(base))
    with anyipc.listen(f"unix://{longest}") as listener:
        with anyipc.connect(listener.address) as client, listener.accept(timeout=5) as server:
            client.send(b"fits")
            assert recv_exactly(server, 4) == b"fits"
    with pytest.raises(anyipc.InvalidAddress, match="108 bytes"):
        anyipc.listen(f"unix://{longest}p")
    assert not Path(longest + "p").exists()


def test_the_abstract_name_limit_is_exact(recv_exactly) -> None:
    longest = "@" + uuid.uuid4().hex + "n" * (107 - 32)
    with anyipc.listen(f"unix://{longest}") as listener:
        assert listener.address == f"unix://{longest}"
        with anyipc.connect(listener.address) as client, listener.accept(timeout=5) as server:
            client.send(b"fits")
            assert recv_exactly(server, 4) == b"fits"
    with pytest.raises(anyipc.InvalidAddress):
        anyipc.listen(f"unix://{longest}n")


def test_addresses_and_peers(open_pair, short_dir: Path) -> None:
    path = short_dir / "s.sock"
    listener, client, server = open_pair(f"unix://{path}", mode="660")
    assert listener.address == f"unix://{path}?mode=660"
    assert client.peer == server.address == f"unix://{path}"
    assert client.address is None  # a connecting client is unnamed
    assert server.peer is None


@pytest.mark.parametrize("client_name", ["path", "abstract"])
def test_a_client_that_bound_a_name_is_the_accepted_peer(
    client_name: str, short_dir: Path, raw_connect
) -> None:
    with anyipc.listen(f"unix://{short_dir}/s.sock") as listener:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as raw:
            if client_name == "path":
                raw.bind(str(short_dir / "client.sock"))
                expected = f"unix://{short_dir}/client.sock"
            else:
                name = f"anyipc-client-{uuid.uuid4().hex}"
                raw.bind("\0" + name)
                expected = f"unix://@{name}"
            raw.connect(str(short_dir / "s.sock"))
            with listener.accept(timeout=5) as server:
                assert server.peer == expected


def test_socket_file_is_0600_whatever_the_umask(short_dir: Path) -> None:
    path = short_dir / "s.sock"
    old = os.umask(0)
    try:
        with anyipc.listen(f"unix://{path}"):
            assert stat.S_ISSOCK(os.lstat(path).st_mode)
            assert _mode(path) == 0o600
    finally:
        os.umask(old)


def test_mode_option_sets_exactly_those_permissions(short_dir: Path) -> None:
    path = short_dir / "s.sock"
    old = os.umask(0o077)
    try:
        with anyipc.listen(f"unix://{path}?mode=660"):
            assert _mode(path) == 0o660
    finally:
        os.umask(old)


@pytest.mark.parametrize("mode", ["999", "rw-", "7777", "60"])
def test_mode_must_be_octal_permissions(mode: str, short_dir: Path) -> None:
    with pytest.raises(anyipc.InvalidAddress, match="mode"):
        anyipc.listen(f"unix://{short_dir}/s.sock", mode=mode)


def test_mode_is_refused_for_an_abstract_name() -> None:
    with pytest.raises(anyipc.InvalidAddress, match="abstract"):
        anyipc.listen(f"unix://@anyipc-{uuid.uuid4().hex}?mode=600")


def test_socket_file_is_removed_on_close(short_dir: Path) -> None:
    path = short_dir / "s.sock"
    listener = anyipc.listen(f"unix://{path}")
    assert path.exists()
    listener.close()
    assert not path.exists()


def test_close_leaves_a_file_that_replaced_the_socket(short_dir: Path) -> None:
    path = short_dir / "s.sock"
    listener = anyipc.listen(f"unix://{path}")
    path.unlink()
    path.write_text("successor")
    listener.close()
    assert path.read_text() == "successor"


def test_a_stale_socket_file_is_reclaimed(short_dir: Path, recv_exactly) -> None:
    path = short_dir / "s.sock"
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(path))
    dead.close()  # its owner died without unlinking it
    with pytest.raises(anyipc.ConnectionLost, match="nobody is listening"):
        anyipc.connect(f"unix://{path}")
    with anyipc.listen(f"unix://{path}") as listener:
        with anyipc.connect(listener.address) as client, listener.accept(timeout=5) as server:
            client.send(b"new owner")
            assert recv_exactly(server, 9) == b"new owner"
    assert not path.exists()


def test_a_live_socket_of_another_program_is_never_stolen(short_dir: Path) -> None:
    path = short_dir / "s.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as other:
        other.bind(str(path))
        other.listen()
        inode = os.lstat(path).st_ino
        with pytest.raises(anyipc.AddressInUse, match="live listener"):
            anyipc.listen(f"unix://{path}")
        assert os.lstat(path).st_ino == inode


def test_a_datagram_socket_is_never_removed(short_dir: Path) -> None:
    path = short_dir / "s.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as other:
        other.bind(str(path))
        with pytest.raises(anyipc.AddressInUse):
            anyipc.listen(f"unix://{path}")
        assert path.exists()


@pytest.mark.parametrize("kind", ["file", "directory"])
def test_something_that_is_not_a_socket_is_left_alone(kind: str, short_dir: Path) -> None:
    path = short_dir / "s.sock"
    if kind == "file":
        path.write_text("precious")
    else:
        path.mkdir()
    with pytest.raises(anyipc.AddressInUse, match="is not a socket"):
        anyipc.listen(f"unix://{path}")
    if kind == "file":
        assert path.read_text() == "precious"
    else:
        assert path.is_dir()


def test_listening_in_a_missing_directory_is_invalid(short_dir: Path) -> None:
    with pytest.raises(anyipc.InvalidAddress, match="No such file"):
        anyipc.listen(f"unix://{short_dir}/missing/s.sock")


def test_test_addresses_are_fresh_and_fit() -> None:
    spec = registry().transport("unix")
    first, second = spec.test_address(), spec.test_address()
    assert first != second
    location = anyipc.Address.parse(first).location
    assert len(os.fsencode(location)) <= 107
    with anyipc.listen(first) as listener:
        assert listener.address == first
    assert not os.path.exists(location)
