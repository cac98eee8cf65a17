"""``anyipc serve URI --exec CMD``: a forking server that runs a command per connection, like inetd.

Each connection gets a new process running CMD with the connection as its
standard input and output: the child puts the connection's socket on
descriptors 0 and 1 and executes CMD, so CMD reads what the client sends,
and what CMD writes goes to the client; its standard error is the
server's.  When CMD exits, the client sees the end of the connection.
CMD is split into words as a shell would (``shlex``) but no shell runs
it: ``--exec "sh -c 'sort | uniq'"`` for pipelines and redirections.  A
command that is not found is refused before anything is opened.

The command gets the socket itself, so the transport must be a plain
socket: ``tcp``, ``unix`` or ``unix-seqpacket``, with no layer (framing
and TLS would need a process in between).  Others are refused, in one line.

The server is :class:`anyipc.Server`'s ``fork`` model: at most
``--workers`` commands run at once (8 by default; further connections
wait in the backlog), each command is reaped when it exits, and one that
fails (a non-zero status, a signal) is logged.  Once listening, the server
prints its address on stdout, one line, flushed (port 0 resolved).  TERM
or INT stops it: the commands still running get SIGTERM, and SIGKILL
``--stop-timeout`` seconds later (5 by default); then it exits with status
0.  The log (``anyipc: ...`` lines) goes to stderr.

Errors in the arguments (an empty or unbalanced CMD, a command not found)
exit with status 2, like every usage error; a URI that cannot be served,
with status 1.
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import shutil
import signal
import sys
from typing import Any

import anyipc
from anyipc._address import Address
from anyipc._registry import registry
from anyipc._serve_children import LOG, Handler
from anyipc._serve_fit import SOCKET_SCHEMES, check_connection
from anyipc.cli._output import PROG, count, fail, seconds

__all__ = ["add_parsers", "run"]

_CANNOT_EXEC = 127  #: a child's status when CMD could not be executed, as in a shell


def add_parsers(commands: Any) -> None:
    """Add the ``serve`` sub-command to ``commands``."""
    parser = commands.add_parser(
        "serve",
        help="run a command for each connection to URI, like inetd",
        description="Listen on URI and run CMD for each connection, with the connection as "
        "its stdin and stdout. Prints the address on stdout once listening; TERM or INT "
        "stops it.",
    )
    parser.add_argument("uri", metavar="URI", help="tcp://, unix:// or unix-seqpacket://")
    parser.add_argument(
        "--exec",
        required=True,
        metavar="CMD",
        dest="command",
        help="the command and its arguments, split as a shell would (no shell runs it)",
    )
    parser.add_argument(
        "--workers", type=count, default=8, metavar="N", help="commands running at once (8)"
    )
    parser.add_argument(
        "--stop-timeout",
        type=seconds,
        default=5.0,
        metavar="SECONDS",
        help="how long the commands get to end after TERM before SIGKILL (5)",
    )
    parser.set_defaults(run=run)


def _command(text: str) -> list[str] | str:
    """The argv of CMD, or why there is none."""
    try:
        argv = shlex.split(text)
    except ValueError as exc:
        return f"--exec {text!r}: {exc}"
    if not argv:
        return "--exec needs a command"
    if shutil.which(argv[0]) is None:
        return f"--exec: command not found: {argv[0]}"
    return argv


def _check_plain_socket(address: Address) -> None:
    if address.layers or address.scheme not in SOCKET_SCHEMES:
        stack = "+".join((*address.layers, address.scheme))
        raise anyipc.NotSupported(
            f"serve --exec hands the connection's socket to the command, so it needs a plain "
            f"socket transport ({', '.join(s + '://' for s in SOCKET_SCHEMES)}, no layer), "
            f"not {stack}://"
        )


def _runner(argv: list[str]) -> Handler:
    """The handler that becomes ``argv`` with the connection on descriptors 0 and 1."""

    def run_command(channel: anyipc.Channel) -> None:
        connection = channel.fileno()
        os.dup2(connection, 0)
        os.dup2(connection, 1)
        for signo in (signal.SIGPIPE, signal.SIGXFSZ):  # Python ignores them; commands expect not
            signal.signal(signo, signal.SIG_DFL)
        try:
            os.execvp(argv[0], argv)
        except OSError as exc:
            LOG.error("cannot run %s: %s", argv[0], exc.strerror or exc)
            raise SystemExit(_CANNOT_EXEC) from None

    return run_command


def run(args: argparse.Namespace) -> int:
    """Serve until TERM or INT; exit status 0 after an orderly stop."""
    argv = _command(args.command)
    if isinstance(argv, str):
        return fail(argv, 2)
    address = Address.parse(args.uri)
    check_connection(registry().capabilities(address), str(address))
    _check_plain_socket(address)
    log = logging.StreamHandler(sys.stderr)
    log.setFormatter(logging.Formatter(f"{PROG}: %(message)s"))
    LOG.addHandler(log)
    LOG.setLevel(logging.INFO)
    try:
        with anyipc.Server(
            address,
            _runner(argv),
            model="fork",
            workers=args.workers,
            stop_timeout=args.stop_timeout,
        ) as server:
            print(server.address, flush=True)
            server.serve_forever()
    finally:
        LOG.removeHandler(log)
    return 0
