"""Kernel limits on POSIX message queues, and the errors for ``mq_open`` failing on them.

What a queue takes from its creator's ``RLIMIT_MSGQUEUE``
(:func:`kernel_bytes`), the kernel's default queue shape, and the
translation of posix_ipc's exceptions into anyipc errors that name the
limit hit, its value and how to raise it.  The semantics are in
:mod:`anyipc.transports.posixmq`.
"""

from __future__ import annotations

import errno
import os
import struct

import posix_ipc

from anyipc._errors import (
    InvalidAddress,
    IPCError,
    PermissionDenied,
    TransportUnavailable,
    map_os_error,
)
from anyipc._limits import rlimit_msgqueue, sysctl

#: the kernel's bookkeeping per message (struct msg_msg and a priority tree node: 12 words)
KERNEL_BYTES_PER_MESSAGE = 12 * struct.calcsize("P")

# posix_ipc reports these mq_open errors as OSError without an errno: recognise its wording.
_ERRNO_OF_TEXT = {
    "Insufficient space for a new queue": errno.ENOSPC,
    "This process already has the maximum number of files open": errno.EMFILE,
    "The system limit on the total number of open files has been reached": errno.ENFILE,
}


def kernel_default(name: str, fallback: int) -> int:
    value = sysctl(name, "").value
    return fallback if value is None else value


def kernel_bytes(messages: int, size: int) -> int:
    """What a queue of this shape takes from its creator's ``RLIMIT_MSGQUEUE``."""
    return messages * (size + KERNEL_BYTES_PER_MESSAGE)


def create_error(exc: Exception, context: str, messages: int, size: int) -> IPCError:
    """The anyipc error for ``mq_open(O_CREAT)`` failing with ``exc``."""
    if isinstance(exc, posix_ipc.PermissionsError):
        return PermissionDenied(errno.EACCES, f"{context}: permission denied")
    if isinstance(exc, ValueError):  # EINVAL: the kernel refused the shape
        limits = [sysctl("fs.mqueue.msg_max", "messages"), sysctl("fs.mqueue.msgsize_max", "bytes")]
        return InvalidAddress(
            f"{context}: the kernel refused a queue of {messages} messages of {size} bytes "
            f"({', '.join(limit.describe() for limit in limits)})"
        )
    code = _errno(exc)
    if code == errno.ENOSPC:
        limit = sysctl("fs.mqueue.queues_max", "queues")
        return TransportUnavailable(
            f"{context}: the system has as many POSIX message queues as it allows, "
            f"{limit.describe()}; remove unused ones, or {limit.how_to_raise}"
        )
    if code == errno.EMFILE and _descriptor_left():
        budget = rlimit_msgqueue()
        return TransportUnavailable(
            f"{context}: this queue needs {kernel_bytes(messages, size)} bytes of kernel "
            f"memory ({messages} messages of {size} + {KERNEL_BYTES_PER_MESSAGE} bytes), and "
            f"the queues this user (uid {os.getuid()}) created earlier, in any process, already "
            f"hold the rest of {budget.describe()}; close or unlink some, bind smaller queues "
            f"(max_messages, max_message_size), or {budget.how_to_raise}"
        )
    return os_error(exc, context)


def _errno(exc: Exception) -> int | None:
    if isinstance(exc, OSError) and exc.errno is not None:
        return exc.errno
    return _ERRNO_OF_TEXT.get(str(exc))


def os_error(exc: Exception, context: str) -> IPCError:
    code = _errno(exc)
    return map_os_error(OSError(code, str(exc)) if code else OSError(str(exc)), context)


def _descriptor_left() -> bool:
    """True when this process can still open a descriptor (so EMFILE meant something else)."""
    try:
        fd = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    os.close(fd)
    return True
