"""The far end of ``anyipc check``, run in a fresh interpreter.

``python -m anyipc.cli._peer URI COUNT TIMEOUT`` connects to URI, then:

* SIMPLEX transport: sends ``payload(0) .. payload(COUNT - 1)`` and closes;
* otherwise echoes what it receives until the parent's orderly end (or,
  CONNECTIONLESS, after COUNT messages), having first sent :data:`HELLO`
  on a connectionless transport so that the parent learns its address.

Every blocking call is bounded by TIMEOUT seconds.  Exit status 0 when all
went well; otherwise 1 and one line on stderr (whatever the error: this is
a probe, and its parent reports the line).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import anyipc
from anyipc.cli._check import HELLO, payload

__all__ = ["main", "serve"]


def serve(uri: str, count: int, timeout: float) -> None:
    """Connect to ``uri`` and play the peer's part (see the module docstring)."""
    with anyipc.connect(uri) as channel:
        capabilities = channel.capabilities
        if capabilities.direction is anyipc.Direction.SIMPLEX:
            for index in range(count):
                channel.send(payload(index), timeout=timeout)
            return
        connectionless = capabilities.connection is anyipc.Connection.CONNECTIONLESS
        if connectionless:
            channel.send(HELLO, timeout=timeout)
        echoed = 0
        while not (connectionless and echoed == count):
            try:
                data = channel.recv(timeout=timeout)
            except anyipc.EndOfChannel:
                return
            channel.send(data, timeout=timeout)
            echoed += 1


def main(argv: Sequence[str] | None = None) -> int:
    """Run :func:`serve` with ``URI COUNT TIMEOUT`` from ``argv``; the exit status."""
    uri, count, timeout = sys.argv[1:] if argv is None else argv
    try:
        serve(uri, int(count), float(timeout))
    except Exception as exc:  # the parent reports this line as the peer's failure
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
