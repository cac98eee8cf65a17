"""A client for the tests: ``python client_process.py ADDRESS PREFIX COUNT``.

Sends COUNT requests, ``PREFIX-0`` to ``PREFIX-<COUNT-1>``, each on a
connection of its own, and prints each reply line as it comes.
"""

from __future__ import annotations

import sys

import anyipc


def main() -> None:
    address, prefix, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    for number in range(count):
        with anyipc.connect(address) as channel:
            channel.send(f"{prefix}-{number}\n".encode(), timeout=10)
            data = b""
            while not data.endswith(b"\n"):
                data += channel.recv(timeout=10)
        sys.stdout.write(data.decode())
        sys.stdout.flush()


if __name__ == "__main__":
    main()
