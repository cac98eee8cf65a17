"""The addresses of ``signal://``: a process, ``signal://PID`` or ``signal://self``.

Checking a location, the pid it names, the address of a process (a
channel's peer, a message's sender), the verbs an address allows, and the
target of a ``send_to``.  The semantics are in :mod:`anyipc.transports.signal`.
"""

from __future__ import annotations

import os

from anyipc._address import Address
from anyipc._errors import InvalidAddress

PID_MAX_LIMIT = 4_194_304  #: the largest pid Linux can have (``PID_MAX_LIMIT`` on 64-bit)


def check_location(location: str) -> str | None:
    if location == "self":
        return None
    if not location.isascii() or not location.isdigit() or location.startswith("0"):
        return (
            f"{location!r} is not a process: write signal://PID (a positive decimal number) "
            "or signal://self"
        )
    if int(location) > PID_MAX_LIMIT:
        return f"{location} is above the largest pid Linux can have ({PID_MAX_LIMIT})"
    return None


def pid_of(location: str) -> int:
    return os.getpid() if location == "self" else int(location)


def process_uri(pid: int) -> str:
    return f"signal://{pid}"


def verbs_for(address: Address) -> tuple[str, ...]:
    if pid_of(address.location) == os.getpid():
        return ("connect", "bind")
    return ("connect",)


def target(uri: str) -> int:
    """The pid a ``send_to`` address names."""
    address = Address.parse(uri)
    if address.scheme != "signal" or address.layers or address.options:
        raise InvalidAddress(
            f"send_to needs signal://PID or signal://self without options (the mode and "
            f"signals are this channel's), not {uri!r}"
        )
    return pid_of(address.location)
