"""Before/after pictures of the OS objects a process can leak."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable

import attrs

__all__ = ["Snapshot", "assert_no_leaks"]

_SYSV_TABLES = ("/proc/sysvipc/msg", "/proc/sysvipc/shm", "/proc/sysvipc/sem")


def _fds() -> frozenset[str]:
    entries = []
    for name in os.listdir("/proc/self/fd"):
        try:
            entries.append(f"{name} -> {os.readlink(f'/proc/self/fd/{name}')}")
        except OSError:  # closed meanwhile (the listing's own descriptor)
            continue
    return frozenset(entries)


def _listing(directory: str) -> frozenset[str]:
    try:
        return frozenset(os.listdir(directory))
    except OSError:
        return frozenset()


def _sysv() -> frozenset[str]:
    rows: list[str] = []
    uid = str(os.getuid())
    for table in _SYSV_TABLES:
        try:
            with open(table) as handle:
                lines = handle.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if uid in fields:
                rows.append(f"{table.rsplit('/', 1)[1]} key={fields[0]} id={fields[1]}")
    return frozenset(rows)


@attrs.frozen
class Snapshot:
    """Descriptors, threads, /dev/shm entries, SysV objects and named paths at one moment."""

    fds: frozenset[str]
    threads: frozenset[str]
    dev_shm: frozenset[str]
    sysv: frozenset[str]
    paths: frozenset[str]

    @classmethod
    def take(cls, watched_paths: Iterable[str] = ()) -> Snapshot:
        """Record the current state; ``watched_paths`` are checked for existence."""
        return cls(
            fds=_fds(),
            threads=frozenset(f"{t.name}#{t.ident}" for t in threading.enumerate()),
            dev_shm=_listing("/dev/shm"),
            sysv=_sysv(),
            paths=frozenset(path for path in watched_paths if os.path.lexists(path)),
        )

    def leaks_since(self, before: Snapshot) -> list[str]:
        """What exists now that did not exist in ``before``."""
        found: list[str] = []
        for label, now, then in (
            ("descriptor", self.fds, before.fds),
            ("thread", self.threads, before.threads),
            ("/dev/shm entry", self.dev_shm, before.dev_shm),
            ("SysV object", self.sysv, before.sysv),
            ("path", self.paths, before.paths),
        ):
            found.extend(f"{label} {item}" for item in sorted(now - then))
        return found


def assert_no_leaks(
    before: Snapshot,
    watched_paths: Iterable[str] = (),
    grace: float = 2.0,
    allowed_fds: Iterable[int] = (),
) -> None:
    """Assert that nothing leaked since ``before``, allowing ``grace`` seconds to settle.

    Threads and descriptors of helper threads may take a moment to go away,
    so the check is retried until ``grace`` passes.  ``allowed_fds`` are
    descriptors known to belong to the test's own machinery.
    """
    paths = list(watched_paths)
    allowed = {f"{fd} " for fd in allowed_fds}
    deadline = time.monotonic() + grace
    while True:
        leaks = [
            leak
            for leak in Snapshot.take(paths).leaks_since(before)
            if not any(leak.startswith(f"descriptor {prefix}") for prefix in allowed)
        ]
        if not leaks or time.monotonic() >= deadline:
            break
        time.sleep(0.02)
    assert not leaks, "left behind after close: " + "; ".join(leaks)
