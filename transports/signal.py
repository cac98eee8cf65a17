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

import os
import signal
from typing import TYPE_CHECKING

from anyipc import hookimpl
from anyipc._address import Address
from anyipc._capabilities import Addressing, Boundaries, Capabilities, Connection, Direction, Scope
from anyipc._channel import Channel
from anyipc._errors import InvalidAddress
from anyipc._options import Option, OptionValue
from anyipc._records import TransportSpec
from anyipc._signalfd import unavailable
from anyipc.transports._signal_addresses import check_location, pid_of, process_uri, verbs_for
from anyipc.transports._signal_messages import (
    NAMES,
    VALUE,
    Codec,
    NameCodec,
    ValueCodec,
    parse_signals,
)
from anyipc.transports._signal_receiver import Binding, SignalReceiver
from anyipc.transports._signal_sender import SignalSender, kill

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

_RT_SPAN = signal.SIGRTMAX - signal.SIGRTMIN
DEFAULT_SIGNALS = "USR1,USR2"


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


def _codec(address: Address) -> Codec:
    given = address.query
    if address.get(MODE) == "rt":
        if SIGNALS.name in given:
            raise InvalidAddress(
                "signal://: option signals is for mode=classic; mode=rt carries values on the "
                "one signal SIGRTMIN+rtsig"
            )
        offset = address.get(RTSIG)
        assert isinstance(offset, int)
        return ValueCodec(signal.SIGRTMIN + offset)
    if RTSIG.name in given:
        raise InvalidAddress("signal://: option rtsig is for mode=rt")
    return NameCodec(parse_signals(str(address.get(SIGNALS))))


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
        return st.binary(min_size=VALUE.size, max_size=VALUE.size)
    return st.sampled_from([sig.name.encode() for sig in parse_signals(str(address.get(SIGNALS)))])


def connect(address: Address) -> Channel:
    """A channel that signals the process ``address`` names; see the module docstring.

    Raises :class:`~anyipc.ConnectionLost` when the process does not exist and
    :class:`~anyipc.PermissionDenied` when this process may not signal it.
    """
    pid = pid_of(address.location)
    kill(pid, 0, f"connect to {process_uri(pid)}")
    return SignalSender(capabilities(address), _codec(address), pid)


def bind(address: Address) -> Channel:
    """Receive this process's signals that ``address`` names; see the module docstring.

    Raises :class:`~anyipc.AddressInUse` when an open channel of this process
    already receives one of them, :class:`~anyipc.TransportUnavailable` when
    a thread of this process does not block them.
    """
    codec = _codec(address)
    name = str(address.replace(location=str(os.getpid())))
    binding = Binding(frozenset(int(signo) for signo in codec.signals), f"bind {name}")
    return SignalReceiver(capabilities(address), codec, name, binding)


@hookimpl
def anyipc_transports() -> list[TransportSpec]:
    return [
        TransportSpec(
            scheme="signal",
            description="Unix signals: names (classic, may merge) or queued 32-bit values (rt)",
            capabilities=capabilities,
            check_location=check_location,
            test_address=lambda: "signal://self",
            options=OPTIONS,
            connect=connect,
            bind=bind,
            available=unavailable,
            message_strategy=messages,
            verbs_for=verbs_for,
        )
    ]
