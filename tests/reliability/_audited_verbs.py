"""Child of the malformed-URI tests: call the verbs on bad addresses under an audit hook.

Run as a script.  It reads one JSON object from stdin, ``{"cases": [[uri,
verb, keywords], ...]}`` (in a URI, :data:`HUGE` stands for a string of one
MiB), imports anyipc and loads every plugin, then installs an audit hook
(``sys.addaudithook``: it cannot be removed, hence a process of its own) and
calls ``anyipc.<verb>(uri, **keywords)`` for each case.  It prints one JSON
list: for each case, what was raised (``raised``, ``message``; ``"nothing"``
when the call returned, its result then closed) and the audit events that
reach the OS (``events``) that the call caused: sockets, name lookups,
files opened for writing or creation, FIFOs, directories, links, renames,
removals, mode changes, memory maps, processes and signals.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

HUGE = "<1MiB>"
_WATCHED = frozenset(
    {
        "socket.__new__",
        "socket.bind",
        "socket.connect",
        "socket.sendto",
        "socket.sendmsg",
        "socket.getaddrinfo",
        "socket.gethostbyname",
        "os.mkfifo",
        "os.mknod",
        "os.mkdir",
        "os.symlink",
        "os.link",
        "os.rename",
        "os.remove",
        "os.rmdir",
        "os.chmod",
        "os.chown",
        "os.truncate",
        "mmap.__new__",
        "os.kill",
        "os.fork",
        "os.posix_spawn",
        "subprocess.Popen",
    }
)
_WRITING = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC


def _creates(args: tuple[Any, ...]) -> bool:
    """Whether an ``open`` event's arguments (path, mode, flags) open to write or create."""
    _, mode, flags = args
    if isinstance(mode, str) and any(letter in mode for letter in "wax+"):
        return True
    return isinstance(flags, int) and bool(flags & _WRITING)


def main() -> None:
    import anyipc

    anyipc.transports()  # every plugin loaded and described before recording starts
    cases = json.loads(sys.stdin.read())["cases"]
    events: list[str] = []
    recording = [False]

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if recording[0] and (event in _WATCHED or (event == "open" and _creates(args))):
            events.append(f"{event}{args!r}"[:300])

    sys.addaudithook(hook)
    results = []
    for uri, verb, keywords in cases:
        if isinstance(uri, str):
            uri = uri.replace(HUGE, "x" * (1 << 20))
        events.clear()
        recording[0] = True
        try:
            opened = getattr(anyipc, verb)(uri, **keywords)
        except BaseException as exc:  # every kind is reported: only InvalidAddress may come
            recording[0] = False
            raised, message = type(exc).__name__, str(exc)[:300]
        else:
            recording[0] = False
            raised, message = "nothing", repr(opened)
            for endpoint in opened if isinstance(opened, tuple) else (opened,):
                endpoint.close()
        results.append({"raised": raised, "message": message, "events": list(events)})
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
