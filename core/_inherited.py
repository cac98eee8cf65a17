"""Addresses of inherited descriptors, ``scheme://fd/N``, shared by pipe:// and socketpair://.

An INHERITED transport opens a new pair at the bare address
(``pipe://``) and adopts a descriptor it inherited at ``scheme://fd/N``
(``connect``).  Each end reports the second form as its ``address``, so a
parent passes the descriptor to a child (``pass_fds=end.fds``) and the URI
with it; the descriptor keeps its number in the child.
"""

from __future__ import annotations

import os
import re

from anyipc._address import Address
from anyipc._errors import ConnectionLost

__all__ = [
    "check_fd_location",
    "fd_address",
    "fd_number",
    "fd_verbs",
    "inherited_stat",
    "keep_to_ourselves",
]

_FD = re.compile(r"fd/(0|[1-9][0-9]{0,9})\Z")
_MAX_FD = 2**31 - 1


def fd_number(location: str) -> int | None:
    """The descriptor ``fd/N`` names, or ``None`` for the empty location (a new pair).

    Raises ``ValueError`` saying what is wrong with any other location.
    """
    if not location:
        return None
    match = _FD.match(location)
    if match is None or int(match.group(1)) > _MAX_FD:
        raise ValueError(
            f"{location!r}: expected nothing (a new pair) or fd/N, "
            "a descriptor number this process inherited (e.g. fd/5)"
        )
    return int(match.group(1))


def check_fd_location(location: str) -> str | None:
    """The problem with ``location`` as a ``TransportSpec.check_location`` (no system call)."""
    try:
        fd_number(location)
    except ValueError as exc:
        return str(exc)
    return None


def fd_verbs(address: Address) -> tuple[str, ...]:
    """``pair`` at the bare address, ``connect`` (adopt) at ``fd/N``."""
    return ("connect",) if address.location else ("pair",)


def fd_address(address: Address, fd: int) -> str:
    """The URI of descriptor ``fd``, with the options given in ``address``."""
    return str(address.replace(location=f"fd/{fd}"))


def inherited_stat(fd: int, uri: str) -> os.stat_result:
    """``fstat(fd)``; :class:`~anyipc.ConnectionLost` when ``fd`` is not open in this process."""
    try:
        return os.fstat(fd)
    except OSError as exc:
        raise ConnectionLost(
            f"{uri}: descriptor {fd} is not open in this process "
            "(start the child with pass_fds=end.fds)"
        ) from exc


def keep_to_ourselves(fd: int) -> None:
    """Make an adopted ``fd`` close-on-exec again.

    So that programs this process starts later do not hold the end open
    by accident (a forgotten copy of a write end means its reader never
    sees the end).  The flag belongs to this descriptor alone, not to the
    other processes that share the open file.
    """
    os.set_inheritable(fd, False)
