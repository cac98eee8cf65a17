"""What the shared-memory transports share: options, claims, and their listen and connect.

Each of ``shm://``, ``sysvshm://`` and ``mmap://`` differs only in where a
connection's segment comes from (its :class:`~anyipc._shmlink.Backend`),
how its names are written, and what it reclaims when a listener starts;
:func:`shm_transport` builds the rest.

Options, the same for all of them:

* ``size``: bytes of each ring's data area, a power of two from 4 KiB to
  1 GiB (default 4 MiB).  A message is at most ``size - 8`` bytes
  (``max_message_size``); a larger one is :class:`~anyipc.MessageTooLarge`
  before anything is written (there is no splitting).  Both ends must use
  the same ``size``; a client with another is refused and told why.
* ``spin_us`` (default 500): the longest a waiting end polls its ring
  before it sleeps (see :class:`anyipc._pacer.Pacer`); 0 sleeps at once.
* ``mode`` (default ``600``): who may connect, checked against each
  client's credentials (see :mod:`anyipc._shmlink`).
* ``connect_timeout`` (seconds, default 10).
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Callable

import attrs

from anyipc._address import Address
from anyipc._capabilities import Addressing, Boundaries, Capabilities, Connection, Direction, Scope
from anyipc._channel import Channel, Listener
from anyipc._errors import InvalidAddress
from anyipc._options import Option
from anyipc._owner import mode_bits, mode_option
from anyipc._records import TransportSpec
from anyipc._shmlink import Backend, Terms, shm_connect, shm_listen
from anyipc._shmring import LOCK_FREE, RECORD_HEADER, capacity_problem
from anyipc._sockets import CONNECT_TIMEOUT, connect_timeout

__all__ = [
    "CAPABILITIES",
    "DEFAULT_SIZE",
    "MappedFile",
    "ShmFlavour",
    "lock_free_problem",
    "shm_transport",
]

DEFAULT_SIZE = 4 << 20

SIZE = Option(
    name="size",
    kind=int,
    default=DEFAULT_SIZE,
    check=lambda value: capacity_problem(value) if isinstance(value, int) else None,
    doc="bytes of each direction's ring (a power of two; a message is at most size - 8)",
)
SPIN_US = Option(
    name="spin_us",
    kind=int,
    default=500,
    minimum=0,
    maximum=1_000_000,
    doc="microseconds a waiting end polls its ring before it sleeps",
)
MODE = mode_option("who may connect (checked against each client's uid and gid)")

CAPABILITIES = Capabilities(
    direction=Direction.DUPLEX,
    boundaries=Boundaries.MESSAGE,
    connection=Connection.ORIENTED,
    lossless=True,
    ordered=True,
    intact=True,
    duplicate_free=True,
    scope=Scope.HOST,
    addressing=Addressing.NAMED,
    max_message_size=DEFAULT_SIZE - RECORD_HEADER,
)


class MappedFile:
    """A segment mapped from a descriptor (:class:`~anyipc._shmchannel.Mapping`)."""

    def __init__(self, fd: int, size: int) -> None:
        self._map = mmap.mmap(fd, size)
        self.memory = memoryview(self._map)

    def sync(self) -> None:
        """Nothing: memory that no file backs needs no writing back."""

    def close(self) -> None:
        self.memory.release()
        self._map.close()


def lock_free_problem() -> str | None:
    """Why the lock-free rings cannot run here, or ``None``."""
    if not LOCK_FREE:
        return f"the lock-free rings need x86-64's store order, and this is {os.uname().machine}"
    return None


def capabilities(address: Address) -> Capabilities:
    """The claims for ``address``: ``max_message_size`` follows its ``size``."""
    size = address.get(SIZE)
    assert isinstance(size, int)
    return CAPABILITIES.evolve(max_message_size=size - RECORD_HEADER)


@attrs.frozen(kw_only=True)
class ShmFlavour:
    """What one shared-memory transport adds to the common parts."""

    scheme: str
    description: str
    backend: Callable[[Address], Backend]  #: where the segments of ``address`` come from
    check_location: Callable[[str], str | None]
    fresh_name: Callable[[], str]  #: a name for ``listen`` without one
    reclaim: Callable[[Terms], None]  #: remove what dead processes left for this listener
    available: Callable[[], str | None]
    tag: Callable[[str], str] = str  #: a short word for a long name (sockets are 107 bytes)
    sync: Option | None = None  #: a boolean option asking to write each message back
    #: before listening: make what the listener needs, and return what undoes it at close
    prepare: Callable[[Address], Callable[[], None]] | None = None


def _terms(flavour: ShmFlavour, address: Address, name: str) -> Terms:
    size, spin = address.get(SIZE), address.get(SPIN_US)
    assert isinstance(size, int) and isinstance(spin, int)
    shown = {SIZE.name: size} if size != DEFAULT_SIZE else {}
    return Terms(
        scheme=flavour.scheme,
        name=name,
        tag=flavour.tag(name),
        capacity=size,
        spin=spin / 1e6,
        mode=mode_bits(address.get(MODE)),
        capabilities=capabilities(address),
        uri=str(Address(flavour.scheme, name, shown)),
        sync=flavour.sync is not None and bool(address.get(flavour.sync)),
    )


def shm_transport(flavour: ShmFlavour) -> TransportSpec:
    """The transport record of ``flavour``: ``listen`` and ``connect`` over its segments."""

    def listen(address: Address) -> Listener:
        if not address.location:
            address = address.replace(location=flavour.fresh_name())
        terms = _terms(flavour, address, address.location)
        undo = flavour.prepare(address) if flavour.prepare is not None else None
        try:
            flavour.reclaim(terms)
            return shm_listen(terms, flavour.backend(address), on_close=undo)
        except BaseException:
            if undo is not None:
                undo()
            raise

    def connect(address: Address) -> Channel:
        if not address.location:
            raise InvalidAddress(
                f"{flavour.scheme}://: connect needs the listener's name ({flavour.scheme}://NAME)"
            )
        terms = _terms(flavour, address, address.location)
        return shm_connect(terms, flavour.backend(address), connect_timeout(address))

    return TransportSpec(
        scheme=flavour.scheme,
        description=flavour.description,
        capabilities=capabilities,
        check_location=flavour.check_location,
        test_address=lambda: f"{flavour.scheme}://{flavour.fresh_name()}",
        options=(SIZE, SPIN_US, MODE, CONNECT_TIMEOUT, *filter(None, [flavour.sync])),
        listen=listen,
        connect=connect,
        available=flavour.available,
    )
