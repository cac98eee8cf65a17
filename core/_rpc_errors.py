"""The errors of :mod:`anyipc.rpc`: what a server reported, and broken wire format.

A method that raised on the server comes back to the caller as a
:class:`RemoteError` carrying the remote exception's type name and message.
Failures of the protocol itself, which the server reports under reserved
type names, come back as the subclasses named after them, so that a caller
can tell "the method failed" from "the method was never run".
"""

from __future__ import annotations

from anyipc._errors import IPCError

__all__ = [
    "PROTOCOL_ERRORS",
    "InvalidParams",
    "InvalidRequest",
    "InvalidResult",
    "MethodNotFound",
    "ProtocolError",
    "RemoteError",
    "remote_error",
]


class RemoteError(IPCError):
    """The server answered a request with an error.

    ``type`` is the name the server gave the error (for a Python server,
    the exception class's name, such as ``"ValueError"``) and ``message``
    its text; ``str(error)`` shows both.  The channel stays usable.
    """

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(f"{type_name}: {message}" if message else type_name)
        self.type = type_name
        self.message = message


class MethodNotFound(RemoteError):
    """The server has no method of the requested name; nothing was run."""


class InvalidParams(RemoteError):
    """The parameters do not fit the method's signature; nothing was run."""


class InvalidRequest(RemoteError):
    """The server could read the request's id but not the rest; nothing was run."""


class InvalidResult(RemoteError):
    """The method ran, but its result could not be sent back.

    It is not JSON-serialisable, or its reply exceeds the largest message
    the channel back to the client carries.
    """


#: the reserved error type names of the wire format, and the class each becomes
PROTOCOL_ERRORS: dict[str, type[RemoteError]] = {
    cls.__name__: cls for cls in (MethodNotFound, InvalidParams, InvalidRequest, InvalidResult)
}


def remote_error(type_name: str, message: str) -> RemoteError:
    """The error a caller receives for a reply's ``{"type": ..., "message": ...}``."""
    return PROTOCOL_ERRORS.get(type_name, RemoteError)(type_name, message)


class ProtocolError(IPCError, ValueError):
    """A message that breaks the wire format (not UTF-8 JSON, or the wrong shape).

    A client raises it for a reply to one of its requests that names the
    request but is otherwise malformed.  Messages that do not even name a
    request are dropped, by client and server alike.
    """
