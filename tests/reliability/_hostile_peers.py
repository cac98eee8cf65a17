"""Peers of the hostile-input tests: raw sockets that break the protocols, and good clients.

Run as a script, a peer is a process of its own that reads one JSON step
per line on stdin, does it, and answers one JSON line on stdout.  The test
process drives it with :class:`Peer` and plays the listener's side
meanwhile.  Steps:

* ``raw``: connect a plain socket to ``target`` (``{"host", "port"}`` or
  ``{"path"}``, an abstract name written ``@name``), send ``pieces``
  (``[hex, pause_s]`` each; the first goes with the descriptors of ``fds``,
  see :func:`_descriptors`), shut down the writing side if ``shutdown``,
  then watch up to ``watch`` seconds for the listener to close the
  connection.  Answers ``{"closed": bool, "after": s, "heard": hex}``:
  whether the end (or a reset) came, seconds after the last piece, and
  what the listener wrote meanwhile (its first 64 KiB).
* ``good``: connect with anyipc to ``uri`` and send ``count`` records
  (:func:`record`: a sequence number and a CRC32), each checked when the
  listener's side echoes it.  Answers ``{"ok": true, "first": s, "seconds":
  s}`` or ``{"ok": false, "error": text}``: seconds from the start of the
  connect to the first echo, and to the last.
* ``rpc``: the same through :class:`anyipc.rpc.Client` calling ``echo``.
* ``crowd``: open ``silent`` raw connections to ``target`` that send
  nothing, then ``trickling`` ones that send one byte of ``trickle`` (hex,
  cycled) every ``interval`` seconds, from a thread; answers
  ``{"opened": n}`` once they are all connected.
* ``crowd_report``: answers ``{"closed_after": [s or null, ...]}``: for each
  crowd connection, how long after it opened the listener closed it.

Records and checks are plain functions, so the test process uses them too.
"""

from __future__ import annotations

import array
import json
import os
import select
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path
from typing import Any

_RECORD = struct.Struct("!III")  # sequence number, body length, CRC32 of the body
_HEARD = 65536  # bytes of what the listener wrote that a raw peer reports


def record(seq: int, size: int) -> bytes:
    """Record ``seq``: its header (sequence, length, CRC32) and a body of ``size`` bytes."""
    body = bytes((seq * 7 + index) % 251 for index in range(size))
    return _RECORD.pack(seq, size, zlib.crc32(body)) + body


def check_record(data: bytes, seq: int) -> None:
    """Raise ``AssertionError`` unless ``data`` is record ``seq``, whole and undamaged."""
    assert len(data) >= _RECORD.size, f"record {seq}: {len(data)} bytes, shorter than a header"
    number, size, crc = _RECORD.unpack_from(data)
    body = data[_RECORD.size :]
    assert number == seq, f"record {number} came where {seq} was due"
    assert size == len(body), f"record {seq}: {len(body)} body bytes, {size} announced"
    assert zlib.crc32(body) == crc, f"record {seq}: CRC32 mismatch"


def _address(target: dict[str, Any]) -> tuple[int, Any]:
    if "path" in target:
        path = target["path"]
        return socket.AF_UNIX, ("\0" + path[1:]) if path.startswith("@") else path
    return socket.AF_INET, (target["host"], target["port"])


def _connect(target: dict[str, Any]) -> socket.socket:
    family, where = _address(target)
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.settimeout(10)
    sock.connect(where)
    return sock


def _descriptors(specs: list[dict[str, Any]]) -> list[int]:
    """Descriptors to pass: ``{"memfd": size, "image": [[offset, hex]...]}``, ``{"pipe": 1}``."""
    fds: list[int] = []
    for spec in specs:
        if "pipe" in spec:
            reading, writing = os.pipe()
            os.close(writing)
            fds.append(reading)
            continue
        fd = os.memfd_create("hostile", 0)
        os.ftruncate(fd, spec["memfd"])
        for offset, data in spec.get("image", []):
            os.pwrite(fd, bytes.fromhex(data), offset)
        fds.append(fd)
    return fds


def _watch(sock: socket.socket, seconds: float) -> tuple[bool, bytes]:
    """Whether the other end closed within ``seconds``, and what it wrote before."""
    heard = b""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        if not select.select([sock], [], [], left)[0]:
            break
        try:
            chunk = sock.recv(65536)
        except ConnectionError:
            return True, heard
        if not chunk:
            return True, heard
        heard += chunk[: max(0, _HEARD - len(heard))]
    return False, heard


def _raw(step: dict[str, Any]) -> dict[str, Any]:
    fds = _descriptors(step.get("fds", []))
    with _connect(step["target"]) as sock:
        try:
            for index, (data, pause) in enumerate(step["pieces"]):
                payload = bytes.fromhex(data)
                if index == 0 and fds:
                    rights = array.array("i", fds).tobytes()
                    sock.sendmsg([payload], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, rights)])
                else:
                    sock.sendall(payload)
                time.sleep(pause)
            if step.get("shutdown"):
                sock.shutdown(socket.SHUT_WR)
        except ConnectionError:  # the listener cut it short: that is an end too
            return {"closed": True, "after": 0.0, "heard": ""}
        finally:
            for fd in fds:
                os.close(fd)
        start = time.monotonic()
        closed, heard = _watch(sock, step["watch"])
        after = time.monotonic() - start
    return {"closed": closed, "after": after, "heard": heard.hex()}


def _good(step: dict[str, Any]) -> dict[str, Any]:
    import anyipc

    start = time.monotonic()
    first = None
    with anyipc.connect(step["uri"]) as channel:
        stream = channel.capabilities.boundaries is anyipc.Boundaries.STREAM
        for seq in range(step["count"]):
            sent = record(seq, step.get("size", 64))
            channel.send(sent, timeout=10)
            echo = b""
            while len(echo) < len(sent):
                echo += channel.recv(timeout=10)
                if not stream:
                    break
            check_record(echo, seq)
            first = first or time.monotonic() - start
    return {"ok": True, "first": first, "seconds": time.monotonic() - start}


def _rpc(step: dict[str, Any]) -> dict[str, Any]:
    from anyipc import rpc

    start = time.monotonic()
    with rpc.Client(step["uri"]) as client:
        for seq in range(step["count"]):
            sent = record(seq, step.get("size", 64)).hex()
            echo = client.call("echo", sent, timeout=10)
            check_record(bytes.fromhex(echo), seq)
    return {"ok": True, "seconds": time.monotonic() - start}


class _Crowd:
    """Connections that say nothing, or one byte at a time; each notes when it was closed."""

    def __init__(self, step: dict[str, Any]) -> None:
        self._silent = step["silent"]
        self.socks = [_connect(step["target"]) for _ in range(self._silent + step["trickling"])]
        self.opened = time.monotonic()
        self.closed_after: list[float | None] = [None] * len(self.socks)
        self._trickle = bytes.fromhex(step["trickle"])
        self._interval = step.get("interval", 1.0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        sent = 0
        while not self._stop.wait(min(self._interval, 0.05)):
            self._note_closed()
            if self._trickle and time.monotonic() - self.opened >= sent * self._interval:
                byte = self._trickle[sent % len(self._trickle) : sent % len(self._trickle) + 1]
                for index, sock in enumerate(self.socks):
                    if index >= self._silent and self.closed_after[index] is None:
                        try:
                            sock.send(byte)
                        except OSError:
                            self._closed(index)
                sent += 1

    def _note_closed(self) -> None:
        live = [sock for index, sock in enumerate(self.socks) if self.closed_after[index] is None]
        for sock in select.select(live, [], [], 0)[0] if live else []:
            try:
                ended = not sock.recv(65536)
            except OSError:
                ended = True
            if ended:
                self._closed(self.socks.index(sock))

    def _closed(self, index: int) -> None:
        self.closed_after[index] = time.monotonic() - self.opened

    def report(self) -> dict[str, Any]:
        self._stop.set()
        self._thread.join(10)
        self._note_closed()
        for sock in self.socks:
            sock.close()
        return {"closed_after": self.closed_after}


def main() -> None:
    """Answer the steps on stdin until it ends."""
    crowd: _Crowd | None = None
    for line in sys.stdin:
        step = json.loads(line)
        try:
            if step["do"] == "crowd":
                crowd = _Crowd(step)
                answer: dict[str, Any] = {"opened": len(crowd.socks)}
            elif step["do"] == "crowd_report":
                assert crowd is not None, "no crowd was opened"
                answer, crowd = crowd.report(), None
            else:
                answer = {"raw": _raw, "good": _good, "rpc": _rpc}[step["do"]](step)
        except Exception as exc:  # told to the test, which fails with it
            answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        print(json.dumps(answer), flush=True)


def target(listener_address: str) -> dict[str, object]:
    """Where a raw peer connects to reach the listener at that URI (tcp, unix, or shm's socket)."""
    import anyipc

    address = anyipc.Address.parse_syntax(listener_address)
    if address.scheme == "tcp":
        host, _, port = address.location.rpartition(":")
        return {"host": host, "port": int(port)}
    if address.scheme == "shm":  # its rendezvous socket (see anyipc._shmlink)
        return {"path": f"@anyipc.shm.{address.location}"}
    return {"path": address.location}


def client_hello() -> bytes:
    """The first flight of a real TLS client: its ClientHello record."""
    import ssl

    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = ssl.create_default_context().wrap_bio(incoming, outgoing, server_hostname="localhost")
    try:
        client.do_handshake()
    except ssl.SSLWantReadError:  # it waits for the server's answer, as it should
        pass
    return outgoing.read()


class Peer:
    """The test process's handle on a peer script started with ``children`` (reaped with them)."""

    def __init__(self, children: Any) -> None:
        self._child: subprocess.Popen[bytes] = children.run(
            [sys.executable, str(Path(__file__))], stdin=subprocess.PIPE, bufsize=0
        )
        self._lines = b""

    def request(self, **step: Any) -> None:
        """Start ``step`` in the peer (its answer is read by :meth:`result`)."""
        assert self._child.stdin is not None
        self._child.stdin.write(json.dumps(step).encode() + b"\n")

    def answered(self) -> bool:
        """True when the peer's answer to the last step is there to read."""
        return b"\n" in self._lines or (self._fill(0.0) and b"\n" in self._lines)

    def result(self, timeout: float = 30.0) -> dict[str, Any]:
        """The peer's answer to the last step, within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self._lines:
            left = deadline - time.monotonic()
            assert left > 0, f"no answer from the peer in {timeout} s"
            self._fill(left)
        line, _, self._lines = self._lines.partition(b"\n")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def _fill(self, timeout: float) -> bool:
        """Read what the peer wrote, waiting up to ``timeout`` seconds; False if nothing came."""
        stdout = self._child.stdout
        assert stdout is not None
        if not select.select([stdout], [], [], timeout)[0]:
            return False
        chunk = os.read(stdout.fileno(), 65536)
        assert chunk, f"the peer ended: {self._child.wait(5)}"
        self._lines += chunk
        return True


if __name__ == "__main__":
    main()
