"""``anyipc send`` and ``anyipc recv``: pipe data through any transport.

What a message is on the command line:

* ``send URI MESSAGE`` sends exactly the bytes of MESSAGE (no newline added).
* ``send URI`` reads stdin.  A STREAM transport gets the bytes as they come;
  a MESSAGE transport gets one message per line (without its newline), or
  all of stdin as one message with ``--whole``.
* ``recv URI`` writes what arrives to stdout, flushed at once.  A STREAM
  transport's bytes are written as they are; each message of a MESSAGE
  transport is followed by a newline.  ``--count N`` stops after N messages,
  or after N lines of a stream.

``recv`` stops at the sender's orderly end (exit status 0).  ``--timeout``
bounds each wait (accept, each send, each receive) and ends the command
with an error when it passes.  When a command listens or binds, the real
address (port 0 resolved) is announced on stderr as
``anyipc: listening on URI`` or ``anyipc: bound to URI``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from typing import Any, BinaryIO

import anyipc
from anyipc._address import Address
from anyipc._registry import registry
from anyipc.cli._output import PROG, count, seconds

__all__ = ["add_parsers", "receive", "run_recv", "run_send"]

CHUNK = 65536


def add_parsers(commands: Any) -> None:
    """Add the ``send`` and ``recv`` sub-commands to ``commands``."""
    send = commands.add_parser(
        "send",
        help="send a message (or stdin) to URI",
        description="Send MESSAGE, or stdin, to URI, then close the channel in an orderly way.",
    )
    send.add_argument("uri", metavar="URI")
    send.add_argument("message", metavar="MESSAGE", nargs="?", help="exactly these bytes")
    send.add_argument(
        "--verb",
        choices=("connect", "listen"),
        default="connect",
        help="connect to URI (default), or listen on it and send to the first connection",
    )
    send.add_argument(
        "--whole", action="store_true", help="MESSAGE transports: all of stdin is one message"
    )
    send.add_argument("--timeout", type=seconds, metavar="SECONDS", help="bound on each wait")
    send.set_defaults(run=run_send)

    recv = commands.add_parser(
        "recv",
        help="print what arrives on URI",
        description="Print what arrives on URI until the sender's orderly end.",
    )
    recv.add_argument("uri", metavar="URI")
    recv.add_argument(
        "--verb",
        choices=("bind", "listen", "connect"),
        help="bind URI, listen on it and accept one connection, or connect to it "
        "(default: bind if the transport can, else listen, else connect)",
    )
    recv.add_argument("--count", type=count, metavar="N", help="stop after N messages (lines)")
    recv.add_argument("--timeout", type=seconds, metavar="SECONDS", help="bound on each wait")
    recv.set_defaults(run=run_recv)


def _announce(what: str, address: str | None) -> None:
    print(f"{PROG}: {what} {address}", file=sys.stderr, flush=True)


def _accept_one(uri: str, timeout: float | None) -> anyipc.Channel:
    with anyipc.listen(uri) as listener:
        _announce("listening on", listener.address)
        return listener.accept(timeout=timeout)


def run_send(args: argparse.Namespace) -> int:
    """Open URI with ``--verb``, send MESSAGE or stdin, close; exit status 0 when all was sent."""
    if args.verb == "listen":
        channel = _accept_one(args.uri, args.timeout)
    else:
        channel = anyipc.connect(args.uri)
    with channel:
        stream = channel.capabilities.boundaries is anyipc.Boundaries.STREAM
        for data in _outgoing(args, stream, sys.stdin.buffer):
            channel.send(data, timeout=args.timeout)
    return 0


def _outgoing(args: argparse.Namespace, stream: bool, stdin: BinaryIO) -> Iterator[bytes]:
    if args.message is not None:
        yield os.fsencode(args.message)
    elif stream:
        while chunk := os.read(stdin.fileno(), CHUNK):  # as it comes, unbuffered
            yield chunk
    elif args.whole:
        yield stdin.read()
    else:
        for line in stdin:
            yield line[:-1] if line.endswith(b"\n") else line


def run_recv(args: argparse.Namespace) -> int:
    """Open URI with ``--verb`` and copy what arrives to stdout; exit status 0 at its end."""
    verb = args.verb or _default_verb(args.uri)
    if verb == "bind":
        channel = anyipc.bind(args.uri)
        _announce("bound to", channel.address)
    elif verb == "listen":
        channel = _accept_one(args.uri, args.timeout)
    else:
        channel = anyipc.connect(args.uri)
    with channel:
        receive(channel, sys.stdout.buffer, count=args.count, timeout=args.timeout)
    return 0


def _default_verb(uri: str) -> str:
    """``bind`` if the transport of ``uri`` has it, else ``listen``, else ``connect``."""
    address = Address.parse(uri)
    verbs = registry().transport(address.scheme).verbs_at(address)
    for verb in ("bind", "listen"):
        if verb in verbs:
            return verb
    return "connect"


def receive(
    channel: anyipc.Channel, out: BinaryIO, *, count: int | None, timeout: float | None
) -> None:
    """Copy ``channel`` to ``out`` until its orderly end, or ``count`` messages (stream: lines).

    Raises :class:`anyipc.Timeout` when nothing arrives within ``timeout``.
    """
    stream = channel.capabilities.boundaries is anyipc.Boundaries.STREAM
    left = count
    while left is None or left > 0:
        try:
            data = channel.recv(timeout=timeout)
        except anyipc.EndOfChannel:
            return
        if not stream:
            data += b"\n"
            if left is not None:
                left -= 1
        elif left is not None:
            end = _after_lines(data, left)
            left -= data.count(b"\n", 0, end)
            data = data[:end]
        out.write(data)
        out.flush()


def _after_lines(data: bytes, lines: int) -> int:
    """The index just past the ``lines``-th newline in ``data``, or ``len(data)``."""
    end = 0
    for _ in range(lines):
        found = data.find(b"\n", end)
        if found < 0:
            return len(data)
        end = found + 1
    return end
