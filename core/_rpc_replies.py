"""Waiting for replies: requests in flight, and handing each reply to its waiter.

No thread of its own: whichever waiter finds nobody reading becomes the
reader, receives one message, files the reply under its request id (for
whichever thread waits for it), and gives the role up; the others sleep
on a condition meanwhile.  A reply whose request is no longer awaited (it
timed out, or its :class:`Pending` was dropped) is discarded.  Once the
replies' channel ends, every request in flight fails, and so does every
later one.
"""

from __future__ import annotations

import threading
import time
import weakref
from typing import Any

from anyipc._api import connect
from anyipc._channel import Channel
from anyipc._deadline import Deadline
from anyipc._errors import (
    ChannelClosed,
    ConnectionLost,
    EndOfChannel,
    IPCError,
    MessageTooLarge,
    Timeout,
)
from anyipc._rpc_errors import ProtocolError, remote_error
from anyipc._rpc_methods import logger
from anyipc._rpc_wire import RequestId, decode_reply

__all__ = ["PROBE_S", "Pending", "ReplyBox"]

PROBE_S = 0.5  #: how often a waiting client re-opens the server's address, where it probes


class Pending:
    """A request sent and not yet answered; :meth:`result` waits for its reply.

    ``id`` is the request id, ``method`` its method.  Thread-safe.
    """

    def __init__(self, box: ReplyBox, request_id: int, method: str) -> None:
        self.id = request_id
        self.method = method
        self._box = box
        self._settled = False
        self._result: Any = None
        self._error: Exception | None = None

    def done(self) -> bool:
        """True once the outcome is known (a reply came, or the request failed)."""
        return self._settled

    def result(self, timeout: float | None = None) -> Any:
        """The method's result, once its reply comes.

        Raises :class:`~anyipc.rpc.RemoteError` (or a subclass) when the
        server answered with an error; :class:`~anyipc.Timeout` when no
        reply came within ``timeout`` seconds (``None``: no limit), after
        which the request is abandoned: a late reply is discarded, and every
        later ``result()`` raises the same; :class:`~anyipc.ConnectionLost`
        when the server is gone; :class:`~anyipc.ChannelClosed` after the
        client was closed; :class:`~anyipc.rpc.ProtocolError` for a
        malformed reply.  Once settled, every call returns (or raises) the same.
        """
        self._box.wait_for(self, timeout)
        if self._error is not None:
            raise self._error
        return self._result

    def _settle(self, result: Any = None, error: Exception | None = None) -> None:
        """Record the outcome (the box's lock is held)."""
        self._result, self._error, self._settled = result, error, True

    def __repr__(self) -> str:
        state = "done" if self._settled else "pending"
        return f"<Pending {self.method!r} id={self.id} {state}>"


class ReplyBox:
    """The requests awaiting replies from ``channel``, and the reading of it.

    ``probe``: an address to re-open every :data:`PROBE_S` seconds while a
    request waits, for channels that cannot report that the server is gone
    (a failure to open it ends the box with :class:`ConnectionLost`).
    """

    def __init__(self, channel: Channel, probe: str | None) -> None:
        self._channel = channel
        self._probe = probe
        self._probe_at = time.monotonic() + PROBE_S
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._waiting: weakref.WeakValueDictionary[RequestId, Pending] = (
            weakref.WeakValueDictionary()
        )
        self._reading = False
        self._ended: ChannelClosed | None = None  # why no reply can come any more

    def expect(self, pending: Pending) -> None:
        """Await a reply for ``pending``; raises why none can come once the box ended."""
        with self._lock:
            if self._ended is not None:
                raise _fresh(self._ended)
            self._waiting[pending.id] = pending

    def forget(self, pending: Pending) -> None:
        """Stop awaiting ``pending`` (its request was not sent)."""
        with self._lock:
            self._waiting.pop(pending.id, None)

    def end(self, error: ChannelClosed) -> None:
        """No reply can come any more: fail those in flight, and later requests, with ``error``."""
        with self._lock:
            if self._ended is not None:
                return
            self._ended = error
            for pending in list(self._waiting.values()):
                pending._settle(error=_fresh(error))
            self._waiting.clear()
            self._changed.notify_all()

    def pump(self) -> None:
        """Receive and file the replies already there, unless another thread is reading."""
        with self._lock:
            if self._reading or self._ended is not None:
                return
            self._reading = True
        try:
            self._drain()
        finally:
            with self._lock:
                self._reading = False
                self._changed.notify_all()

    def wait_for(self, pending: Pending, timeout: float | None) -> None:
        """Until ``pending`` is settled; abandon it with :class:`Timeout` after ``timeout``."""
        deadline = Deadline(timeout)
        tried = False
        while True:
            with self._lock:
                while not pending.done() and self._reading:
                    left = deadline.remaining()
                    if left == 0:
                        break
                    self._changed.wait(left)
                if pending.done():
                    return
                if self._reading or (tried and deadline.expired()):
                    self._abandon(pending)
                    return
                self._reading = True
            try:
                self._read_one(deadline)
            finally:
                with self._lock:
                    self._reading = False
                    self._changed.notify_all()
            tried = True

    def _abandon(self, pending: Pending) -> None:
        """Settle ``pending`` with :class:`Timeout` (lock held); its late reply will be dropped."""
        self._waiting.pop(pending.id, None)
        pending._settle(
            error=Timeout(f"no reply to {pending.method!r} (request {pending.id}) in time")
        )

    def _read_one(self, deadline: Deadline) -> None:
        """Receive one message before ``deadline`` (or the next probe) and file it."""
        left = deadline.remaining()
        if self._probe is not None:
            until_probe = max(0.0, self._probe_at - time.monotonic())
            left = until_probe if left is None else min(left, until_probe)
        try:
            data = self._channel.recv(timeout=left)
        except Timeout:
            self._probe_if_due()
            return
        except MessageTooLarge as exc:  # a datagram too large for us: not a reply of ours
            logger.warning("dropped a reply: %s", exc)
            return
        except ChannelClosed as exc:
            self.end(_ended_by(exc))
            return
        self._file(data)

    def _file(self, data: bytes) -> None:
        """Hand the reply in ``data`` to its waiter; drop it if nobody awaits it."""
        try:
            reply = decode_reply(data)
        except ProtocolError as exc:
            logger.warning("dropped a message of %d bytes: %s", len(data), exc)
            return
        with self._lock:
            pending = self._waiting.pop(reply.id, None)
            if pending is None:
                return  # the reply to an abandoned request
            if reply.problem is not None:
                problem = f"the reply to {pending.method!r} is malformed: {reply.problem}"
                pending._settle(error=ProtocolError(problem))
            elif reply.error_type is not None:
                pending._settle(error=remote_error(reply.error_type, reply.error_message))
            else:
                pending._settle(result=reply.result)
            self._changed.notify_all()

    def _probe_if_due(self) -> None:
        """Re-open the server's address if it is time; end the box when that fails."""
        if self._probe is None or time.monotonic() < self._probe_at:
            return
        self._probe_at = time.monotonic() + PROBE_S
        try:
            connect(self._probe).close()
        except ConnectionLost as exc:
            self._drain()
            self.end(ConnectionLost(f"the server at {self._probe} is gone: {exc}"))
        except IPCError:  # cannot tell (permissions, limits): the server may well be there
            pass

    def _drain(self) -> None:
        """File the replies there now, without waiting."""
        while True:
            try:
                data = self._channel.recv(timeout=0)
            except IPCError:
                return
            self._file(data)


def _ended_by(error: ChannelClosed) -> ChannelClosed:
    """What a request learns when the replies' channel raised ``error``."""
    if isinstance(error, EndOfChannel):
        lost = ConnectionLost("the server closed the connection: no reply will come")
    elif isinstance(error, ConnectionLost):
        lost = ConnectionLost(f"the connection to the server was lost: {error}")
    else:
        return ChannelClosed("the rpc client was closed")
    lost.__cause__ = error
    return lost


def _fresh(error: ChannelClosed) -> ChannelClosed:
    """A new exception like ``error``, so that threads never raise one object at once."""
    copy = type(error)(str(error))
    copy.__cause__ = error.__cause__
    return copy
