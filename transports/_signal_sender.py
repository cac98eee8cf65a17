"""The sending end of ``signal://``: ``connect("signal://PID")`` signals that process.

Classic messages go out with ``kill``; real-time values with ``sigqueue``,
retried with a back-off while the receiver's queue of pending signals is
full.  The semantics are in :mod:`anyipc.transports.signal`.
"""

from __future__ import annotations

import errno
import os
import threading

from anyipc._capabilities import Capabilities
from anyipc._channel import Channel
from anyipc._deadline import Deadline
from anyipc._errors import ChannelClosed, NotSupported, Timeout, map_os_error
from anyipc._signalfd import pending_limit, sigqueue
from anyipc.transports._signal_addresses import process_uri, target
from anyipc.transports._signal_messages import Codec, signal_name

_MAX_PAUSE = 0.05  #: longest wait between two tries of a send whose queue is full


def kill(pid: int, signo: int, context: str) -> None:
    """``kill(pid, signo)`` (0: only check that ``pid`` may be signalled), errors mapped."""
    try:
        os.kill(pid, signo)
    except OSError as exc:
        raise map_os_error(exc, context) from exc


class SignalSender(Channel):
    """The sending end: ``send`` signals the process named at connect, ``send_to`` any."""

    def __init__(self, capabilities: Capabilities, codec: Codec, pid: int) -> None:
        super().__init__(capabilities, peer=process_uri(pid), can_recv=False)
        self._codec = codec
        self._pid = pid
        self._closing = threading.Event()

    def _send(self, data: memoryview, deadline: Deadline) -> None:
        self._deliver(self._pid, data, deadline)

    def _send_to(self, data: memoryview, address: str, deadline: Deadline) -> None:
        self._deliver(target(address), data, deadline)

    def _recv(self, deadline: Deadline) -> bytes:
        raise NotSupported("a signal://PID channel sends; bind signal://self to receive")

    def _interrupt(self) -> None:
        self._closing.set()

    def _deliver(self, pid: int, data: memoryview, deadline: Deadline) -> None:
        signo, value = self._codec.encode(data.tobytes())
        context = f"send {signal_name(signo)} to {process_uri(pid)}"
        if not self._codec.queued:
            kill(pid, signo, context)
            return
        pause = 0.001
        while True:
            try:
                sigqueue(pid, signo, value)
                return
            except OSError as exc:
                if exc.errno != errno.EAGAIN:
                    raise map_os_error(exc, context) from exc
            if deadline.expired():
                raise Timeout(
                    f"{context} timed out: that process's queue of pending signals stayed full "
                    f"(its RLIMIT_SIGPENDING is {pending_limit(pid)}, counted over all pending "
                    "signals of its user)"
                )
            left = deadline.remaining()
            if self._closing.wait(pause if left is None else min(pause, left)):
                raise ChannelClosed(f"{self!r} was closed during the send")
            pause = min(pause * 2, _MAX_PAUSE)
