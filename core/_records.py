"""The typed records plugins return: one per transport scheme, one per layer."""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from typing import Any

import attrs

from anyipc._address import Address
from anyipc._capabilities import Capabilities
from anyipc._channel import Channel, Listener
from anyipc._options import Option

__all__ = ["LayerSpec", "Role", "TransportSpec", "VERBS"]

VERBS = ("connect", "listen", "bind", "pair")
_SCHEME = r"[a-z][a-z0-9-]*"


class Role(enum.Enum):
    """Which side of a conversation a layer wraps (TLS needs to know)."""

    CLIENT = "client"  #: the end that connected (or the second end of a pair)
    SERVER = "server"  #: the end that accepted or bound (or the first end of a pair)


def _option_tuple(options: Iterable[Option]) -> tuple[Option, ...]:
    return tuple(options)


def _always_available() -> str | None:
    return None


def _check_options(
    instance: object, attribute: attrs.Attribute[Any], value: tuple[Option, ...]
) -> None:
    names = [option.name for option in value]
    duplicated = {name for name in names if names.count(name) > 1}
    if duplicated:
        raise ValueError(f"options declared twice: {', '.join(sorted(duplicated))}")
    for option in value:
        if not isinstance(option, Option):
            raise TypeError(f"options must be anyipc.Option records, not {option!r}")


def _check_atomic_write(
    instance: object, attribute: attrs.Attribute[Any], value: int | None
) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ValueError(f"atomic_write must be a positive int or None, not {value!r}")


@attrs.frozen(kw_only=True)
class TransportSpec:
    """What a plugin says about one scheme; validated when the plugin loads.

    ``capabilities(address)`` returns the claims for that address (they may
    depend on its options).  ``check_location(location)`` returns a problem
    (a message) or ``None``; it must not touch the OS.  Each verb that the
    transport supports is a callable taking the validated :class:`Address`:
    ``connect`` and ``bind`` return a :class:`Channel`, ``listen`` a
    :class:`Listener`, ``pair`` two connected channels.  ``available()``
    returns why the mechanism cannot be used here, or ``None``.
    ``test_address()`` returns a fresh URI that no other test uses (the
    conformance suite opens it with the first supported verb of listen, bind,
    pair).  ``message_strategy(address)``, if given, returns a
    hypothesis strategy of valid messages for transports that cannot carry
    arbitrary bytes.  ``verbs_for(address)``, if given, narrows the verbs for
    an address whose options rule some out.  ``atomic_write``, for a
    STREAM transport whose endpoint several processes may write into at
    once (a FIFO's writers), is the largest ``send`` that arrives in one
    piece, never interleaved with another writer's bytes (``PIPE_BUF``);
    layers that put messages on the stream (``framed+``) keep each message
    within it.  ``None``: every connection has one sender.
    """

    scheme: str = attrs.field(validator=attrs.validators.matches_re(_SCHEME))
    description: str
    capabilities: Callable[[Address], Capabilities]
    test_address: Callable[[], str]
    check_location: Callable[[str], str | None]
    options: tuple[Option, ...] = attrs.field(
        default=(), converter=_option_tuple, validator=_check_options
    )
    connect: Callable[[Address], Channel] | None = None
    listen: Callable[[Address], Listener] | None = None
    bind: Callable[[Address], Channel] | None = None
    pair: Callable[[Address], tuple[Channel, Channel]] | None = None
    available: Callable[[], str | None] = _always_available
    message_strategy: Callable[[Address], Any] | None = None
    verbs_for: Callable[[Address], tuple[str, ...]] | None = None
    atomic_write: int | None = attrs.field(default=None, validator=_check_atomic_write)

    def __attrs_post_init__(self) -> None:
        if not self.verbs:
            raise ValueError(f"transport {self.scheme!r} supports no verb ({', '.join(VERBS)})")

    @property
    def verbs(self) -> tuple[str, ...]:
        """The verbs this transport supports, in the order of ``VERBS``."""
        return tuple(verb for verb in VERBS if getattr(self, verb) is not None)

    def verbs_at(self, address: Address) -> tuple[str, ...]:
        """The verbs usable with ``address`` (some depend on its options)."""
        if self.verbs_for is None:
            return self.verbs
        return tuple(verb for verb in self.verbs_for(address) if verb in self.verbs)


@attrs.frozen(kw_only=True)
class LayerSpec:
    """What a plugin says about one layer (``name+scheme://``).

    ``requires(inner)`` returns why the layer cannot sit on a transport with
    capabilities ``inner`` (or ``None``).  ``capabilities(inner, address)``
    maps the inner claims to the layered ones.  ``wrap(channel, address,
    role)`` returns the layered channel; it owns ``channel`` from then on
    (closing the result closes it; if ``wrap`` raises, the verb closes it).
    ``check_role(address, role)``, if given, returns why the layer cannot
    play ``role`` with ``address`` (or ``None``): the verbs call it for each
    role they will wrap (``connect`` the client, ``listen`` and ``bind`` the
    server, ``pair`` both) before the transport opens anything, so that a
    bad combination of options (a TLS server without a certificate) is
    :class:`~anyipc.InvalidAddress` at once rather than a failure later.
    """

    name: str = attrs.field(validator=attrs.validators.matches_re(_SCHEME))
    description: str
    requires: Callable[[Capabilities], str | None]
    capabilities: Callable[[Capabilities, Address], Capabilities]
    wrap: Callable[[Channel, Address, Role], Channel]
    options: tuple[Option, ...] = attrs.field(
        default=(), converter=_option_tuple, validator=_check_options
    )
    check_role: Callable[[Address, Role], str | None] | None = None
