"""Who may open a kernel object anyipc creates, and whether its creator is still alive.

POSIX and SysV message queues (and shared memory segments) have kernel
persistence: they outlive the process that created them, and the kernel
records no creator process that could be checked.  So the process that
creates such an object also holds an exclusive lock on a companion *owner
file*, ``/dev/shm/anyipc-<scheme>.<name>.owner``, for as long as the object
is its own.  The lock is an open-file-description lock (``F_OFD_SETLK``),
which the kernel drops when the owner's last descriptor closes, so also when
the owner is killed: a lock that can be taken proves that the owner is gone.

* :meth:`OwnerLock.acquire` takes the lock before the object is created;
  a live owner makes it raise :class:`~anyipc.AddressInUse`.  It reports
  whether an earlier owner's file was there: that owner died without
  cleaning up, and the object it left (if any) may be reclaimed.
* :func:`owner_alive` lets a sender check, without taking anything, that
  someone still receives on an object it opens.
* :meth:`OwnerLock.release` removes the file while the lock is still held.
  Every step checks that the path still names the file that was locked, so
  that a file removed and re-created meanwhile is never mistaken for ours.
  Ownership stays with the process that acquired the lock: a forked child
  shares the lock, and closing its copy removes nothing (``mine``).

Owner files are empty and created with ``O_NOFOLLOW``, owner-only
(``0600``) at first, then given read permission for the classes of users
that the object's own mode lets in (``0640`` for a queue of mode ``660``),
so that the senders it admits can check that its owner lives, and nobody
else can open the file (a reader could hold a lock on it and make a dead
owner look alive).  A file that another user owns cannot be taken over
(:class:`~anyipc.PermissionDenied`).

:func:`mode_option` is the ``mode`` option of transports that create such
objects: octal permission bits, ``600`` (owner only) by default.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import re
import stat
import struct

from anyipc._errors import AddressInUse, PermissionDenied, TransportUnavailable, map_os_error
from anyipc._options import Option, OptionValue

__all__ = [
    "LOCK_DIR",
    "WRITE_LOCK",
    "OwnerLock",
    "companion_path",
    "is_locked",
    "lock_path",
    "mode_bits",
    "mode_option",
    "owner_alive",
    "owner_file_mode",
]

LOCK_DIR = "/dev/shm"
_NAME_MAX = 255
_FLOCK = struct.Struct("@hhqqi0q")  # struct flock: l_type, l_whence, l_start, l_len, l_pid
WRITE_LOCK = _FLOCK.pack(fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)  # the whole file
_ATTEMPTS = 5
_OPEN = os.O_CLOEXEC | os.O_NOFOLLOW


def _check_mode(value: OptionValue) -> str | None:
    if isinstance(value, str) and re.fullmatch(r"0?[0-7]{3}", value):
        return None
    return "must be octal permission bits such as 600, 660 or 666"


def mode_option(what: str) -> Option:
    """The ``mode`` option: octal permissions of ``what`` (``600`` by default)."""
    return Option(
        name="mode",
        kind=str,
        default="600",
        check=_check_mode,
        doc=f"octal permissions of {what} (600: only this user)",
    )


def mode_bits(value: OptionValue | None) -> int:
    """The permission bits of a validated ``mode`` option value."""
    assert isinstance(value, str)
    return int(value, 8)


def owner_file_mode(object_mode: int) -> int:
    """The owner file's permissions for an object of ``object_mode``: read for whom it admits."""
    bits = stat.S_IRUSR | stat.S_IWUSR
    if object_mode & stat.S_IRWXG:
        bits |= stat.S_IRGRP
    if object_mode & stat.S_IRWXO:
        bits |= stat.S_IROTH
    return bits


def companion_path(scheme: str, name: str, suffix: str) -> str:
    """``/dev/shm/anyipc-<scheme>.<name>.<suffix>`` (long names are hashed to fit)."""
    filename = f"anyipc-{scheme}.{name}.{suffix}"
    if len(os.fsencode(filename)) > _NAME_MAX:
        digest = hashlib.sha256(os.fsencode(name)).hexdigest()
        filename = f"anyipc-{scheme}.sha256-{digest}.{suffix}"
    return os.path.join(LOCK_DIR, filename)


def lock_path(scheme: str, name: str) -> str:
    """The owner file of object ``name`` of ``scheme``."""
    return companion_path(scheme, name, "owner")


class OwnerLock:
    """The held lock on an owner file; see the module docstring."""

    __slots__ = ("_fd", "path", "pid")

    def __init__(self, path: str, fd: int) -> None:
        self.path = path
        self._fd = fd
        self.pid = os.getpid()  #: the owning process; a forked child's copy owns nothing

    @property
    def mine(self) -> bool:
        """True in the process that acquired the lock (not in a forked child)."""
        return os.getpid() == self.pid

    @classmethod
    def acquire(cls, path: str, what: str, object_mode: int = 0o600) -> tuple[OwnerLock, bool]:
        """Lock the owner file at ``path`` for object ``what`` (named in errors).

        The file gets :func:`owner_file_mode` of the object's ``object_mode``,
        never wider on the way.  Returns the lock and whether an earlier
        owner's file was there (that owner died without removing it).
        Raises :class:`AddressInUse` when a live process holds it,
        :class:`PermissionDenied` when another user's file is there,
        :class:`TransportUnavailable` when :data:`LOCK_DIR` cannot hold it.
        """
        for _ in range(_ATTEMPTS):
            try:
                opened = _open_owner_file(path)
            except PermissionError as exc:
                raise PermissionDenied(
                    exc.errno, f"{what}: its owner file {path} belongs to someone else"
                ) from exc
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE):
                    raise map_os_error(exc, what) from exc
                raise TransportUnavailable(
                    f"{what}: cannot create its owner file {path}: {exc.strerror}"
                ) from exc
            if opened is None:
                continue  # it was there, and went away before we opened it
            fd, inherited = opened
            try:
                fcntl.fcntl(fd, fcntl.F_OFD_SETLK, WRITE_LOCK)
            except OSError as exc:
                os.close(fd)
                if exc.errno in (errno.EAGAIN, errno.EACCES):
                    raise AddressInUse(
                        errno.EADDRINUSE, f"{what} is in use: a live process owns it"
                    ) from None
                raise TransportUnavailable(f"{what}: cannot lock {path}: {exc.strerror}") from exc
            if _names(path, fd):
                try:
                    os.fchmod(fd, owner_file_mode(object_mode))  # the umask narrowed it, maybe
                except OSError as exc:
                    os.close(fd)
                    raise map_os_error(exc, f"{what}: its owner file {path}") from exc
                return cls(path, fd), inherited
            os.close(fd)  # its owner removed it after we opened it: start again
        raise AddressInUse(errno.EADDRINUSE, f"{what}: its owner file {path} keeps changing")

    def release(self) -> None:
        """Remove the owner file (if it is still ours), then drop the lock; idempotent.

        In a forked child this only closes the child's descriptor: the lock,
        shared with the parent, stays held until the parent releases it too.
        """
        if self._fd < 0:
            return
        try:
            if self.mine and _names(self.path, self._fd):
                os.unlink(self.path)
        except OSError:
            pass  # left behind, it is reclaimable: its lock is free once we close
        finally:
            os.close(self._fd)
            self._fd = -1


def owner_alive(path: str) -> bool | None:
    """Whether the owner of the file at ``path`` is alive; ``None`` when there is no such file.

    Takes nothing: a live owner is never disturbed.  A file this process
    may not read counts as absent (``None``).
    """
    try:
        fd = os.open(path, os.O_RDONLY | _OPEN)
    except OSError:
        return None
    try:
        return is_locked(fd)
    finally:
        os.close(fd)


def is_locked(fd: int) -> bool:
    """Whether some open file description holds a lock on the file open as ``fd``."""
    conflict = fcntl.fcntl(fd, fcntl.F_OFD_GETLK, WRITE_LOCK)
    return bool(_FLOCK.unpack(conflict)[0] != fcntl.F_UNLCK)


def _open_owner_file(path: str) -> tuple[int, bool] | None:
    """Open (creating if needed) the owner file; also whether it was already there.

    ``None`` when it was there but went away before it could be opened.
    """
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | _OPEN, 0o600), False
    except FileExistsError:
        pass
    try:
        return os.open(path, os.O_RDWR | _OPEN), True
    except FileNotFoundError:
        return None


def _names(path: str, fd: int) -> bool:
    """True when ``path`` still names the file open as ``fd``."""
    try:
        there = os.lstat(path)
    except FileNotFoundError:
        return False
    here = os.fstat(fd)
    return (there.st_dev, there.st_ino) == (here.st_dev, here.st_ino)
