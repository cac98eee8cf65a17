"""Write to a vanished peer with SIGPIPE at its default disposition (terminate).

Run as ``python _fault_sigpipe.py URI``: the process sets
SIGPIPE to ``SIG_DFL`` (as a host program may), opens both ends of URI
(listen and connect, bind and connect, or a pair), does one round trip so
that the conversation is established, closes the receiving end, and then
sends until the send fails.  It prints the name of the exception that ended
the sending (``ConnectionLost`` is the contract), then ``SIG_DFL`` if
SIGPIPE's disposition is still the default, and exits with status 0.  A
SIGPIPE would kill it before it prints anything.
"""

from __future__ import annotations

import signal
import sys
import time

import anyipc

ATTEMPTS = 100  #: sends tried before giving up (a TCP peer's reset takes one round trip)
CHUNK = b"x" * 65536


def ends(uri: str) -> tuple[anyipc.Channel, anyipc.Channel]:
    """(the writer, the end that vanishes), connected."""
    scheme = uri.split("://", 1)[0].rpartition("+")[2]
    if scheme in ("pipe", "socketpair"):
        writer, reader = anyipc.pair(uri)
        return writer, reader
    if scheme == "fifo":
        reader = anyipc.bind(uri)
        assert reader.address is not None
        return anyipc.connect(reader.address), reader
    with anyipc.listen(uri) as listener:
        writer = anyipc.connect(listener.address)
        return writer, listener.accept(timeout=10)


def main() -> None:
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    writer, peer = ends(sys.argv[1])
    writer.send(b"hello", timeout=10)
    received = b""
    while len(received) < 5:
        received += peer.recv(timeout=10)
    peer.close()
    outcome = "nothing"
    for _ in range(ATTEMPTS):
        try:
            writer.send(CHUNK, timeout=10)
        except anyipc.IPCError as exc:
            outcome = type(exc).__name__
            break
        time.sleep(0.01)
    writer.close()
    print(outcome)
    print("SIG_DFL" if signal.getsignal(signal.SIGPIPE) is signal.SIG_DFL else "changed")


if __name__ == "__main__":
    main()
