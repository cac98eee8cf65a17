"""A service's methods by name, and turning one request message into its reply.

This is the part of :class:`anyipc.rpc.Service` that touches no channel:
decode, check, call, encode.  Every failure of a request that names its id
becomes an error reply; a message that names no id is dropped, with a
warning on the ``anyipc.rpc`` logger.  Exceptions raised by a method (any
:class:`Exception`) become error replies too: nothing a peer sends, and
nothing a method raises, ends the serving.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import Any

from anyipc._rpc_errors import (
    InvalidParams,
    InvalidRequest,
    InvalidResult,
    MethodNotFound,
    ProtocolError,
)
from anyipc._rpc_wire import Reply, Request, decode_request, encode_reply

__all__ = ["Methods", "logger", "reply_bytes"]

logger = logging.getLogger("anyipc.rpc")


def _failure(request_id: int | str, kind: type[Exception], message: str) -> Reply:
    return Reply(request_id, error_type=kind.__name__, error_message=message)


class Methods:
    """Functions by method name; :meth:`run` calls one for a request."""

    def __init__(self) -> None:
        self._functions: dict[str, Callable[..., Any]] = {}
        self._signatures: dict[str, inspect.Signature | None] = {}

    def add(self, name: str, function: Callable[..., Any]) -> None:
        """Serve ``function`` as method ``name``; ``ValueError`` if the name is taken or empty."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"a method name is a non-empty string, not {name!r}")
        if not callable(function):
            raise TypeError(f"method {name!r} must be callable, not {type(function).__name__}")
        if name in self._functions:
            raise ValueError(f"a method named {name!r} is already registered")
        try:
            signature: inspect.Signature | None = inspect.signature(function)
        except (TypeError, ValueError):  # some builtins have none: their own TypeError tells
            signature = None
        self._functions[name] = function
        self._signatures[name] = signature

    def names(self) -> list[str]:
        """The method names, sorted."""
        return sorted(self._functions)

    def decode(self, message: bytes) -> Request | None:
        """The request in ``message``, or ``None`` (logged) when it names no id to answer."""
        try:
            return decode_request(message)
        except ProtocolError as exc:
            logger.warning("dropped a message of %d bytes: %s", len(message), exc)
            return None

    def run(self, request: Request) -> Reply:
        """Call the method ``request`` names and say how it went, as a reply."""
        if request.problem is not None:
            return _failure(request.id, InvalidRequest, request.problem)
        function = self._functions.get(request.method)
        if function is None:
            known = ", ".join(self.names()) or "none"
            message = f"no method {request.method!r}; the methods are: {known}"
            return _failure(request.id, MethodNotFound, message)
        args, kwargs = (
            ([], request.params) if isinstance(request.params, dict) else (request.params, {})
        )
        signature = self._signatures[request.method]
        if signature is not None:
            try:
                signature.bind(*args, **kwargs)
            except TypeError as exc:
                return _failure(request.id, InvalidParams, f"{request.method}(): {exc}")
        try:
            result = function(*args, **kwargs)
        except Exception as exc:  # the method's failure is the caller's to see
            return Reply(request.id, error_type=type(exc).__name__, error_message=str(exc))
        return Reply(request.id, result)


def reply_bytes(reply: Reply, limit: int | None) -> bytes | None:
    """``reply`` encoded to fit in ``limit`` bytes, or ``None`` when even an error cannot.

    A result that JSON cannot carry, or a reply above ``limit``, is replaced
    by an ``InvalidResult`` error saying so.
    """
    try:
        data = encode_reply(reply)
    except (TypeError, ValueError) as exc:
        data = encode_reply(_failure(reply.id, InvalidResult, f"the result is not JSON: {exc}"))
    if limit is not None and len(data) > limit:
        message = f"the reply is {len(data)} bytes; the channel back carries at most {limit}"
        data = encode_reply(_failure(reply.id, InvalidResult, message))
        if len(data) > limit:
            logger.warning("dropped the reply to request %r: %s", reply.id, message)
            return None
    return data
