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

Waiting.  SysV queues have no descriptor, and a blocking ``msgrcv`` or
``msgsnd`` could not be interrupted by ``close()``, so a ``recv`` that
finds no message (or a ``send`` that finds the queue full) waits in a loop
of non-blocking attempts, paced by how long this end's recent waits took
(:class:`anyipc._pacer.Pacer`):

* While they were short (under 0.5 ms on average, as in a fast exchange
  of messages) it first tries again at once, for up to 0.5 ms, yielding
  the CPU to any other runnable thread (``sched_yield``) between attempts.
  A message sent meanwhile is taken within microseconds, about as fast as
  a blocking call would take it, but this spinning keeps a CPU busy: a
  receiver whose messages come less than about half a millisecond apart
  uses a whole CPU while it waits (unless another thread wants it).
* Otherwise (an idle or slow channel) it spins only 5 µs.  Then it sleeps
  between attempts, from 0.1 ms doubling to 5 ms (``time.sleep`` retries
  after signals, PEP 475), which costs an idle receiver about 200
  attempts a second and no spinning: a few percent of a CPU at most.

``close()`` from another thread ends a wait at its next attempt: at once
while it spins, within one sleep (at most 5 ms) otherwise.  Timeouts are
never early.  :func:`anyipc.wait` re-checks a receiving end every 5 ms
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
import os
import secrets

import sysv_ipc

from anyipc import hookimpl
from anyipc._address import Address
from anyipc._capabilities import Addressing, Boundaries, Capabilities, Connection, Direction, Scope
from anyipc._channel import Channel
from anyipc._errors import AddressInUse, ConnectionLost, InvalidAddress, PermissionDenied
from anyipc._limits import at_most_sysctl
from anyipc._options import Option, OptionValue
from anyipc._owner import OwnerLock, lock_path, mode_bits, mode_option, owner_alive
from anyipc._records import TransportSpec
from anyipc._senders import (
    Enrolment,
    Roster,
    end_option,
    follows_senders,
    remove_roster,
    roster_path,
)
from anyipc.transports._sysvmq_channel import SysvMQChannel
from anyipc.transports._sysvmq_kernel import (
    DEFAULT_MSGMAX,
    KEY_MAX,
    check_location,
    create,
    message_limit,
    msgmax,
    msgmnb,
    parse_key,
    signed,
)

SCHEME = "sysvmq"
TYPE_MAX = 2**31 - 1  #: sysv_ipc passes the type as a C int
_RANDOM_KEY_ATTEMPTS = 16

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


def _int_option(address: Address, option: Option) -> int | None:
    value = address.get(option)
    assert value is None or isinstance(value, int)
    return value


def _largest(address: Address, queue_bytes: int) -> int:
    """The largest message for ``address`` on a queue holding ``queue_bytes``."""
    wanted = _int_option(address, MAX_MESSAGE_SIZE)
    return min(msgmax() if wanted is None else wanted, queue_bytes)


def _queue_bytes(address: Address) -> int:
    given = _int_option(address, QUEUE_BYTES)
    return msgmnb() if given is None else given


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
    key = parse_key(address.location)
    uri = _uri(address)
    context = f"bind {uri}"
    mode = mode_bits(address.get(MODE))
    lock, stale = OwnerLock.acquire(_lock_path(key), context, mode)
    roster = None
    try:
        if follows_senders(address):
            roster = Roster.create(_roster_path(key), mode, context)
        elif stale:
            remove_roster(_roster_path(key))
        queue = create(key, mode, context)
        if queue is None and stale:
            _remove_stale(key, context)
            queue = create(key, mode, context)
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
                    max_message_size=message_limit(
                        queue, _int_option(address, MAX_MESSAGE_SIZE), context
                    ),
                    reports_end=roster is not None,
                ),
                owner_file=_lock_path(key),
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


def _remove_stale(key: int, context: str) -> None:
    """Remove the queue an owner that died left behind (gone already: fine)."""
    try:
        sysv_ipc.MessageQueue(signed(key)).remove()
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
    key = parse_key(address.location)
    uri = _uri(address)
    context = f"{verb} {uri}"
    access = 0o400 if receiving else 0o200  # what msgget checks: read, or write
    try:
        queue = sysv_ipc.MessageQueue(signed(key), mode=access, max_message_size=msgmax())
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
            max_message_size=message_limit(queue, _int_option(address, MAX_MESSAGE_SIZE), context),
            reports_end=follows_senders(address),
        ),
        owner_file=_lock_path(key),
        uri=uri,
        kind=_kind(address),
        receiving=receiving,
        enrolment=None if receiving else Enrolment.enrol(_roster_path(key)),
    )


def _kind(address: Address) -> int:
    kind = _int_option(address, TYPE)
    assert kind is not None
    return kind


def _available() -> str | None:
    # a stat, not an open: out of descriptors, an open would fail and blame the kernel
    if not os.path.exists("/proc/sysvipc/msg"):
        return "the kernel has no System V message queues (CONFIG_SYSVIPC)"
    return None


@hookimpl
def anyipc_transports() -> list[TransportSpec]:
    return [
        TransportSpec(
            scheme=SCHEME,
            description="System V message queues: typed messages, one queue for many channels",
            capabilities=capabilities,
            check_location=check_location,
            test_address=lambda: f"{SCHEME}://{secrets.randbelow(KEY_MAX) + 1:#010x}",
            options=OPTIONS,
            connect=connect,
            bind=bind,
            available=_available,
        )
    ]
