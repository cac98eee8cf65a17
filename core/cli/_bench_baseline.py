"""``--baseline``: the raw Python equivalent of each transport measured, and the alternatives.

:data:`RAW` maps a transport's scheme to the plain calls it wraps; it is
the one place where ``anyipc bench`` knows schemes by name (a transport
without an entry simply has no raw row).  A raw contender takes its size
limit and lossiness from the transport it mirrors, so that both are
measured on the same sizes and framing.  The alternatives
(``multiprocessing.Pipe`` and ``Queue``, ZeroMQ over ``ipc://`` and
``tcp://`` when pyzmq is installed) are measured once per run.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from anyipc.cli import (
    _bench_alternatives,
    _bench_raw_files,
    _bench_raw_memory,
    _bench_raw_queues,
    _bench_raw_sockets,
)
from anyipc.cli._bench_session import Contender, Group, Plan, Stack

__all__ = ["RAW", "alternatives", "raw_equivalent"]

#: prepares this side of a raw equivalent: (stack, timeout, largest message)
RawPrepare = Callable[[Stack, float, "int | None"], Plan]


def _sockets(kind: str, stack: Stack, timeout: float, largest: int | None) -> Plan:
    return _bench_raw_sockets.prepare(kind, stack, timeout)


def _pipe(stack: Stack, timeout: float, largest: int | None) -> Plan:
    return _bench_raw_files.prepare_pipe(stack, timeout)


def _fifo(stack: Stack, timeout: float, largest: int | None) -> Plan:
    return _bench_raw_files.prepare_fifo(stack, timeout)


#: scheme -> (what the raw equivalent is, how to prepare it)
RAW: dict[str, tuple[str, RawPrepare]] = {
    "tcp": ("socket(AF_INET, SOCK_STREAM) on loopback", partial(_sockets, "tcp")),
    "unix": ("socket(AF_UNIX, SOCK_STREAM)", partial(_sockets, "unix")),
    "unix-seqpacket": ("socket(AF_UNIX, SOCK_SEQPACKET)", partial(_sockets, "unix-seqpacket")),
    "unix-dgram": ("socket(AF_UNIX, SOCK_DGRAM)", partial(_sockets, "unix-dgram")),
    "udp": ("socket(AF_INET, SOCK_DGRAM) on loopback", partial(_sockets, "udp")),
    "socketpair": ("socket.socketpair()", partial(_sockets, "socketpair")),
    "pipe": ("two os.pipe()", _pipe),
    "fifo": ("two os.mkfifo() FIFOs", _fifo),
    "posixmq": ("two posix_ipc.MessageQueue", _bench_raw_queues.prepare_posixmq),
    "sysvmq": ("two sysv_ipc.MessageQueue", _bench_raw_queues.prepare_sysvmq),
    "shm": ("a busy-polled mmap ring pair", _bench_raw_memory.prepare),
    "sysvshm": ("a busy-polled mmap ring pair", _bench_raw_memory.prepare),
    "mmap": ("a busy-polled mmap ring pair", _bench_raw_memory.prepare),
}


def raw_equivalent(mirrored: Contender) -> Contender | None:
    """The raw equivalent of the transport that ``mirrored`` uses, if there is one."""
    scheme = mirrored.scheme
    if scheme not in RAW:
        return None
    detail, prepare = RAW[scheme]
    largest = mirrored.max_message_size

    def prepare_raw(stack: Stack, timeout: float) -> Plan:
        return prepare(stack, timeout, largest)

    return Contender(
        name=f"raw {scheme}",
        group=Group.RAW,
        detail=detail,
        prepare=prepare_raw,
        max_message_size=largest,
        lossy=mirrored.lossy,
        scheme=scheme,
    )


def alternatives() -> list[Contender]:
    """The alternatives installed here."""
    found = [
        Contender(
            name="mp.Pipe",
            group=Group.ALTERNATIVE,
            detail="multiprocessing.Pipe(), spawn process",
            prepare=_bench_alternatives.prepare_mp_pipe,
        ),
        Contender(
            name="mp.Queue",
            group=Group.ALTERNATIVE,
            detail="multiprocessing.Queue(), one each way, spawn process",
            prepare=_bench_alternatives.prepare_mp_queue,
        ),
    ]
    if _bench_alternatives.have_zmq():
        for transport in ("ipc", "tcp"):
            found.append(
                Contender(
                    name=f"zmq {transport}",
                    group=Group.ALTERNATIVE,
                    detail=f"pyzmq PAIR sockets over {transport}://",
                    prepare=partial(_bench_alternatives.prepare_zmq, transport),
                )
            )
    return found
