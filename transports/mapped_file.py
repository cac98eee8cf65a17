"""``mmap:///dir`` — the shared-memory channel over memory-mapped files, which outlive a crash.

The same channel as ``shm://`` (rings and their protocols, waiting, ends,
who may connect: see :mod:`anyipc.transports.shm` and
:mod:`anyipc._shmspec`), with each connection's segment a file in the
directory the URI names:
``listen("mmap:///var/lib/app/inbox")`` creates the directory (``700``,
plus search and write for whom ``mode`` lets connect) if it is not there,
and ``connect`` creates ``<pid>.<random>.ring`` in it (exactly ``mode``,
default ``600``), maps it, and passes its descriptor to the listener.

Each end holds a lock on its file while it has it mapped (an
open-file-description lock, which the kernel drops when the process dies).
The last end to close removes the file; a listener removes the directory
if it created it and it is empty when the listener closes (files of
connections still open keep it).

What survives.  Shared memory dies with its processes; a file does not.

* Without ``sync`` (the default): a message is in the file's pages (the
  kernel's page cache) once ``send`` returned.  If both ends are killed,
  the file stays, unlocked, and the next ``listen`` on the directory hands
  it to its first ``accept``: that channel receives every message the dead
  client sent and the dead listener had not received, whole and in order,
  then :class:`~anyipc.ConnectionLost` (or :class:`~anyipc.EndOfChannel` if
  the client had closed in order).  The pages reach the disk when the
  kernel writes them back: a crash of the machine itself may lose any of
  them, in any order.
* With ``sync=true``: ``send`` writes the message back to the file and
  waits for it (``msync``), then publishes it and writes that back too, so
  a message whose ``send`` returned also survives a crash of the machine
  (as far as the disk honours the write-back), and a published message is
  never one whose bytes did not reach it.  It costs a disk write per
  message.

Messages the dead listener sent and the dead client had not received are
not recovered: no end can receive them.  Both protocols write the same
file (they differ only in how the control words travel), so a file is
recovered whichever protocol its dead ends used; a recovered channel needs
no lock, as nobody else writes its rings any more.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import mmap
import os
import re
import secrets
import socket
import stat
import struct
from collections.abc import Callable

from anyipc import hookimpl
from anyipc._address import Address
from anyipc._errors import InvalidAddress, PermissionDenied, map_os_error
from anyipc._options import Option
from anyipc._owner import WRITE_LOCK, mode_bits
from anyipc._pathnames import path_problem
from anyipc._records import TransportSpec
from anyipc._shmsetup import Handoff
from anyipc._shmspec import MODE, ShmFlavour, shm_transport

SCHEME = "mmap"
_RING = re.compile(r"[0-9]+\.[0-9a-f]{16}\.ring\Z")
_MADE = ".anyipc-listener-made-this"  #: marks a directory that a listener created
_OPEN = os.O_CLOEXEC | os.O_NOFOLLOW
_READ_LOCK = struct.pack("@hhqqi0q", fcntl.F_RDLCK, os.SEEK_SET, 0, 0, 0)  # shared, whole file

SYNC = Option(
    name="sync",
    kind=bool,
    default=False,
    doc="write each message back to its file (msync) before send returns",
)


def _check_location(location: str) -> str | None:
    if "\0" in location:
        return "a path cannot contain a NUL byte"
    if not location.startswith("/") or location == "/":
        return f"{location!r}: write the absolute path of a directory, as mmap:///path/to/dir"
    return path_problem(location)


def _tag(path: str) -> str:
    """A short word for the directory (the rendezvous socket's name is at most 107 bytes)."""
    return hashlib.sha256(os.fsencode(os.path.abspath(path))).hexdigest()[:32]


def _rendezvous(directory: str) -> bytes:
    """The listener's socket name (see :class:`anyipc._shmsetup.Terms`)."""
    return os.fsencode(f"\0anyipc.{SCHEME}.{_tag(directory)}")


def _locked(fd: int, lock: bytes) -> bool:
    """Take ``lock`` on ``fd`` without waiting; ``False`` when another holder conflicts."""
    try:
        fcntl.fcntl(fd, fcntl.F_OFD_SETLK, lock)
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES):
            return False
        raise
    return True


class RingFile:
    """A ring file mapped by one end, which holds a shared lock on it while it is open."""

    def __init__(self, fd: int, path: str, size: int) -> None:
        self._fd = fd
        self._path = path
        self._inode = os.fstat(fd).st_ino
        self._map = mmap.mmap(fd, size)
        self.memory = memoryview(self._map)

    def sync(self) -> None:
        self._map.flush()

    def close(self) -> None:
        """Unmap, drop the lock, and remove the file if the other end is gone too."""
        self.memory.release()
        self._map.close()
        os.close(self._fd)
        if _remove_if_unused(self._path, self._inode):
            _tidy(os.path.dirname(self._path))


def _remove_if_unused(path: str, inode: int) -> bool:
    """Remove the file at ``path`` (if it is still ``inode``) when nobody holds a lock on it."""
    try:
        fd = os.open(path, os.O_RDWR | _OPEN)
    except OSError:
        return False
    try:
        if os.fstat(fd).st_ino == inode and _locked(fd, WRITE_LOCK):
            os.unlink(path)
            return True
    except OSError:
        pass
    finally:
        os.close(fd)
    return False


def _tidy(directory: str) -> None:
    """Remove a directory a listener made, once it is empty and that listener has gone.

    Its marker file proves that a listener made the directory (one the user
    made is never removed); the listener's rendezvous name, taken for a
    moment, proves that no listener is there.
    """
    marker = os.path.join(directory, _MADE)
    if _ring_names(directory) or not os.path.exists(marker):
        return
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        probe.bind(_rendezvous(directory))
        os.unlink(marker)
        os.rmdir(directory)
    except OSError:
        pass  # a listener is there, or a new connection came: the directory stays
    finally:
        probe.close()


class RingFiles:
    """Segments as files of the listener's directory (see the module docstring)."""

    def __init__(self, directory: str, mode: int) -> None:
        self._directory = directory
        self._mode = mode

    def create(self, tag: str, size: int) -> tuple[RingFile, Handoff]:
        name = f"{os.getpid()}.{secrets.token_hex(8)}.ring"
        path = os.path.join(self._directory, name)
        context = f"create {path}"
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | _OPEN, stat.S_IRUSR)
        except FileNotFoundError:
            raise InvalidAddress(f"{context}: nobody listens on {self._directory}") from None
        except OSError as exc:
            raise map_os_error(exc, context) from exc
        try:
            os.fchmod(fd, self._mode)
            os.ftruncate(fd, size)
            fcntl.fcntl(fd, fcntl.F_OFD_SETLK, _READ_LOCK)
            passed = os.dup(fd)
        except OSError as exc:
            os.close(fd)
            os.unlink(path)
            raise map_os_error(exc, context) from exc
        return RingFile(fd, path, size), Handoff(token=name, fds=(passed,))

    def attach(self, size: int, handoff: Handoff) -> RingFile:
        if not _RING.match(handoff.token) or len(handoff.fds) != 1:
            raise ValueError("the client named no ring file")
        path = os.path.join(self._directory, handoff.token)
        received = os.fstat(handoff.fds[0])
        try:
            there = os.lstat(path)
        except OSError as exc:
            raise ValueError(f"{path}: {exc.strerror}") from exc
        if (there.st_dev, there.st_ino) != (received.st_dev, received.st_ino):
            raise ValueError(f"{path} is not the file the client passed")
        if received.st_size != size:
            raise ValueError(f"{path} is not {size} bytes")
        fd = os.dup(handoff.fds[0])
        try:
            fcntl.fcntl(fd, fcntl.F_OFD_SETLK, _READ_LOCK)
            return RingFile(fd, path, size)
        except BaseException:
            os.close(fd)
            raise

    def done(self, handoff: Handoff) -> None:
        for fd in handoff.fds:
            os.close(fd)

    def discard(self, handoff: Handoff) -> None:
        self.done(handoff)  # the client's own close removes the file once it is alone

    def recovered(self, size: int) -> list[RingFile]:
        """The ring files nobody holds: both their ends died (see the module docstring)."""
        found = []
        for name in sorted(_ring_names(self._directory)):
            path = os.path.join(self._directory, name)
            try:
                fd = os.open(path, os.O_RDWR | _OPEN)
            except OSError:
                continue
            try:
                if os.fstat(fd).st_size == size and _locked(fd, WRITE_LOCK):
                    fcntl.fcntl(fd, fcntl.F_OFD_SETLK, _READ_LOCK)  # held while we use it
                    found.append(RingFile(fd, path, size))
                    continue
            except OSError:
                pass
            os.close(fd)
        return found


def _ring_names(directory: str) -> list[str]:
    try:
        return [name for name in os.listdir(directory) if _RING.match(name)]
    except OSError:
        return []


def _prepare(address: Address) -> Callable[[], None]:
    """Create the listener's directory if needed; return what removes it at close.

    A directory that an earlier listener made (its marker is there) is
    removed like one made now; a directory the user made never is.
    """
    path = address.location
    marker = os.path.join(path, _MADE)
    if _make_directory(path, mode_bits(address.get(MODE))):
        try:
            os.close(os.open(marker, os.O_WRONLY | os.O_CREAT | _OPEN, stat.S_IRUSR))
        except OSError as exc:
            os.rmdir(path)  # made just now and empty: a failed listen leaves nothing
            raise map_os_error(exc, f"mmap://{path}: its marker file") from exc
    elif not os.path.exists(marker):
        return lambda: None  # the user's directory: never removed

    def remove() -> None:
        if not _ring_names(path):  # otherwise the last connection to close removes it
            try:
                os.unlink(marker)
                os.rmdir(path)
            except OSError:
                pass

    return remove


def _make_directory(path: str, mode: int) -> bool:
    """Create ``path`` with the permissions for ``mode``; ``False`` if it was there already."""
    bits = stat.S_IRWXU
    if mode & 0o066 & 0o060:
        bits |= stat.S_IWGRP | stat.S_IXGRP
    if mode & 0o066 & 0o006:
        bits |= stat.S_IWOTH | stat.S_IXOTH
    try:
        os.mkdir(path, stat.S_IRWXU)
    except FileExistsError:
        there = os.lstat(path)
        if not stat.S_ISDIR(there.st_mode):
            raise InvalidAddress(f"mmap://{path}: {path} is there and is not a directory") from None
        if there.st_uid != os.geteuid():
            raise PermissionDenied(
                errno.EPERM, f"mmap://{path}: the directory belongs to uid {there.st_uid}"
            ) from None
        return False
    except FileNotFoundError:
        raise InvalidAddress(f"mmap://{path}: its parent directory does not exist") from None
    except OSError as exc:
        raise map_os_error(exc, f"mmap://{path}") from exc
    os.chmod(path, bits)  # mkdir applied the umask: set exactly
    return True


def _backend(address: Address) -> RingFiles:
    return RingFiles(address.location, mode_bits(address.get(MODE)))


@hookimpl
def anyipc_transports() -> list[TransportSpec]:
    return [
        shm_transport(
            ShmFlavour(
                scheme=SCHEME,
                description="memory-mapped files: shared-memory rings that survive a crash",
                backend=_backend,
                check_location=_check_location,
                fresh_name=lambda: f"/tmp/anyipc-mmap-{os.getpid()}-{secrets.token_hex(8)}",
                reclaim=lambda terms: None,
                tag=_tag,
                sync=SYNC,
                prepare=_prepare,
            )
        )
    ]
