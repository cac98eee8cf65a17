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
