"""What a user might pick instead of anyipc: ``multiprocessing.Pipe`` and ``Queue``, and ZeroMQ.

Measured on the same framing as everything else: one message per
``send_bytes`` / ``put`` / ``send``, both ways.

* ``multiprocessing.Pipe()`` (two-way, a socket pair): the peer is a
  ``spawn`` process that is handed one end, as ``multiprocessing`` does it;
  ``recv_bytes`` is bounded with ``poll(timeout)``; ``send_bytes`` has no
  timeout and is bounded by the point's watchdog.
* ``multiprocessing.Queue()``, one each way, handed to a ``spawn`` process;
  ``get(timeout=...)`` (``put`` never blocks: the queue is unbounded).
* ZeroMQ ``PAIR`` sockets (pyzmq, when installed) over ``ipc://`` (a socket
  file in a private temporary directory) and ``tcp://`` (loopback): the
  measuring process binds, the peer connects; calls bounded with
  ``SNDTIMEO`` / ``RCVTIMEO``.
"""

from __future__ import annotations

import importlib.util
import multiprocessing
import queue
import shutil
import tempfile
from multiprocessing.connection import Connection
from multiprocessing.queues import Queue
from typing import Any

from anyipc._channel import BytesLike
from anyipc.cli._bench_link import check_size
from anyipc.cli._bench_peer import ConnectionControl, run
from anyipc.cli._bench_process import CommandPeer, SpawnPeer
from anyipc.cli._bench_session import Plan, Stack

__all__ = [
    "ConnectionLink",
    "QueueLink",
    "ZmqLink",
    "have_zmq",
    "join",
    "prepare_mp_pipe",
    "prepare_mp_queue",
    "prepare_zmq",
    "serve_mp_pipe",
    "serve_mp_queue",
]


class ConnectionLink:
    """A link over one ``multiprocessing`` connection."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def send(self, data: BytesLike, timeout: float) -> None:
        self._connection.send_bytes(data)

    def recv(self, size: int, timeout: float) -> BytesLike:
        if not self._connection.poll(timeout):
            raise TimeoutError(f"recv_bytes timed out after {timeout:g} s")
        message = self._connection.recv_bytes()
        check_size(len(message), size)
        return message

    def close(self) -> None:
        self._connection.close()


class QueueLink:
    """A link over two ``multiprocessing`` queues: ``out`` is put to, ``into`` taken from."""

    def __init__(self, out: Queue[bytes], into: Queue[bytes]) -> None:
        self._out, self._in = out, into

    def send(self, data: BytesLike, timeout: float) -> None:
        self._out.put(data if isinstance(data, bytes) else bytes(data))

    def recv(self, size: int, timeout: float) -> BytesLike:
        try:
            message = self._in.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"get timed out after {timeout:g} s") from None
        check_size(len(message), size)
        return message

    def close(self) -> None:
        for end in (self._out, self._in):
            _close_queue(end)


def _close_queue(end: Queue[bytes]) -> None:
    end.close()
    end.cancel_join_thread()  # never wait at exit for a reader that is gone


def serve_mp_pipe(control: Connection, connection: Connection, timeout: float) -> None:
    """The peer of ``multiprocessing.Pipe`` (a spawn process's target)."""
    raise SystemExit(
        run(lambda: (ConnectionLink(connection), {}), ConnectionControl(control), timeout)
    )


def serve_mp_queue(
    control: Connection, there: Queue[bytes], back: Queue[bytes], timeout: float
) -> None:
    """The peer of ``multiprocessing.Queue`` (a spawn target): gets ``there``, puts ``back``."""
    raise SystemExit(run(lambda: (QueueLink(back, there), {}), ConnectionControl(control), timeout))


def prepare_mp_pipe(stack: Stack, timeout: float) -> Plan:
    """This side of a ``multiprocessing.Pipe()``; the other end goes to a spawn process."""
    mine, theirs = multiprocessing.get_context("spawn").Pipe()
    stack.callback(mine.close)
    stack.callback(theirs.close)
    return Plan(
        start=lambda: SpawnPeer(serve_mp_pipe, (theirs, timeout)),
        finish=lambda ready: ConnectionLink(mine),
        handed=(theirs.close,),
    )


def prepare_mp_queue(stack: Stack, timeout: float) -> Plan:
    """Two ``multiprocessing.Queue()``: this side puts to the first and takes from the second."""
    context = multiprocessing.get_context("spawn")
    there: Queue[bytes] = context.Queue()
    stack.callback(_close_queue, there)
    back: Queue[bytes] = context.Queue()
    stack.callback(_close_queue, back)
    return Plan(
        start=lambda: SpawnPeer(serve_mp_queue, (there, back, timeout)),
        finish=lambda ready: QueueLink(there, back),
    )


def have_zmq() -> bool:
    """True when pyzmq is installed."""
    return importlib.util.find_spec("zmq") is not None


class ZmqLink:
    """A link over one ZeroMQ ``PAIR`` socket, with a context of its own."""

    def __init__(self) -> None:
        import zmq

        self._context = zmq.Context()
        try:
            self._sock = self._context.socket(zmq.PAIR)
        except BaseException:
            self._context.term()
            raise
        self._sock.linger = 0
        self._timeout: float | None = None

    def bind(self, endpoint: str) -> str:
        """Bind ``endpoint``; the endpoint bound (a port chosen)."""
        import zmq

        self._sock.bind(endpoint)
        return self._sock.getsockopt_string(zmq.LAST_ENDPOINT)

    def connect(self, endpoint: str) -> None:
        self._sock.connect(endpoint)

    def _bounded(self, timeout: float) -> None:
        if timeout != self._timeout:
            self._sock.sndtimeo = self._sock.rcvtimeo = max(1, round(timeout * 1000))
            self._timeout = timeout

    def send(self, data: BytesLike, timeout: float) -> None:
        import zmq

        self._bounded(timeout)
        try:
            self._sock.send(data)
        except zmq.Again:
            raise TimeoutError(f"send timed out after {timeout:g} s") from None

    def recv(self, size: int, timeout: float) -> BytesLike:
        import zmq

        self._bounded(timeout)
        try:
            message: bytes = self._sock.recv()
        except zmq.Again:
            raise TimeoutError(f"recv timed out after {timeout:g} s") from None
        check_size(len(message), size)
        return message

    def close(self) -> None:
        self._sock.close(linger=0)
        self._context.term()


def prepare_zmq(transport: str, stack: Stack, timeout: float) -> Plan:
    """This side of a ZeroMQ ``PAIR`` over ``transport`` (``ipc`` or ``tcp``): it binds."""
    link = ZmqLink()
    stack.callback(link.close)
    if transport == "ipc":
        directory = tempfile.mkdtemp(prefix="anyipc-bench-")
        stack.callback(shutil.rmtree, directory, ignore_errors=True)
        endpoint = link.bind(f"ipc://{directory}/zmq.sock")
    else:
        endpoint = link.bind("tcp://127.0.0.1:*")
    spec = {"kind": "zmq", "endpoint": endpoint}
    return Plan(start=lambda: CommandPeer(spec, timeout), finish=lambda ready: link)


def join(spec: dict[str, Any], timeout: float) -> tuple[ZmqLink, dict[str, Any]]:
    """The peer's side of ZeroMQ: connect to the endpoint."""
    link = ZmqLink()
    try:
        link.connect(spec["endpoint"])
    except BaseException:
        link.close()
        raise
    return link, {}
