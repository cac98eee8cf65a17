"""Finding plugins, attributing their schemes, and resolving addresses.

Entry points of the group ``anyipc`` are loaded one by one: a plugin that
fails to import, returns invalid records, or claims a scheme another plugin
already provides is recorded as a :class:`PluginProblem` naming its
distribution, and every other plugin keeps working.  The environment
variable ``ANYIPC_BLOCK_PLUGINS`` (comma-separated entry-point or
distribution names) keeps plugins from loading.
"""

from __future__ import annotations

import difflib
import importlib.metadata
import os
import threading
from collections.abc import Iterable

import attrs
import pluggy

from anyipc import hookspecs
from anyipc._address import Address
from anyipc._capabilities import Capabilities
from anyipc._errors import InvalidAddress, TransportUnavailable
from anyipc._options import Option, resolve_options
from anyipc._records import LayerSpec, TransportSpec

__all__ = ["PluginProblem", "Provided", "Registry", "registry"]

BLOCK_VARIABLE = "ANYIPC_BLOCK_PLUGINS"
ENTRY_POINT_GROUP = "anyipc"


@attrs.frozen
class PluginProblem:
    """A plugin that could not be used, and why."""

    plugin: str
    distribution: str
    message: str

    def __str__(self) -> str:
        return f"plugin {self.plugin!r} from {self.distribution}: {self.message}"


@attrs.frozen
class Provided:
    """A transport or layer record with the plugin and distribution it came from."""

    spec: TransportSpec | LayerSpec
    plugin: str
    distribution: str


class Registry:
    """Every transport and layer anyipc knows, loaded once on first use."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._loaded = False
        self.manager = pluggy.PluginManager("anyipc")
        self.manager.add_hookspecs(hookspecs)
        self._transports: dict[str, Provided] = {}
        self._layers: dict[str, Provided] = {}
        self._conflicts: dict[str, list[str]] = {}
        self._problems: list[PluginProblem] = []

    # -- loading ------------------------------------------------------------------
    def _ensure_loaded(self) -> None:
        if self._loaded:
            return
        with self._lock:
            if self._loaded:
                return
            blocked = {name.strip() for name in os.environ.get(BLOCK_VARIABLE, "").split(",")}
            blocked.discard("")
            for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
                distribution = entry_point.dist.name if entry_point.dist else "unknown distribution"
                if entry_point.name in blocked or distribution in blocked:
                    continue
                if self.manager.has_plugin(entry_point.name):
                    self._problems.append(
                        PluginProblem(
                            entry_point.name,
                            distribution,
                            f"entry point name {entry_point.name!r} is already taken by another "
                            "distribution; this one was not loaded",
                        )
                    )
                    continue
                try:
                    plugin = entry_point.load()
                except Exception as exc:  # a broken plugin must not break the others
                    self._problems.append(
                        PluginProblem(
                            entry_point.name,
                            distribution,
                            f"cannot be imported: {type(exc).__name__}: {exc}",
                        )
                    )
                    continue
                self._add(plugin, entry_point.name, distribution)
            self._loaded = True

    def register(
        self, plugin: object, name: str, distribution: str = "registered at run time"
    ) -> None:
        """Add a plugin object (a module or an object with ``@hookimpl`` methods) now.

        For plugins that are not installed as a distribution, e.g. in tests.
        Problems are recorded in :attr:`problems`, as for installed plugins.
        """
        self._ensure_loaded()
        with self._lock:
            self._add(plugin, name, distribution)

    def unregister(self, name: str) -> None:
        """Remove a plugin registered under ``name`` and everything it provided."""
        with self._lock:
            plugin = self.manager.get_plugin(name)
            if plugin is not None:
                self.manager.unregister(plugin)
            for table in (self._transports, self._layers):
                for key in [key for key, provided in table.items() if provided.plugin == name]:
                    del table[key]
            for scheme, providers in list(self._conflicts.items()):
                if name in providers:
                    del self._conflicts[scheme]

    def _add(self, plugin: object, name: str, distribution: str) -> None:
        try:
            self.manager.register(plugin, name=name)
        except Exception as exc:
            self._problems.append(PluginProblem(name, distribution, f"invalid hooks: {exc}"))
            return
        for hook, table, kind in (
            (self.manager.hook.anyipc_transports, self._transports, TransportSpec),
            (self.manager.hook.anyipc_layers, self._layers, LayerSpec),
        ):
            for impl in hook.get_hookimpls():
                if impl.plugin_name != name:
                    continue
                try:
                    records = _validated(impl.function(), kind, hook.name)
                except Exception as exc:
                    self._problems.append(
                        PluginProblem(name, distribution, f"{hook.name}() failed: {exc}")
                    )
                    continue
                for record in records:
                    key = record.scheme if isinstance(record, TransportSpec) else record.name
                    self._insert(table, key, Provided(record, name, distribution))

    def _insert(self, table: dict[str, Provided], key: str, provided: Provided) -> None:
        if key in self._conflicts:
            self._conflicts[key].append(f"{provided.distribution} (plugin {provided.plugin})")
            return
        existing = table.get(key)
        if existing is None:
            table[key] = provided
            return
        del table[key]
        providers = [
            f"{existing.distribution} (plugin {existing.plugin})",
            f"{provided.distribution} (plugin {provided.plugin})",
        ]
        self._conflicts[key] = providers
        self._problems.append(
            PluginProblem(
                provided.plugin,
                provided.distribution,
                f"{key!r} is provided by both {' and '.join(providers)}; "
                f"block one with {BLOCK_VARIABLE}=<plugin or distribution>",
            )
        )

    @property
    def problems(self) -> list[PluginProblem]:
        """Every plugin that could not be used, and why (loads the plugins first)."""
        self._ensure_loaded()
        return list(self._problems)

    def report(self, provided: Provided, error: Exception, what: str) -> None:
        """Record that ``provided`` failed while ``what`` (a plugin bug found after loading)."""
        problem = PluginProblem(
            provided.plugin, provided.distribution, f"{what}: {type(error).__name__}: {error}"
        )
        if problem not in self._problems:
            self._problems.append(problem)

    # -- lookup -------------------------------------------------------------------
    def transports(self) -> dict[str, Provided]:
        """Every usable transport by scheme (conflicting schemes are left out)."""
        self._ensure_loaded()
        return dict(sorted(self._transports.items()))

    def layers(self) -> dict[str, Provided]:
        """Every usable layer by name."""
        self._ensure_loaded()
        return dict(sorted(self._layers.items()))

    def transport(self, scheme: str) -> TransportSpec:
        """The record for ``scheme``; :class:`InvalidAddress` if unknown."""
        provided = self._lookup(self._transports, scheme, "scheme")
        assert isinstance(provided.spec, TransportSpec)
        return provided.spec

    def layer(self, name: str) -> LayerSpec:
        """The record for layer ``name``; :class:`InvalidAddress` if unknown."""
        provided = self._lookup(self._layers, name, "layer")
        assert isinstance(provided.spec, LayerSpec)
        return provided.spec

    def provider(self, scheme: str) -> Provided:
        """Which plugin and distribution provide ``scheme``."""
        return self._lookup(self._transports, scheme, "scheme")

    def _lookup(self, table: dict[str, Provided], key: str, kind: str) -> Provided:
        self._ensure_loaded()
        provided = table.get(key)
        if provided is not None:
            return provided
        if key in self._conflicts:
            raise TransportUnavailable(
                f"{kind} {key!r} is provided by more than one plugin: "
                f"{' and '.join(self._conflicts[key])}; block all but one with {BLOCK_VARIABLE}"
            )
        known = sorted(table)
        close = difflib.get_close_matches(key, known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise InvalidAddress(
            f"unknown {kind} {key!r}{hint} (installed: {', '.join(known) or 'none'})"
        )

    # -- addresses ----------------------------------------------------------------
    def stack(self, address: Address) -> tuple[TransportSpec, list[LayerSpec]]:
        """The transport and the layers (outermost first) ``address`` names."""
        transport = self.transport(address.scheme)
        return transport, [self.layer(name) for name in address.layers]

    def validate(self, address: Address) -> Address:
        """``address`` with its location checked and its options typed.

        Raises :class:`InvalidAddress` for an unknown scheme, layer or
        option, a bad value, a location the transport rejects, or a layer
        that cannot sit on the transport.
        """
        transport, layers = self.stack(address)
        problem = transport.check_location(address.location)
        if problem:
            raise InvalidAddress(f"{address.scheme}://{address.location}: {problem}")
        declared: list[Option] = list(transport.options)
        for layer in layers:
            declared.extend(layer.options)
        owner = "+".join((*address.layers, address.scheme)) + "://"
        typed = address.replace(options=resolve_options(declared, address.query, owner))
        self.capabilities(typed)
        return typed

    def capabilities(self, address: Address) -> Capabilities:
        """The claims for a validated ``address``, layers applied inside out.

        Raises :class:`InvalidAddress` when a layer cannot sit on what is
        beneath it (e.g. ``framed+`` on a transport that keeps boundaries).
        """
        transport, layers = self.stack(address)
        capabilities = transport.capabilities(address)
        below = address.scheme
        for layer in reversed(layers):
            problem = layer.requires(capabilities)
            if problem:
                raise InvalidAddress(f"layer {layer.name}+ cannot sit on {below}://: {problem}")
            capabilities = layer.capabilities(capabilities, address)
            below = f"{layer.name}+{below}"
        return capabilities


def strip_layers(address: Address, layers: Iterable[LayerSpec]) -> Address:
    """``address`` without its layers or their options: what the transport opens."""
    layer_options = {option.name for layer in layers for option in layer.options}
    kept = {name: value for name, value in address.options if name not in layer_options}
    return address.replace(layers=(), options=kept)


def _validated(
    returned: object, kind: type[TransportSpec] | type[LayerSpec], hook: str
) -> list[TransportSpec | LayerSpec]:
    """``returned`` as a list of ``kind`` records; ``TypeError`` naming the first misfit."""
    if not isinstance(returned, Iterable):
        raise TypeError(f"{hook} returned {returned!r}, not a sequence of {kind.__name__}")
    records = list(returned)
    for record in records:
        if not isinstance(record, kind):
            raise TypeError(f"{hook} returned {record!r}, not a {kind.__name__}")
    return records


_REGISTRY: Registry | None = None
_REGISTRY_LOCK = threading.Lock()


def registry() -> Registry:
    """The process-wide registry, created on first use."""
    global _REGISTRY
    if _REGISTRY is None:
        with _REGISTRY_LOCK:
            if _REGISTRY is None:
                _REGISTRY = Registry()
    return _REGISTRY
