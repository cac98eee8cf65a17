"""Every mode each named object had, read from an ``strace`` of the process that made it.

:func:`mode_histories` replays the system calls that create an object
(``bind`` of a socket file, ``mknodat``, ``mkdir``, ``openat`` with
``O_CREAT``, ``mq_open`` with ``O_CREAT``, ``msgget``/``shmget`` with
``IPC_CREAT``) and those that change its mode (``chmod``, ``fchmodat``,
``fchmod`` through any descriptor of it, ``msgctl``/``shmctl`` ``IPC_SET``),
following descriptors (``dup``, ``F_DUPFD``, ``close``) and names
(``link``, ``rename``).  A socket file is born with the mode of its
socket's inode, which an ``fchmod`` before ``bind`` sets (``0777``
otherwise).  The traced process runs with umask 0, so that a creation
call's mode is the object's first mode.

:func:`wider_than_final` then names the objects that were, at some moment,
wider than the mode they ended with.  :data:`TRACED` is what to give
``strace -e trace=``.
"""

from __future__ import annotations

import re
import stat
from collections.abc import Iterable

__all__ = ["TRACED", "History", "mode_histories", "wider_than_final"]

TRACED = (
    "socket,bind,open,openat,creat,mq_open,mknod,mknodat,mkdir,mkdirat,msgget,shmget,"
    "chmod,fchmod,fchmodat,msgctl,shmctl,link,linkat,rename,renameat,renameat2,"
    "close,dup,dup2,dup3,fcntl"
)
SOCKET_INODE = 0o777  #: a socket file's mode when nothing set its inode's before bind

History = list[tuple[int, str]]  #: (mode, the call that gave it), oldest first

_CALL = re.compile(r"(?P<name>\w+)\((?P<args>.*)\)\s+= (?P<result>-?\d+)")
_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"')
_OCTAL = re.compile(r"(?:^|[|, ])(0[0-7]+)\b")
_PERM = re.compile(r"mode=(0[0-7]+)")


def _strings(args: str) -> list[str]:
    return _STRING.findall(args)


def _mode(text: str) -> int:
    """The last octal number in ``text``: the mode argument of the calls traced here."""
    found = _OCTAL.findall(text)
    assert found, f"no mode in {text!r}"
    return int(found[-1], 8) & 0o7777


def _first_int(args: str) -> int:
    head = args.split(",", 1)[0].strip()
    return int(head, 0)


class _Replay:
    """The state of the replay: descriptors, socket inode modes, histories."""

    def __init__(self) -> None:
        self.histories: dict[str, History] = {}
        self.fds: dict[int, str] = {}  # descriptor -> the object's key
        self.sockets: dict[int, int] = {}  # unbound socket descriptor -> its inode's mode
        self.untracked: list[str] = []  # mode changes through descriptors of unknown origin

    def create(self, key: str, mode: int, call: str, fd: int | None = None) -> None:
        self.histories[key] = [(mode, call)]
        if fd is not None:
            self.fds[fd] = key

    def change(self, key: str, mode: int, call: str) -> None:
        if key in self.histories:
            self.histories[key].append((mode, call))

    def call(self, name: str, args: str, result: int) -> None:
        paths = _strings(args)
        if name == "socket" and args.startswith("AF_UNIX"):
            self.sockets[result] = SOCKET_INODE
        elif name == "fchmod":
            fd = _first_int(args)
            if fd in self.sockets:
                self.sockets[fd] = _mode(args)
            elif fd in self.fds:
                self.change(self.fds[fd], _mode(args), "fchmod")
            else:
                self.untracked.append(f"fchmod({args})")
        elif name == "bind" and "sun_path=" in args and 'sun_path=@"' not in args:
            fd = _first_int(args)
            self.create(paths[0], self.sockets.pop(fd, SOCKET_INODE), "bind", fd)
        elif name in ("open", "openat", "creat"):
            path = paths[0]
            created = "O_CREAT" in args or name == "creat"
            if created and ("O_EXCL" in args or path not in self.histories):
                self.create(path, _mode(args.rsplit(",", 1)[1]), name, result)
            else:
                self.fds[result] = path
        elif name == "mq_open":
            key = f"mq:{paths[0]}"
            if "O_CREAT" in args:
                self.create(key, _mode(args.split("{", 1)[0]), name, result)
            else:
                self.fds[result] = key
        elif name in ("mknod", "mknodat", "mkdir", "mkdirat"):
            self.create(paths[0], _mode(args), name)
        elif name in ("msgget", "shmget") and "IPC_CREAT" in args:
            self.create(f"{name[:3]}:{result}", _mode(args), name)
        elif name in ("chmod", "fchmodat"):
            self.change(paths[0], _mode(args), name)
        elif name in ("msgctl", "shmctl") and "IPC_SET" in args:
            self.change(f"{name[:3]}:{_first_int(args)}", int(_PERM.findall(args)[0], 8), name)
        elif name in ("link", "linkat", "rename", "renameat", "renameat2"):
            old, new = paths[0], paths[1]
            if old in self.histories:
                self.histories[new] = self.histories[old]  # one object, two names
                if name.startswith("rename"):
                    del self.histories[old]
        elif name == "close":
            self.fds.pop(_first_int(args), None)
            self.sockets.pop(_first_int(args), None)
        elif name in ("dup", "dup2", "dup3") or (name == "fcntl" and "F_DUPFD" in args):
            old = _first_int(args)
            if old in self.fds:
                self.fds[result] = self.fds[old]
            if old in self.sockets:
                self.sockets[result] = self.sockets[old]


def mode_histories(trace: Iterable[str]) -> tuple[dict[str, History], list[str]]:
    """The mode history of every object the trace creates, and untracked mode changes.

    ``trace`` is the output of ``strace -e trace=TRACED`` of one thread.
    Keys are paths, ``mq:NAME`` for POSIX queues, ``msg:ID``/``shm:ID`` for
    SysV objects.  Failed calls change nothing and are skipped.
    """
    replay = _Replay()
    for line in trace:
        found = _CALL.match(line.strip())
        if found is None or int(found["result"]) < 0:
            continue
        replay.call(found["name"], found["args"], int(found["result"]))
    return replay.histories, replay.untracked


def wider_than_final(histories: dict[str, History]) -> dict[str, History]:
    """The objects that at some moment had a permission bit their final mode lacks."""
    wider = {}
    for key, history in histories.items():
        final = history[-1][0]
        if any(stat.S_IMODE(mode) & ~stat.S_IMODE(final) for mode, _ in history):
            wider[key] = history
    return wider
