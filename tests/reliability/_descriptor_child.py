"""Running out of descriptors: ``python _descriptor_child.py TLS_QUERY CASE...``.

For each CASE (``"SCHEME VERB"``, e.g. ``"unix listen"``; see :func:`cases`),
in this process: lower the soft ``RLIMIT_NOFILE`` (to :data:`LIMIT`), open
endpoints with the verb on fresh addresses until one fails, try
:data:`RETRIES` more times, close everything and open once more.  A
connecting case first opens the endpoint it connects to, with room to
spare.  Prints one JSON line per case:

* ``opened`` before the first failure, and the ``limit``;
* ``failures``: for the first failure and each retry, the error's type,
  whether it is an :class:`anyipc.TransportUnavailable` (the documented
  error), its message, and what the attempt ``left``: descriptors it did
  not give back, /dev/shm entries and SysV objects of this process it
  added, and objects its address names that exist afterwards (a socket or
  FIFO file, a directory, a queue, an owner file);
* ``reopened``: true when an open succeeded once everything was closed,
  else the error's message;
* ``leftover``: what the case left after closing everything;

or, for a transport not available here, ``unavailable``: why.

The census of descriptors needs none of its own (``fcntl`` on each
number); listing directories needs one, so the soft limit is raised for the
moment a census of names takes, then lowered again.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import resource
import signal
import sys
from collections.abc import Callable, Iterator
from typing import Any

import posix_ipc

import anyipc
from anyipc._registry import registry

LIMIT = 64  #: the soft RLIMIT_NOFILE a case runs under (but see limit_for)
RETRIES = 10
MOST = 1000  #: more opens than LIMIT allows: reaching it ends a case that never fails

Endpoint = anyipc.Channel | anyipc.Listener
#: how a retry that opened (and did not fail as it should) is reported
OPENED_INSTEAD = {"type": None, "documented": False, "message": "it opened", "left": []}
Census = tuple[set[int], set[str]]


@contextlib.contextmanager
def room() -> Iterator[None]:
    """Descriptors to spare for a moment: the soft limit raised to the hard one, then back."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def descriptors() -> set[int]:
    """The descriptors open in this process, found without opening one."""
    found = set()
    for fd in range(resource.getrlimit(resource.RLIMIT_NOFILE)[0] + 64):
        with contextlib.suppress(OSError):
            fcntl.fcntl(fd, fcntl.F_GETFD)
            found.add(fd)
    return found


def _table(kind: str) -> list[list[str]]:
    with open(f"/proc/sysvipc/{kind}") as table:
        return [line.split() for line in table.readlines()[1:]]


def objects(keys: set[int]) -> set[str]:
    """This process's /dev/shm entries, SysV segments, and SysV queues whose key is in ``keys``."""
    pid = os.getpid()
    marks = (f"-{pid}-", f".{pid}.")
    with room():
        shm = {f"/dev/shm/{n}" for n in os.listdir("/dev/shm") if any(m in n for m in marks)}
        segments = {f"SysV segment {row[1]}" for row in _table("shm") if row[4] == str(pid)}
        queues = {  # the table shows keys as signed ints
            f"SysV queue {row[1]}" for row in _table("msg") if int(row[0]) & 0xFFFFFFFF in keys
        }
    return shm | segments | queues


def census(keys: set[int]) -> Census:
    return descriptors(), objects(keys)


def added(before: Census, after: Census) -> list[str]:
    return [f"descriptor {fd}" for fd in sorted(after[0] - before[0])] + sorted(
        after[1] - before[1]
    )


def named_objects(uri: str) -> list[str]:
    """The objects ``uri`` names that exist now, whoever made them."""
    address = anyipc.Address.parse(uri)
    location = address.location
    with room():
        if location.startswith("/"):
            return [location] if os.path.lexists(location) else []
        if address.scheme == "posixmq":
            try:
                posix_ipc.MessageQueue("/" + location).close()
            except posix_ipc.ExistentialError:
                return []
            return [f"queue /{location}"]
        name = f"{int(location, 0):08x}" if location.startswith("0x") else location
        return [f"/dev/shm/{n}" for n in os.listdir("/dev/shm") if name and f".{name}." in n]


def sysv_key(uri: str) -> int | None:
    address = anyipc.Address.parse(uri)
    return int(address.location, 0) if address.scheme == "sysvmq" else None


class Case:
    """A way to open endpoints: ``open_one(fresh())``; ``peer`` is what it connects to."""

    def __init__(
        self,
        fresh: Callable[[], str],
        open_one: Callable[[str], Any],
        peer: Endpoint | None = None,
    ) -> None:
        self.fresh = fresh
        self.open_one = open_one
        self.peer = peer
        self.opened: list[Endpoint] = []
        self.keys: set[int] = set()  #: the SysV keys of the addresses tried

    def attempt(self) -> dict[str, Any] | None:
        """One open: None when it succeeded, else how it failed and what it left."""
        uri = self.fresh()
        key = sysv_key(uri)
        if key is not None:
            self.keys.add(key)
        before = census(self.keys)
        try:
            opened = self.open_one(uri)
        except Exception as exc:
            return {
                "type": type(exc).__name__,
                "documented": isinstance(exc, anyipc.TransportUnavailable),
                "message": str(exc),
                "left": added(before, census(self.keys)) + self._made_by(uri),
            }
        self.opened.extend(opened if isinstance(opened, tuple) else [opened])
        return None

    def _made_by(self, uri: str) -> list[str]:
        """What a failed open of ``uri`` made there (connecting to a peer makes nothing there)."""
        return named_objects(uri) if self.peer is None else []

    def close_all(self) -> None:
        while self.opened:
            self.opened.pop().close()


def fresh(scheme: str, query: str = "") -> Callable[[], str]:
    spec = registry().transport(scheme)
    return lambda: spec.test_address() + query


def connecting(scheme: str, verb: str, query: str = "") -> Case:
    """Connecting again and again to one endpoint, opened beforehand."""
    uri = fresh(scheme, query)()
    peer = anyipc.listen(uri) if verb == "listen" else anyipc.bind(uri)
    address = peer.address
    assert address is not None
    return Case(lambda: address, anyipc.connect, peer)


def real_time_signals() -> Callable[[], str]:
    """A real-time signal not bound yet, at each call: a process binds a signal once."""
    numbers = iter(range(signal_count()))
    return lambda: f"signal://self?mode=rt&rtsig={next(numbers)}"


def signal_count() -> int:
    return signal.SIGRTMAX - signal.SIGRTMIN + 1


def cases(tls_query: str) -> dict[str, Callable[[], Case]]:
    small = "?max_messages=1&max_message_size=1"  # RLIMIT_MSGQUEUE then holds thousands
    listen, bind, pair = anyipc.listen, anyipc.bind, anyipc.pair
    return {
        "tcp listen": lambda: Case(fresh("tcp"), listen),
        "tcp connect": lambda: connecting("tcp", "listen"),
        "tls+tcp listen": lambda: Case(lambda: f"tls+tcp://127.0.0.1:0?{tls_query}", listen),
        "unix listen": lambda: Case(fresh("unix"), listen),
        "unix connect": lambda: connecting("unix", "listen"),
        "unix-seqpacket listen": lambda: Case(fresh("unix-seqpacket"), listen),
        "unix-seqpacket connect": lambda: connecting("unix-seqpacket", "listen"),
        "unix-dgram bind": lambda: Case(fresh("unix-dgram"), bind),
        "unix-dgram connect": lambda: connecting("unix-dgram", "bind"),
        "udp bind": lambda: Case(fresh("udp"), bind),
        "fifo bind": lambda: Case(fresh("fifo"), bind),
        "fifo connect": lambda: connecting("fifo", "bind"),
        "pipe pair": lambda: Case(fresh("pipe"), pair),
        "socketpair pair": lambda: Case(fresh("socketpair"), pair),
        "posixmq bind": lambda: Case(fresh("posixmq", small), bind),
        "posixmq connect": lambda: connecting("posixmq", "bind", small),
        "sysvmq bind": lambda: Case(fresh("sysvmq"), bind),
        "shm listen": lambda: Case(fresh("shm"), listen),
        "sysvshm listen": lambda: Case(fresh("sysvshm"), listen),
        "mmap listen": lambda: Case(fresh("mmap"), listen),
        "signal bind": lambda: Case(real_time_signals(), bind),
    }


def limit_for(name: str) -> int:
    """:data:`LIMIT`, or for signal:// just above what is open: it has too few signals for 64."""
    return len(descriptors()) + signal_count() // 2 if name.startswith("signal") else LIMIT


def run(name: str, make: Callable[[], Case]) -> dict[str, Any]:
    unavailable = anyipc.transports()[name.split()[0].split("+")[-1]].unavailable
    if unavailable:
        return {"case": name, "unavailable": unavailable}
    start = census(set())
    case = make()
    limit = limit_for(name)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
    try:
        failures: list[dict[str, Any]] = []
        while len(case.opened) < MOST and not failures:
            failure = case.attempt()
            if failure is not None:
                failures.append(failure)
        count = len(case.opened)
        for _ in range(RETRIES if failures else 0):
            failures.append(case.attempt() or OPENED_INSTEAD)
        case.close_all()
        failure = case.attempt()
        reopened = True if failure is None else failure["message"]
    finally:
        case.close_all()
        if case.peer is not None:
            case.peer.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return {
        "case": name,
        "limit": limit,
        "opened": count,
        "failures": failures,
        "reopened": reopened,
        "leftover": added(start, census(case.keys)),
    }


def main() -> None:
    tls_query, *names = sys.argv[1:]
    anyipc.transports()  # every plugin loaded while descriptors are plenty
    known = cases(tls_query)
    for name in names:
        print(json.dumps(run(name, known[name])), flush=True)


if __name__ == "__main__":
    main()
