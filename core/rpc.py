"""Request and response over any MESSAGE channel: ids, timeouts, typed remote errors, JSON.

A :class:`Service` holds functions by name and answers requests; a
:class:`Client` sends them and waits for the replies::

    import threading

    import anyipc
    from anyipc import rpc

    service = rpc.Service({"add": lambda a, b: a + b})
    with anyipc.listen("unix-seqpacket://@calc") as listener:
        client = rpc.Client(listener.address)
        server = listener.accept(timeout=5)
        worker = threading.Thread(target=service.handle, args=(server,))
        worker.start()
        assert client.call("add", 2, 3, timeout=5) == 5
        client.close()  # the service sees the end of the conversation...
        worker.join()  # ...and handle() returns
        server.close()

The same code runs over every MESSAGE transport by changing the URI:
``framed+tcp://127.0.0.1:0``, ``framed+unix:///path``,
``unix-seqpacket://...``, ``shm://name``.  A byte stream (``tcp://``,
``unix://``) is refused with :class:`~anyipc.NotSupported` naming its
``framed+`` form.  Over a message queue, where one endpoint receives the
requests of every client, the server binds it and runs
:meth:`Service.serve_bound`, and each client binds a queue for its replies
(see :class:`Client`)::

    inbox = anyipc.bind("posixmq://calc")  # the server's side
    threading.Thread(target=service.serve_bound, args=(inbox,)).start()
    with rpc.Client("posixmq://calc") as client:  # binds posixmq://<fresh name>
        client.call("add", 2, 3, timeout=5)
    inbox.close()  # serve_bound() returns

Several requests may be in flight on one client: :meth:`Client.submit`
returns a :class:`Pending` at once, and any number of threads may call
through one client at the same time.

Errors a caller sees (each documented on :class:`Client`):
:class:`RemoteError` (the method raised; ``type`` and ``message`` say
what), its subclasses :class:`MethodNotFound`, :class:`InvalidParams`,
:class:`InvalidRequest` and :class:`InvalidResult` for failures of the
protocol, :class:`~anyipc.Timeout` (no reply in time; a late reply is
discarded), :class:`~anyipc.ConnectionLost` (the server is gone),
:class:`~anyipc.ChannelClosed` (the client was closed),
:class:`ProtocolError` (a malformed reply), and, before anything is sent,
``TypeError``/``ValueError`` for params JSON cannot carry and
:class:`~anyipc.MessageTooLarge` for a request above the channel's
``max_message_size``.

Wire format
-----------

For peers written without anyipc.  Every request and every reply is one
message of the channel (one datagram, queue message, seqpacket record,
``framed+`` frame or shared-memory ring message, with nothing added): a
JSON object (RFC 8259) encoded as UTF-8, without a byte-order mark.  The
constants ``NaN`` and ``Infinity`` are not JSON and are refused both ways.
Never pickle: nothing a peer sends is executed.

A request::

    {"id": 7, "method": "add", "params": [2, 3]}

* ``id`` (required): an integer or a string, chosen by the client and
  echoed by the reply; unique among that client's requests in flight
  (:class:`Client` counts up from 1 and never reuses one).  A string id
  holding a lone surrogate (an unpaired ``\\uD800`` escape) cannot be
  written back in UTF-8: such a request is dropped like one without an id.
* ``method`` (required): a non-empty string, the name of the method.
* ``params`` (optional, default ``[]``): an array (by position) or an
  object (by name).
* ``reply_to`` (optional): the URI of the endpoint the reply goes to,
  where the channel cannot carry it back (message queues); an endpoint of
  the same transport as the server's.

Other members are ignored, so a JSON-RPC 2.0 ``"jsonrpc"`` member does no
harm (the format is modelled on JSON-RPC 2.0, but errors are named, not
numbered).

A reply is exactly one of::

    {"id": 7, "result": 5}
    {"id": 7, "error": {"type": "ZeroDivisionError", "message": "division by zero"}}

``type`` is the name of the exception the method raised, or one of the
reserved names: ``MethodNotFound`` (no such method), ``InvalidParams``
(the params do not fit the method's signature), ``InvalidRequest`` (the
request has an id but is malformed otherwise) and ``InvalidResult`` (the
result is not JSON, or its reply is larger than the channel back carries);
the first three mean that nothing was run.  A client matches replies to
requests by id only: it must not rely on their order.  A message that is
not a JSON object with a usable ``id`` is dropped, by the server and by
the client alike, with a warning on the ``anyipc.rpc`` logger; nothing a
peer sends stops a service.  Decoding costs at most a small multiple of
the message's size, which the transport bounds (``max_message_size``;
``framed+`` checks it before allocating).

JSON carries ``None``, ``bool``, ``int``, ``float``, ``str``, lists and
dicts with string keys; a tuple arrives as a list, and the keys ``1``,
``1.5``, ``True`` and ``None`` of a dict as the strings ``"1"``,
``"1.5"``, ``"true"`` and ``"null"``.  Other types are refused before
anything is sent.
"""

from __future__ import annotations

from anyipc._rpc_client import Client
from anyipc._rpc_errors import (
    InvalidParams,
    InvalidRequest,
    InvalidResult,
    MethodNotFound,
    ProtocolError,
    RemoteError,
)
from anyipc._rpc_replies import PROBE_S, Pending
from anyipc._rpc_service import Service

__all__ = [
    "PROBE_S",
    "Client",
    "InvalidParams",
    "InvalidRequest",
    "InvalidResult",
    "MethodNotFound",
    "Pending",
    "ProtocolError",
    "RemoteError",
    "Service",
]
