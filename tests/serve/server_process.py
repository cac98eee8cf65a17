"""A server for the tests, in a process of its own: ``python server_process.py CONFIG``.

``signal://self`` needs a process whose every thread blocks the server's
signals, which pytest's process cannot promise, and the models that fork
should not fork pytest: so each test's server runs this script.  CONFIG is
JSON with ``uri``, ``model``, ``workers``, ``handler`` (a name below) and
optionally ``signals``, ``stop_timeout``, ``reload`` (``"version"`` or
``"fail"``) and ``directory`` (for the ``count`` handler).  The script prints
the server's address on stdout when it is ready, serves until stopped, then
prints ``stopped``; the ``anyipc.serve`` log goes to stderr.

The handlers speak lines: a request is one line, a reply is one line.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
import uuid
from pathlib import Path

import anyipc

CONFIG = json.loads(sys.argv[1])
VERSION = 1  #: what the ``version`` reload callback changes


def read_line(channel: anyipc.Channel) -> str:
    """One request line, without its newline."""
    data = b""
    while not data.endswith(b"\n"):
        data += channel.recv(timeout=10)
    return data[:-1].decode()


def reply(channel: anyipc.Channel, text: str) -> None:
    channel.send(f"{text}\n".encode(), timeout=10)


def echo(channel: anyipc.Channel) -> None:
    """``<pid> v<VERSION> <request>``, for each request of the connection."""
    while True:
        try:
            request = read_line(channel)
        except anyipc.EndOfChannel:
            return
        reply(channel, f"{os.getpid()} v{VERSION} {request}")


def crash(channel: anyipc.Channel) -> None:
    """``crash`` raises, ``die`` ends the process with status 3, anything else is echoed."""
    request = read_line(channel)
    if request == "crash":
        raise RuntimeError("the handler fails on purpose")
    if request == "die":
        os._exit(3)
    reply(channel, f"{os.getpid()} v{VERSION} {request}")


def stubborn(channel: anyipc.Channel) -> None:
    """Ignore SIGTERM (in a child), answer ``busy``, then keep the connection for 30 s."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    read_line(channel)
    reply(channel, f"{os.getpid()} busy")
    time.sleep(30)


def count(channel: anyipc.Channel) -> None:
    """Answer how many handlers run at once (a file each in ``directory``), 0.3 s in."""
    read_line(channel)
    mine = Path(CONFIG["directory"], uuid.uuid4().hex)
    mine.touch()
    try:
        time.sleep(0.3)
        reply(channel, str(len(os.listdir(CONFIG["directory"]))))
    finally:
        mine.unlink()


def version() -> None:
    """A reload callback: what the handlers answer changes; the handler stays."""
    global VERSION
    VERSION += 1


def fail() -> None:
    """A reload callback that fails, like a configuration with an error in it."""
    raise RuntimeError("the new configuration is broken")


def main() -> None:
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(name)s %(levelname)s %(message)s"
    )
    handlers = {"echo": echo, "crash": crash, "stubborn": stubborn, "count": count}
    reloads = {"version": version, "fail": fail, None: None}
    options = {"signals": CONFIG["signals"]} if "signals" in CONFIG else {}
    with anyipc.Server(
        CONFIG["uri"],
        handlers[CONFIG["handler"]],
        model=CONFIG["model"],
        workers=CONFIG["workers"],
        reload=reloads[CONFIG.get("reload")],
        stop_timeout=CONFIG.get("stop_timeout", 5.0),
        **options,
    ) as server:
        print(server.address, flush=True)
        server.serve_forever()
    print("stopped", flush=True)


if __name__ == "__main__":
    main()
