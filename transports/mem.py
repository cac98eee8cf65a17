"""``mem://name`` — the in-process reference transport, with seeded fault injection.

Every cell of the taxonomy that makes sense in one process is selectable by
option (``boundaries``, ``direction``, ``connection``), so the conformance
suite can be exercised without the OS.  Faults (``lose``, ``duplicate``,
``reorder``, ``corrupt``, ``split``, ``merge``; each a probability per
message, drawn from a generator seeded by ``seed``) make it misbehave
reproducibly.  The declared capabilities follow the faults honestly unless
``honest=false``, which claims a perfect channel anyway: a liar the suite
must catch.

Verbs: ``pair`` always; ``listen``/``connect`` when connection-oriented;
``bind``/``connect`` when connectionless.  Names live in this process only.
"""

from __future__ import annotations

import threading
import uuid
from collections import deque
from collections.abc import Callable

from anyipc import hookimpl
from anyipc._address import Address
from anyipc._capabilities import Addressing, Boundaries, Capabilities, Connection, Direction, Scope
from anyipc._channel import Channel, Listener
from anyipc._deadline import Deadline
from anyipc._errors import AddressInUse, ConnectionLost, InvalidAddress, Timeout
from anyipc._options import Option, OptionValue
from anyipc._readiness import Watchers
from anyipc._records import TransportSpec
from anyipc.transports._mem_faults import FAULTS, Faults
from anyipc.transports._mem_names import NAMES
from anyipc.transports._mem_queue import Queue

OPTIONS = (
    Option(
        name="boundaries",
        kind=str,
        default="message",
        choices=("message", "stream"),
        doc="message or stream",
    ),
    Option(
        name="direction",
        kind=str,
        default="duplex",
        choices=("duplex", "simplex"),
        doc="duplex or simplex (first/connecting end sends)",
    ),
    Option(
        name="connection",
        kind=str,
        default="oriented",
        choices=("oriented", "connectionless"),
        doc="oriented or connectionless",
    ),
    Option(
        name="capacity",
        kind=int,
        default=262144,
        minimum=1,
        doc="bytes queued per direction before send blocks",
    ),
    Option(
        name="max_message_size",
        kind=int,
        default=None,
        minimum=0,
        doc="largest message (message boundaries only)",
    ),
    Option(name="seed", kind=int, default=0, doc="seed of the fault generator"),
    Option(name="honest", kind=bool, default=True, doc="declare the faults in the capabilities"),
    *(
        Option(
            name=fault,
            kind=float,
            default=0.0,
            minimum=0.0,
            maximum=1.0,
            doc=f"probability that a message is subject to '{fault}'",
        )
        for fault in FAULTS
    ),
)
_OPT = {option.name: option for option in OPTIONS}


def _opt(address: Address, name: str) -> OptionValue | None:
    return address.get(_OPT[name])


def _int(address: Address, name: str) -> int:
    value = _opt(address, name)
    assert isinstance(value, int)
    return value


def _faults(address: Address) -> dict[str, float]:
    rates = {fault: _opt(address, fault) for fault in FAULTS}
    return {
        fault: float(rate) for fault, rate in rates.items() if isinstance(rate, float) and rate > 0
    }


def capabilities(address: Address) -> Capabilities:
    """The claims for ``address``: honest about its faults unless ``honest=false``."""
    stream = _opt(address, "boundaries") == "stream"
    connectionless = _opt(address, "connection") == "connectionless"
    faults = _faults(address) if _opt(address, "honest") else {}
    if stream and connectionless:
        raise InvalidAddress("mem://: a connectionless channel carries messages, not a stream")
    if stream and set(_faults(address)) - {"split", "merge"}:
        raise InvalidAddress(
            "mem://: a stream can only split or merge; "
            "lose/duplicate/reorder/corrupt need boundaries=message"
        )
    split = "split" in faults or "merge" in faults
    if split and connectionless:
        raise InvalidAddress(
            "mem://: honest split/merge makes a stream, which cannot be connectionless"
        )
    if split and set(faults) - {"split", "merge"}:
        raise InvalidAddress(
            "mem://: honest split/merge makes a stream, "
            "which cannot also lose, duplicate, reorder or corrupt"
        )
    max_size = _opt(address, "max_message_size")
    assert max_size is None or isinstance(max_size, int)
    if stream and max_size is not None:
        raise InvalidAddress("mem://: max_message_size applies to boundaries=message only")
    return Capabilities(
        direction=Direction.SIMPLEX
        if _opt(address, "direction") == "simplex"
        else Direction.DUPLEX,
        boundaries=Boundaries.STREAM if stream or split else Boundaries.MESSAGE,
        connection=Connection.CONNECTIONLESS if connectionless else Connection.ORIENTED,
        lossless="lose" not in faults,
        ordered="reorder" not in faults,
        intact="corrupt" not in faults,
        duplicate_free="duplicate" not in faults,
        scope=Scope.PROCESS,
        addressing=Addressing.NAMED,
        max_message_size=None if stream or split else max_size,
    )


class MemChannel(Channel):
    """One end of an in-process channel."""

    def __init__(
        self,
        address: Address,
        *,
        inbox: Queue | None,
        outbox: Queue | None,
        local: str | None,
        peer: str | None,
        stream_seed: int,
        can_send: bool = True,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(
            capabilities(address),
            address=local,
            peer=peer,
            can_send=can_send,
            can_recv=inbox is not None,
        )
        self._inbox = inbox
        self._outbox = outbox
        self._faults = Faults(_faults(address), _int(address, "seed"), stream_seed)
        self._stream = _opt(address, "boundaries") == "stream"
        self._on_close = on_close
        if inbox is not None:
            inbox.watchers = self.watchers

    def _raise_if_closed(self) -> None:
        self._check_open()

    def _deliver(self, box: Queue, data: memoryview, deadline: Deadline) -> None:
        items, merge = self._faults.apply(bytes(data))
        if items:
            box.put(items, self.address, deadline, self._raise_if_closed, merge)

    def _send(self, data: memoryview, deadline: Deadline) -> None:
        if self.capabilities.connection is Connection.CONNECTIONLESS:
            self._send_to(data, self.peer or "", deadline)
            return
        assert self._outbox is not None
        self._deliver(self._outbox, data, deadline)

    def _recv(self, deadline: Deadline) -> bytes:
        return self._recv_from_inbox(deadline)[0]

    def _recv_from_inbox(self, deadline: Deadline) -> tuple[bytes, str | None]:
        assert self._inbox is not None
        return self._inbox.get(deadline, self._raise_if_closed, chunk=self._stream)

    def _send_to(self, data: memoryview, address: str, deadline: Deadline) -> None:
        target = Address.parse_syntax(address)
        box = NAMES.inbox_of(target.location)
        if box is None:
            raise ConnectionLost(f"no mem:// endpoint is bound to {address!r}")
        self._deliver(box, data, deadline)

    def _recv_from(self, deadline: Deadline) -> tuple[bytes, str]:
        data, sender = self._recv_from_inbox(deadline)
        return data, sender or ""

    def _ready(self) -> bool:
        box = self._inbox
        return box is not None and bool(box.items or box.ended)

    def _interrupt(self) -> None:
        for box in (self._inbox, self._outbox):
            if box is not None:
                with box.cond:
                    box.cond.notify_all()

    def _close(self) -> None:
        if self._outbox is not None:
            rest = self._faults.flush()
            if rest and not self._outbox.receiver_gone:
                with self._outbox.cond:
                    self._outbox.items.extend((item, self.address) for item in rest)
            self._outbox.end(sender=True)
        if self._inbox is not None:
            self._inbox.end(sender=False)
        if self._on_close is not None:
            self._on_close()


def _uri(address: Address, name: str) -> str:
    return str(address.replace(location=name))


def _connected(
    address: Address, first: str | None, second: str | None
) -> tuple[MemChannel, MemChannel]:
    """Two connected ends; with ``direction=simplex`` the first only sends."""
    capacity = _int(address, "capacity")
    simplex = _opt(address, "direction") == "simplex"
    one, two = Queue(capacity, Watchers()), Queue(capacity, Watchers())
    a = MemChannel(
        address, inbox=None if simplex else two, outbox=one, local=first, peer=second, stream_seed=1
    )
    b = MemChannel(
        address,
        inbox=one,
        outbox=None if simplex else two,
        local=second,
        peer=first,
        stream_seed=2,
        can_send=not simplex,
    )
    return a, b


def pair(address: Address) -> tuple[Channel, Channel]:
    """Two connected in-process ends (connectionless: two bound endpoints that know each other)."""
    if _opt(address, "connection") == "connectionless":
        first = bind(address.replace(location=NAMES.fresh(address.location or "pair")))
        second = connect(
            address.replace(location=Address.parse_syntax(first.address or "").location)
        )
        return first, second
    return _connected(address, _uri(address, address.location or "pair"), None)


class MemListener(Listener):
    """Accepts in-process connections on a mem:// name."""

    def __init__(self, address: Address) -> None:
        self._name = address.location or NAMES.fresh("listener")
        self._template = address
        self._backlog: deque[MemChannel] = deque()
        self._cond = threading.Condition()
        super().__init__(capabilities(address), _uri(address, self._name))
        try:
            NAMES.claim(self._name, self)
        except AddressInUse:
            self._closed = True  # nothing to release: the name was never ours
            raise

    def enqueue(self, channel: MemChannel) -> None:
        with self._cond:
            if self._closed:
                raise ConnectionLost(f"{self.address} stopped listening")
            self._backlog.append(channel)
            self._cond.notify_all()
        self.watchers.notify()

    def _accept(self, deadline: Deadline) -> Channel:
        with self._cond:
            while not self._backlog:
                self._check_open()
                if (
                    not self._cond.wait(deadline.remaining())
                    and deadline.expired()
                    and not self._backlog
                ):
                    raise Timeout("accept timed out")
            return self._backlog.popleft()

    def _ready(self) -> bool:
        return bool(self._backlog)

    def _interrupt(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def _close(self) -> None:
        NAMES.release(self._name)
        with self._cond:
            pending, self._backlog = list(self._backlog), deque()
        for channel in pending:
            channel.close()


def listen(address: Address) -> Listener:
    """Accept connections on ``mem://name`` (an empty name picks a fresh one)."""
    return MemListener(address)


def connect(address: Address) -> Channel:
    """Connect to a mem:// listener; connectionless: a channel whose default peer is ``name``."""
    if _opt(address, "connection") == "connectionless":
        simplex = _opt(address, "direction") == "simplex"
        if simplex:
            return MemChannel(
                address, inbox=None, outbox=None, local=None, peer=str(address), stream_seed=3
            )
        name = NAMES.fresh("auto")
        inbox = Queue(_int(address, "capacity"), Watchers())
        NAMES.claim(name, inbox)
        return MemChannel(
            address,
            inbox=inbox,
            outbox=None,
            local=_uri(address, name),
            peer=str(address),
            stream_seed=3,
            on_close=lambda: NAMES.release(name),
        )
    listener = NAMES.listener(address.location)
    if listener is None:
        raise ConnectionLost(f"nobody listens on mem://{address.location} in this process")
    client, server = _connected(address, None, str(address))
    listener.enqueue(server)
    return client


def bind(address: Address) -> Channel:
    """A named connectionless endpoint that receives on ``mem://name``."""
    name = address.location or NAMES.fresh("bound")
    inbox = Queue(_int(address, "capacity"), Watchers())
    NAMES.claim(name, inbox)
    return MemChannel(
        address,
        inbox=inbox,
        outbox=None,
        local=_uri(address, name),
        peer=None,
        stream_seed=4,
        can_send=_opt(address, "direction") != "simplex",
        on_close=lambda: NAMES.release(name),
    )


def _verbs_for(address: Address) -> tuple[str, ...]:
    if _opt(address, "connection") == "connectionless":
        return ("bind", "connect", "pair")
    return ("listen", "connect", "pair")


def _check_location(location: str) -> str | None:
    if "/" in location:
        return "a mem:// name has no '/'"
    return None


@hookimpl
def anyipc_transports() -> list[TransportSpec]:
    return [
        TransportSpec(
            scheme="mem",
            description="in-process reference transport with seeded fault injection",
            capabilities=capabilities,
            check_location=_check_location,
            test_address=lambda: f"mem://test-{uuid.uuid4().hex[:12]}",
            options=OPTIONS,
            connect=connect,
            listen=listen,
            bind=bind,
            pair=pair,
            verbs_for=_verbs_for,
        )
    ]
