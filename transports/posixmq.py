"""``posixmq://name`` — POSIX message queues (``mq_overview(7)``), through posix_ipc.

``posixmq://jobs`` names the queue ``/jobs``.  A name is 1 to 255 bytes
(NAME_MAX) without ``/``; ``bind("posixmq://")`` picks a fresh one,
``anyipc-<pid>-<128 random bits>``, reported in the channel's ``address``.

Verbs and roles:

* ``bind`` creates the queue exclusively (``O_CREAT|O_EXCL``) with exactly
  the permissions of ``mode`` (default ``600``: only this user) and returns
  the receiving end.  Its owner removes (``mq_unlink``) the queue on close;
  messages still queued are discarded.  The owner is the process that
  bound: a forked child's copy of the channel removes nothing on close.
* ``connect`` opens an existing queue and returns a sending end.  It
  raises :class:`~anyipc.ConnectionLost` when no queue has that name
  ("nobody has bound it") or when its owner died.  Any number of processes
  may connect to one queue; every message goes to its one receiver.

The taxonomy, and why.  A queue has one named receiving side and anonymous
senders, and no message carries its sender's identity, so a receiver could
not report a sender that it could reply to: the queue is not
CONNECTIONLESS (a datagram endpoint that names the peer of every message).
A sender opens the queue once and then always sends to it, which is what
ORIENTED means here ("peer fixed per connection"), and only the binder
receives: SIMPLEX.  Each message is one ``mq_send``, kept whole (MESSAGE,
intact), never lost while the queue exists (lossless), never duplicated.
``ordered`` holds per priority: the receiver gets the highest priority
first and, within one priority, the order of sending.

Non-guarantees:

* No end of channel by default.  The kernel tells a queue's receiver
  nothing of its senders: when every sender has closed, or a sender was
  killed, ``recv`` keeps waiting until its timeout
  (:class:`~anyipc.Timeout`), and ``for message in channel`` never ends on
  its own.  That is what a server that many short-lived processes send to
  wants.  With ``end=senders`` the receiver follows its senders instead
  (see below).
* A sender cannot tell at once that the receiver closed (the queue is
  unlinked, but senders that opened it keep a working descriptor): sends
  go on succeeding until the orphaned queue is full.  Sends that find the
  queue full check, at most every half second, that the queue still has
  its name and a live owner, and raise :class:`~anyipc.ConnectionLost`
  when not, rather than waiting for their whole timeout.

The end of the senders (``end=senders`` on ``bind``).  Every sending end
of anyipc enrols in the queue's roster while it is open (see
:mod:`anyipc._senders`), and the receiver checks it while it waits (every
0.1 s).  Once at least one sender came, none is left, and the queue is
empty, ``recv`` raises :class:`~anyipc.EndOfChannel` when they all closed,
or :class:`~anyipc.ConnectionLost` when one of them was killed: a FIFO's
end of file, with the crash told apart.  Everything the senders sent is
received first.  Senders that connect after the end begin a new round.
Programs that send without anyipc are not counted.  The capabilities then
report ``reports_end``.

Atomicity.  The kernel copies a message in one system call: a sender killed
at any moment leaves no partial message, and the queue goes on working.

Options:

* ``max_messages``, ``max_message_size``: the queue's shape at ``bind``
  (defaults: ``fs.mqueue.msg_default`` and ``fs.mqueue.msgsize_default``,
  10 and 8192 on Linux).  A value above ``fs.mqueue.msg_max`` or
  ``fs.mqueue.msgsize_max``, or a queue whose kernel memory (each message
  takes its size plus 96 bytes of bookkeeping on 64-bit Linux) alone
  exceeds ``RLIMIT_MSGQUEUE``, is :class:`~anyipc.InvalidAddress` naming
  the limit, its value and how to raise it.  ``connect`` learns the real
  size from the queue (``mq_getattr``), so an oversize ``send`` raises
  :class:`~anyipc.MessageTooLarge` before anything is sent; a
  ``max_message_size`` given to ``connect`` lowers the sender's own limit
  (above the queue's, it is :class:`~anyipc.InvalidAddress`).
* ``priority`` (0..32767, default 0): the priority of every message a
  connected end sends.  Open one channel per priority to mix them.
* ``mode``: octal permissions of the queue ``bind`` creates.
* ``end``: ``never`` (the default) or ``senders``, as above.

``connect`` ignores ``mode``, ``max_messages`` and ``end``, and ``bind``
ignores ``priority``: one URI may serve both ends.

Limits hit at run time: creating a queue when this user's queues already
hold ``RLIMIT_MSGQUEUE`` bytes (``EMFILE``), or when the system has
``fs.mqueue.queues_max`` queues (``ENOSPC``), raises
:class:`~anyipc.TransportUnavailable` naming the limit and how to raise it.

Stale queues.  A queue outlives a crashed owner (kernel persistence), and
the kernel does not record who created it; its owner file (see
:mod:`anyipc._owner`) does.  ``bind`` on the name of a queue whose owner
died removes that queue, with the messages left in it, and creates a fresh
one; ``connect`` to it raises :class:`~anyipc.ConnectionLost`.  A queue
that anyipc did not create (no owner file) is never removed:
:class:`~anyipc.AddressInUse`.

Readiness: the queue descriptor is pollable, so the receiving end has a
``fileno()``, and :func:`anyipc.wait` and ``recv`` poll it (together with
the channel's waker, so that ``close()`` from another thread ends the wait
at once).  A waiting receiver sleeps in ``poll()``: it does not spin and
costs no CPU while it waits, and a ``send`` that finds the queue full
sleeps the same way until there is room.  Queue names are
not listable here unless ``/dev/mqueue`` is mounted
(``mount -t mqueue none /dev/mqueue``).
"""

from __future__ import annotations

import errno
import os
import uuid

import posix_ipc

from anyipc import hookimpl
from anyipc._address import Address
from anyipc._capabilities import Addressing, Boundaries, Capabilities, Connection, Direction, Scope
from anyipc._channel import Channel
from anyipc._errors import (
    AddressInUse,
    ConnectionLost,
    InvalidAddress,
    PermissionDenied,
    map_os_error,
)
from anyipc._limits import at_most_sysctl, rlimit_msgqueue
from anyipc._options import Option
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
from anyipc.transports._posixmq_channel import PosixMQChannel
from anyipc.transports._posixmq_limits import (
    KERNEL_BYTES_PER_MESSAGE,
    create_error,
    kernel_bytes,
    kernel_default,
    os_error,
)

SCHEME = "posixmq"
NAME_MAX = 255

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
    max_message_size=8192,
)


MODE = mode_option("the queue bind creates")
MAX_MESSAGES = Option(
    name="max_messages",
    kind=int,
    default=None,
    minimum=1,
    check=at_most_sysctl("fs.mqueue.msg_max", "messages"),
    doc="messages the queue bind creates holds (default: fs.mqueue.msg_default)",
)
MAX_MESSAGE_SIZE = Option(
    name="max_message_size",
    kind=int,
    default=None,
    minimum=1,
    check=at_most_sysctl("fs.mqueue.msgsize_max", "bytes"),
    doc="largest message, in bytes (bind: default fs.mqueue.msgsize_default; "
    "connect: at most the queue's)",
)
PRIORITY = Option(
    name="priority",
    kind=int,
    default=0,
    minimum=0,
    maximum=posix_ipc.QUEUE_PRIORITY_MAX,
    doc="priority of every message a connected end sends (higher is received first)",
)
END = end_option()
OPTIONS = (MODE, MAX_MESSAGES, MAX_MESSAGE_SIZE, PRIORITY, END)


def _shape(address: Address) -> tuple[int, int]:
    """The queue's (max_messages, max_message_size): the options, or the kernel's defaults."""
    messages = address.get(MAX_MESSAGES)
    size = address.get(MAX_MESSAGE_SIZE)
    if messages is None:
        messages = kernel_default("fs.mqueue.msg_default", 10)
    if size is None:
        size = kernel_default("fs.mqueue.msgsize_default", 8192)
    assert isinstance(messages, int) and isinstance(size, int)
    return messages, size


def capabilities(address: Address) -> Capabilities:
    """The claims for ``address``; ``max_message_size`` is the queue's (see the module)."""
    return CAPABILITIES.evolve(
        max_message_size=_shape(address)[1], reports_end=follows_senders(address)
    )


def _check_location(location: str) -> str | None:
    if not location:
        return None  # bind picks a fresh name
    if "/" in location:
        return "a queue name has no '/' (posixmq://name names the queue /name)"
    if "\0" in location:
        return "a queue name cannot contain a NUL byte"
    if location in (".", ".."):
        return f"{location!r} cannot name a queue"
    size = len(os.fsencode(location))
    if size > NAME_MAX:
        return f"the name is {size} bytes; a queue name is at most {NAME_MAX} bytes (NAME_MAX)"
    return None


def _uri(name: str, *, following: bool = False) -> str:
    """The queue's URI; ``following``: with ``end=senders``, so that both ends claim the same."""
    return str(Address(SCHEME, name, {END.name: "senders"} if following else {}))


def _fresh_name() -> str:
    return f"anyipc-{os.getpid()}-{uuid.uuid4().hex}"


def bind(address: Address) -> Channel:
    """Create the queue ``address`` names (a fresh name if none) and return its receiving end.

    Raises :class:`~anyipc.InvalidAddress` for a queue above the kernel's
    limits, :class:`~anyipc.AddressInUse` when a live owner or another
    program holds the name, :class:`~anyipc.PermissionDenied`, and
    :class:`~anyipc.TransportUnavailable` when a limit on queues is reached.
    """
    name = address.location or _fresh_name()
    context = f"bind {_uri(name)}"
    messages, size = _shape(address)
    need = kernel_bytes(messages, size)
    problem = rlimit_msgqueue().exceeded_by(need)
    if problem:
        raise InvalidAddress(
            f"{context}: a queue of {messages} messages of {size} bytes takes {need} bytes "
            f"of kernel memory ({KERNEL_BYTES_PER_MESSAGE} bytes of bookkeeping per message): "
            f"{problem}"
        )
    mode = mode_bits(address.get(MODE))
    lock, stale = OwnerLock.acquire(lock_path(SCHEME, name), context, mode)
    roster = None
    try:
        if follows_senders(address):
            roster = Roster.create(roster_path(SCHEME, name), mode, context)
        elif stale:
            remove_roster(roster_path(SCHEME, name))
        queue = _create(name, mode, messages, size, context)
        if queue is None and stale:
            _unlink_stale(name, context)
            queue = _create(name, mode, messages, size, context)
        if queue is None:
            raise AddressInUse(
                errno.EADDRINUSE,
                f"{context}: a queue of that name exists and anyipc did not create it "
                "(no owner file); it is left alone",
            )
        return PosixMQChannel(
            queue,
            capabilities(address),
            name=name,
            uri=_uri(name, following=follows_senders(address)),
            owner_file=lock.path,
            owner=lock,
            roster=roster,
        )
    except BaseException:
        if roster is not None:
            roster.remove()
        lock.release()
        raise


def _unlink_stale(name: str, context: str) -> None:
    """Remove the queue an owner that died left behind (gone already: fine)."""
    try:
        posix_ipc.unlink_message_queue("/" + name)
    except posix_ipc.ExistentialError:
        pass
    except posix_ipc.PermissionsError as exc:
        raise PermissionDenied(
            errno.EACCES, f"{context}: cannot remove the stale queue left there"
        ) from exc


def _create(
    name: str, mode: int, messages: int, size: int, context: str
) -> posix_ipc.MessageQueue | None:
    """A new non-blocking queue with exactly ``mode``; ``None`` when the name is taken."""
    try:
        queue = posix_ipc.MessageQueue(
            "/" + name,
            posix_ipc.O_CREX,
            mode=mode,
            max_messages=messages,
            max_message_size=size,
            read=True,
            write=False,
        )
    except posix_ipc.ExistentialError:
        return None
    except (posix_ipc.Error, OSError, ValueError) as exc:
        raise create_error(exc, context, messages, size) from exc
    try:
        os.fchmod(queue.mqd, mode)  # mq_open applied the umask: restore the bits it took
        queue.block = False
    except BaseException as exc:
        posix_ipc.unlink_message_queue("/" + name)
        queue.close()
        if isinstance(exc, OSError):
            raise map_os_error(exc, context) from exc
        raise
    return queue


def connect(address: Address) -> Channel:
    """Open the queue ``address`` names and return a sending end.

    Raises :class:`~anyipc.ConnectionLost` when there is no such queue or
    its owner died, :class:`~anyipc.PermissionDenied` without write
    permission on it, :class:`~anyipc.InvalidAddress` for a
    ``max_message_size`` above the queue's.
    """
    if not address.location:
        raise InvalidAddress("posixmq://: connect needs the queue's name (posixmq://name)")
    name = address.location
    context = f"connect to {_uri(name)}"
    try:
        queue = posix_ipc.MessageQueue("/" + name, read=False, write=True)
    except posix_ipc.ExistentialError:
        raise ConnectionLost(f"{context}: nobody has bound it (there is no such queue)") from None
    except posix_ipc.PermissionsError as exc:
        raise PermissionDenied(errno.EACCES, f"{context}: permission denied") from exc
    except (posix_ipc.Error, OSError) as exc:
        raise os_error(exc, context) from exc
    owner_file = lock_path(SCHEME, name)
    try:
        if owner_alive(owner_file) is False:
            raise ConnectionLost(
                f"{context}: its owner died, so nobody receives (the next bind of this name "
                "removes the queue)"
            )
        size = int(queue.max_message_size)
        wanted = address.get(MAX_MESSAGE_SIZE)
        if isinstance(wanted, int):
            if wanted > size:
                raise InvalidAddress(
                    f"{context}: max_message_size={wanted}, but the queue's messages are at "
                    f"most {size} bytes"
                )
            size = wanted
        priority = address.get(PRIORITY)
        assert isinstance(priority, int)
        queue.block = False
        return PosixMQChannel(
            queue,
            CAPABILITIES.evolve(max_message_size=size, reports_end=follows_senders(address)),
            name=name,
            uri=_uri(name, following=follows_senders(address)),
            owner_file=owner_file,
            owner=None,
            priority=priority,
            enrolment=Enrolment.enrol(roster_path(SCHEME, name)),
        )
    except BaseException:
        queue.close()
        raise


def _available() -> str | None:
    if not posix_ipc.MESSAGE_QUEUES_SUPPORTED:
        return "posix_ipc reports no POSIX message queues on this platform"
    if not os.path.isdir("/proc/sys/fs/mqueue"):
        return "the kernel has no POSIX message queues (CONFIG_POSIX_MQUEUE)"
    return None


@hookimpl
def anyipc_transports() -> list[TransportSpec]:
    return [
        TransportSpec(
            scheme=SCHEME,
            description="POSIX message queues: one receiver, any senders, message priorities",
            capabilities=capabilities,
            check_location=_check_location,
            test_address=lambda: _uri(_fresh_name()),
            options=OPTIONS,
            connect=connect,
            bind=bind,
            available=_available,
        )
    ]
