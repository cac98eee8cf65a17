"""The calling side of :mod:`anyipc.rpc`: :class:`Client`."""

from __future__ import annotations

import itertools
import threading
from types import TracebackType
from typing import Any, Self

from anyipc._address import Address
from anyipc._capabilities import Connection
from anyipc._channel import Channel
from anyipc._deadline import Deadline
from anyipc._errors import ChannelClosed, ConnectionLost, Timeout
from anyipc._rpc_channels import open_client
from anyipc._rpc_replies import Pending, ReplyBox
from anyipc._rpc_wire import encode_request

__all__ = ["SEND_SLICE_S", "Client"]

SEND_SLICE_S = 0.05  #: how long a send into a full queue waits before receiving replies


class Client:
    """Calls methods of a :class:`~anyipc.rpc.Service` over one MESSAGE channel.

    ``target`` is the server's URI (connected here) or a channel to it
    (``connect``-ed, or accepted); either way the client owns the channel
    once constructed, and ``close()`` closes it.  A STREAM URI or channel is refused with
    :class:`~anyipc.NotSupported` naming its ``framed+`` form (before
    connecting, for a URI).

    Where that channel cannot receive (the sending end of ``posixmq://``
    or ``sysvmq://``), the client binds an endpoint for the replies,
    ``reply_to`` (default: a fresh endpoint of the same scheme, such as
    ``posixmq://`` with a name of its own), names it in every request, and
    removes it on ``close()``.  Its URI is the attribute ``reply_to``
    (``None`` when the channel brings the replies itself).

    Thread-safe: any number of threads may call at once; each reply goes
    to the thread that awaits it, whichever thread receives it.  No thread
    of its own is started: replies are received by the threads that wait
    for them (:meth:`Pending.result <anyipc.rpc.Pending.result>`), and, over
    a queue or datagrams, by a thread whose request waits for room.  So on
    a connected channel, requests submitted and not waited for must fit in
    what the channel buffers in both directions (thousands of small ones):
    beyond that the server waits for room for its replies, and gives the
    connection up after its ``send_timeout``.

    Errors of :meth:`call` and :meth:`Pending.result <anyipc.rpc.Pending.result>`:

    * :class:`~anyipc.rpc.RemoteError` (its subclasses for protocol
      failures): the server answered with an error; the client stays usable;
    * :class:`~anyipc.Timeout`: no reply in time; the request is abandoned
      (its late reply, if any, is discarded) and the client stays usable;
    * :class:`~anyipc.ConnectionLost`: the server is gone (it closed the
      connection, it died, or its endpoint is no more) and no reply will
      come; every later call raises it too.  A connection-oriented channel
      reports it as soon as the kernel does.  Where the replies' channel
      cannot tell (message queues, ``unix-dgram://``, ``udp://``), a
      waiting client re-opens the server's address every
      :data:`~anyipc.rpc.PROBE_S` seconds and reports it when that fails
      (a queue whose owner died or that was removed, a ``unix-dgram://``
      name nobody binds any more), so within about half a second; never
      over ``udp://``, where only a :class:`~anyipc.Timeout` tells;
    * :class:`~anyipc.ChannelClosed`: the client was closed;
    * before anything is sent: ``TypeError``/``ValueError`` when the params
      are not JSON, :class:`~anyipc.MessageTooLarge` when the request
      exceeds the channel's ``max_message_size``.
    """

    def __init__(self, target: str | Address | Channel, *, reply_to: str | None = None) -> None:
        self._channels = open_client(target, reply_to)
        self.reply_to = self._channels.reply_to
        self._box = ReplyBox(self._channels.replies, self._channels.probe)
        self._ids = itertools.count(1)
        self._ids_lock = threading.Lock()
        channels = self._channels
        self._interleaves = (
            channels.requests is not channels.replies
            or channels.requests.capabilities.connection is Connection.CONNECTIONLESS
        )
        self._closed = False

    @property
    def channel(self) -> Channel:
        """The channel that carries the requests to the server."""
        return self._channels.requests

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closed

    def submit(self, method: str, *params: Any, timeout: float | None = None) -> Pending:
        """Send a request for ``method(*params)`` and return at once; the reply comes later.

        ``timeout`` bounds the sending only (the channel may be full).
        Raises what :meth:`call` raises before and while sending.
        """
        if not isinstance(method, str) or not method:
            raise TypeError(f"method must be a non-empty string, not {method!r}")
        with self._ids_lock:
            request_id = next(self._ids)
        data = encode_request(request_id, method, list(params), self.reply_to)
        pending = Pending(self._box, request_id, method)
        self._box.expect(pending)
        try:
            self._send(data, Deadline(timeout))
        except ConnectionLost as exc:
            lost = ConnectionLost(f"cannot send {method!r}: the server is gone ({exc})")
            lost.__cause__ = exc
            self._box.end(lost)
            raise lost from exc
        except BaseException:
            self._box.forget(pending)
            raise
        return pending

    def _send(self, data: bytes, deadline: Deadline) -> None:
        """Send one request before ``deadline``, receiving replies while the channel is full.

        Where the server's replies do not share a byte stream with the
        requests (a queue, datagrams), a full channel may be the server
        waiting for room for its replies to this client: the sending waits
        in slices of :data:`SEND_SLICE_S`, and receives what came between
        them, so that server and client never wait for each other.
        Elsewhere, the send waits for its whole timeout.
        """
        requests = self._channels.requests
        if not self._interleaves:
            requests.send(data, timeout=deadline.remaining())
            return
        while True:
            left = deadline.remaining()
            try:
                requests.send(
                    data, timeout=SEND_SLICE_S if left is None else min(left, SEND_SLICE_S)
                )
                return
            except Timeout as exc:
                if exc.sent or deadline.expired():
                    raise
            self._box.pump()

    def call(self, method: str, *params: Any, timeout: float | None = None) -> Any:
        """``method(*params)`` on the server: its result, once the reply comes.

        ``timeout`` (seconds, ``None``: no limit) bounds the whole call,
        sending and waiting.  See the class for the errors.
        """
        deadline = Deadline(timeout)
        pending = self.submit(method, *params, timeout=deadline.remaining())
        return pending.result(timeout=deadline.remaining())

    def close(self) -> None:
        """Fail the requests in flight with :class:`~anyipc.ChannelClosed` and close the channels.

        Idempotent; an endpoint the client bound for its replies is removed.
        """
        if self._closed:
            return
        self._closed = True
        self._box.end(ChannelClosed("the rpc client was closed"))
        self._channels.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<rpc.Client {self._channels.requests.peer or '?'} {state}>"
