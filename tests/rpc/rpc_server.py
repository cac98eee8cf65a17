"""The rpc server of the tests, in a process of its own: ``python rpc_server.py URI``.

Listens on URI (or binds it, where the transport has no ``listen``: message
queues and datagram sockets), prints the address that clients use on one
line, and serves the methods below until its stdin closes.  Then it
closes everything and exits with status 0.  Each accepted connection is
served by a thread of its own; a bound endpoint by the main thread.
"""

from __future__ import annotations

import builtins
import os
import sys
import threading
import time
from typing import Any

import anyipc
from anyipc import rpc

service = rpc.Service()


@service.register
def echo(value: Any) -> Any:
    return value


@service.register
def add(a: Any, b: Any) -> Any:
    return a + b


@service.register
def sleep(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@service.register
def fail(type_name: str, message: str) -> None:
    """Raise the builtin exception ``type_name`` with ``message``."""
    error = getattr(builtins, type_name)
    assert isinstance(error, type) and issubclass(error, Exception)
    raise error(message)


@service.register
def text(size: int) -> str:
    return "x" * size


@service.register
def pid() -> int:
    return os.getpid()


def _serve_connections(listener: anyipc.Listener) -> None:
    """Serve each accepted connection in a thread until the listener is closed."""
    channels: list[anyipc.Channel] = []
    workers: list[threading.Thread] = []
    while True:
        try:
            channel = listener.accept()
        except anyipc.ChannelClosed:
            break
        channels.append(channel)
        worker = threading.Thread(target=service.handle, args=(channel,), daemon=True)
        worker.start()
        workers.append(worker)
    for channel in channels:
        channel.close()
    for worker in workers:
        worker.join(10)


def main() -> None:
    uri = sys.argv[1]
    scheme = anyipc.Address.parse(uri).scheme
    endpoint: anyipc.Listener | anyipc.Channel
    if "listen" in anyipc.transports()[scheme].verbs:
        endpoint = anyipc.listen(uri)
    else:
        endpoint = anyipc.bind(uri)
    print(endpoint.address, flush=True)

    def stop_at_end_of_input() -> None:
        sys.stdin.read()
        endpoint.close()

    stopper = threading.Thread(target=stop_at_end_of_input)
    stopper.start()
    if isinstance(endpoint, anyipc.Listener):
        _serve_connections(endpoint)
    else:
        service.serve_bound(endpoint)
    stopper.join()  # its close() removes what the endpoint made: let it finish


if __name__ == "__main__":
    main()
