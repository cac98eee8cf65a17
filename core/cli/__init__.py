"""The ``anyipc`` command line.

Sub-commands, one module each: ``transports`` (what is installed),
``send`` / ``recv`` (pipe data through any transport), ``conformance`` (the
suite on installed transports), ``check`` (a round trip with a peer in
another process over every available transport), ``bench`` (latency
and throughput with a peer in another process) and ``serve`` (a command
run for each connection, like inetd).

Every failure is one line on stderr, ``anyipc: error: ...``, and a non-zero
exit status, never a traceback: 2 for a usage error, 130 after Ctrl-C, 141
when the reader of stdout went away (as SIGPIPE would), 1 otherwise (or
the status a sub-command documents).  Heavy imports (pytest, rich) happen
inside the sub-command that needs them.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

import anyipc
from anyipc.cli import _bench, _check, _conformance, _sendrecv, _serve, _transports
from anyipc.cli._output import PROG, fail

__all__ = ["build_parser", "main"]


class _Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors are one line on stderr, exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{PROG}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    """The parser of the whole command line; each sub-command sets ``run`` in its defaults."""
    parser = _Parser(
        prog=PROG,
        description="One Channel API over every Unix IPC mechanism: inspect, use and test "
        "the installed transports.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {anyipc.__version__}")
    commands = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND")
    commands.required = True
    for module in (_transports, _sendrecv, _conformance, _check, _bench, _serve):
        module.add_parsers(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``) and return the exit status."""
    arguments, passthrough = _conformance.split_passthrough(
        list(sys.argv[1:] if argv is None else argv)
    )
    args = build_parser().parse_args(arguments)
    if passthrough is not None:
        args.pytest_args = passthrough
    try:
        status: int = args.run(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader of our stdout went away (`anyipc recv ... | head -1`): stop quietly, as
        # a filter killed by SIGPIPE would, and keep the final flush at exit from failing.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except (anyipc.IPCError, OSError) as exc:
        return fail(str(exc) or type(exc).__name__)
    except Exception as exc:  # a bug, here or in a plugin: still one line, naming the error
        return fail(f"unexpected {type(exc).__name__}: {exc}")
    return status
