"""The receiving end of ``signal://self``: this process's signals, read from a signalfd.

A :class:`Binding` claims some signals for one channel of this process:
it blocks them in the binding thread, checks that every thread blocks
them, reads them from a ``signalfd`` and, on release, discards what is
pending and restores the mask.  :class:`SignalReceiver` is the channel on
top of it.  The semantics are in :mod:`anyipc.transports.signal`.
"""

from __future__ import annotations

import errno
import os
import signal
import threading
import time
import warnings
from collections.abc import Iterable

from anyipc._capabilities import Capabilities
from anyipc._channel import Channel
from anyipc._deadline import Deadline
from anyipc._errors import (
    OUT_OF_DESCRIPTORS,
    AddressInUse,
    NotSupported,
    TransportUnavailable,
    map_os_error,
)
from anyipc._readiness import READABLE, wait_for_fd
from anyipc._signalfd import open_signalfd, read_siginfo, threads_not_blocking
from anyipc.transports._signal_addresses import process_uri
from anyipc.transports._signal_messages import Codec, signal_name

_THREAD_GRACE = 0.1  #: how long bind lets a thread that does not block the signals finish
_CLAIMS: dict[int, Binding] = {}  # signal number -> the open binding that receives it
_CLAIMS_LOCK = threading.Lock()


def _names(signals: Iterable[int]) -> str:
    return ", ".join(signal_name(signo) for signo in sorted(signals))


def _thread_names(tids: list[int]) -> str:
    by_tid = {thread.native_id: thread.name for thread in threading.enumerate()}
    return ", ".join(
        f"thread {by_tid[tid]!r} (tid {tid})" if tid in by_tid else f"thread {tid}" for tid in tids
    )


class Binding:
    """This process's claim on some signals: blocked in the binding thread, read by a signalfd."""

    def __init__(self, signals: frozenset[int], context: str) -> None:
        with _CLAIMS_LOCK:
            taken = signals & _CLAIMS.keys()
            if taken:
                raise AddressInUse(
                    errno.EADDRINUSE,
                    f"{context}: {_names(taken)} already received by another open "
                    "signal://self channel of this process",
                )
            before = signal.pthread_sigmask(signal.SIG_BLOCK, signals)
            self.signals = signals
            self.added = signals - {int(sig) for sig in before}
            self.thread = threading.get_ident()
            try:
                self._check_threads(context)
                self.fd = open_signalfd(signals)
            except OSError as exc:
                self._unblock()
                raise map_os_error(exc, context) from exc
            except BaseException:
                self._unblock()
                raise
            for signo in signals:
                _CLAIMS[signo] = self

    def _check_threads(self, context: str) -> None:
        # A thread that just ended (joined, say) may be listed a moment longer, as the C
        # library finishes it: only a thread still there after _THREAD_GRACE counts.
        give_up = time.monotonic() + _THREAD_GRACE
        try:
            lax = threads_not_blocking(self.signals)
            while lax and time.monotonic() < give_up:
                time.sleep(0.002)
                lax = threads_not_blocking(self.signals)
        except OSError as exc:
            if exc.errno in OUT_OF_DESCRIPTORS:
                raise  # not a /proc problem: mapped (naming the limit) by the caller
            raise TransportUnavailable(
                f"{context}: cannot read the signal masks of this process's threads "
                f"in /proc/self/task ({exc})"
            ) from exc
        if lax:
            raise TransportUnavailable(
                f"{context}: {_thread_names(lax)} {'does' if len(lax) == 1 else 'do'} not "
                f"block {_names(self.signals)}, "
                "so the kernel may deliver them there instead of to this channel (by default "
                "killing the process). Bind signal://self before starting threads, or block "
                "the signals (signal.pthread_sigmask) in each thread before it starts others"
            )

    def _unblock(self) -> None:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, self.added)

    def release(self) -> None:
        """Discard what is pending, close the descriptor, restore the binding thread's mask."""
        with _CLAIMS_LOCK:
            while read_siginfo(self.fd) is not None:
                pass
            os.close(self.fd)
            if threading.get_ident() == self.thread:
                self._unblock()
            elif self.added:
                warnings.warn(
                    f"signal://self closed from another thread than the one that bound it: "
                    f"{_names(self.added)} stay blocked in that thread; close it there, or "
                    "unblock them there with signal.pthread_sigmask(signal.SIG_UNBLOCK, ...)",
                    RuntimeWarning,
                    stacklevel=4,
                )
            for signo in self.signals:
                del _CLAIMS[signo]


class SignalReceiver(Channel):
    """The receiving end: the signals of this process that its address names."""

    def __init__(
        self, capabilities: Capabilities, codec: Codec, address: str, binding: Binding
    ) -> None:
        super().__init__(capabilities, address=address, can_send=False)
        self._codec = codec
        self._binding = binding

    def _send(self, data: memoryview, deadline: Deadline) -> None:
        raise NotSupported("signal://self receives; connect to signal://PID to send")

    def _recv(self, deadline: Deadline) -> bytes:
        return self._recv_from(deadline)[0]

    def _recv_from(self, deadline: Deadline) -> tuple[bytes, str]:
        while True:
            info = read_siginfo(self._binding.fd)
            if info is not None:
                return self._codec.decode(info), process_uri(info.pid)
            wait_for_fd(self._binding.fd, READABLE, deadline, self._waker, "recv on signal://self")

    def _wait_fd(self) -> int:
        return self._binding.fd

    def _close(self) -> None:
        self._binding.release()
