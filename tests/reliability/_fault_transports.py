"""Every transport family the fault tests cover, and the surviving end of a conversation.

:data:`TRANSPORTS` names, for each transport, the URI its survivor opens,
how (``listen``, ``bind`` or ``pair``), and what the survivor's ``recv``
raises once the peer that sends to it was SIGKILLed, as the transport's
module docstring documents it:

* byte streams (tcp, tls+tcp, unix, pipe, socketpair, fifo) carry stamped
  messages with ``framed+``; a sender killed inside a frame leaves a
  truncated frame: :class:`~anyipc.ConnectionLost` (``framed+``; for tls
  the missing ``close_notify`` is ``ConnectionLost`` too);
* ``unix-seqpacket``: a peer killed with nothing of ours unread looks like
  an orderly close: :class:`~anyipc.EndOfChannel`;
* shared memory (shm in both protocols, sysvshm, mmap): a dead peer is
  ``ConnectionLost`` at once;
* datagrams (udp, unix-dgram), signals (``signal://`` rt) and queues
  without ``end=senders``: nothing tells a receiver that a sender died,
  so the receiver's wait ends in :class:`~anyipc.Timeout`;
* queues with ``end=senders``: a killed sender is ``ConnectionLost``.

``Transport.on_reader_death`` is what a writer's ``send`` raises once the
peer that reads was killed: ``ConnectionLost`` everywhere (on a queue once
it is full and its owner is found dead; on ``signal://`` once the dead
process is reaped), except on ``udp``, where sends go on succeeding into
the void (``None``).
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import attrs

import anyipc

from ..transports.conftest import TLSFiles

__all__ = ["QUIET", "TRANSPORTS", "Transport", "private_directory", "raw", "tls_listener_options"]

QUIET = 0.5  #: how long a receiver that is told nothing waits before its Timeout


@attrs.frozen
class Transport:
    """One transport as the fault tests use it."""

    name: str  #: the test id
    uri: str  #: what the survivor opens; ``{dir}`` is a private directory, ``{tls}`` TLS options
    verb: str  #: ``listen``, ``bind`` or ``pair``
    on_death: type[anyipc.IPCError]  #: what the survivor gets once its sender was killed
    #: what the survivor's send gets once its reader was killed (None: nothing)
    on_reader_death: type[anyipc.IPCError] | None = anyipc.ConnectionLost

    @property
    def scheme(self) -> str:
        """The scheme of the transport underneath the layers."""
        return self.uri.split("://", 1)[0].rpartition("+")[2]

    @property
    def framed(self) -> bool:
        """A byte stream carried by ``framed+``: a peer can stop inside a frame."""
        return self.uri.startswith("framed+")


TRANSPORTS = [
    Transport("tcp", "framed+tcp://127.0.0.1:0", "listen", anyipc.ConnectionLost),
    Transport("tls+tcp", "framed+tls+tcp://127.0.0.1:0?{tls}", "listen", anyipc.ConnectionLost),
    Transport("unix", "framed+unix://{dir}/stream.sock", "listen", anyipc.ConnectionLost),
    Transport(
        "unix-seqpacket", "unix-seqpacket://{dir}/packets.sock", "listen", anyipc.EndOfChannel
    ),
    Transport("pipe", "framed+pipe://", "pair", anyipc.ConnectionLost),
    Transport("socketpair", "framed+socketpair://", "pair", anyipc.ConnectionLost),
    Transport("fifo", "framed+fifo://{dir}/fifo", "bind", anyipc.ConnectionLost),
    Transport("udp", "udp://127.0.0.1:0", "bind", anyipc.Timeout, None),
    Transport("unix-dgram", "unix-dgram://{dir}/dgram.sock", "bind", anyipc.Timeout),
    Transport("posixmq", "posixmq://", "bind", anyipc.Timeout),
    Transport("posixmq-end=senders", "posixmq://?end=senders", "bind", anyipc.ConnectionLost),
    Transport("sysvmq", "sysvmq://", "bind", anyipc.Timeout),
    Transport("sysvmq-end=senders", "sysvmq://?end=senders", "bind", anyipc.ConnectionLost),
    Transport("shm", "shm://", "listen", anyipc.ConnectionLost),
    Transport("shm-locked", "shm://?protocol=locked", "listen", anyipc.ConnectionLost),
    Transport("sysvshm", "sysvshm://", "listen", anyipc.ConnectionLost),
    Transport("mmap", "mmap://{dir}/rings", "listen", anyipc.ConnectionLost),
    Transport("signal-rt", "signal://self?mode=rt", "bind", anyipc.Timeout),
]


@contextlib.contextmanager
def private_directory() -> Iterator[Path]:
    """A fresh directory with a short path (socket paths must fit ``sun_path``), then removed."""
    path = Path(tempfile.mkdtemp(prefix="anyipc-f-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def tls_listener_options(directory: Path) -> str:
    """URI options of a TLS server whose address a client can connect to as it is.

    The server's certificate (for 127.0.0.1) and key, and the CA that issued
    it, which the client checks the server against.
    """
    files = TLSFiles(directory)
    return f"cert={files.server}&ca={files.ca}"


def raw(uri: str) -> str:
    """``uri`` without its ``framed+`` layer: the byte stream underneath."""
    return uri.removeprefix("framed+")
