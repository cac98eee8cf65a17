"""Raw equivalents over plain ``socket`` objects: TCP, UDP, Unix stream, seqpacket, datagram, pairs.

What a user would write without anyipc, on the same framing: a stream
socket reads what arrives into a buffer (``recv_into``) and takes each
fixed-size message out of it exactly, as anyipc's stream channels do; a
datagram or seqpacket socket receives each message whole.
Each call is bounded the standard way, ``settimeout()``.  TCP sockets set
TCP_NODELAY, as ``tcp://`` does by default.  The measuring process makes
the rendezvous (a loopback port, or socket files in a private temporary
directory that it removes); the peer connects, or (datagrams) binds its
own address and says hello first, so that the measuring side can
``connect()`` back to it.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from typing import Any

from anyipc._channel import BytesLike
from anyipc.cli._bench_link import HELLO, BenchError, StreamReader, check_size
from anyipc.cli._bench_process import CommandPeer
from anyipc.cli._bench_session import Plan, Stack

__all__ = ["KINDS", "SocketLink", "join", "prepare"]


#: kind -> (address family, socket type): the raw equivalent of each socket transport
KINDS = {
    "tcp": (socket.AF_INET, socket.SOCK_STREAM),
    "unix": (socket.AF_UNIX, socket.SOCK_STREAM),
    "unix-seqpacket": (socket.AF_UNIX, socket.SOCK_SEQPACKET),
    "udp": (socket.AF_INET, socket.SOCK_DGRAM),
    "unix-dgram": (socket.AF_UNIX, socket.SOCK_DGRAM),
    "socketpair": (socket.AF_UNIX, socket.SOCK_STREAM),
}


class SocketLink:
    """A link over one connected socket."""

    def __init__(self, sock: socket.socket, timeout: float) -> None:
        self._sock = sock
        self._timeout = timeout
        sock.settimeout(timeout)
        self._stream = StreamReader(sock.recv_into) if sock.type == socket.SOCK_STREAM else None
        if sock.family == socket.AF_INET and self._stream:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buffer = memoryview(bytearray(0))

    def _bounded(self, timeout: float) -> None:
        if timeout != self._timeout:
            self._sock.settimeout(timeout)
            self._timeout = timeout

    def send(self, data: BytesLike, timeout: float) -> None:
        self._bounded(timeout)
        self._sock.sendall(data)

    def recv(self, size: int, timeout: float) -> BytesLike:
        self._bounded(timeout)
        if self._stream is not None:
            return self._stream.exactly(size)
        if len(self._buffer) <= size:  # one spare byte shows an oversized datagram
            self._buffer = memoryview(bytearray(size + 1))
        check_size(self._sock.recv_into(self._buffer, size + 1), size)
        return self._buffer[:size]

    def close(self) -> None:
        self._sock.close()


def _directory(stack: Stack) -> str:
    """A private temporary directory for socket files, removed with the stack."""
    directory = tempfile.mkdtemp(prefix="anyipc-bench-")
    stack.callback(shutil.rmtree, directory, ignore_errors=True)
    return directory


def _owned(stack: Stack, family: int, kind: int) -> socket.socket:
    sock = socket.socket(family, kind)
    stack.callback(sock.close)
    return sock


def prepare(kind: str, stack: Stack, timeout: float) -> Plan:
    """This side of the raw ``kind`` (a key of :data:`KINDS`)."""
    family, type_ = KINDS[kind]
    if kind == "socketpair":
        mine, theirs = socket.socketpair()
        stack.callback(mine.close)
        stack.callback(theirs.close)
        fd = theirs.fileno()
        spec = {"kind": "socket", "family": family, "type": type_, "fd": fd}
        return Plan(
            start=lambda: CommandPeer(spec, timeout, [fd]),
            finish=lambda ready: SocketLink(mine, timeout),
            handed=(theirs.close,),
        )
    sock = _owned(stack, family, type_)
    address: Any
    peer_address: Any
    if family == socket.AF_INET:
        sock.bind(("127.0.0.1", 0))
        address = sock.getsockname()
        peer_address = "127.0.0.1", 0
    else:
        directory = _directory(stack)
        address = os.path.join(directory, "measuring.sock")
        sock.bind(address)
        peer_address = os.path.join(directory, "peer.sock")
    spec = {"kind": "socket", "family": family, "type": type_, "address": address}
    if type_ == socket.SOCK_DGRAM:
        spec["bind"] = peer_address

        def finish(ready: dict[str, Any]) -> SocketLink:
            sock.settimeout(timeout)
            hello, peer = sock.recvfrom(len(HELLO))
            if hello != HELLO:
                raise BenchError(f"expected the peer's hello, received {hello[:40]!r}")
            sock.connect(peer)
            return SocketLink(sock, timeout)

    else:
        sock.listen(1)

        def finish(ready: dict[str, Any]) -> SocketLink:
            sock.settimeout(timeout)
            connection, _ = sock.accept()
            stack.callback(connection.close)
            sock.close()
            return SocketLink(connection, timeout)

    return Plan(start=lambda: CommandPeer(spec, timeout), finish=finish)


def join(spec: dict[str, Any], timeout: float) -> tuple[SocketLink, dict[str, Any]]:
    """The peer's side: adopt the handed socket, or connect (datagrams: bind, connect, hello)."""
    family, type_ = spec["family"], spec["type"]
    if "fd" in spec:
        return SocketLink(socket.socket(fileno=spec["fd"]), timeout), {}
    address = tuple(spec["address"]) if family == socket.AF_INET else spec["address"]
    sock = socket.socket(family, type_)
    try:
        sock.settimeout(timeout)
        if "bind" in spec:
            sock.bind(tuple(spec["bind"]) if family == socket.AF_INET else spec["bind"])
        sock.connect(address)
        if "bind" in spec:
            sock.send(HELLO)
    except BaseException:
        sock.close()
        raise
    return SocketLink(sock, timeout), {}
