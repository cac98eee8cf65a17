"""SIGPIPE at its default disposition: writing to a vanished peer is ConnectionLost, never death.

Python ignores SIGPIPE at start-up, but a host program (or a library it
loads) may restore the default, which terminates the process on the first
write to a pipe or socket whose reader is gone.  For each stream transport
a fresh interpreter (``_fault_sigpipe.py``) sets SIGPIPE to ``SIG_DFL``,
opens both ends, closes the reading one and writes on: the send must raise
:class:`~anyipc.ConnectionLost`, the process must exit normally (its wait
status shows no signal), and SIGPIPE must still be at its default.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import anyipc

from ..transports.conftest import Children
from . import _fault_fixtures

SCRIPT = Path(__file__).with_name("_fault_sigpipe.py")

STREAMS = {
    "tcp": "tcp://127.0.0.1:0",
    "unix": "unix://{dir}/stream.sock",
    "unix-seqpacket": "unix-seqpacket://{dir}/packets.sock",
    "tls+tcp": "tls+tcp://127.0.0.1:0?{tls}",
    "pipe": "pipe://",
    "socketpair": "socketpair://",
    "fifo": "fifo://{dir}/fifo",
}


# the shared fixtures, under the names the tests ask for
directory, tls_options = _fault_fixtures.directory, _fault_fixtures.tls_options


@pytest.fixture
def children() -> Iterator[Children]:
    started = Children()
    yield started
    started.reap()


@pytest.mark.parametrize("name", list(STREAMS))
def test_writing_to_a_vanished_peer_is_connection_lost_with_sigpipe_at_its_default(
    name: str, directory: Path, tls_options: str, children: Children
) -> None:
    scheme = name.rpartition("+")[2]
    unavailable = anyipc.transports()[scheme].unavailable
    if unavailable is not None:
        pytest.skip(f"{scheme}:// is unavailable here: {unavailable}")
    uri = STREAMS[name].format(dir=directory, tls=tls_options)
    writer = children.run([sys.executable, str(SCRIPT), uri])
    out, err = writer.communicate(timeout=60)
    assert writer.returncode == 0, (
        f"the writer ended with status {writer.returncode} "
        f"({'killed by signal ' + str(-writer.returncode) if writer.returncode < 0 else 'exit'}): "
        f"{err.decode()}"
    )
    assert out.decode().split() == ["ConnectionLost", "SIG_DFL"]
