"""Raw equivalents over message queues: two POSIX ones (posix_ipc), two SysV ones (sysv_ipc).

One queue carries the messages to the peer, a second one brings them
back, as for ``posixmq://`` and ``sysvmq://``, which are one-way.  The
measuring process creates both (exclusively, readable by this user only,
made for the mirrored transport's largest message) and
removes them at the end, so that a peer that dies leaves nothing behind;
the peer opens them by name or key.  Each message is one ``send`` and one
``receive``.  POSIX calls are bounded with their ``timeout`` argument;
``sysv_ipc`` has no timed wait, so its calls block as a plain program's
would: removing the queues wakes them, which either side does when it
closes (a peer that failed, or was stopped) and the point's watchdog does
as its ``abort``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from typing import Any

import posix_ipc
import sysv_ipc

from anyipc._channel import BytesLike
from anyipc.cli._bench_link import check_size
from anyipc.cli._bench_process import CommandPeer
from anyipc.cli._bench_session import Plan, Stack

__all__ = ["PosixLink", "SysvLink", "join", "prepare_posixmq", "prepare_sysvmq"]

SYSV_LARGEST = 8192  #: the largest SysV message (Linux's default msgmax) when the mirror has none


class PosixLink:
    """A link over two POSIX message queues: ``out`` is sent to, ``into`` received from."""

    def __init__(self, out: Any, into: Any) -> None:
        self._out, self._in = out, into

    def send(self, data: BytesLike, timeout: float) -> None:
        try:
            self._out.send(data, timeout=timeout)
        except posix_ipc.BusyError:
            raise TimeoutError(f"mq_send timed out after {timeout:g} s") from None

    def recv(self, size: int, timeout: float) -> BytesLike:
        try:
            message: bytes = self._in.receive(timeout=timeout)[0]
        except posix_ipc.BusyError:
            raise TimeoutError(f"mq_receive timed out after {timeout:g} s") from None
        check_size(len(message), size)
        return message

    def close(self) -> None:
        _close(self._out)
        _close(self._in)


class SysvLink:
    """A link over two SysV message queues: ``out`` is sent to, ``into`` received from."""

    def __init__(self, out: Any, into: Any) -> None:
        self._out, self._in = out, into

    def send(self, data: BytesLike, timeout: float) -> None:
        self._out.send(data)

    def recv(self, size: int, timeout: float) -> BytesLike:
        message: bytes = self._in.receive()[0]
        check_size(len(message), size)
        return message

    def close(self) -> None:
        """Remove both queues (a SysV queue has no descriptor to close).

        Whichever side closes first removes them, which wakes the other side
        from a blocking call: a peer that fails does not leave the measuring
        process waiting for its watchdog.
        """
        _remove(self._out)
        _remove(self._in)


def prepare_posixmq(stack: Stack, timeout: float, max_message_size: int | None) -> Plan:
    """This side of two POSIX queues: it sends to the first and receives from the second."""
    shape = {} if max_message_size is None else {"max_message_size": max_message_size}
    queues = []
    for _ in range(2):
        name = f"/anyipc-bench-{os.getpid()}-{secrets.token_hex(8)}"
        queue = posix_ipc.MessageQueue(name, posix_ipc.O_CREX, mode=0o600, **shape)
        stack.callback(_unlink, name)
        stack.callback(_close, queue)
        queues.append(queue)
    there, back = queues
    spec = {"kind": "queues", "api": "posix", "recv": there.name, "send": back.name}
    return Plan(
        start=lambda: CommandPeer(spec, timeout), finish=lambda ready: PosixLink(there, back)
    )


def prepare_sysvmq(stack: Stack, timeout: float, max_message_size: int | None) -> Plan:
    """This side of two SysV queues: it sends to the first and receives from the second."""
    largest = max_message_size or SYSV_LARGEST
    queues = []
    for _ in range(2):
        queue = sysv_ipc.MessageQueue(None, sysv_ipc.IPC_CREX, mode=0o600, max_message_size=largest)
        stack.callback(_remove, queue)
        queues.append(queue)
    there, back = queues

    def abort() -> None:
        for queue in queues:
            _remove(queue)

    spec = {
        "kind": "queues",
        "api": "sysv",
        "recv": there.key,
        "send": back.key,
        "largest": largest,
    }
    return Plan(
        start=lambda: CommandPeer(spec, timeout),
        finish=lambda ready: SysvLink(there, back),
        abort=abort,
    )


def _close(queue: Any) -> None:
    with contextlib.suppress(posix_ipc.ExistentialError):  # closed already
        queue.close()


def _unlink(name: str) -> None:
    with contextlib.suppress(posix_ipc.ExistentialError):
        posix_ipc.unlink_message_queue(name)


def _remove(queue: Any) -> None:
    with contextlib.suppress(sysv_ipc.ExistentialError):
        queue.remove()


def join(spec: dict[str, Any], timeout: float) -> tuple[PosixLink | SysvLink, dict[str, Any]]:
    """The peer's side: open both queues (it receives from the first)."""
    if spec["api"] == "sysv":
        out, into = (
            sysv_ipc.MessageQueue(spec[end], max_message_size=spec["largest"])
            for end in ("send", "recv")
        )
        return SysvLink(out, into), {}
    into = posix_ipc.MessageQueue(spec["recv"])
    try:
        out = posix_ipc.MessageQueue(spec["send"])
    except BaseException:
        into.close()
        raise
    return PosixLink(out, into), {}
