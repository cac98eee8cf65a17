"""anyipc: one Channel API over every inter-process communication mechanism.

Pick a transport with a URI (``tcp://127.0.0.1:4242``, ``unix:///run/app.sock``,
``mem://name``), open it with one of the socket verbs, and talk::

    import anyipc

    with anyipc.listen("tcp://127.0.0.1:0") as listener:
        client = anyipc.connect(listener.address)
        server = listener.accept(timeout=5)
        client.send(b"hello")
        assert server.recv(timeout=5) == b"hello"

Every transport declares its :class:`Capabilities`; the conformance suite in
:mod:`anyipc.testing` holds it to them.
"""

from anyipc import rpc
from anyipc._address import Address
from anyipc._api import TransportInfo, bind, connect, listen, pair, transports
from anyipc._capabilities import Addressing, Boundaries, Capabilities, Connection, Direction, Scope
from anyipc._channel import BytesLike, Channel, Listener
from anyipc._errors import (
    AddressInUse,
    AuthenticationError,
    ChannelClosed,
    ConnectionLost,
    EndOfChannel,
    InvalidAddress,
    IPCError,
    MessageTooLarge,
    NotSupported,
    PermissionDenied,
    Timeout,
    TransportUnavailable,
)
from anyipc._options import Option
from anyipc._records import LayerSpec, Role, TransportSpec
from anyipc._serve import Server, serve
from anyipc._wait import wait
from anyipc.hookspecs import hookimpl

__all__ = [
    "Address",
    "AddressInUse",
    "Addressing",
    "AuthenticationError",
    "Boundaries",
    "BytesLike",
    "Capabilities",
    "Channel",
    "ChannelClosed",
    "Connection",
    "ConnectionLost",
    "Direction",
    "EndOfChannel",
    "IPCError",
    "InvalidAddress",
    "LayerSpec",
    "Listener",
    "MessageTooLarge",
    "NotSupported",
    "Option",
    "PermissionDenied",
    "Role",
    "Scope",
    "Server",
    "Timeout",
    "TransportInfo",
    "TransportSpec",
    "TransportUnavailable",
    "bind",
    "connect",
    "hookimpl",
    "listen",
    "pair",
    "rpc",
    "serve",
    "transports",
    "wait",
]

__version__ = "0.1.0"
