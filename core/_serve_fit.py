"""Which transports a server model can serve, decided before anything is opened.

Every model needs a connection-oriented transport (one that listens and
accepts).  The models that fork need more, because a connection or a
listener then lives in two processes at once:

* ``fork``: the server accepts a connection, forks a child for it and
  closes its own copy.  Closing must leave the child's copy working, which
  holds for plain socket connections: ``tcp``, ``unix`` and
  ``unix-seqpacket``, also under ``framed+`` (closing never calls
  ``shutdown()``).  A TLS channel says goodbye to its peer when closed and
  runs its handshake in a thread of the server, and a shared-memory channel
  marks its ring closed: neither can be handed over.
* ``prefork``: the children accept on the listening socket they inherit,
  so everything about a connection happens in one child.  Socket listeners
  can be shared that way: ``tcp``, ``unix`` and ``unix-seqpacket``, under
  ``framed+`` and ``tls+`` too.  The shared-memory listeners keep the
  connections they are setting up in the accepting process, and a file
  segment (``mmap://``) is claimed by a listener: they are not shared.

``mem://`` lives inside one process and third-party transports make no
promise about forking: both are served by the ``thread`` model only.
"""

from __future__ import annotations

from anyipc._address import Address
from anyipc._capabilities import Capabilities, Connection
from anyipc._errors import NotSupported

__all__ = ["MODELS", "SOCKET_SCHEMES", "check_connection", "check_model"]

MODELS = ("thread", "fork", "prefork")
#: the transports whose connections and listeners work in a forked child
SOCKET_SCHEMES = ("tcp", "unix", "unix-seqpacket")
_LAYERS = {"fork": ("framed",), "prefork": ("framed", "tls")}
_WHY = {
    "fork": "each connection is handed to a child and the server closes its copy, "
    "which only a plain socket connection survives",
    "prefork": "the children accept on the listener they inherit, which only a socket "
    "listener allows",
}


def check_model(address: Address, model: str) -> None:
    """Raise unless ``model`` can serve what ``address`` names.

    ``ValueError`` for an unknown model; :class:`NotSupported` (saying why,
    and what would work) when the model cannot serve the transport.
    """
    if model not in MODELS:
        raise ValueError(f"model must be one of {', '.join(map(repr, MODELS))}, not {model!r}")
    if model == "thread":
        return
    layers = _LAYERS[model]
    misfits = [layer + "+" for layer in address.layers if layer not in layers] + (
        [] if address.scheme in SOCKET_SCHEMES else [address.scheme + "://"]
    )
    if misfits:
        stack = "+".join((*address.layers, address.scheme)) + "://"
        raise NotSupported(
            f"model={model!r} cannot serve {stack}: {_WHY[model]} "
            f"({', '.join(SOCKET_SCHEMES)}, under "
            f"{' or '.join(layer + '+' for layer in layers)} too), not {', '.join(misfits)}; "
            "model='thread' serves every connection-oriented transport"
        )


def check_connection(capabilities: Capabilities, what: str) -> None:
    """Raise :class:`NotSupported` unless ``capabilities`` are connection-oriented."""
    if capabilities.connection is not Connection.ORIENTED:
        raise NotSupported(
            f"a server needs a connection-oriented transport (one that listens and accepts); "
            f"{what} is connectionless: bind() it and answer each recv_from() with send_to()"
        )
