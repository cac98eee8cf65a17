"""The verbs: connect, listen, bind, pair, and what is installed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import cast

import attrs

from anyipc._address import Address
from anyipc._capabilities import Capabilities
from anyipc._channel import Channel, Listener
from anyipc._deadline import Deadline
from anyipc._errors import InvalidAddress, NotSupported, TransportUnavailable, descriptors_mapped
from anyipc._options import Option, OptionValue
from anyipc._records import LayerSpec, Role, TransportSpec
from anyipc._registry import registry, strip_layers

__all__ = ["TransportInfo", "bind", "connect", "listen", "pair", "transports"]


def _resolve(
    uri: str | Address, options: Mapping[str, object], verb: str
) -> tuple[Address, TransportSpec, list[LayerSpec]]:
    text = str(uri) if isinstance(uri, Address) else uri
    parsed = Address.parse_syntax(text)
    if options:  # typed and validated by reg.validate below
        parsed = parsed.replace(options=cast(dict[str, OptionValue], {**parsed.query, **options}))
    reg = registry()
    address = reg.validate(parsed)
    transport, layers = reg.stack(address)
    verbs = transport.verbs_at(address)
    if verb not in verbs:
        raise NotSupported(f"{address} does not support {verb}(); it supports: {', '.join(verbs)}")
    reason = transport.available()
    if reason:
        raise TransportUnavailable(f"{address.scheme}:// is not available here: {reason}")
    for depth, layer in enumerate(layers):
        if layer.check_role is None:
            continue
        for role in _ROLES[verb]:
            problem = layer.check_role(_seen_by(address, depth), role)
            if problem:
                raise InvalidAddress(
                    f"{layer.name}+ cannot be the {role.value} side of {verb}(): {problem}"
                )
    return address, transport, layers


#: the roles a verb's channels play: what LayerSpec.check_role is asked about
_ROLES = {
    "connect": (Role.CLIENT,),
    "listen": (Role.SERVER,),
    "bind": (Role.SERVER,),
    "pair": (Role.SERVER, Role.CLIENT),
}


def _seen_by(address: Address, depth: int) -> Address:
    """The address the layer at ``depth`` sees: the stack from itself downwards."""
    return address.replace(layers=address.layers[depth:])


def _layered(channel: Channel, address: Address, layers: list[LayerSpec], role: Role) -> Channel:
    """Wrap ``channel`` in ``layers`` (outermost first), innermost first.

    A layer that raises leaves ``channel`` (and what it wraps) closed.
    """
    for index, layer in enumerate(reversed(layers)):
        depth = len(layers) - index - 1
        try:
            channel = layer.wrap(channel, _seen_by(address, depth), role)
        except BaseException:
            channel.close()
            raise
    return channel


def connect(uri: str | Address, **options: object) -> Channel:
    """Open a channel to the endpoint ``uri`` names (the active side).

    Options may be given in the URI query or as keywords (keywords win).
    Raises :class:`InvalidAddress` for a bad URI or option (before touching
    the OS), :class:`NotSupported` when the transport has no ``connect``,
    :class:`TransportUnavailable` when the mechanism is missing here, and
    :class:`ConnectionLost` / :class:`PermissionDenied` when the endpoint
    cannot be reached.  Running out of descriptors (here or in any verb)
    is :class:`TransportUnavailable` naming ``RLIMIT_NOFILE`` and its value.
    """
    with descriptors_mapped(f"connect to {uri}"):
        address, transport, layers = _resolve(uri, options, "connect")
        assert transport.connect is not None  # _resolve checked the verb
        channel = transport.connect(strip_layers(address, layers))
        return _layered(channel, address, layers, Role.CLIENT)


def bind(uri: str | Address, **options: object) -> Channel:
    """Create the named endpoint ``uri`` and return the channel that receives on it.

    For connectionless transports, FIFO readers, message queues and
    ``signal://self``.  Raises like :func:`connect`, plus
    :class:`AddressInUse` when a live endpoint owns the name.
    """
    with descriptors_mapped(f"bind {uri}"):
        address, transport, layers = _resolve(uri, options, "bind")
        assert transport.bind is not None  # _resolve checked the verb
        channel = transport.bind(strip_layers(address, layers))
        return _layered(channel, address, layers, Role.SERVER)


def pair(uri: str | Address, **options: object) -> tuple[Channel, Channel]:
    """Two connected ends (``pipe://``, ``socketpair://``, ``mem://``...).

    For a SIMPLEX transport the first end sends and the second receives.
    """
    with descriptors_mapped(f"make a pair of {uri}"):
        address, transport, layers = _resolve(uri, options, "pair")
        assert transport.pair is not None  # _resolve checked the verb
        first, second = transport.pair(strip_layers(address, layers))
        try:
            return (
                _layered(first, address, layers, Role.SERVER),
                _layered(second, address, layers, Role.CLIENT),
            )
        except BaseException:
            first.close()
            second.close()
            raise


def listen(uri: str | Address, **options: object) -> Listener:
    """Start accepting connections on ``uri`` (the passive side).

    Raises like :func:`bind`.  ``Listener.address`` is the address to give
    to :func:`connect` (port 0 resolved, automatic names filled in).
    """
    with descriptors_mapped(f"listen on {uri}"):
        address, transport, layers = _resolve(uri, options, "listen")
        assert transport.listen is not None  # _resolve checked the verb
        listener = transport.listen(strip_layers(address, layers))
    if not layers:
        return listener
    return LayeredListener(listener, address, layers)


class LayeredListener(Listener):
    """A listener whose accepted channels are wrapped in layers."""

    def __init__(self, inner: Listener, address: Address, layers: list[LayerSpec]) -> None:
        resolved = Address.parse_syntax(inner.address)
        layer_options = {
            name: value
            for name, value in address.options
            if any(name == o.name for layer in layers for o in layer.options)
        }
        public = resolved.replace(
            layers=address.layers, options={**resolved.query, **layer_options}
        )
        super().__init__(registry().capabilities(address), str(public))
        self._inner = inner
        self._stack = address
        self._layers = layers

    def _accept(self, deadline: Deadline) -> Channel:
        channel = self._inner.accept(timeout=deadline.remaining())
        return _layered(channel, self._stack, self._layers, Role.SERVER)

    def _close(self) -> None:
        self._inner.close()

    def _wait_fd(self) -> int | None:
        return self._inner._wait_fd()

    def _ready(self) -> bool:
        return self._inner._ready()


@attrs.frozen
class TransportInfo:
    """What ``anyipc.transports()`` says of one scheme."""

    scheme: str
    description: str
    capabilities: Capabilities
    verbs: tuple[str, ...]
    options: tuple[Option, ...]
    plugin: str
    distribution: str
    unavailable: str | None  #: why it cannot be used here, or None

    @property
    def available(self) -> bool:
        """True when the mechanism can be used on this machine."""
        return self.unavailable is None


def transports() -> Mapping[str, TransportInfo]:
    """Every installed transport by scheme: capabilities, verbs, provider, availability.

    The capabilities are those of the transport's test address (its
    defaults); options may change them.  Plugins that failed to load, and
    transports whose record fails when asked, are not listed: they are in
    the registry's problems, which ``anyipc transports`` reports.
    """
    reg = registry()
    infos: dict[str, TransportInfo] = {}
    for scheme, provided in reg.transports().items():
        spec = provided.spec
        assert isinstance(spec, TransportSpec)
        try:
            infos[scheme] = TransportInfo(
                scheme=scheme,
                description=spec.description,
                capabilities=spec.capabilities(Address.parse(spec.test_address())),
                verbs=spec.verbs,
                options=spec.options,
                plugin=provided.plugin,
                distribution=provided.distribution,
                unavailable=spec.available(),
            )
        except Exception as exc:  # a plugin bug: reported, and the others still listed
            reg.report(provided, exc, f"{scheme}:// cannot describe itself")
    return infos
