"""Which processes send on a message queue, and whether they are still alive.

A message queue has anonymous senders: the kernel tells its receiver
neither that a sender closed nor that it was killed.  To give a queue the
end-of-channel of a FIFO, the queue's owner keeps a *roster*, a directory
``/dev/shm/anyipc-<scheme>.<name>.senders`` next to its owner file, and
every sending end of anyipc enrols in it while it is open:

* :meth:`Enrolment.enrol` creates a *ticket*, a file named
  ``<pid>.<random>``, holding an open-file-description lock on it
  for as long as the sending end is open.  The ticket is created under a
  hidden name and renamed into place once locked, so a receiver never sees
  an unlocked ticket of a live sender.  The kernel drops the lock when the
  sender's last descriptor closes, also when the sender is killed.
* :meth:`Enrolment.withdraw` (an orderly close) writes ``closed`` into the
  ticket before dropping the lock; a ticket whose lock is free and that
  does not say ``closed`` belonged to a sender that died.
* :meth:`Roster.survey` (the receiver) counts the live tickets, and
  removes those of senders that are gone, remembering whether any of them
  died.

The receiver decides the end from that: once at least one sender enrolled,
none is alive, and the queue is empty, the channel has ended, in order if
every sender closed (:class:`~anyipc.EndOfChannel`) or not if one died
(:class:`~anyipc.ConnectionLost`).  Programs that send without anyipc do
not enrol; their messages are received all the same, but they do not count.

The roster's permissions follow the queue's ``mode``: whoever may send may
enrol (write and search permission, with the sticky bit so that a sender
cannot remove another's ticket); only the owner may list it otherwise.  The
owner removes the roster with the queue (:meth:`Roster.remove`); a roster
left by an owner that died is removed by the next ``bind`` of the name.
"""

from __future__ import annotations

import errno
import fcntl
import os
import secrets
import shutil
import stat
import threading

import attrs

from anyipc._address import Address
from anyipc._errors import ConnectionLost, EndOfChannel, PermissionDenied, TransportUnavailable
from anyipc._options import Option
from anyipc._owner import WRITE_LOCK, companion_path, is_locked

__all__ = [
    "SURVEY_S",
    "Enrolment",
    "Roster",
    "Survey",
    "end_option",
    "follows_senders",
    "remove_roster",
    "roster_path",
]

SURVEY_S = 0.1  #: how often a waiting receiver that follows its senders surveys them
_CLOSED = b"closed"
_OPEN = os.O_CLOEXEC | os.O_NOFOLLOW


def end_option() -> Option:
    """The ``end`` option of queues: ``never`` (the default) or ``senders``."""
    return Option(
        name="end",
        kind=str,
        default="never",
        choices=("never", "senders"),
        doc="bind: never (no end of channel) or senders (end once every sender is gone)",
    )


def follows_senders(address: Address) -> bool:
    """True when ``address`` asks its receiver to end with its senders (``end=senders``)."""
    return address.query.get("end") == "senders"


def roster_path(scheme: str, name: str) -> str:
    """The roster directory of queue ``name`` of ``scheme``."""
    return companion_path(scheme, name, "senders")


def roster_mode(queue_mode: int) -> int:
    """The roster's permissions: owner ``rwx``; write and search for those who may send."""
    bits = stat.S_IRWXU
    if queue_mode & stat.S_IWGRP:
        bits |= stat.S_IWGRP | stat.S_IXGRP
    if queue_mode & stat.S_IWOTH:
        bits |= stat.S_IWOTH | stat.S_IXOTH
    if bits != stat.S_IRWXU:
        bits |= stat.S_ISVTX
    return bits


@attrs.frozen
class Survey:
    """What a receiver knows of its senders: see :meth:`Roster.survey`."""

    alive: int  #: senders enrolled now
    seen: bool  #: some sender enrolled since the last end
    died: bool  #: some sender gone since the last end was killed, not closed

    @property
    def ended(self) -> bool:
        """True when senders came and all are gone."""
        return self.seen and self.alive == 0

    def end_error(self, what: str) -> EndOfChannel | ConnectionLost:
        """The error that reports this end of the senders."""
        if self.died:
            return ConnectionLost(f"{what}: a sender was killed, and no sender is left")
        return EndOfChannel(f"{what}: every sender closed")


class Roster:
    """The receiver's view of a queue's senders."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._seen = False
        self._died = False
        self._reported = False
        self._lock = threading.Lock()

    @classmethod
    def create(cls, path: str, queue_mode: int, what: str) -> Roster:
        """Create the roster directory at ``path`` for queue ``what`` (named in errors).

        The caller holds the owner lock, so a roster already there was left
        by an owner that died: it is removed first.  Raises
        :class:`~anyipc.PermissionDenied` when something that is not ours
        holds the path, :class:`~anyipc.TransportUnavailable` when
        :data:`~anyipc._owner.LOCK_DIR` cannot hold it.
        """
        remove_roster(path)
        try:
            os.mkdir(path, stat.S_IRWXU)
        except FileExistsError:
            raise PermissionDenied(
                errno.EEXIST, f"{what}: {path} is there and is not ours to remove"
            ) from None
        except OSError as exc:
            raise TransportUnavailable(
                f"{what}: cannot create its roster of senders {path}: {exc.strerror}"
            ) from exc
        os.chmod(path, roster_mode(queue_mode))  # mkdir applied the umask: set exactly
        return cls(path)

    def survey(self) -> Survey:
        """Count the live senders; remove the tickets of those gone, noting any that died.

        A roster that is gone or unreadable reports no senders.
        """
        with self._lock:
            alive = gone = died = 0
            for name in _listing(self.path):
                state = _ticket_state(os.path.join(self.path, name))
                if state is None:
                    continue
                alive += state == "alive"
                gone += state != "alive"
                died += state == "died"
            if self._reported and (alive or gone):
                self._seen = self._died = self._reported = False  # a new round of senders
            self._seen = self._seen or bool(alive or gone)
            self._died = self._died or bool(died)
            return Survey(alive=alive, seen=self._seen, died=self._died)

    def report_end(self) -> None:
        """Note that the end was reported: senders that enrol later start a new round."""
        with self._lock:
            self._reported = True

    def remove(self) -> None:
        """Remove the roster and every ticket in it (the owner closes the queue)."""
        remove_roster(self.path)


def _listing(path: str) -> list[str]:
    """The tickets in the roster at ``path`` (not the hidden ones still being made)."""
    try:
        return [name for name in os.listdir(path) if not name.startswith(".")]
    except OSError:
        return []


def _ticket_state(path: str) -> str | None:
    """``alive``, ``closed`` or ``died`` for the ticket at ``path`` (removing a dead one)."""
    try:
        fd = os.open(path, os.O_RDONLY | _OPEN)
    except OSError:
        return None  # removed meanwhile
    try:
        if is_locked(fd):
            return "alive"
        said = os.pread(fd, len(_CLOSED), 0)
    finally:
        os.close(fd)
    try:
        os.unlink(path)
    except FileNotFoundError:
        return None  # another receiver of the queue counted it
    except OSError:
        pass
    return "closed" if said == _CLOSED else "died"


def remove_roster(path: str) -> None:
    """Remove the roster at ``path`` and its tickets; absent is fine."""
    shutil.rmtree(path, ignore_errors=True)


class Enrolment:
    """A sender's live ticket in a queue's roster; see the module docstring."""

    __slots__ = ("_fd", "pid")

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self.pid = os.getpid()  #: the enrolled process; a forked child's copy withdraws nothing

    @classmethod
    def enrol(cls, roster: str) -> Enrolment | None:
        """Enrol a sender in the roster at ``roster``.

        ``None`` when the queue has no roster (it was not created by
        anyipc) or this process may not write into it.
        """
        token = f"{os.getpid()}.{secrets.token_hex(8)}"
        hidden = os.path.join(roster, "." + token)
        try:
            fd = os.open(hidden, os.O_RDWR | os.O_CREAT | os.O_EXCL | _OPEN, 0o644)
        except OSError:
            return None
        try:
            fcntl.fcntl(fd, fcntl.F_OFD_SETLK, WRITE_LOCK)
            os.rename(hidden, os.path.join(roster, token))
        except OSError as exc:
            os.close(fd)
            _unlink_quietly(hidden)
            if exc.errno in (errno.ENOENT, errno.EACCES, errno.EPERM):
                return None  # the roster went away, or is not ours to write
            raise
        return cls(fd)

    def withdraw(self) -> None:
        """Mark the ticket closed (in the enrolling process) and drop its lock; idempotent."""
        if self._fd < 0:
            return
        try:
            if os.getpid() == self.pid:
                os.pwrite(self._fd, _CLOSED, 0)
        except OSError:
            pass  # unwritable: the receiver will count this sender as died, never as alive
        finally:
            os.close(self._fd)
            self._fd = -1


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
