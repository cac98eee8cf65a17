"""The built-in transports and layers, each a plugin registered through the entry-point group.

Importing a submodule makes Python bind this package to the name
``anyipc.transports``, where the :func:`anyipc.transports` function lives;
so that ``anyipc.transports()`` keeps working either way, this package is
callable and does what the function does.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from anyipc._api import TransportInfo


class _CallablePackage(types.ModuleType):
    def __call__(self) -> Mapping[str, TransportInfo]:
        from anyipc._api import transports

        return transports()


sys.modules[__name__].__class__ = _CallablePackage
