"""Keys of System V message queues, and the kernel's limits on the queues and their messages.

The syntax of a key (``sysvmq://0x1234abcd``) and the ``key_t`` it becomes,
``kernel.msgmax`` and ``kernel.msgmnb`` with their Linux defaults, the
exclusive creation of a queue (with ``kernel.msgmni``, the limit on queues,
in its error), and the largest message that fits into a queue.  The
semantics are in :mod:`anyipc.transports.sysvmq`.
"""

from __future__ import annotations

import errno
import re

import sysv_ipc

from anyipc._errors import (
    ConnectionLost,
    InvalidAddress,
    PermissionDenied,
    TransportUnavailable,
    map_os_error,
)
from anyipc._limits import sysctl

KEY_MAX = 0xFFFFFFFF
DEFAULT_MSGMAX = 8192  #: Linux's kernel.msgmax, used where /proc/sys cannot be read
DEFAULT_MSGMNB = 16384  #: Linux's kernel.msgmnb
_KEY = re.compile(r"(0[xX][0-9a-fA-F]{1,8}|[0-9]{1,10})\Z")


def check_location(location: str) -> str | None:
    if not location:
        return None  # bind picks a random key
    if not _KEY.match(location):
        return (
            f"{location!r} is not a key: write a number, decimal or 0x-hex as ipcs shows it "
            "(e.g. sysvmq://0x1234abcd)"
        )
    key = parse_key(location)
    if key == 0:
        return (
            "key 0 is IPC_PRIVATE, which no other process can open; "
            "leave the key out (sysvmq://) for a fresh random one"
        )
    if key > KEY_MAX:
        return f"a key is 32 bits: at most {KEY_MAX:#x}"
    return None


def parse_key(location: str) -> int:
    return int(location, 16) if location[:2].lower() == "0x" else int(location, 10)


def signed(key: int) -> int:
    """``key`` as the C ``key_t`` (a signed 32-bit int) that sysv_ipc passes to msgget."""
    return key - (1 << 32) if key >= 1 << 31 else key


def msgmax() -> int:
    value = sysctl("kernel.msgmax", "bytes").value
    return DEFAULT_MSGMAX if value is None else value


def msgmnb() -> int:
    value = sysctl("kernel.msgmnb", "bytes").value
    return DEFAULT_MSGMNB if value is None else value


def create(key: int, mode: int, context: str) -> sysv_ipc.MessageQueue | None:
    """A new queue with exactly ``mode``; ``None`` when the key is taken."""
    try:
        return sysv_ipc.MessageQueue(
            signed(key), sysv_ipc.IPC_CREX, mode=mode, max_message_size=msgmax()
        )
    except sysv_ipc.ExistentialError:
        return None
    except sysv_ipc.PermissionsError as exc:
        raise PermissionDenied(errno.EACCES, f"{context}: permission denied") from exc
    except OSError as exc:
        if exc.errno is None:  # ENOSPC, which sysv_ipc reports without an errno
            limit = sysctl("kernel.msgmni", "queues")
            raise TransportUnavailable(
                f"{context}: the system has as many SysV message queues as it allows, "
                f"{limit.describe()}; remove unused ones (ipcs -q, ipcrm), or "
                f"{limit.how_to_raise}"
            ) from exc
        raise map_os_error(exc, context) from exc


def message_limit(queue: sysv_ipc.MessageQueue, wanted: int | None, context: str) -> int:
    """The largest message on ``queue``: what fits, or less if asked (``wanted``).

    A queue this process may not stat (a sender with write permission only)
    is assumed to hold ``kernel.msgmnb`` bytes, its size when created.
    """
    try:
        capacity = int(queue.max_size)
    except sysv_ipc.ExistentialError:
        raise ConnectionLost(f"{context}: the queue was removed") from None
    except sysv_ipc.PermissionsError:
        capacity = msgmnb()
    fits = min(msgmax(), capacity)
    if wanted is None:
        return fits
    if wanted > fits:
        raise InvalidAddress(
            f"{context}: max_message_size={wanted}, but at most {fits} bytes fit "
            f"(the queue holds {capacity} bytes; kernel.msgmax = {msgmax()})"
        )
    return wanted
