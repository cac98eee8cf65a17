"""Peer processes of the access tests, run as scripts with this interpreter.

``python _access_peers.py intruder``: the second user.  Started as root, it
imports anyipc and loads every transport first (the interpreter's own
files may be out of that user's reach), then becomes uid and gid
:data:`INTRUDER` with no supplementary groups, and answers one JSON request
per line on stdin with one JSON line on stdout.  Its first line says who it
is (``{"uids": [...], "gids": [...], "groups": [...]}``), or why it could
not switch (``{"cannot_switch": "..."}``, then it exits).  Requests:

* ``{"do": "connect", "uri": U, "send": [hex...], "recv": n, "timeout": t,
  "announce": bool}``: connect to ``U``, send the messages (then, if
  ``announce``, say ``{"sent": n}`` first), receive ``n`` of them, close;
* ``{"do": "open", "path": P, "write": bool}``: ``os.open`` it (read or write);
* ``{"do": "race", "uri": U, "met": n, "seconds": s}``: connect to ``U``
  (and close) as fast as it can, counting the connections that got ``in``,
  were ``refused`` (:class:`~anyipc.PermissionDenied`) or found nothing
  there (``absent``), until ``n`` met an endpoint (got in or were refused)
  or ``s`` seconds passed;
* ``{"do": "listen", "uri": U}``: listen there (kept until ``close``) and
  report the listener's ``address``;
* ``{"do": "echo", "timeout": t}``: accept one connection on that listener,
  send back one message, close it;
* ``{"do": "close"}``: close the listener.

Every answer is ``{"ok": true, ...}`` or ``{"ok": false, "step": ...,
"kinds": [the error's classes], "message": ...}``.

``python _access_peers.py opener JSON``: with umask 0 (so that the kernel
creates every object exactly with the mode its creation call asks for),
for each round of ``JSON``, ``[[[verb, uri], ...], ...]``, open the
endpoints it lists in turn (``accept`` takes the next connection of the
last listener), then close them all; finally print ``{"opened": n}``.  The
mode tests trace its system calls.
"""

from __future__ import annotations

import json
import os
import sys
import time
from contextlib import ExitStack
from typing import Any

import anyipc

INTRUDER = 65534  #: uid and gid of the second user (``nobody``)


def _failure(step: str, exc: BaseException) -> dict[str, Any]:
    kinds = [kind.__name__ for kind in type(exc).__mro__]
    return {"ok": False, "step": step, "kinds": kinds, "message": str(exc)}


def _connect(request: dict[str, Any]) -> dict[str, Any]:
    timeout = request.get("timeout", 5.0)
    try:
        channel = anyipc.connect(request["uri"])
    except Exception as exc:
        return _failure("connect", exc)
    received: list[str] = []
    with channel:
        step = "send"
        try:
            for message in request.get("send", []):
                channel.send(bytes.fromhex(message), timeout=timeout)
            if request.get("announce"):
                _say({"sent": len(request.get("send", []))})
            step = "recv"
            for _ in range(request.get("recv", 0)):
                received.append(channel.recv(timeout=timeout).hex())
        except Exception as exc:
            return _failure(step, exc)
    return {"ok": True, "received": received}


def _open(request: dict[str, Any]) -> dict[str, Any]:
    flags = os.O_WRONLY if request.get("write") else os.O_RDONLY
    try:
        os.close(os.open(request["path"], flags | os.O_NONBLOCK | os.O_CLOEXEC))
    except OSError as exc:
        return _failure("open", exc)
    return {"ok": True}


def _race(request: dict[str, Any]) -> dict[str, Any]:
    counts = {"in": 0, "refused": 0, "absent": 0}
    end = time.monotonic() + request["seconds"]
    while counts["in"] + counts["refused"] < request["met"] and time.monotonic() < end:
        try:
            anyipc.connect(request["uri"]).close()
        except anyipc.PermissionDenied:
            counts["refused"] += 1
        except anyipc.ConnectionLost:
            counts["absent"] += 1
        else:
            counts["in"] += 1
    return {"ok": True, **counts}


class _Intruder:
    """The requests, and the listener that ``listen`` keeps."""

    def __init__(self) -> None:
        self.listener: anyipc.Listener | None = None

    def answer(self, request: dict[str, Any]) -> dict[str, Any]:
        do = request["do"]
        if do == "connect":
            return _connect(request)
        if do == "open":
            return _open(request)
        if do == "race":
            return _race(request)
        if do == "listen":
            try:
                self.listener = anyipc.listen(request["uri"])
            except Exception as exc:
                return _failure("listen", exc)
            return {"ok": True, "address": self.listener.address}
        if do == "echo":
            assert self.listener is not None, "echo needs a listener"
            try:
                with self.listener.accept(timeout=request.get("timeout", 5.0)) as channel:
                    channel.send(channel.recv(timeout=5), timeout=5)
            except Exception as exc:
                return _failure("echo", exc)
            return {"ok": True}
        if do == "close":
            if self.listener is not None:
                self.listener.close()
            return {"ok": True}
        return {"ok": False, "step": "request", "kinds": [], "message": f"unknown {do!r}"}


def _become_intruder() -> str | None:
    """Drop to :data:`INTRUDER` for good; why that failed, or ``None``."""
    try:
        os.setgroups([])
        os.setresgid(INTRUDER, INTRUDER, INTRUDER)
        os.setresuid(INTRUDER, INTRUDER, INTRUDER)
    except OSError as exc:
        return f"cannot become uid {INTRUDER}: {exc}"
    return None


def _say(answer: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(answer) + "\n")
    sys.stdout.flush()


def intruder() -> None:
    anyipc.transports()  # loads every plugin while this process may still read them
    problem = _become_intruder()
    if problem:
        _say({"cannot_switch": problem})
        return
    _say({"uids": os.getresuid(), "gids": os.getresgid(), "groups": os.getgroups()})
    peer = _Intruder()
    for line in sys.stdin:
        _say(peer.answer(json.loads(line)))
    if peer.listener is not None:
        peer.listener.close()


def opener(rounds: list[list[tuple[str, str]]]) -> None:
    os.umask(0)
    for plan in rounds:
        with ExitStack() as stack:
            listener: anyipc.Listener | None = None
            for verb, uri in plan:
                if verb == "listen":
                    listener = stack.enter_context(anyipc.listen(uri))
                elif verb == "accept":
                    assert listener is not None, "accept needs a listener before it"
                    stack.enter_context(listener.accept(timeout=10))
                elif verb == "connect":
                    stack.enter_context(anyipc.connect(uri))
                else:
                    stack.enter_context(anyipc.bind(uri))
    _say({"opened": sum(map(len, rounds))})


if __name__ == "__main__":
    if sys.argv[1] == "intruder":
        intruder()
    else:
        opener(json.loads(sys.argv[2]))
