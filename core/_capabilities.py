"""The taxonomy: what a transport promises, as a frozen, validated value."""

from __future__ import annotations

import enum
from typing import Any

import attrs

__all__ = [
    "Addressing",
    "Boundaries",
    "Capabilities",
    "Connection",
    "Direction",
    "Scope",
]


class Direction(enum.Enum):
    """Which ends may send."""

    SIMPLEX = "simplex"  #: one end only sends, the other only receives
    HALF_DUPLEX = "half-duplex"  #: both may send, one at a time
    DUPLEX = "duplex"  #: both may send at once


class Boundaries(enum.Enum):
    """Whether message boundaries survive the trip."""

    MESSAGE = "message"  #: each recv returns exactly one whole message
    STREAM = "stream"  #: a byte stream; recv returns 1..n bytes as they arrive


class Connection(enum.Enum):
    """Whether the peer is fixed per connection or named on every send."""

    ORIENTED = "oriented"
    CONNECTIONLESS = "connectionless"


class Scope(enum.Enum):
    """How far apart the two ends may be."""

    PROCESS = "process"  #: both ends in one process
    HOST = "host"  #: processes on one machine
    NETWORK = "network"  #: processes on different machines


class Addressing(enum.Enum):
    """How a process reaches the endpoint."""

    NAMED = "named"  #: any process may open it by its name
    INHERITED = "inherited"  #: only a related process that inherits a handle


def _check_max_size(instance: Capabilities, attribute: object, value: int | None) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"max_message_size must be a non-negative int or None, not {value!r}")
    if instance.boundaries is Boundaries.STREAM:
        raise ValueError("a STREAM transport has no max_message_size (boundaries are not kept)")


@attrs.frozen(kw_only=True)
class Capabilities:
    """The claims a transport makes about a channel; the conformance suite checks each.

    ``lossless``: everything sent before an orderly close is received, or an
    error is raised.  ``ordered``: received in the order sent, per sender
    (and within one priority or message type where the transport has them).
    ``intact``: every message received equals one that was sent.
    ``duplicate_free``: nothing is received twice.  ``max_message_size``:
    the largest message a MESSAGE transport carries (``None``: no limit of
    its own); a STREAM transport has none.  ``reports_end``: the receiver
    learns that the sending side is gone (:class:`EndOfChannel` after an
    orderly close, :class:`ConnectionLost` after a crash); false where
    senders are anonymous (message queues, signals), whose receivers just
    see nothing more arrive.

    Construction validates the combination: inconsistent claims raise
    ``ValueError``.
    """

    direction: Direction = attrs.field(validator=attrs.validators.instance_of(Direction))
    boundaries: Boundaries = attrs.field(validator=attrs.validators.instance_of(Boundaries))
    connection: Connection = attrs.field(validator=attrs.validators.instance_of(Connection))
    lossless: bool = attrs.field(validator=attrs.validators.instance_of(bool))
    ordered: bool = attrs.field(validator=attrs.validators.instance_of(bool))
    intact: bool = attrs.field(validator=attrs.validators.instance_of(bool))
    duplicate_free: bool = attrs.field(validator=attrs.validators.instance_of(bool))
    scope: Scope = attrs.field(validator=attrs.validators.instance_of(Scope))
    addressing: Addressing = attrs.field(validator=attrs.validators.instance_of(Addressing))
    max_message_size: int | None = attrs.field(default=None, validator=_check_max_size)
    reports_end: bool = attrs.field(default=True, validator=attrs.validators.instance_of(bool))

    def __attrs_post_init__(self) -> None:
        if self.boundaries is Boundaries.STREAM and self.connection is Connection.CONNECTIONLESS:
            raise ValueError("a CONNECTIONLESS transport carries datagrams, so it needs MESSAGE")
        if self.boundaries is Boundaries.STREAM and not (
            self.lossless and self.ordered and self.duplicate_free
        ):
            raise ValueError(
                "a STREAM that may lose, reorder or duplicate has no usable meaning; "
                "declare MESSAGE boundaries for such a transport"
            )

    @property
    def reliable(self) -> bool:
        """True when lossless, ordered, intact and duplicate-free all hold."""
        return self.lossless and self.ordered and self.intact and self.duplicate_free

    def evolve(self, **changes: Any) -> Capabilities:
        """A copy with ``changes`` applied, validated like a new value."""
        return attrs.evolve(self, **changes)

    def describe(self) -> dict[str, str]:
        """The claims as short strings, for tables and reports."""
        return {
            "direction": self.direction.value,
            "boundaries": self.boundaries.value,
            "connection": self.connection.value,
            "lossless": _yes_no(self.lossless),
            "ordered": _yes_no(self.ordered),
            "intact": _yes_no(self.intact),
            "duplicate_free": _yes_no(self.duplicate_free),
            "scope": self.scope.value,
            "addressing": self.addressing.value,
            "max_message_size": "-"
            if self.max_message_size is None
            else str(self.max_message_size),
            "reports_end": _yes_no(self.reports_end),
        }


def _yes_no(flag: bool) -> str:
    return "yes" if flag else "no"
