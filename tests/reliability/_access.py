"""What the access tests share: the second user's process, a directory it may enter, messages.

The second user is :data:`INTRUDER` (``nobody``), played by
``_access_peers.py intruder`` (see there): it needs root to become that
user, and its test is skipped, saying why, where that is not possible.
Every message that is checked carries a sequence number and a CRC32.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import anyipc
from anyipc._deadline import Deadline

from ..transports.conftest import Children

__all__ = [
    "INTRUDER",
    "Intruder",
    "answered_while_accepting",
    "checked",
    "intruder",
    "open_dir",
    "verified",
]

INTRUDER = 65534  #: uid and gid of the second user (``nobody``)
PEERS = Path(__file__).with_name("_access_peers.py")
_HEADER = struct.Struct("!II")  # sequence number, CRC32 of the body


def checked(seq: int, body: bytes = b"") -> bytes:
    """Message ``seq``: its number, the CRC32 of ``body``, then ``body``."""
    body = body or f"message {seq}".encode()
    return _HEADER.pack(seq, zlib.crc32(body)) + body


def verified(message: bytes) -> int:
    """The sequence number of ``message``, after checking its CRC32."""
    seq, crc = _HEADER.unpack_from(message)
    assert zlib.crc32(message[_HEADER.size :]) == crc, f"message {seq} is damaged"
    return int(seq)


class Intruder:
    """The second user's process (``_access_peers.py intruder``), started by root."""

    def __init__(self, children: Children) -> None:
        self.process = children.run(
            [sys.executable, str(PEERS), "intruder"], stdin=subprocess.PIPE, bufsize=0
        )
        hello = self.answer(timeout=30)
        if "cannot_switch" in hello:
            pytest.skip(hello["cannot_switch"])
        assert hello == {
            "uids": [INTRUDER] * 3,
            "gids": [INTRUDER] * 3,
            "groups": [],
        }, f"the intruder is not who it should be: {hello}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def tell(self, **request: Any) -> None:
        """Send ``request`` (see ``_access_peers``); read its answer with :meth:`answer`."""
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(request).encode() + b"\n")

    def has_answered(self, timeout: float = 0) -> bool:
        """True once an answer waits to be read (within ``timeout`` seconds)."""
        assert self.process.stdout is not None
        poller = select.poll()
        poller.register(self.process.stdout, select.POLLIN)
        return bool(poller.poll(timeout * 1000))

    def answer(self, timeout: float = 20) -> dict[str, Any]:
        """The intruder's next answer, within ``timeout`` seconds (else the test fails)."""
        assert self.process.stdout is not None
        if not self.has_answered(timeout):
            pytest.fail(f"the intruder said nothing for {timeout} s")
        line = self.process.stdout.readline()
        if not line:
            self.process.wait(timeout=10)
            assert self.process.stderr is not None
            pytest.fail(f"the intruder ended:\n{self.process.stderr.read().decode()}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def ask(self, **request: Any) -> dict[str, Any]:
        """Send ``request`` and return its answer."""
        self.tell(**request)
        return self.answer()


def answered_while_accepting(
    listener: anyipc.Listener, intruder: Intruder, patience: float = 20
) -> dict[str, Any]:
    """The intruder's next answer, while ``listener`` accepts and must hand out nothing."""
    deadline = Deadline(patience)
    while not intruder.has_answered():
        if deadline.expired():
            pytest.fail(f"the intruder did not answer within {patience} s")
        try:
            accepted = listener.accept(timeout=0.05)
        except anyipc.Timeout:
            continue
        accepted.close()
        pytest.fail(f"the listener handed out a connection of the intruder ({accepted!r})")
    return intruder.answer()


@pytest.fixture
def intruder() -> Iterator[Intruder]:
    """The second user's process of one test; the test is skipped where users cannot change."""
    if os.geteuid() != 0:
        pytest.skip(f"becoming uid {INTRUDER} needs root (CAP_SETUID); this is uid {os.geteuid()}")
    children = Children()
    try:
        yield Intruder(children)
    finally:
        children.reap()


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A fresh short directory that every user may enter and list (``755``).

    Objects made in it are then refused to another user by their own mode,
    never by a directory on the way.
    """
    path = Path(tempfile.mkdtemp(prefix="anyipc-acc-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)
