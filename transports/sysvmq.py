"""``sysvmq://key`` — System V message queues (``msgop(2)``), through sysv_ipc.

``sysvmq://0x1234abcd`` (or ``sysvmq://305441741``) names the queue with
that key: an unsigned 32-bit number other than 0 (``IPC_PRIVATE``), in
decimal or ``0x`` hex as ``ipcs`` shows it.  ``bind("sysvmq://")`` picks a
fresh random key (retried on collision), reported in the channel's
``address``.

Message types.  Every SysV message carries a type (``mtype``, at least 1).
The ``type`` option (default 1) is the type a sending end sends with and the
type a receiving end takes (``msgrcv(type)``); a receiver with ``type=0``
takes the oldest message of any type.  So one queue carries several
independent typed channels: a receiver never sees the others' messages.

Verbs, roles and ownership:

* ``bind`` with ``create=true`` (the default) creates the queue
  exclusively (``IPC_CREAT|IPC_EXCL``) with exactly the permissions of
  ``mode`` (default ``600``: only this user) and returns a receiving end.
  That end *owns* the queue: on close it removes it (``IPC_RMID``), with
  every message of every type still in it.  The owner is the process that
  bound: a forked child's copy of the channel removes nothing on close.
* ``bind`` with ``create=false`` receives on a queue another ``bind``
  created (typically another ``type``); it does not own the queue and
  leaves it on close.  It needs an explicit key.  When the owner closes,
  the queue is gone for everyone: this end's ``recv`` raises
  :class:`~anyipc.ConnectionLost`.  Two receivers of one type share its
  messages (each message goes to one of them).
* ``connect`` opens an existing queue and returns a sending end (``type``
  at least 1).

Both ``connect`` and ``bind(create=false)`` raise
:class:`~anyipc.ConnectionLost` when no queue has that key ("nobody has
bound it") or when its owner died.

Taxonomy: SIMPLEX (only the binder receives), ORIENTED (a sender opens the
queue once; messages carry no sender identity that a receiver could reply
to, so it is not CONNECTIONLESS), MESSAGE, lossless, intact,
duplicate-free, and ordered within one message type.

Non-guarantees:

* No end of channel by default.  When every sender has closed, or a
  sender was killed, ``recv`` waits until its timeout
  (:class:`~anyipc.Timeout`): a queue records no senders.  ``for message
  in channel`` never ends on its own.  ``end=senders`` changes that (below).
* A sender learns that the owner removed the queue at its next ``send``
  (:class:`~anyipc.ConnectionLost`), and that the owner died only while its
  send waits for room in a full queue (checked every half second).

The end of the senders (``end=senders`` on the owning ``bind``).  Every
sending end of anyipc enrols in the queue's roster while it is open (see
:mod:`anyipc._senders`); the receiver checks it while it waits (every
0.1 s).  Once at least one sender came, none is left, and no message of
this end's type is queued, ``recv`` raises :class:`~anyipc.EndOfChannel`
when they all closed, or :class:`~anyipc.ConnectionLost` when one was
killed.  The roster counts senders of every type, and only the owner keeps
one (``create=false`` with ``end=senders`` is :class:`~anyipc.InvalidAddress`).
Programs that send without anyipc are not counted.  The capabilities then
report ``reports_end``.

Atomicity.  The kernel copies a message in one system call: a sender killed
at any moment leaves no partial message, and the queue goes on working.

Waiting.  SysV queues have no descriptor, so blocking is a loop of
non-blocking attempts with sleeps from 0.1 ms doubling to 5 ms (``time.sleep``
retries after signals, PEP 475); ``close()`` from another thread ends it
within one sleep.  :func:`anyipc.wait` re-checks a receiving end every 5 ms
(``poll_interval``): to find out whether a message *of its type* is there
(which the kernel cannot tell without taking it), the check takes the next
such message into the channel, and the next ``recv`` returns it.  So
``wait`` never reports a channel ready for another type's message, but a
message it found belongs to that channel: closing the channel without
receiving it discards it.

Limits.  ``max_message_size`` (default ``kernel.msgmax``, 8192 on Linux)
and ``queue_bytes`` (what the queue holds before ``send`` blocks, default
``kernel.msgmnb``, 16384) may be lowered but not raised above those
sysctls: a larger value is :class:`~anyipc.InvalidAddress` naming the
limit, its value and how to raise it.  A message also has to fit into the
queue, so the largest message is the smaller of the two.  ``connect`` reads
the queue's ``queue_bytes`` so that an oversize ``send`` raises
:class:`~anyipc.MessageTooLarge` before anything is sent.  ``mode``,
``queue_bytes`` and ``create`` are used by ``bind`` only; one URI may serve
both ends.  When ``send`` finds the queue full it waits (or times out) and
loses nothing.

Stale queues.  A queue outlives a crashed owner (kernel persistence); its
owner file (see :mod:`anyipc._owner`) tells that the owner died.  ``bind``
on the key of such a queue removes it, with its messages, and creates a
fresh one.  A queue that anyipc did not create is never removed:
:class:`~anyipc.AddressInUse` (``ipcrm -Q KEY`` removes it).  Queues are
listed by ``ipcs -q`` and ``/proc/sysvipc/msg``.
"""

from __future__ import annotations

import errno
import re
import secrets
import threading
import time

import sysv_ipc

from anyipc import hookimpl
from anyipc._address import Address
from anyipc._capabilities import Addressing, Boundaries, Capabilities, Connection, Direction, Scope
from anyipc._channel import Channel
from anyipc._deadline import Deadline
from anyipc._errors import (
    AddressInUse,
    ChannelClosed,
    ConnectionLost,
    InvalidAddress,
    PermissionDenied,
    Timeout,
    TransportUnavailable,
    map_os_error,
)
from anyipc._limits import at_most_sysctl, sysctl
from anyipc._options import Option, OptionValue
from anyipc._owner import OwnerLock, lock_path, mode_bits, mode_option, owner_alive
from anyipc._records import TransportSpec
from anyipc._senders import (
    SURVEY_S,
    Enrolment,
    Roster,
    end_option,
    follows_senders,
    remove_roster,
    roster_path,
)

SCHEME = "sysvmq"
KEY_MAX = 0xFFFFFFFF
TYPE_MAX = 2**31 - 1  #: sysv_ipc passes the type as a C int
DEFAULT_MSGMAX = 8192  #: Linux's kernel.msgmax, used where /proc/sys cannot be read
DEFAULT_MSGMNB = 16384  #: Linux's kernel.msgmnb
FIRST_NAP_S = 0.0001  #: the first sleep of a wait; it doubles up to LAST_NAP_S
LAST_NAP_S = 0.005
RECHECK_S = 0.5  #: how often a send blocked on a full queue checks that the owner lives
_RANDOM_KEY_ATTEMPTS = 16
_KEY = re.compile(r"(0[xX][0-9a-fA-F]{1,8}|[0-9]{1,10})\Z")

CAPABILITIES = Capabilities(
    direction=Direction.SIMPLEX,
    boundaries=Boundaries.MESSAGE,
    connection=Connection.ORIENTED,
    lossless=True,
    ordered=True,
    intact=True,
    duplicate_free=True,
    scope=Scope.HOST,
    addressing=Addressing.NAMED,
    reports_end=False,  # senders are anonymous: a receiver never learns they are gone
    max_message_size=DEFAULT_MSGMAX,
)

MODE = mode_option("the queue bind creates")
TYPE = Option(
    name="type",
    kind=int,
    default=1,
    minimum=0,
    maximum=TYPE_MAX,
    doc="message type (mtype) a sender sends and a receiver takes (receivers: 0 = any type)",
)
CREATE = Option(
    name="create",
    kind=bool,
    default=True,
    doc="bind: create and own the queue (true), or receive on an existing one (false)",
)
MAX_MESSAGE_SIZE = Option(
    name="max_message_size",
    kind=int,
    default=None,
    minimum=1,
    check=at_most_sysctl("kernel.msgmax", "bytes"),
    doc="largest message, in bytes (default: kernel.msgmax)",
)
QUEUE_BYTES = Option(
    name="queue_bytes",
    kind=int,
    default=None,
    minimum=1,
    check=at_most_sysctl("kernel.msgmnb", "bytes"),
    doc="bytes the queue bind creates holds before send blocks (default: kernel.msgmnb)",
)
END = end_option()
OPTIONS = (MODE, TYPE, CREATE, MAX_MESSAGE_SIZE, QUEUE_BYTES, END)


def _check_location(location: str) -> str | None:
    if not location:
        return None  # bind picks a random key
    if not _KEY.match(location):
        return (
            f"{location!r} is not a key: write a number, decimal or 0x-hex as ipcs shows it "
            "(e.g. sysvmq://0x1234abcd)"
        )
    key = _key(location)
    if key == 0:
        return (
            "key 0 is IPC_PRIVATE, which no other process can open; "
            "leave the key out (sysvmq://) for a fresh random one"
        )
    if key > KEY_MAX:
        return f"a key is 32 bits: at most {KEY_MAX:#x}"
    return None


def _key(location: str) -> int:
    return int(location, 16) if location[:2].lower() == "0x" else int(location, 10)


def _signed(key: int) -> int:
    """``key`` as the C ``key_t`` (a signed 32-bit int) that sysv_ipc passes to msgget."""
    return key - (1 << 32) if key >= 1 << 31 else key


def _msgmax() -> int:
    value = sysctl("kernel.msgmax", "bytes").value
    return DEFAULT_MSGMAX if value is None else value


def _int_option(address: Address, option: Option) -> int | None:
    value = address.get(option)
    assert value is None or isinstance(value, int)
    return value


def _largest(address: Address, queue_bytes: int) -> int:
    """The largest message for ``address`` on a queue holding ``queue_bytes``."""
    wanted = _int_option(address, MAX_MESSAGE_SIZE)
    return min(_msgmax() if wanted is None else wanted, queue_bytes)


def _msgmnb() -> int:
    value = sysctl("kernel.msgmnb", "bytes").value
    return DEFAULT_MSGMNB if value is None else value


def _queue_bytes(address: Address) -> int:
    given = _int_option(address, QUEUE_BYTES)
    return _msgmnb() if given is None else given


def capabilities(address: Address) -> Capabilities:
    """The claims for ``address``: ``max_message_size`` is what fits into its queue."""
    wanted = _int_option(address, MAX_MESSAGE_SIZE)
    queue_bytes = _queue_bytes(address)
    if wanted is not None and QUEUE_BYTES.name in address.query and wanted > queue_bytes:
        raise InvalidAddress(
            f"sysvmq://: max_message_size={wanted} is above queue_bytes={queue_bytes}; "
            "such a message would never fit into the queue"
        )
    return CAPABILITIES.evolve(
        max_message_size=_largest(address, queue_bytes), reports_end=follows_senders(address)
    )


def _uri(address: Address) -> str:
    """The queue's URI, with the ``type`` when one was given (and is not 0, "any").

    With ``end=senders`` too, so that both ends of it claim the same.
    """
    kind = _int_option(address, TYPE)
    shown: dict[str, OptionValue] = {"type": kind} if TYPE.name in address.query and kind else {}
    if follows_senders(address):
        shown[END.name] = "senders"
    return str(Address(SCHEME, address.location, shown))


def _lock_path(key: int) -> str:
    return lock_path(SCHEME, f"{key:08x}")


def _roster_path(key: int) -> str:
    return roster_path(SCHEME, f"{key:08x}")


class SysvMQChannel(Channel):
    """One end of a SysV message queue: a receiving end (owner or not) or a sending end.

    See the module docstring for the semantics, waiting and ``wait``.
    """

    def __init__(
        self,
        queue: sysv_ipc.MessageQueue,
        capabilities: Capabilities,
        *,
        key: int,
        uri: str,
        kind: int,
        receiving: bool,
        owner: OwnerLock | None = None,
        roster: Roster | None = None,
        enrolment: Enrolment | None = None,
    ) -> None:
        self._queue = queue
        self._kind = kind
        self._owner = owner
        self._roster = roster
        self._enrolment = enrolment
        self._lock_path = _lock_path(key)
        self._held: bytes | None = None  # a message taken by _ready(), for the next recv
        self._holding = threading.Lock()
        super().__init__(
            capabilities,
            address=uri if receiving else None,
            peer=None if receiving else uri,
            can_send=not receiving,
            can_recv=receiving,
        )
        if receiving:
            self.poll_interval = LAST_NAP_S

    def _recv(self, deadline: Deadline) -> bytes:
        nap = FIRST_NAP_S
        survey_due = Deadline(0)
        while True:
            message = self._next()
            if message is not None:
                return message
            if self._roster is not None and survey_due.expired():
                survey = self._roster.survey()
                if survey.ended:
                    message = self._next()  # what the last senders sent before they went
                    if message is not None:
                        return message
                    self._roster.report_end()
                    raise survey.end_error(f"recv on {self.address}")
                survey_due = Deadline(SURVEY_S)
            nap = self._nap(deadline, nap, "recv timed out")

    def _next(self) -> bytes | None:
        """The message ``_ready`` took, or the next one of this end's type, or ``None``."""
        with self._holding:
            message, self._held = self._held, None
            return message if message is not None else self._take()

    def _take(self) -> bytes | None:
        """The next message of this end's type, or ``None`` when there is none now."""
        try:
            message: bytes = self._queue.receive(block=False, type=self._kind)[0]
        except sysv_ipc.BusyError:
            return None
        except (sysv_ipc.Error, OSError) as exc:
            raise _failure(exc, f"recv on {self.address}") from exc
        return message

    def _ready(self) -> bool:
        if self._closed:
            return True
        if not self.can_recv:
            return False  # a sending end never has anything to receive
        with self._holding:
            if self._held is None:
                try:
                    self._held = self._take()
                except ConnectionLost:
                    return True  # recv reports it
            if self._held is not None:
                return True
        return self._roster is not None and self._roster.survey().ended

    def _send(self, data: memoryview, deadline: Deadline) -> None:
        nap = FIRST_NAP_S
        recheck = Deadline(0)
        while True:
            try:
                self._queue.send(data, block=False, type=self._kind)
            except sysv_ipc.BusyError:
                pass
            except (sysv_ipc.Error, OSError) as exc:
                raise _failure(exc, f"send to {self.peer}") from exc
            else:
                return
            if recheck.expired():
                if owner_alive(self._lock_path) is False:
                    raise ConnectionLost(f"send to {self.peer}: its owner died, so nobody receives")
                recheck = Deadline(RECHECK_S)
            nap = self._nap(deadline, nap, f"send to {self.peer} timed out: the queue stayed full")

    def _nap(self, deadline: Deadline, nap: float, timed_out: str) -> float:
        """Sleep before the next attempt; :class:`Timeout` once the deadline has passed."""
        if deadline.expired():
            raise Timeout(timed_out)
        left = deadline.remaining()
        time.sleep(nap if left is None else min(nap, left))
        if self._waker.woken:
            raise ChannelClosed("the channel was closed while waiting")
        return min(nap * 2, LAST_NAP_S)

    def _close(self) -> None:
        self._held = None
        if self._enrolment is not None:
            self._enrolment.withdraw()
        if self._owner is None:
            return
        try:
            if self._owner.mine:  # not in a forked child: the parent owns the queue
                self._queue.remove()
                if self._roster is not None:
                    self._roster.remove()
        except sysv_ipc.Error:
            pass  # removed by someone else already
        finally:
            self._owner.release()


def _failure(exc: Exception, what: str) -> ConnectionLost:
    """A failed msgsnd/msgrcv: the queue was removed (EIDRM, EINVAL), or it broke otherwise."""
    if isinstance(exc, sysv_ipc.ExistentialError) or (
        isinstance(exc, OSError) and exc.errno in (errno.EIDRM, errno.EINVAL)
    ):
        return ConnectionLost(f"{what}: the queue was removed (its owner closed it)")
    return ConnectionLost(f"{what}: {exc}")


def bind(address: Address) -> Channel:
    """A receiving end on the queue ``address`` names; see the module docstring for ``create``.

    With ``create=true`` (a random key if none is given) raises
    :class:`~anyipc.AddressInUse` when a live owner or another program
    holds the key; with ``create=false`` raises like :func:`connect`.  Also
    :class:`~anyipc.PermissionDenied`, and
    :class:`~anyipc.TransportUnavailable` when the system has
    ``kernel.msgmni`` queues.
    """
    if not address.get(CREATE):
        if not address.location:
            raise InvalidAddress(
                "sysvmq://: bind with create=false needs the key of an existing queue"
            )
        if follows_senders(address):
            raise InvalidAddress(
                "sysvmq://: end=senders needs create=true: the queue's owner keeps its senders' "
                "roster"
            )
        return _opened(address, "bind", receiving=True)
    if address.location:
        return _bind_owned(address)
    for _ in range(_RANDOM_KEY_ATTEMPTS):
        key = secrets.randbelow(KEY_MAX) + 1
        try:
            return _bind_owned(address.replace(location=f"{key:#010x}"))
        except AddressInUse:
            continue
    raise AddressInUse(
        errno.EADDRINUSE, f"bind sysvmq://: {_RANDOM_KEY_ATTEMPTS} random keys were all taken"
    )


def _bind_owned(address: Address) -> Channel:
    key = _key(address.location)
    uri = _uri(address)
    context = f"bind {uri}"
    mode = mode_bits(address.get(MODE))
    lock, stale = OwnerLock.acquire(_lock_path(key), context)
    roster = None
    try:
        if follows_senders(address):
            roster = Roster.create(_roster_path(key), mode, context)
        elif stale:
            remove_roster(_roster_path(key))
        queue = _create(key, mode, context)
        if queue is None and stale:
            _remove_stale(key, context)
            queue = _create(key, mode, context)
        if queue is None:
            raise AddressInUse(
                errno.EADDRINUSE,
                f"{context}: a queue with that key exists and anyipc did not create it "
                f"(no owner file); it is left alone (`ipcrm -Q {key:#x}` removes it)",
            )
        try:
            queue_bytes = _int_option(address, QUEUE_BYTES)
            if queue_bytes is not None:
                queue.max_size = queue_bytes
            return SysvMQChannel(
                queue,
                CAPABILITIES.evolve(
                    max_message_size=_limit(queue, address, context),
                    reports_end=roster is not None,
                ),
                key=key,
                uri=uri,
                kind=_kind(address),
                receiving=True,
                owner=lock,
                roster=roster,
            )
        except BaseException:
            queue.remove()
            raise
    except BaseException:
        if roster is not None:
            roster.remove()
        lock.release()
        raise


def _create(key: int, mode: int, context: str) -> sysv_ipc.MessageQueue | None:
    """A new queue with exactly ``mode``; ``None`` when the key is taken."""
    try:
        return sysv_ipc.MessageQueue(
            _signed(key), sysv_ipc.IPC_CREX, mode=mode, max_message_size=_msgmax()
        )
    except sysv_ipc.ExistentialError:
        return None
    except sysv_ipc.PermissionsError as exc:
        raise PermissionDenied(errno.EACCES, f"{context}: permission denied") from exc
    except OSError as exc:
        if exc.errno is None:  # ENOSPC, which sysv_ipc reports without an errno
            limit = sysctl("kernel.msgmni", "queues")
            raise TransportUnavailable(
                f"{context}: the system has as many SysV message queues as it allows, "
                f"{limit.describe()}; remove unused ones (ipcs -q, ipcrm), or "
                f"{limit.how_to_raise}"
            ) from exc
        raise map_os_error(exc, context) from exc


def _remove_stale(key: int, context: str) -> None:
    """Remove the queue an owner that died left behind (gone already: fine)."""
    try:
        sysv_ipc.MessageQueue(_signed(key)).remove()
    except sysv_ipc.ExistentialError:
        pass
    except sysv_ipc.PermissionsError as exc:
        raise PermissionDenied(
            errno.EACCES, f"{context}: cannot remove the stale queue left there"
        ) from exc


def connect(address: Address) -> Channel:
    """Open the queue ``address`` names and return a sending end (``type`` 1 or more).

    Raises :class:`~anyipc.ConnectionLost` when there is no such queue or
    its owner died, :class:`~anyipc.PermissionDenied` without write
    permission on it, :class:`~anyipc.InvalidAddress` for ``type=0`` or a
    ``max_message_size`` larger than fits into the queue.
    """
    if not address.location:
        raise InvalidAddress("sysvmq://: connect needs the queue's key (sysvmq://KEY)")
    if _kind(address) == 0:
        raise InvalidAddress(
            "sysvmq://: type=0 means 'any type', for receivers; a sender needs a type of 1 or more"
        )
    return _opened(address, "connect to", receiving=False)


def _opened(address: Address, verb: str, *, receiving: bool) -> Channel:
    """A channel on the existing queue ``address`` names, which this end does not own."""
    key = _key(address.location)
    uri = _uri(address)
    context = f"{verb} {uri}"
    access = 0o400 if receiving else 0o200  # what msgget checks: read, or write
    try:
        queue = sysv_ipc.MessageQueue(_signed(key), mode=access, max_message_size=_msgmax())
    except sysv_ipc.ExistentialError:
        raise ConnectionLost(f"{context}: nobody has bound it (there is no such queue)") from None
    except sysv_ipc.PermissionsError as exc:
        raise PermissionDenied(errno.EACCES, f"{context}: permission denied") from exc
    if owner_alive(_lock_path(key)) is False:
        raise ConnectionLost(
            f"{context}: its owner died, so the queue is abandoned (the next bind of this key "
            "removes it)"
        )
    return SysvMQChannel(
        queue,
        CAPABILITIES.evolve(
            max_message_size=_limit(queue, address, context),
            reports_end=follows_senders(address),
        ),
        key=key,
        uri=uri,
        kind=_kind(address),
        receiving=receiving,
        enrolment=None if receiving else Enrolment.enrol(_roster_path(key)),
    )


def _kind(address: Address) -> int:
    kind = _int_option(address, TYPE)
    assert kind is not None
    return kind


def _limit(queue: sysv_ipc.MessageQueue, address: Address, context: str) -> int:
    """The largest message on ``queue`` for ``address``: what fits, or less if asked.

    A queue this process may not stat (a sender with write permission only)
    is assumed to hold ``kernel.msgmnb`` bytes, its size when created.
    """
    try:
        capacity = int(queue.max_size)
    except sysv_ipc.ExistentialError:
        raise ConnectionLost(f"{context}: the queue was removed") from None
    except sysv_ipc.PermissionsError:
        capacity = _msgmnb()
    fits = min(_msgmax(), capacity)
    wanted = _int_option(address, MAX_MESSAGE_SIZE)
    if wanted is None:
        return fits
    if wanted > fits:
        raise InvalidAddress(
            f"{context}: max_message_size={wanted}, but at most {fits} bytes fit "
            f"(the queue holds {capacity} bytes; kernel.msgmax = {_msgmax()})"
        )
    return wanted


def _available() -> str | None:
    try:
        with open("/proc/sysvipc/msg"):
            return None
    except OSError:
        return "the kernel has no System V message queues (CONFIG_SYSVIPC)"


@hookimpl
def anyipc_transports() -> list[TransportSpec]:
    return [
        TransportSpec(
            scheme=SCHEME,
            description="System V message queues: typed messages, one queue for many channels",
            capabilities=capabilities,
            check_location=_check_location,
            test_address=lambda: f"{SCHEME}://{secrets.randbelow(KEY_MAX) + 1:#010x}",
            options=OPTIONS,
            connect=connect,
            bind=bind,
            available=_available,
        )
    ]
