"""``signal://PID`` (send) and ``signal://self`` (receive) — Unix signals as a channel.

``connect("signal://1234")`` returns a channel that sends signals to process
1234 (``signal://self``: to this process); ``bind("signal://self")`` returns
the channel on which this process receives them::

    with anyipc.bind("signal://self?signals=HUP,TERM,USR1") as signals:
        for name in signals:          # b"SIGHUP", b"SIGUSR1", ...
            if name == b"SIGTERM":
                break

Taxonomy: SIMPLEX (a ``connect`` end only sends, a ``bind`` end only
receives), MESSAGE, CONNECTIONLESS (a process receives signals from any
process that may signal it; ``recv_from`` names the sender as
``signal://PID``, ``send_to`` names any target; there is no connection, so
a receiver never learns that a sender is gone: ``reports_end`` is false and
it never sees :class:`~anyipc.EndOfChannel`), HOST, NAMED (a pid is a name).
A sender killed at any moment leaves no partial message (the kernel
delivers a signal whole or not at all) and does not disturb the receiver,
which goes on receiving from everyone else: without a connection there is
nothing to lose, and the receiver's loop (a server's ``for name in
signals``) must not end because one ``kill`` command exited.
Two modes, chosen with ``mode``:

``mode=classic`` (default): a message is the name of a standard signal, as
Python spells it, in ASCII: ``b"SIGHUP"``, ``b"SIGUSR1"`` (the bytes of
``signal.Signals(n).name``).  The names a channel carries are the option
``signals`` (comma-separated, with or without ``SIG``, any case; default
``USR1,USR2``); the uncatchable ``KILL`` and ``STOP`` and the fault signals
``SEGV``, ``BUS``, ``FPE``, ``ILL``, ``TRAP`` and ``SYS`` cannot be
messages.  Claims: **not lossless** (a standard signal sent while one of its
kind is pending merges with it: a thousand ``SIGUSR1`` may arrive as one),
**not ordered** (of several pending standard signals, Linux delivers the
lowest-numbered first), intact (only names that were sent arrive; the sender
may be any process allowed to signal this one, or the kernel), duplicate-free
(a signal is delivered once), ``max_message_size`` = the longest allowed name.

``mode=rt``: a message is exactly 4 bytes, the ``sival_int`` a real-time
signal carries, big-endian two's complement (``struct.pack(">i", value)``),
sent with ``sigqueue`` on the one signal ``SIGRTMIN+rtsig`` (option
``rtsig``, default 1).  Real-time signals queue: the claims are lossless,
ordered (per sender; the queue is first-in first-out), intact and
duplicate-free, ``max_message_size`` 4.  The queue holds at most the
receiving process's ``RLIMIT_SIGPENDING`` signals, counted over all pending
signals of its user; while it is full, ``send`` retries (with a back-off up
to 50 ms) until there is room or its timeout passes: :class:`~anyipc.Timeout`
naming the limit and its value, and nothing was sent.  A plain ``kill`` of
that signal (no value) arrives as ``b"\\x00\\x00\\x00\\x00"``.

No anyipc header: any program is a peer.  ``kill -USR1 PID`` from a shell is
received as ``b"SIGUSR1"``; a C program's ``sigqueue(pid, SIGRTMIN+1,
(union sigval){.sival_int = 42})`` as ``b"\\x00\\x00\\x00*"``; a C receiver
blocking the signal and calling ``sigwaitinfo`` sees what anyipc sends.

Sending is sending a real signal: a process that neither blocks, catches nor
ignores it takes the default action, which for most signals is termination.
``connect`` checks that the process exists and may be signalled
(``kill(pid, 0)``); ``send`` of data that is not a message of this channel
(a name outside ``signals``; in ``rt`` mode, fewer than 4 bytes) raises
``ValueError`` before any system call (longer than ``max_message_size``:
:class:`~anyipc.MessageTooLarge`, also a ``ValueError``), and the channel
stays usable.

Receiving never runs code in a signal handler.  ``bind`` blocks the signals
(``pthread_sigmask``) in the calling thread and reads them from a signal
descriptor (``signalfd``), which ``recv`` polls (so ``recv(timeout=...)``,
``close()`` from another thread and :func:`anyipc.wait` work).  Rules that
follow from how the kernel delivers signals:

* Threads: a signal sent to the process goes to any one of its threads that
  does not block it, and is then handled there, not by the channel.  So
  ``bind`` requires every thread of the process to block the signals: after
  blocking them in the calling thread it reads the mask of every thread
  (``SigBlk`` in ``/proc/self/task/<tid>/status``) and raises
  :class:`~anyipc.TransportUnavailable` naming any thread that does not
  block them, changing nothing (a thread that is just ending gets 0.1 s to
  go; an unreadable ``/proc`` is also that error).  Threads started later
  inherit the mask of the thread that starts them.  Bind ``signal://self``
  before starting threads (or block the signals in each thread before it
  starts others).
* Only one binding per signal in a process: binding a signal that another
  open channel of this process receives raises :class:`~anyipc.AddressInUse`.
* Process-directed signals (``kill``, ``sigqueue``) are received by a
  ``recv`` in any thread; a signal aimed at one thread (``pthread_kill``,
  ``tgkill``) only by a ``recv`` in that thread.
* Child processes inherit the blocked mask, and ``exec`` keeps it: a child
  started while a binding is open has these signals blocked until it
  unblocks them (``signal.pthread_sigmask(signal.SIG_UNBLOCK, ...)``).
* ``close()`` discards the signals still pending (reads and drops them),
  closes the descriptor, then unblocks the signals that ``bind`` blocked
  (those already blocked before stay blocked), restoring the previous mask.
  Only the thread that bound can do that (a thread's mask is its own): closed
  from another thread, the signals stay blocked in the binding thread, which
  a ``RuntimeWarning`` says.  A signal that arrives after the close meets the
  disposition it had before the binding (for most: termination).

Addresses: a bound channel's ``address`` is ``signal://<this pid>`` with its
options, which ``connect`` accepts.  ``recv_from`` returns the sender as
``signal://PID`` (``signal://0`` when no process visible here sent it: the
kernel, a timer, a process in another PID namespace; being no process,
``send_to`` refuses it).  ``send_to`` takes ``signal://PID`` or
``signal://self`` without options (the mode and names are the channel's).
``bind`` on another process's pid raises :class:`~anyipc.NotSupported`.

Errors: a process that does not exist (or has exited) —
:class:`~anyipc.ConnectionLost`; one this process may not signal (another
user's, without ``CAP_KILL``) — :class:`~anyipc.PermissionDenied`; both at
``connect`` and at every ``send``.  A process that has exited but was not
yet reaped by its parent (a zombie) still exists: signals to it succeed and
are lost.
"""

from __future__ import annotations

import errno
import os
import signal
import struct
import threading
import time
import warnings
from collections.abc import Iterable
from typing import TYPE_CHECKING

import attrs

from anyipc import hookimpl
from anyipc._address import Address
from anyipc._capabilities import Addressing, Boundaries, Capabilities, Connection, Direction, Scope
from anyipc._channel import Channel
from anyipc._deadline import Deadline
from anyipc._errors import (
    AddressInUse,
    ChannelClosed,
    InvalidAddress,
    NotSupported,
    Timeout,
    TransportUnavailable,
    map_os_error,
)
from anyipc._options import Option, OptionValue
from anyipc._readiness import READABLE, wait_for_fd
from anyipc._records import TransportSpec
from anyipc._signalfd import (
    SigInfo,
    open_signalfd,
    pending_limit,
    read_siginfo,
    sigqueue,
    threads_not_blocking,
    unavailable,
)

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

PID_MAX_LIMIT = 4_194_304  #: the largest pid Linux can have (``PID_MAX_LIMIT`` on 64-bit)
_RT_SPAN = signal.SIGRTMAX - signal.SIGRTMIN
_VALUE = struct.Struct(">i")
_MAX_PAUSE = 0.05  #: longest wait between two tries of a send whose queue is full
_THREAD_GRACE = 0.1  #: how long bind lets a thread that does not block the signals finish

_NOT_MESSAGES = {
    signal.SIGKILL: "it cannot be caught or blocked",
    signal.SIGSTOP: "it cannot be caught or blocked",
    **dict.fromkeys(
        (
            signal.SIGSEGV,
            signal.SIGBUS,
            signal.SIGFPE,
            signal.SIGILL,
            signal.SIGTRAP,
            signal.SIGSYS,
        ),
        "it reports faults: blocking it cannot stop a real fault and would bypass its handler",
    ),
}
#: the standard signals a channel can carry, by canonical name
NAMES = {
    sig.name: sig for sig in signal.Signals if sig < signal.SIGRTMIN and sig not in _NOT_MESSAGES
}
DEFAULT_SIGNALS = "USR1,USR2"


def _signal_name(signo: int) -> str:
    if signo >= signal.SIGRTMIN:
        return f"SIGRTMIN+{signo - signal.SIGRTMIN}"
    return signal.Signals(signo).name


def parse_signals(text: str) -> tuple[signal.Signals, ...]:
    """The signals a ``signals`` option names, by number; ``ValueError`` saying what is wrong."""
    found = set()
    for item in text.split(","):
        name = item.upper() if item.upper().startswith("SIG") else f"SIG{item.upper()}"
        member = signal.Signals.__members__.get(name)
        if member is None:
            raise ValueError(f"{item!r} is not a signal name")
        if member >= signal.SIGRTMIN:
            raise ValueError(f"{member.name} is a real-time signal: use mode=rt (option rtsig)")
        if member in _NOT_MESSAGES:
            raise ValueError(f"{member.name} cannot be a message: {_NOT_MESSAGES[member]}")
        found.add(member)
    return tuple(sorted(found))


def _check_signals(value: OptionValue) -> str | None:
    try:
        parse_signals(str(value))
    except ValueError as exc:
        return f"{exc}; the valid names are {', '.join(name[3:] for name in NAMES)}"
    return None


MODE = Option(
    name="mode",
    kind=str,
    default="classic",
    choices=("classic", "rt"),
    doc="classic: messages are signal names (may merge); rt: 4-byte values on one "
    "real-time signal (queued, in order)",
)
SIGNALS = Option(
    name="signals",
    kind=str,
    default=DEFAULT_SIGNALS,
    check=_check_signals,
    doc="mode=classic: the signals carried, comma-separated (e.g. HUP,TERM,USR1)",
)
RTSIG = Option(
    name="rtsig",
    kind=int,
    default=1,
    minimum=0,
    maximum=_RT_SPAN,
    doc="mode=rt: the real-time signal used is SIGRTMIN plus this",
)
OPTIONS = (MODE, SIGNALS, RTSIG)


# -- messages ---------------------------------------------------------------------------------
@attrs.frozen
class _Names:
    """mode=classic: a message is a signal's name."""

    signals: tuple[signal.Signals, ...]

    queued = False

    @property
    def max_size(self) -> int:
        return max(len(sig.name) for sig in self.signals)

    def encode(self, data: bytes) -> tuple[int, int]:
        for sig in self.signals:
            if data == sig.name.encode():
                return sig, 0
        allowed = ", ".join(sig.name for sig in self.signals)
        raise ValueError(f"{data[:24]!r} is not a message of this channel: it carries {allowed}")

    def decode(self, info: SigInfo) -> bytes:
        return signal.Signals(info.signo).name.encode()


@attrs.frozen
class _Values:
    """mode=rt: a message is the 4-byte big-endian value one real-time signal carries."""

    signo: int

    queued = True
    max_size = _VALUE.size

    @property
    def signals(self) -> tuple[int, ...]:
        return (self.signo,)

    def encode(self, data: bytes) -> tuple[int, int]:
        if len(data) != _VALUE.size:
            raise ValueError(
                f"a signal:// rt message is exactly {_VALUE.size} bytes "
                f"(a big-endian 32-bit value), not {len(data)}"
            )
        return self.signo, _VALUE.unpack(data)[0]

    def decode(self, info: SigInfo) -> bytes:
        return _VALUE.pack(info.value)


def _codec(address: Address) -> _Names | _Values:
    given = address.query
    if address.get(MODE) == "rt":
        if SIGNALS.name in given:
            raise InvalidAddress(
                "signal://: option signals is for mode=classic; mode=rt carries values on the "
                "one signal SIGRTMIN+rtsig"
            )
        offset = address.get(RTSIG)
        assert isinstance(offset, int)
        return _Values(signal.SIGRTMIN + offset)
    if RTSIG.name in given:
        raise InvalidAddress("signal://: option rtsig is for mode=rt")
    return _Names(parse_signals(str(address.get(SIGNALS))))


_COMMON = Capabilities(
    direction=Direction.SIMPLEX,
    boundaries=Boundaries.MESSAGE,
    connection=Connection.CONNECTIONLESS,
    lossless=False,
    ordered=False,
    intact=True,
    duplicate_free=True,
    scope=Scope.HOST,
    addressing=Addressing.NAMED,
    reports_end=False,
)


def capabilities(address: Address) -> Capabilities:
    """Classic: not lossless, not ordered; rt: reliable.  See the module docstring."""
    codec = _codec(address)
    return _COMMON.evolve(
        lossless=codec.queued, ordered=codec.queued, max_message_size=codec.max_size
    )


def messages(address: Address) -> SearchStrategy[bytes]:
    """Valid messages for ``address``: 4-byte values in rt mode, else its allowed names."""
    from hypothesis import strategies as st

    if address.get(MODE) == "rt":
        return st.binary(min_size=_VALUE.size, max_size=_VALUE.size)
    return st.sampled_from([sig.name.encode() for sig in parse_signals(str(address.get(SIGNALS)))])


# -- addresses -------------------------------------------------------------------------------
def _check_location(location: str) -> str | None:
    if location == "self":
        return None
    if not location.isascii() or not location.isdigit() or location.startswith("0"):
        return (
            f"{location!r} is not a process: write signal://PID (a positive decimal number) "
            "or signal://self"
        )
    if int(location) > PID_MAX_LIMIT:
        return f"{location} is above the largest pid Linux can have ({PID_MAX_LIMIT})"
    return None


def _pid(location: str) -> int:
    return os.getpid() if location == "self" else int(location)


def _process_uri(pid: int) -> str:
    return f"signal://{pid}"


def _verbs_for(address: Address) -> tuple[str, ...]:
    if _pid(address.location) == os.getpid():
        return ("connect", "bind")
    return ("connect",)


def _target(uri: str) -> int:
    """The pid a ``send_to`` address names."""
    address = Address.parse(uri)
    if address.scheme != "signal" or address.layers or address.options:
        raise InvalidAddress(
            f"send_to needs signal://PID or signal://self without options (the mode and "
            f"signals are this channel's), not {uri!r}"
        )
    return _pid(address.location)


# -- sending ---------------------------------------------------------------------------------
def _kill(pid: int, signo: int, context: str) -> None:
    """``kill(pid, signo)`` (0: only check that ``pid`` may be signalled), errors mapped."""
    try:
        os.kill(pid, signo)
    except OSError as exc:
        raise map_os_error(exc, context) from exc


class SignalSender(Channel):
    """The sending end: ``send`` signals the process named at connect, ``send_to`` any."""

    def __init__(self, capabilities: Capabilities, codec: _Names | _Values, pid: int) -> None:
        super().__init__(capabilities, peer=_process_uri(pid), can_recv=False)
        self._codec = codec
        self._pid = pid
        self._closing = threading.Event()

    def _send(self, data: memoryview, deadline: Deadline) -> None:
        self._deliver(self._pid, data, deadline)

    def _send_to(self, data: memoryview, address: str, deadline: Deadline) -> None:
        self._deliver(_target(address), data, deadline)

    def _recv(self, deadline: Deadline) -> bytes:
        raise NotSupported("a signal://PID channel sends; bind signal://self to receive")

    def _interrupt(self) -> None:
        self._closing.set()

    def _deliver(self, pid: int, data: memoryview, deadline: Deadline) -> None:
        signo, value = self._codec.encode(data.tobytes())
        context = f"send {_signal_name(signo)} to {_process_uri(pid)}"
        if not self._codec.queued:
            _kill(pid, signo, context)
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


def connect(address: Address) -> Channel:
    """A channel that signals the process ``address`` names; see the module docstring.

    Raises :class:`~anyipc.ConnectionLost` when the process does not exist and
    :class:`~anyipc.PermissionDenied` when this process may not signal it.
    """
    pid = _pid(address.location)
    _kill(pid, 0, f"connect to {_process_uri(pid)}")
    return SignalSender(capabilities(address), _codec(address), pid)


# -- receiving -------------------------------------------------------------------------------
_CLAIMS: dict[int, _Binding] = {}  # signal number -> the open binding that receives it
_CLAIMS_LOCK = threading.Lock()


def _names(signals: Iterable[int]) -> str:
    return ", ".join(_signal_name(signo) for signo in sorted(signals))


def _thread_names(tids: list[int]) -> str:
    by_tid = {thread.native_id: thread.name for thread in threading.enumerate()}
    return ", ".join(
        f"thread {by_tid[tid]!r} (tid {tid})" if tid in by_tid else f"thread {tid}" for tid in tids
    )


class _Binding:
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
        self, capabilities: Capabilities, codec: _Names | _Values, address: str, binding: _Binding
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
                return self._codec.decode(info), _process_uri(info.pid)
            wait_for_fd(self._binding.fd, READABLE, deadline, self._waker, "recv on signal://self")

    def _wait_fd(self) -> int:
        return self._binding.fd

    def _close(self) -> None:
        self._binding.release()


def bind(address: Address) -> Channel:
    """Receive this process's signals that ``address`` names; see the module docstring.

    Raises :class:`~anyipc.AddressInUse` when an open channel of this process
    already receives one of them, :class:`~anyipc.TransportUnavailable` when
    a thread of this process does not block them.
    """
    codec = _codec(address)
    name = str(address.replace(location=str(os.getpid())))
    binding = _Binding(frozenset(int(signo) for signo in codec.signals), f"bind {name}")
    return SignalReceiver(capabilities(address), codec, name, binding)


@hookimpl
def anyipc_transports() -> list[TransportSpec]:
    return [
        TransportSpec(
            scheme="signal",
            description="Unix signals: names (classic, may merge) or queued 32-bit values (rt)",
            capabilities=capabilities,
            check_location=_check_location,
            test_address=lambda: "signal://self",
            options=OPTIONS,
            connect=connect,
            bind=bind,
            available=unavailable,
            message_strategy=messages,
            verbs_for=_verbs_for,
        )
    ]
