"""Kernel limits on IPC objects: their values here and now, and messages that name them.

A user who hits a limit needs three things: which limit (its sysctl or
rlimit name, e.g. ``fs.mqueue.msg_max`` or ``RLIMIT_MSGQUEUE``), its value
on this machine, and how to raise it.  :class:`Limit` carries all three and
words the message.  Values are read from ``/proc/sys`` and ``getrlimit`` at
every call, since an administrator may change them while a process runs.
"""

from __future__ import annotations

import resource
from collections.abc import Callable
from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:  # _errors words its messages with these limits, and _options imports _errors
    from anyipc._options import OptionValue

__all__ = ["Limit", "at_most_sysctl", "rlimit_msgqueue", "rlimit_nofile", "sysctl"]


@attrs.frozen
class Limit:
    """One kernel limit: ``name``, ``value`` in ``unit``, and ``how_to_raise`` it.

    ``value`` is ``None`` when there is no number to check against:
    ``no_value`` says why ("unknown" here, or "unlimited").
    """

    name: str
    value: int | None
    unit: str
    how_to_raise: str
    no_value: str = "unknown"

    def describe(self) -> str:
        """``"fs.mqueue.msg_max = 10 messages"``."""
        shown = self.no_value if self.value is None else f"{self.value} {self.unit}"
        return f"{self.name} = {shown}"

    def exceeded_by(self, requested: int) -> str | None:
        """Why ``requested`` is too much, naming the limit; ``None`` when it fits.

        An unknown limit is not checked here: the kernel has the last word.
        """
        if self.value is None or requested <= self.value:
            return None
        return f"{requested} is above the kernel limit {self.describe()}; {self.how_to_raise}"


def sysctl(name: str, unit: str) -> Limit:
    """The sysctl ``name`` (e.g. ``kernel.msgmax``), read from ``/proc/sys``.

    Its value is ``None`` when the file is missing or unreadable.
    """
    path = "/proc/sys/" + name.replace(".", "/")
    try:
        with open(path) as handle:
            value: int | None = int(handle.read().split()[0])
    except (OSError, ValueError, IndexError):
        value = None
    return Limit(
        name=name,
        value=value,
        unit=unit,
        how_to_raise=f"raise it with `sysctl -w {name}=N` (needs root)",
    )


def at_most_sysctl(name: str, unit: str) -> Callable[[OptionValue], str | None]:
    """An :class:`~anyipc.Option` ``check`` refusing values above the sysctl ``name``."""

    def check(value: OptionValue) -> str | None:
        assert isinstance(value, int)
        return sysctl(name, unit).exceeded_by(value)

    return check


def rlimit_msgqueue() -> Limit:
    """``RLIMIT_MSGQUEUE``: the bytes all POSIX message queues of one user may take.

    The soft limit applies; a process may raise it up to the hard limit.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_MSGQUEUE)
    ceiling = "no hard limit" if hard == resource.RLIM_INFINITY else f"hard limit {hard} bytes"
    return Limit(
        name="RLIMIT_MSGQUEUE",
        value=None if soft == resource.RLIM_INFINITY else soft,
        unit="bytes per user",
        no_value="unlimited",
        how_to_raise=(
            f"raise it with `ulimit -q BYTES` or `prlimit --msgqueue=BYTES` ({ceiling}; "
            "going above the hard limit needs CAP_SYS_RESOURCE)"
        ),
    )


def rlimit_nofile() -> Limit:
    """``RLIMIT_NOFILE``: how many descriptors one process may have open.

    The soft limit applies; a process may raise it up to the hard limit.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    ceiling = "no hard limit" if hard == resource.RLIM_INFINITY else f"hard limit {hard}"
    return Limit(
        name="RLIMIT_NOFILE",
        value=None if soft == resource.RLIM_INFINITY else soft,
        unit="descriptors per process",
        no_value="unlimited",
        how_to_raise=(
            f"raise it with `ulimit -n N` or `prlimit --nofile=N` ({ceiling}; "
            "going above the hard limit needs CAP_SYS_RESOURCE)"
        ),
    )
