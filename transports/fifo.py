"""``fifo:///path`` — a named pipe: any process may write, the one that bound it reads.

Verbs:

* ``bind("fifo:///path")`` creates the FIFO, opens it for reading and
  returns the receiving end; ``close()`` removes the file (only if the path
  still names the FIFO this end created).
* ``connect("fifo:///path")`` opens it for writing and returns a sending
  end.  Several writers may connect at once.  With nobody reading (no FIFO
  there, or its reader gone) it raises :class:`~anyipc.ConnectionLost` at
  once, never hangs; a path that is not a FIFO is refused the same way
  (nothing is written to it).  :class:`~anyipc.PermissionDenied` without
  write permission.

The end of all writers.  The reader waits (``recv`` times out, it does not
end) until a first writer connects.  Once every writer that connected has
closed and their data was read, ``recv`` raises
:class:`~anyipc.EndOfChannel`, and again on every call while no writer is
connected; a writer that connects later is read as before (a FIFO outlives
its writers).  A writer that was killed is an orderly end too: a pipe
cannot tell (``framed+fifo://`` sees a truncated message as
:class:`~anyipc.ConnectionLost`).  How: the reader's descriptor is
non-blocking and is only read after ``poll()`` reports data or a hang-up,
and Linux reports the hang-up of a FIFO only once a writer opened it after
the reader did.  Writing when the reader is gone is ``ConnectionLost``,
never SIGPIPE.

Atomicity.  A send of up to ``PIPE_BUF`` (4096) bytes is written at once
and never interleaves with another writer's; longer sends may be split
between other writers' writes.  So ``framed+fifo://`` keeps each frame
within ``PIPE_BUF``: its ``max_message_size`` is 4092 bytes (the frame's
header takes 4), and a larger value is refused, so that several writers'
messages never mix.

Permissions.  The FIFO gets exactly the ``mode`` option's bits (octal,
default ``600``: only the owner's processes may connect, as connecting
needs write permission; the owner keeps read and write, so the mode must
include ``600``), and is never wider at any moment: it is made under a
random temporary name beside the path with mode ``600`` (``mkfifo``, whose
bits the umask can only narrow, then ``chmod`` back to ``600``), opened,
locked and given ``mode`` with ``fchmod``, then published with a hard
link, which never replaces an existing file, so the FIFO appears at its
path already read and already owned; the temporary name is removed.  No
process-wide state (umask) changes.  The directory must allow hard links.

Never stealing.  When the path exists: a FIFO whose reader is anyipc is
live (the reader holds an exclusive ``flock`` on it, which a probe asks for
without disturbing it): :class:`~anyipc.AddressInUse`.  Otherwise a probe
opens it for writing without blocking: success means another program reads
it (``AddressInUse``; that reader sees a writer come and go, so a plain
``cat`` ends), and "no reader" (ENXIO) means it is stale, left by a dead
owner: it is removed, after checking that the path still names the same
file, and the bind is retried.  Anything that is not a FIFO is never
removed: ``AddressInUse`` saying what is there.  A directory that does not
exist or cannot be written: :class:`~anyipc.InvalidAddress` /
:class:`~anyipc.PermissionDenied`.

Channel ``address``/``peer``: the reader's ``address`` is the FIFO's URI;
a writer's ``peer`` is that URI and its ``address`` is ``None``.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import stat
import tempfile
import uuid

from anyipc import hookimpl
from anyipc._address import Address
from anyipc._capabilities import Addressing, Boundaries, Capabilities, Connection, Direction, Scope
from anyipc._channel import Channel
from anyipc._errors import AddressInUse, ConnectionLost, IPCError, map_os_error
from anyipc._fdstream import PIPE_BUF, FdStream
from anyipc._files import existing, unlink_if_same
from anyipc._files import identity as file_identity
from anyipc._options import Option, OptionValue
from anyipc._pathnames import path_problem
from anyipc._records import TransportSpec
from anyipc._sockets import listen_error

CAPABILITIES = Capabilities(
    direction=Direction.SIMPLEX,
    boundaries=Boundaries.STREAM,
    connection=Connection.ORIENTED,
    lossless=True,
    ordered=True,
    intact=True,
    duplicate_free=True,
    scope=Scope.HOST,
    addressing=Addressing.NAMED,
)
_OWNER = 0o600
_RECLAIM_ATTEMPTS = 3


def _check_mode(value: OptionValue) -> str | None:
    if not (isinstance(value, str) and re.fullmatch(r"0?[0-7]{3}", value)):
        return "must be octal permission bits such as 600, 620 or 622"
    if int(value, 8) & _OWNER != _OWNER:
        return "the owner (the reader) keeps read and write: the mode must include 600"
    return None


MODE = Option(
    name="mode",
    kind=str,
    default="600",
    check=_check_mode,
    doc="octal permissions of the FIFO bind creates (connecting needs write; must include 600)",
)


def _check_location(location: str) -> str | None:
    if "\0" in location:
        return "a path cannot contain a NUL byte"
    if not location.startswith("/"):
        what = f"{location!r} is a relative path" if location else "empty path"
        return f"{what}: write an absolute path as fifo:///path"
    if location.endswith("/"):
        return f"{location!r} names a directory, not a FIFO"
    return path_problem(location)


def _plain(address: Address) -> str:
    return str(address.replace(options={}))


class FifoReader(FdStream):
    """The receiving end of a FIFO it created; removes the FIFO on close if it is still its own."""

    def __init__(self, fd: int, address: Address, identity: tuple[int, int]) -> None:
        super().__init__(fd, CAPABILITIES, sending=False, address=_plain(address))
        self._path = address.location
        self._identity = identity

    def _close(self) -> None:
        # While the descriptor is open the FIFO is locked, so nobody else may have reclaimed it:
        # remove it first, then close.  A failure leaves a stale FIFO, which is reclaimable.
        with contextlib.suppress(OSError):
            unlink_if_same(self._path, self._identity)
        super()._close()


def bind(address: Address) -> Channel:
    """Create the FIFO ``fifo:///path`` and return its reading end; see the module docstring."""
    context = f"bind {_plain(address)}"
    mode_text = address.get(MODE)
    assert isinstance(mode_text, str)
    directory = os.path.dirname(address.location)
    temporary = os.path.join(directory, f".anyipc-{uuid.uuid4().hex}.fifo")
    try:
        os.mkfifo(temporary, _OWNER)  # the umask may only narrow it
    except OSError as exc:
        raise listen_error(exc, context) from exc
    try:
        fd = _open_reader(temporary, int(mode_text, 8), context)
        try:
            _publish(temporary, address.location, context)
            identity = file_identity(os.fstat(fd))
        except BaseException:
            os.close(fd)
            raise
    finally:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
    return FifoReader(fd, address, identity)


def _open_reader(path: str, mode: int, context: str) -> int:
    """Open the fresh FIFO ``path`` for reading, lock it, and give it exactly ``mode``."""
    try:
        os.chmod(path, _OWNER)  # a umask may have taken the owner's own bits
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError as exc:
        raise map_os_error(exc, context) from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if mode != _OWNER:
            os.fchmod(fd, mode)  # widen: this descriptor's FIFO, whatever the path names now
    except OSError as exc:
        os.close(fd)
        raise map_os_error(exc, context) from exc
    return fd


def _publish(temporary: str, path: str, context: str) -> None:
    """Link the FIFO ``temporary`` at ``path``, reclaiming a stale one that is in the way."""
    for _ in range(_RECLAIM_ATTEMPTS):
        try:
            os.link(temporary, path)
            return
        except FileExistsError:
            _reclaim(path, context)
        except OSError as exc:
            raise listen_error(exc, context) from exc
    raise AddressInUse(errno.EADDRINUSE, f"{context}: the path keeps being taken by others")


def _reclaim(path: str, context: str) -> None:
    """Remove a stale FIFO at ``path``; :class:`AddressInUse` if what is there must stay."""
    before = existing(path, stat.S_ISFIFO, "a FIFO", context)
    if before is None:
        return  # gone meanwhile: link again
    identity = file_identity(before)
    reader = _reader_of(path, identity, context)
    if reader is not None:
        raise AddressInUse(errno.EADDRINUSE, f"{context}: in use ({reader})")
    with contextlib.suppress(FileNotFoundError):
        unlink_if_same(path, identity)


def _reader_of(path: str, identity: tuple[int, int], context: str) -> str | None:
    """Who reads the FIFO ``identity`` at ``path``: a description, or ``None`` when nobody does."""
    try:
        probe = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise map_os_error(exc, context) from exc
    try:
        if file_identity(os.fstat(probe)) != identity:
            return "it was replaced while being checked"
        fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return "an anyipc reader has it bound"
    finally:
        os.close(probe)
    try:
        writer = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError as exc:
        if exc.errno in (errno.ENXIO, errno.ENOENT):
            return None
        raise map_os_error(exc, context) from exc
    os.close(writer)
    return "another program reads it"


def connect(address: Address) -> Channel:
    """Open the FIFO ``fifo:///path`` for writing; see the module docstring."""
    name = _plain(address)
    context = f"connect to {name}"
    path = address.location
    try:
        if not stat.S_ISFIFO(os.stat(path).st_mode):  # never open a device or file to probe it
            raise ConnectionLost(f"{context}: {path} is not a FIFO; nobody reads there")
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except IPCError:
        raise
    except OSError as exc:
        raise _connect_error(exc, context) from exc
    try:
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            raise ConnectionLost(f"{context}: {path} was replaced by something that is not a FIFO")
    except BaseException:
        os.close(fd)
        raise
    return FdStream(fd, CAPABILITIES, sending=True, address=None, peer=name, private=True)


def _connect_error(exc: OSError, context: str) -> IPCError:
    if exc.errno == errno.ENXIO:
        return ConnectionLost(f"{context}: nobody reads this FIFO")
    if exc.errno == errno.ENOENT:
        return ConnectionLost(f"{context}: there is no FIFO there (nobody bound it)")
    return map_os_error(exc, context)


def _test_address() -> str:
    name = f"anyipc-{os.getpid()}-{uuid.uuid4().hex[:12]}.fifo"
    return str(Address("fifo", os.path.join(tempfile.gettempdir(), name), {}))


@hookimpl
def anyipc_transports() -> list[TransportSpec]:
    return [
        TransportSpec(
            scheme="fifo",
            description="named pipe: writers connect, the binder reads; writes to 4096 B atomic",
            capabilities=lambda address: CAPABILITIES,
            check_location=_check_location,
            test_address=_test_address,
            options=(MODE,),
            connect=connect,
            bind=bind,
            atomic_write=PIPE_BUF,
        )
    ]
