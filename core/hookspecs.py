"""The hooks a plugin implements to add transports and layers to anyipc.

A plugin is any module or object with functions marked ``@hookimpl``,
registered through the entry-point group ``anyipc`` in its distribution::

    [project.entry-points.anyipc]
    mytransport = "anyipc_mytransport"

Built-in transports are registered exactly the same way.
"""

from __future__ import annotations

from collections.abc import Sequence

import pluggy

from anyipc._records import LayerSpec, TransportSpec

__all__ = ["hookimpl", "hookspec"]

hookspec = pluggy.HookspecMarker("anyipc")
hookimpl = pluggy.HookimplMarker("anyipc")


@hookspec
def anyipc_transports() -> Sequence[TransportSpec]:
    """Return the transports this plugin provides, one record per scheme.

    Called once, when anyipc first needs its registry.  The records are
    validated then; a scheme that another plugin already provides is reported
    as a conflict naming both distributions, and neither is used until one
    is blocked (``ANYIPC_BLOCK_PLUGINS``).  Example::

        from anyipc import Capabilities, TransportSpec, hookimpl

        @hookimpl
        def anyipc_transports():
            return [
                TransportSpec(
                    scheme="mine",
                    description="my mechanism",
                    capabilities=lambda address: MY_CAPABILITIES,
                    check_location=lambda location: None,
                    test_address=lambda: "mine://test",
                    pair=open_pair,
                )
            ]
    """
    raise NotImplementedError


@hookspec
def anyipc_layers() -> Sequence[LayerSpec]:
    """Return the layers this plugin provides (``name+scheme://``), one record each.

    Validated and attributed like transports.  Example::

        from anyipc import LayerSpec, hookimpl

        @hookimpl
        def anyipc_layers():
            return [
                LayerSpec(
                    name="upper",
                    description="upper-cases everything (a toy)",
                    requires=lambda inner: None,
                    capabilities=lambda inner, address: inner,
                    wrap=lambda channel, address, role: UpperChannel(channel),
                )
            ]
    """
    raise NotImplementedError
