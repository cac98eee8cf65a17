"""The wire format of :mod:`anyipc.rpc`: requests and replies as JSON objects, checked.

One request or reply per message, UTF-8 JSON; :mod:`anyipc.rpc` documents
the format for other implementations.  Encoding refuses what JSON cannot
carry faithfully (NaN, infinities, circular or absurdly deep structures,
text with lone surrogates, which ``\\uD800`` escapes can decode to);
decoding refuses anything but strict JSON, and its cost is bounded by the
size of the message, which the transport bounds.
"""

from __future__ import annotations

import json
from typing import Any, TypeAlias

import attrs

from anyipc._rpc_errors import ProtocolError

__all__ = [
    "Reply",
    "Request",
    "RequestId",
    "decode_reply",
    "decode_request",
    "encode_reply",
    "encode_request",
]

RequestId: TypeAlias = int | str
Params: TypeAlias = list[Any] | dict[str, Any]


@attrs.frozen
class Request:
    """A decoded request.

    ``problem`` says why it cannot be run although its ``id`` (and
    ``reply_to``, where given) could be read: the server answers it with an
    ``InvalidRequest`` error.
    """

    id: RequestId
    method: str = ""
    params: Params = attrs.field(factory=list)
    reply_to: str | None = None
    problem: str | None = None


@attrs.frozen
class Reply:
    """A reply: a ``result``, or an error (``error_type`` set, with ``error_message``).

    ``problem`` (decoded replies only) says why a reply that names its
    request is otherwise malformed.
    """

    id: RequestId
    result: Any = None
    error_type: str | None = None
    error_message: str = ""
    problem: str | None = None


def _dumps(value: object) -> bytes:
    """``value`` as compact UTF-8 JSON; ``TypeError``/``ValueError`` if JSON cannot carry it."""
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except RecursionError:
        raise ValueError("it is nested too deeply") from None
    if not _unicode(text):
        raise ValueError("it holds a lone surrogate (\\uD800-\\uDFFF), which UTF-8 cannot carry")
    return text.encode("utf-8")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _loads(data: bytes, what: str) -> dict[str, Any]:
    """The JSON object in ``data``; :class:`ProtocolError` (without an id) if there is none."""
    try:
        value = json.loads(data.decode("utf-8"), parse_constant=_refuse_constant)
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"{what} is not UTF-8: {exc}") from None
    except RecursionError:
        raise ProtocolError(f"{what} is nested too deeply") from None
    except ValueError as exc:  # json.JSONDecodeError, and integers too long to convert
        raise ProtocolError(f"{what} is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ProtocolError(f"{what} must be a JSON object, not {_json_kind(value)}")
    return value


def _json_kind(value: object) -> str:
    """What JSON calls the kind of a decoded ``value``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _request_id(message: dict[str, Any], what: str) -> RequestId:
    """The message's id; :class:`ProtocolError` when it has none that could be answered."""
    if "id" not in message:
        raise ProtocolError(f"{what} has no id")
    value = message["id"]
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ProtocolError(f"{what}'s id must be an integer or a string, not {_json_kind(value)}")
    if isinstance(value, str) and not _unicode(value):
        raise ProtocolError(
            f"{what}'s id holds a lone surrogate (\\uD800-\\uDFFF): no reply can carry it"
        )
    return value


def _unicode(text: str) -> bool:
    """True when ``text`` is valid Unicode (JSON's \\u escapes can make lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def encode_request(
    request_id: RequestId, method: str, params: Params, reply_to: str | None = None
) -> bytes:
    """The request message; ``TypeError``/``ValueError`` naming the method if params aren't JSON."""
    request: dict[str, Any] = {"id": request_id, "method": method, "params": params}
    if reply_to is not None:
        request["reply_to"] = reply_to
    try:
        return _dumps(request)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"the parameters of {method!r} cannot be sent as JSON: {exc}") from exc


def decode_request(data: bytes) -> Request:
    """The request in ``data``; :class:`ProtocolError` when it does not even name its id.

    A request with a usable id but a bad method, params or reply_to comes
    back with ``problem`` set.
    """
    message = _loads(data, "a request")
    request_id = _request_id(message, "a request")
    reply_to = message.get("reply_to")
    if reply_to is not None and not isinstance(reply_to, str):
        return Request(request_id, problem=f"reply_to must be a string, not {_json_kind(reply_to)}")
    method = message.get("method")
    if not isinstance(method, str) or not method:
        kind = "an empty string" if method == "" else _json_kind(method)
        problem = f"method must be a non-empty string, not {kind}"
        return Request(request_id, reply_to=reply_to, problem=problem)
    params = message.get("params", [])
    if not isinstance(params, (list, dict)):
        problem = f"params must be an array or an object, not {_json_kind(params)}"
        return Request(request_id, method, reply_to=reply_to, problem=problem)
    return Request(request_id, method, params, reply_to)


def encode_reply(reply: Reply) -> bytes:
    """The reply message; ``TypeError``/``ValueError`` when the result is not JSON."""
    if reply.error_type is None:
        return _dumps({"id": reply.id, "result": reply.result})
    error = {"type": reply.error_type, "message": reply.error_message}
    return _dumps({"id": reply.id, "error": error})


def decode_reply(data: bytes) -> Reply:
    """The reply in ``data``; :class:`ProtocolError` when it does not name its request.

    A reply that names its request but is otherwise malformed comes back
    with ``problem`` set.
    """
    message = _loads(data, "a reply")
    reply_id = _request_id(message, "a reply")
    if ("result" in message) == ("error" in message):
        return Reply(reply_id, problem="a reply has exactly one of result and error")
    if "result" in message:
        return Reply(reply_id, message["result"])
    error = message["error"]
    if not isinstance(error, dict):
        return Reply(reply_id, problem=f"error must be an object, not {_json_kind(error)}")
    error_type, error_message = error.get("type"), error.get("message", "")
    if not isinstance(error_type, str) or not isinstance(error_message, str):
        return Reply(reply_id, problem="an error's type and message must be strings")
    return Reply(reply_id, error_type=error_type, error_message=error_message)
