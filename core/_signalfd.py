"""What the stdlib lacks for signals as data (Linux): ``signalfd``, ``sigqueue``, thread masks.

Python's :mod:`signal` has ``pthread_sigmask`` and ``sigtimedwait`` but no
``signalfd`` (a descriptor that ``poll()`` can wait on, so ``close()`` and
:func:`anyipc.wait` work) and no ``sigqueue`` (the only way to send a
real-time signal with a value).  Both are called here through :mod:`ctypes`
on the C library.  Nothing here installs a signal handler: a signal is read
from the descriptor while the signal is blocked, and never interrupts code.

``struct signalfd_siginfo`` is 128 bytes in host byte order; the fields read
are ``ssi_signo`` (offset 0), ``ssi_pid`` (12) and ``ssi_int`` (44, the
``sival_int`` a ``sigqueue`` carried; 0 for a plain ``kill``).
"""

from __future__ import annotations

import ctypes
import functools
import os
import struct
import sys
from collections.abc import Iterable

import attrs

__all__ = [
    "SIGINFO_SIZE",
    "SigInfo",
    "open_signalfd",
    "pending_limit",
    "read_siginfo",
    "sigqueue",
    "threads_not_blocking",
    "unavailable",
]

SIGINFO_SIZE = 128  #: bytes of one ``struct signalfd_siginfo``
_HEAD = struct.Struct("=I8xI")  # ssi_signo at 0, ssi_pid at 12
_INT = struct.Struct("=i")
_INT_OFFSET = 44  # ssi_int
_SIGSET_BYTES = 128  # glibc's sigset_t (1024 bits; the kernel reads the first 64)


class _SigVal(ctypes.Union):
    _fields_ = [("sival_int", ctypes.c_int), ("sival_ptr", ctypes.c_void_p)]


@attrs.frozen
class SigInfo:
    """One signal read from a signal descriptor.

    ``pid`` is the sender's (0 when no process visible here sent it: the
    kernel, a timer, another PID namespace); ``value`` is ``sival_int`` (0
    unless ``sigqueue`` set it).
    """

    signo: int
    pid: int
    value: int


@functools.cache
def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.signalfd.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
    libc.signalfd.restype = ctypes.c_int
    libc.sigqueue.argtypes = [ctypes.c_int, ctypes.c_int, _SigVal]
    libc.sigqueue.restype = ctypes.c_int
    libc.sigemptyset.argtypes = [ctypes.c_void_p]
    libc.sigaddset.argtypes = [ctypes.c_void_p, ctypes.c_int]
    return libc


def unavailable() -> str | None:
    """Why signal descriptors cannot be used here, or ``None`` when they can."""
    if not sys.platform.startswith("linux"):
        return f"signalfd is Linux-only (this is {sys.platform})"
    try:
        _libc()
    except (OSError, AttributeError) as exc:  # no C library, or one without these calls
        return f"the C library lacks signalfd or sigqueue ({exc})"
    return None


def _raise_errno(what: str) -> None:
    code = ctypes.get_errno()
    raise OSError(code, f"{what}: {os.strerror(code)}")


def open_signalfd(signals: Iterable[int]) -> int:
    """A non-blocking, close-on-exec descriptor that reads ``signals`` (an ``OSError`` if not).

    The caller must block the signals in every thread first, or they are
    handled as their disposition says instead of reaching the descriptor.
    """
    libc = _libc()
    mask = ctypes.create_string_buffer(_SIGSET_BYTES)
    libc.sigemptyset(mask)
    for signo in signals:
        if libc.sigaddset(mask, signo) != 0:
            _raise_errno(f"sigaddset({signo})")
    fd: int = libc.signalfd(-1, mask, os.O_NONBLOCK | os.O_CLOEXEC)
    if fd < 0:
        _raise_errno("signalfd")
    return fd


def read_siginfo(fd: int) -> SigInfo | None:
    """Dequeue one pending signal from ``fd``; ``None`` when none is pending."""
    try:
        raw = os.read(fd, SIGINFO_SIZE)
    except BlockingIOError:
        return None
    signo, pid = _HEAD.unpack_from(raw)
    (value,) = _INT.unpack_from(raw, _INT_OFFSET)
    return SigInfo(signo=signo, pid=pid, value=value)


def sigqueue(pid: int, signo: int, value: int) -> None:
    """Queue ``signo`` carrying ``value`` (a C int) to process ``pid``; ``OSError`` on failure.

    ``EAGAIN`` means the receiver's queue is full (``RLIMIT_SIGPENDING``).
    """
    if _libc().sigqueue(pid, signo, _SigVal(sival_int=value)) != 0:
        _raise_errno(f"sigqueue({pid}, {signo})")


def threads_not_blocking(signals: Iterable[int]) -> list[int]:
    """The thread ids of this process whose mask lacks some of ``signals``.

    Read from ``SigBlk`` in ``/proc/self/task/<tid>/status``; a thread that
    ends meanwhile is skipped.  ``OSError`` when ``/proc`` cannot be read.
    """
    wanted = 0
    for signo in signals:
        wanted |= 1 << (signo - 1)
    lax = []
    for name in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{name}/status") as status:
                lines = status.read().splitlines()
        except FileNotFoundError:
            continue
        blocked = next(int(line.split()[1], 16) for line in lines if line.startswith("SigBlk:"))
        if blocked & wanted != wanted:
            lax.append(int(name))
    return lax


def pending_limit(pid: int) -> str:
    """Process ``pid``'s ``RLIMIT_SIGPENDING`` soft limit as text (from ``/proc``), or "unknown"."""
    try:
        with open(f"/proc/{pid}/limits") as limits:
            for line in limits:
                if line.startswith("Max pending signals"):
                    return line.split()[3]
    except OSError:
        pass
    return "unknown"
