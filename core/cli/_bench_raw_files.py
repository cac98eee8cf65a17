"""Raw equivalents over descriptors: two ``os.pipe()`` pairs, or two FIFOs made with ``os.mkfifo``.

One pipe (FIFO) carries the messages to the peer, a second one brings
them back, as for ``pipe://`` and ``fifo://``, which are one-way.  The
descriptors stay blocking, as a plain program has them; each read and
write is bounded the standard way, ``poll()`` first with the timeout,
then one ``readinto`` of what fits in the buffer (a ``write`` of what is
still due); each fixed-size message is taken out of the buffer exactly,
as anyipc's stream channels do.  Pipes are handed to the peer with ``pass_fds``.  FIFOs live
in a private temporary directory that the measuring process removes; each
side opens its reading end first (non-blocking, so that the open does not
wait for a writer), then its writing end once the other side reads, and
then makes both blocking.
"""

from __future__ import annotations

import os
import select
import shutil
import tempfile
from typing import Any

from anyipc._channel import BytesLike
from anyipc.cli._bench_link import StreamReader
from anyipc.cli._bench_process import CommandPeer
from anyipc.cli._bench_session import Plan, Stack

__all__ = ["FileLink", "join", "prepare_fifo", "prepare_pipe"]


def _waiter(fd: int, events: int) -> select.poll:
    poller = select.poll()
    poller.register(fd, events)
    return poller


class FileLink:
    """A link over two descriptors: ``out`` is written, ``into`` read."""

    def __init__(self, out: int, into: int) -> None:
        self._out = os.fdopen(out, "wb", buffering=0)
        self._in = os.fdopen(into, "rb", buffering=0)
        self._writable = _waiter(out, select.POLLOUT)
        self._readable = _waiter(into, select.POLLIN)
        self._stream = StreamReader(self._read_into)
        self._timeout = 0.0  # the bound on the reads of the current recv

    @staticmethod
    def _wait(poller: select.poll, timeout: float, what: str) -> None:
        if not poller.poll(timeout * 1000):
            raise TimeoutError(f"{what} timed out after {timeout:g} s")

    def send(self, data: BytesLike, timeout: float) -> None:
        view = memoryview(data)
        sent = 0
        while sent < len(view):
            self._wait(self._writable, timeout, "write")
            sent += self._out.write(view[sent:]) or 0

    def _read_into(self, view: memoryview) -> int:
        self._wait(self._readable, self._timeout, "read")
        return self._in.readinto(view) or 0

    def recv(self, size: int, timeout: float) -> BytesLike:
        self._timeout = timeout
        return self._stream.exactly(size)

    def close(self) -> None:
        self._out.close()
        self._in.close()


class _Descriptors:
    """The descriptors this side owns until it hands them over; the stack closes the rest."""

    def __init__(self, stack: Stack) -> None:
        self._fds: list[int] = []
        stack.callback(self.close_all)

    def add(self, fd: int) -> int:
        self._fds.append(fd)
        return fd

    def release(self, fd: int) -> int:
        """``fd``, no longer owned here (a link owns it now)."""
        self._fds.remove(fd)
        return fd

    def close(self, fd: int) -> None:
        """Close ``fd`` now, if it is still owned here (never twice: its number may be reused)."""
        if fd in self._fds:
            os.close(self.release(fd))

    def close_all(self) -> None:
        for fd in list(self._fds):
            self.close(fd)


def prepare_pipe(stack: Stack, timeout: float) -> Plan:
    """This side of two pipes: it writes the first and reads the second."""
    owned = _Descriptors(stack)
    there_in, there_out = (owned.add(fd) for fd in os.pipe())
    back_in, back_out = (owned.add(fd) for fd in os.pipe())
    spec = {"kind": "files", "recv_fd": there_in, "send_fd": back_out}
    return Plan(
        start=lambda: CommandPeer(spec, timeout, (there_in, back_out)),
        finish=lambda ready: FileLink(owned.release(there_out), owned.release(back_in)),
        handed=(lambda: owned.close(there_in), lambda: owned.close(back_out)),
    )


def _blocking(fd: int) -> int:
    os.set_blocking(fd, True)
    return fd


def prepare_fifo(stack: Stack, timeout: float) -> Plan:
    """This side of two FIFOs: it writes ``there`` and reads ``back``."""
    directory = tempfile.mkdtemp(prefix="anyipc-bench-")
    stack.callback(shutil.rmtree, directory, ignore_errors=True)
    there, back = os.path.join(directory, "there"), os.path.join(directory, "back")
    os.mkfifo(there, 0o600)
    os.mkfifo(back, 0o600)
    owned = _Descriptors(stack)
    into = owned.add(os.open(back, os.O_RDONLY | os.O_NONBLOCK))

    def finish(ready: dict[str, Any]) -> FileLink:
        out = owned.add(os.open(there, os.O_WRONLY | os.O_NONBLOCK))  # the peer reads it by now
        return FileLink(_blocking(owned.release(out)), _blocking(owned.release(into)))

    spec = {"kind": "files", "recv_path": there, "send_path": back}
    return Plan(start=lambda: CommandPeer(spec, timeout), finish=finish)


def join(spec: dict[str, Any], timeout: float) -> tuple[FileLink, dict[str, Any]]:
    """The peer's side: the handed pipe ends, or the two FIFOs opened in turn."""
    if "recv_fd" in spec:
        return FileLink(spec["send_fd"], spec["recv_fd"]), {}
    into = os.open(spec["recv_path"], os.O_RDONLY | os.O_NONBLOCK)
    try:
        out = os.open(spec["send_path"], os.O_WRONLY | os.O_NONBLOCK)
    except BaseException:
        os.close(into)
        raise
    return FileLink(_blocking(out), _blocking(into)), {}
