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
* ``protocol``: how the rings publish messages.  ``lockfree`` (single
  ordered stores, :mod:`anyipc._shmring`) holds only where stores become
  visible in program order, x86-64, and is the default there; ``locked``
  (:mod:`anyipc._shmlock`) holds on any processor and is the default
  elsewhere.  ``protocol=lockfree`` on another processor is
  :class:`~anyipc.InvalidAddress`, saying why.  Both ends must use the same
  protocol: a listener's address names it when it is not the default, and
  a client with another is refused and told why.
* ``connect_timeout`` (seconds, default 10).

The transports are available on every processor; their description says
which protocol runs by default here, and why.
"""

from __future__ import annotations

import functools
import mmap
import platform
from collections.abc import Callable

import attrs

from anyipc._address import Address
from anyipc._capabilities import Addressing, Boundaries, Capabilities, Connection, Direction, Scope
from anyipc._channel import Channel, Listener
from anyipc._errors import AddressInUse, InvalidAddress
from anyipc._options import Option
from anyipc._owner import mode_bits, mode_option
from anyipc._records import TransportSpec
from anyipc._shmlink import Backend, shm_connect, shm_listen
from anyipc._shmlock import LOCK_FREE_PROTOCOL, LOCKED_PROTOCOL
from anyipc._shmring import LOCK_FREE, LOCK_FREE_MACHINES, RECORD_HEADER, capacity_problem
from anyipc._shmsetup import Terms
from anyipc._sockets import CONNECT_TIMEOUT, connect_timeout

__all__ = [
    "CAPABILITIES",
    "DEFAULT_PROTOCOL",
    "DEFAULT_SIZE",
    "MappedFile",
    "ShmFlavour",
    "lock_free_problem",
    "protocol_note",
    "shm_transport",
]

DEFAULT_SIZE = 4 << 20
DEFAULT_PROTOCOL = LOCK_FREE_PROTOCOL if LOCK_FREE else LOCKED_PROTOCOL  #: here


def lock_free_problem(machine: str | None = None) -> str | None:
    """Why the lock-free protocol cannot run on ``machine`` (default: this one), or ``None``."""
    machine = machine or platform.machine()
    if machine.lower() in LOCK_FREE_MACHINES:
        return None
    return (
        f"the lock-free rings need x86-64's store order, and this is {machine}: "
        f"use protocol={LOCKED_PROTOCOL}"
    )


def protocol_note(machine: str | None = None) -> str:
    """What the transports' descriptions say about their protocol on ``machine`` (default: here)."""
    machine = machine or platform.machine()
    if lock_free_problem(machine) is None:
        return (
            "lock-free rings by default, as x86-64's store order holds here "
            f"(protocol={LOCKED_PROTOCOL} for a lock)"
        )
    return f"locked rings by default: the lock-free ones need x86-64's store order, not {machine}'s"


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
PROTOCOL = Option(
    name="protocol",
    kind=str,
    default=DEFAULT_PROTOCOL,
    choices=(LOCK_FREE_PROTOCOL, LOCKED_PROTOCOL),
    check=lambda value: lock_free_problem() if value == LOCK_FREE_PROTOCOL else None,
    doc=f"how the rings publish messages: {LOCK_FREE_PROTOCOL} (x86-64 only) or "
    f"{LOCKED_PROTOCOL} (under a lock, any processor); both ends must agree",
)

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


def capabilities(address: Address) -> Capabilities:
    """The claims for ``address``: ``max_message_size`` follows its ``size``."""
    size = address.get(SIZE)
    assert isinstance(size, int)
    return CAPABILITIES.evolve(max_message_size=size - RECORD_HEADER)


def _always_available() -> str | None:
    return None


@attrs.frozen(kw_only=True)
class ShmFlavour:
    """What one shared-memory transport adds to the common parts."""

    scheme: str
    description: str
    backend: Callable[[Address], Backend]  #: where the segments of ``address`` come from
    check_location: Callable[[str], str | None]
    fresh_name: Callable[[], str]  #: a name for ``listen`` without one
    #: remove what dead processes left for this listener (run once the name is its own)
    reclaim: Callable[[Terms], None]
    available: Callable[[], str | None] = _always_available
    tag: Callable[[str], str] = str  #: a short word for a long name (sockets are 107 bytes)
    sync: Option | None = None  #: a boolean option asking to write each message back
    #: before listening: make what the listener needs, and return what undoes it at close
    prepare: Callable[[Address], Callable[[], None]] | None = None


def _terms(flavour: ShmFlavour, address: Address, name: str) -> Terms:
    size, spin, protocol = address.get(SIZE), address.get(SPIN_US), address.get(PROTOCOL)
    assert isinstance(size, int) and isinstance(spin, int) and isinstance(protocol, str)
    shown: dict[str, int | str] = {SIZE.name: size} if size != DEFAULT_SIZE else {}
    if protocol != DEFAULT_PROTOCOL:
        shown[PROTOCOL.name] = protocol
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
        protocol=protocol,
    )


def shm_transport(flavour: ShmFlavour) -> TransportSpec:
    """The transport record of ``flavour``: ``listen`` and ``connect`` over its segments."""

    def listen(address: Address) -> Listener:
        if not address.location:
            address = address.replace(location=flavour.fresh_name())
        terms = _terms(flavour, address, address.location)
        undo = flavour.prepare(address) if flavour.prepare is not None else None
        try:
            reclaim = functools.partial(flavour.reclaim, terms)
            return shm_listen(terms, flavour.backend(address), on_close=undo, claimed=reclaim)
        except AddressInUse:
            raise  # a live listener has the name: what prepare found there is its own
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
        description=f"{flavour.description}; {protocol_note()}",
        capabilities=capabilities,
        check_location=flavour.check_location,
        test_address=lambda: f"{flavour.scheme}://{flavour.fresh_name()}",
        options=(SIZE, SPIN_US, MODE, PROTOCOL, CONNECT_TIMEOUT, *filter(None, [flavour.sync])),
        listen=listen,
        connect=connect,
        available=flavour.available,
    )
