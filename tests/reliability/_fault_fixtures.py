"""The fixtures the fault tests share; a test module takes them by assigning them to its names.

``server`` is a fork server of peer processes for a module (started before
the per-test leak check looks, so its descriptors are not counted);
``peers`` is a test's view of it, whose workers are all killed and reaped
when the test ends.  ``directory`` is a private directory with a short path,
``tls_options`` the options of a TLS listener, and ``survivor`` (taken
indirectly, with a :class:`Transport` as its parameter) the surviving end
of :class:`Survivor`, skipped where its transport is unavailable.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import anyipc

from ._fault_control import ForkServer, Peers, fork_server, peers_of
from ._fault_survivor import Survivor
from ._fault_transports import Transport, private_directory, tls_listener_options

__all__ = ["directory", "peers", "server", "survivor", "tls_options"]


@pytest.fixture(scope="module")
def server() -> Iterator[ForkServer]:
    """The module's fork server of peer processes."""
    with fork_server() as started:
        yield started


@pytest.fixture
def peers(server: ForkServer) -> Iterator[Peers]:
    """The test's peer processes: all killed and reaped when it ends."""
    with peers_of(server) as started:
        yield started


@pytest.fixture(scope="module")
def tls_options(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The options of a TLS listener whose address a client can connect to as it is."""
    return tls_listener_options(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def directory() -> Iterator[Path]:
    """A private directory with a short path, removed at the end."""
    with private_directory() as path:
        yield path


@pytest.fixture
def survivor(
    request: pytest.FixtureRequest, directory: Path, tls_options: str
) -> Iterator[Survivor]:
    """The surviving end for the transport given as the parameter (skipped if unavailable)."""
    transport: Transport = request.param
    unavailable = anyipc.transports()[transport.scheme].unavailable
    if unavailable is not None:
        pytest.skip(f"{transport.scheme}:// is unavailable here: {unavailable}")
    with Survivor(transport, directory, tls_options) as opened:
        yield opened
