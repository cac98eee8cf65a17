"""One end of a pipe or FIFO as a simplex byte stream: what ``pipe://`` and ``fifo://`` share.

An :class:`FdStream` owns one descriptor, a read end or a write end, and
never changes its flags.  Pipe ends handed to a child stay in blocking mode
(the POSIX default), because ``O_NONBLOCK`` belongs to the open file
description, which the child shares: setting it would change the child's
descriptor too.  So every wait is a ``poll()`` (together with the
endpoint's waker: timeouts hold, and ``close()`` from another thread wakes
the call with :class:`~anyipc.ChannelClosed`), and the kernel is asked
only for what it can do without blocking:

* Reading: one ``read()`` after the descriptor polled readable (data, or
  no writer left).  It returns at once, unless another process reads the
  same pipe concurrently and takes the data first: then a blocking
  descriptor blocks until more data or the end arrives (two readers of one
  byte stream is a mistake anyway; give each reader its own pipe).
* Writing: on a non-blocking open file description of the pipe that is
  this channel's alone.  A ``fifo://`` writer opens its descriptor so (the
  ``private`` argument says so); for any other write end the first
  ``send`` opens a second description of the same pipe through
  ``/proc/self/fd/N`` (Linux), non-blocking and close-on-exec, and keeps
  it until ``close()``: it is never handed on (``fds`` names only the
  original), and the original's mode stays as it was.  A send writes all
  it can at once (the kernel takes what fits), and after a partial write
  or ``EAGAIN`` waits for the pipe to poll writable and writes again.
  While it is open it counts as one more writer of the pipe, which changes
  nothing visible: it closes with the channel, as the original does.
  Where it cannot be opened (no ``/proc``, no permission to reopen the
  pipe, no descriptor left) sends write the original descriptor, at most :data:`PIPE_BUF`
  bytes after each time it polled writable: Linux reports a pipe writable
  when one of its page-sized buffers is free, and a write of up to
  ``PIPE_BUF`` bytes fits in one, so it does not block, unless another
  process writing the same pipe fills it in between (then it waits for
  the reader to make room).  A larger write is not safe even when the
  bytes queued (``FIONREAD``) leave room: partial writes leave page
  buffers part-empty, so fewer pages may be free than the byte count
  suggests, and a blocking write that does not fit waits for the reader,
  past any deadline and ``close()``.

Atomicity: a write of up to ``PIPE_BUF`` (4096) bytes is atomic, never
interleaved with another writer's bytes (a non-blocking one is written
whole or fails with ``EAGAIN`` and is retried whole); one ``send`` of up
to ``PIPE_BUF`` bytes is one such write.  Longer sends may interleave with
other writers of the same pipe between the writes they are made of.

Ends.  ``recv`` returns 1..65536 bytes.  When no writer is left and
everything written was read it raises :class:`~anyipc.EndOfChannel`.  A
pipe cannot tell a writer that crashed from one that closed, so a killed
writer is also ``EndOfChannel``; a layer above (``framed+``) sees a
truncated message as :class:`~anyipc.ConnectionLost`.  ``send`` with no
reader left raises :class:`~anyipc.ConnectionLost`.

SIGPIPE.  Writing to a pipe nobody reads makes the kernel send SIGPIPE to
the writing thread, which kills the process when its disposition is the
default (Python ignores SIGPIPE at start-up, but a host program or
``signal.signal(SIGPIPE, SIG_DFL)`` may restore the default).  Pipes have no
``MSG_NOSIGNAL``, so each write runs with SIGPIPE blocked in the calling
thread; when the write fails with ``EPIPE`` the signal it left pending is
taken with ``sigtimedwait`` before SIGPIPE is unblocked, so it is never
delivered, whatever the disposition.  Only this thread's mask changes, and
only for the duration of the write.  (A SIGPIPE that someone sends to the
process with ``kill()`` at that very moment may be taken instead; it is
indistinguishable.)
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import signal
from collections.abc import Callable
from typing import TypeVar

from anyipc._capabilities import Capabilities
from anyipc._channel import Channel, receiving_view
from anyipc._deadline import Deadline
from anyipc._errors import (
    ChannelClosed,
    ConnectionLost,
    EndOfChannel,
    IPCError,
    Timeout,
    map_os_error,
)
from anyipc._readiness import READABLE, WRITABLE, FdWaiter

__all__ = ["CHUNK", "PIPE_BUF", "FdStream"]

PIPE_BUF = select.PIPE_BUF  #: bytes a pipe write delivers atomically (4096 on Linux)
CHUNK = 65536  #: the most bytes one ``recv`` returns

_SIGPIPE = {signal.SIGPIPE}
_T = TypeVar("_T")


class FdStream(Channel):
    """A simplex byte stream over one pipe or FIFO descriptor ``fd``, which it owns.

    ``sending`` says which end it is: the write end sends, the read end
    receives (the other operation raises :class:`~anyipc.NotSupported`).
    ``private`` says that ``fd`` is a write end in non-blocking mode whose
    open file description this channel alone uses (``fifo://`` opens its
    writers so): sends write it directly instead of opening their own.
    See the module docstring for blocking mode, atomicity, ends and SIGPIPE.
    ``close()`` closes the descriptor (and the one sends opened).
    """

    def __init__(
        self,
        fd: int,
        capabilities: Capabilities,
        *,
        sending: bool,
        address: str | None,
        peer: str | None = None,
        private: bool = False,
    ) -> None:
        self._fd = fd
        # What sends write without blocking: ``fd`` when private, else the description the
        # first send opens; -1 when it could not be opened (PIPE_BUF after each POLLOUT on fd).
        self._out: int | None = fd if private else None
        self._waiter: FdWaiter | None = None  # made by the first wait, under the call's lock
        super().__init__(
            capabilities, address=address, peer=peer, can_send=sending, can_recv=not sending
        )

    def recv_into(self, buffer: bytearray | memoryview, *, timeout: float | None = None) -> int:
        """Receive 1..``len(buffer)`` bytes into ``buffer`` and return how many.

        Same lock, timeout and errors as :meth:`recv`, without allocating
        (the framed layer reads large messages straight into place with it).
        ``buffer`` must be writable and not empty.
        """
        view = receiving_view(buffer)
        self._check_can_recv()
        deadline = Deadline(timeout)
        self._locked(self._recv_lock, deadline, "recv")
        try:
            self._check_open()
            return self._read(lambda: os.readv(self._fd, [view]), deadline)
        finally:
            self._recv_lock.release()

    def _recv(self, deadline: Deadline) -> bytes:
        return self._read(lambda: os.read(self._fd, CHUNK), deadline)

    def _read(self, attempt: Callable[[], _T], deadline: Deadline) -> _T:
        """Wait until readable, then ``attempt`` one read; bytes, or the end of the stream."""
        while True:
            self._wait(deadline, "recv")
            try:
                result = attempt()
            except BlockingIOError:  # a non-blocking descriptor whose data another reader took
                continue
            except OSError as exc:
                raise self._failure(exc, "recv") from exc
            if not result:
                raise EndOfChannel(f"{self.address or 'the pipe'}: every writer has closed")
            return result

    def _send(self, data: memoryview, deadline: Deadline) -> None:
        if self._out is None:
            self._out = _reopen_non_blocking(self._fd)
        if self._out >= 0:  # non-blocking: write what fits at once, wait only when it is full
            fd, step, wait_first = self._out, len(data), False
        else:  # blocking: one page's worth, each after the pipe polled writable
            fd, step, wait_first = self._fd, PIPE_BUF, True
        sent = 0
        while sent < len(data):
            if wait_first:
                try:
                    self._wait(deadline, "send")
                except Timeout:
                    raise Timeout(
                        f"send timed out after {sent} of {len(data)} bytes", sent=sent
                    ) from None
            wait_first = True
            try:
                sent += _write(fd, data[sent : sent + step])
            except BlockingIOError:  # full, or another writer filled it first
                continue
            except OSError as exc:
                raise self._failure(exc, "send") from exc

    def _wait(self, deadline: Deadline, what: str) -> None:
        if self._waiter is None:
            self._waiter = FdWaiter(self._fd, READABLE if self.can_recv else WRITABLE, self._waker)
        self._waiter.wait(deadline, what)

    def _failure(self, exc: OSError, what: str) -> IPCError:
        if self._closed:
            return ChannelClosed(f"{self!r} was closed during {what}")
        context = f"{what} on {self.address or self.peer or 'a pipe'}"
        if isinstance(exc, BrokenPipeError):
            return ConnectionLost(f"{context}: nobody reads from this pipe any more")
        return map_os_error(exc, context)

    def _wait_fd(self) -> int | None:
        return self._fd if self.can_recv else None

    def _close(self) -> None:
        if self._out is not None and self._out not in (-1, self._fd):
            os.close(self._out)
        os.close(self._fd)


def _reopen_non_blocking(fd: int) -> int:
    """A new non-blocking, close-on-exec descriptor writing the pipe of ``fd``; -1 if none.

    Opened through ``/proc/self/fd``, so that it is an open file description
    of its own: its mode is nobody else's.  Keeps ``O_DIRECT`` (packet mode).
    """
    flags = os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        flags |= fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT
        out = os.open(f"/proc/self/fd/{fd}", flags)
    except OSError:
        return -1
    with contextlib.suppress(OSError):
        if os.path.samestat(os.fstat(out), os.fstat(fd)):  # the same pipe, whatever /proc is
            return out
    os.close(out)
    return -1


def _write(fd: int, data: memoryview) -> int:
    """``os.write`` with SIGPIPE blocked in this thread; the SIGPIPE of an EPIPE is consumed."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGPIPE)
    try:
        # Already blocked and pending: the caller's own signal, which this write cannot add to.
        theirs = signal.SIGPIPE in old and signal.SIGPIPE in signal.sigpending()
        try:
            return os.write(fd, data)
        except BrokenPipeError:
            if not theirs:
                signal.sigtimedwait(_SIGPIPE, 0)
            raise
    finally:
        if signal.SIGPIPE not in old:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGPIPE)
