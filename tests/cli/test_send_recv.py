"""``anyipc send`` and ``anyipc recv`` between two processes, as in a shell pipeline."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

PREFIX = b"anyipc: listening on "

URIS = [
    "tcp://127.0.0.1:0",
    "unix://{tmp}/recv.sock",
    "framed+tcp://127.0.0.1:0",
    "framed+unix://{tmp}/recv.sock",
]


@pytest.fixture(params=URIS)
def uri(request: pytest.FixtureRequest, tmp_path: Path, require: Callable[[str], None]) -> str:
    """A passive address of each socket transport (skipped when not installed)."""
    template: str = request.param
    require(template)
    return template.format(tmp=tmp_path)


def _receiver(start_anyipc: Callable[..., Any], *args: str) -> tuple[subprocess.Popen[bytes], str]:
    """Start ``anyipc recv args...``; the process and the address it announced."""
    process = start_anyipc("recv", *args, "--timeout", "30")
    announced = process.stderr.readline()
    assert announced.startswith(PREFIX), announced + process.stderr.read()
    return process, announced[len(PREFIX) :].strip().decode()


def test_stdin_lines_arrive_as_lines(
    uri: str, start_anyipc: Callable[..., Any], run_anyipc: Callable[..., Any]
) -> None:
    receiver, address = _receiver(start_anyipc, uri)
    sent = run_anyipc("send", address, input=b"hello\nworld\n")
    out, err = receiver.communicate(timeout=30)
    assert (sent.returncode, sent.stderr) == (0, b"")
    assert (receiver.returncode, out) == (0, b"hello\nworld\n"), err


def test_a_message_from_the_command_line_is_sent_as_is(
    uri: str, start_anyipc: Callable[..., Any], run_anyipc: Callable[..., Any]
) -> None:
    receiver, address = _receiver(start_anyipc, uri)
    assert run_anyipc("send", address, "hi there").returncode == 0
    out, _ = receiver.communicate(timeout=30)
    # a stream carries exactly the bytes; a message transport's recv ends each message with \n
    expected = b"hi there\n" if uri.startswith("framed+") else b"hi there"
    assert (receiver.returncode, out) == (0, expected)


def test_count_stops_after_that_many_messages_or_lines(
    uri: str, start_anyipc: Callable[..., Any], run_anyipc: Callable[..., Any]
) -> None:
    receiver, address = _receiver(start_anyipc, uri, "--count", "2")
    run_anyipc("send", address, input=b"one\ntwo\nthree\n")
    out, err = receiver.communicate(timeout=30)
    assert (receiver.returncode, out) == (0, b"one\ntwo\n"), err


def test_send_can_listen_and_recv_connect(
    uri: str, start_anyipc: Callable[..., Any], run_anyipc: Callable[..., Any]
) -> None:
    sender = start_anyipc("send", uri, "from the listener", "--verb", "listen", "--timeout", "30")
    announced = sender.stderr.readline()
    assert announced.startswith(PREFIX), announced
    address = announced[len(PREFIX) :].strip().decode()
    received = run_anyipc("recv", address, "--verb", "connect", "--timeout", "30")
    _, err = sender.communicate(timeout=30)
    assert sender.returncode == 0, err
    assert received.returncode == 0, received.stderr
    assert received.stdout.rstrip(b"\n") == b"from the listener"


def test_recv_gives_up_after_its_timeout_with_one_error_line(
    run_anyipc: Callable[..., Any], require: Callable[[str], None]
) -> None:
    require("tcp://")
    result = run_anyipc("recv", "tcp://127.0.0.1:0", "--timeout", "0.2")
    lines = result.stderr.decode().splitlines()
    assert result.returncode == 1
    assert lines[0].startswith("anyipc: listening on tcp://127.0.0.1:")
    assert lines[1:] == ["anyipc: error: accept timed out"]


def test_recv_stops_quietly_when_its_reader_goes_away(
    start_anyipc: Callable[..., Any], run_anyipc: Callable[..., Any], require: Callable[[str], None]
) -> None:
    require("tcp://")
    receiver, address = _receiver(start_anyipc, "tcp://127.0.0.1:0")
    with receiver:
        receiver.stdout.close()  # like `anyipc recv ... | head -c 0`
        run_anyipc("send", address, input=b"x" * (1 << 20))
        assert receiver.wait(timeout=30) == 141
        assert receiver.stderr.read() == b""


def test_udp_datagrams_from_send_are_printed_by_recv(
    start_anyipc: Callable[..., Any], run_anyipc: Callable[..., Any], require: Callable[[str], None]
) -> None:
    require("udp://")
    receiver = start_anyipc("recv", "udp://127.0.0.1:0", "--count", "3", "--timeout", "30")
    announced = receiver.stderr.readline()
    bound = b"anyipc: bound to "
    assert announced.startswith(bound + b"udp://127.0.0.1:"), announced + receiver.stderr.read()
    address = announced[len(bound) :].strip().decode()
    assert run_anyipc("send", address, "hello").returncode == 0  # one datagram
    sent = run_anyipc("send", address, input=b"two\nlines\n")  # one datagram per line
    assert (sent.returncode, sent.stderr) == (0, b"")
    out, err = receiver.communicate(timeout=30)
    # UDP claims no order, but loopback keeps it
    assert (receiver.returncode, out) == (0, b"hello\ntwo\nlines\n"), err


@pytest.mark.parametrize(
    ("scheme", "announcement"),
    [("unix-dgram", "anyipc: bound to"), ("unix-seqpacket", "anyipc: listening on")],
)
def test_unix_message_sockets_carry_one_line_per_message(
    scheme: str,
    announcement: str,
    tmp_path: Path,
    start_anyipc: Callable[..., Any],
    run_anyipc: Callable[..., Any],
    require: Callable[[str], None],
) -> None:
    require(f"{scheme}://")
    uri = f"{scheme}://{tmp_path}/m.sock"
    receiver = start_anyipc("recv", uri, "--count", "3", "--timeout", "30")
    assert receiver.stderr.readline().decode() == f"{announcement} {uri}\n"
    sent = run_anyipc("send", uri, input=b"first\n\nthird\n")
    out, err = receiver.communicate(timeout=30)
    assert (sent.returncode, sent.stderr) == (0, b"")
    assert (receiver.returncode, out) == (0, b"first\n\nthird\n"), err  # "" is a message
    assert not (tmp_path / "m.sock").exists()  # removed by its owner


def test_sending_to_a_unix_dgram_name_nobody_binds_is_one_error_line(
    tmp_path: Path, run_anyipc: Callable[..., Any], require: Callable[[str], None]
) -> None:
    require("unix-dgram://")
    uri = f"unix-dgram://{tmp_path}/nobody.sock"
    result = run_anyipc("send", uri, "lost")
    assert result.returncode == 1
    assert result.stderr.decode().splitlines() == [
        f"anyipc: error: connect to {uri}: No such file or directory (nobody is listening there)"
    ]


def _tls_files(directory: Path) -> tuple[Path, Path, Path]:
    """A server certificate (with its key) for 127.0.0.1, its CA, and a CA that trusts neither."""
    import trustme

    authority, other = trustme.CA(), trustme.CA()
    server, ca, stranger = directory / "server.pem", directory / "ca.pem", directory / "other.pem"
    authority.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(server))
    authority.cert_pem.write_to_path(str(ca))
    other.cert_pem.write_to_path(str(stranger))
    return server, ca, stranger


def test_tls_options_are_given_in_the_uri(
    tmp_path: Path,
    start_anyipc: Callable[..., Any],
    run_anyipc: Callable[..., Any],
    require: Callable[[str], None],
) -> None:
    require("tls+tcp://")
    server, ca, _ = _tls_files(tmp_path)
    receiver, address = _receiver(start_anyipc, f"tls+tcp://127.0.0.1:0?cert={server}")
    port = address.split("?")[0].rsplit(":", 1)[1]
    sent = run_anyipc("send", f"tls+tcp://127.0.0.1:{port}?ca={ca}", input=b"secret\nlines\n")
    out, err = receiver.communicate(timeout=30)
    assert (sent.returncode, sent.stderr) == (0, b"")
    assert (receiver.returncode, out) == (0, b"secret\nlines\n"), err


def test_a_refused_tls_handshake_is_one_error_line_on_both_sides(
    tmp_path: Path,
    start_anyipc: Callable[..., Any],
    run_anyipc: Callable[..., Any],
    require: Callable[[str], None],
) -> None:
    require("tls+tcp://")
    server, _, stranger = _tls_files(tmp_path)
    receiver, address = _receiver(start_anyipc, f"tls+tcp://127.0.0.1:0?cert={server}")
    port = address.split("?")[0].rsplit(":", 1)[1]
    sent = run_anyipc("send", f"tls+tcp://127.0.0.1:{port}?ca={stranger}", "secret")
    out, err = receiver.communicate(timeout=30)
    assert sent.returncode == receiver.returncode == 1
    assert out == b""  # nothing of the refused connection is passed on
    for stderr in (sent.stderr, err):
        lines = stderr.decode().splitlines()
        assert len(lines) == 1 and lines[0].startswith("anyipc: error: TLS authentication failed")
