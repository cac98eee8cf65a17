"""The end that outlives its peers in the fault tests, and what a peer needs to reach it.

A :class:`Survivor` opens one transport of :data:`TRANSPORTS` in this
process: a listener, a bound channel, or (for inherited transports) one end
of a fresh pair per peer.  Per round it hands out an :class:`Offer`, the URI
(and descriptors) a peer process opens, and then gives this process's
channel to that peer.  For a peer that reads what this process writes,
:meth:`Survivor.reader` starts one, bound to an endpoint of its own where
the transport is bound.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import Any

import attrs

import anyipc

from ._fault_control import Peers, Worker
from ._fault_transports import Transport

__all__ = ["Offer", "Survivor"]


@attrs.define
class Offer:
    """What one peer gets to reach the survivor: a URI, and descriptors it inherits.

    A ``uri`` of an inherited end says ``{fd}`` where the peer's descriptor
    number goes.  ``handed`` closes the survivor's copy of the handed end.
    """

    uri: str
    fds: tuple[int, ...] = ()
    end: anyipc.Channel | None = None  #: the handed end, closed by ``handed``

    def handed(self) -> None:
        """The peer has its copy: close ours (so that its death is the end)."""
        if self.end is not None:
            self.end.close()


class Survivor:
    """The end that outlives its peers: a listener, a bound channel, or one end of each pair."""

    def __init__(self, transport: Transport, directory: Path, tls: str = "") -> None:
        self.transport = transport
        self._uri = transport.uri.format(dir=directory, tls=tls)
        # where a reading peer binds: its own place (the name it got is kept for the next one)
        self._reader_uri = transport.uri.format(dir=directory / "reader", tls=tls)
        (directory / "reader").mkdir(exist_ok=True)
        self._endpoint: anyipc.Listener | anyipc.Channel | None = None
        self._kept: anyipc.Channel | None = None  # our end of the current pair
        self._accepted: list[anyipc.Channel] = []
        if transport.verb != "pair":
            self.reopen()

    def reopen(self) -> None:
        """Open (again) the listener or bound channel, on the same name."""
        if self._endpoint is not None:
            self._endpoint.close()
            self._endpoint = None
        if self.transport.verb == "listen":
            self._endpoint = anyipc.listen(self._uri)
        else:
            self._endpoint = anyipc.bind(self._uri)
        assert self._endpoint.address is not None
        self._uri = self._endpoint.address  # a name picked at the first opening is kept

    @property
    def capabilities(self) -> anyipc.Capabilities:
        """The claims of the survivor's channels (for a pair transport: after ``offer``)."""
        endpoint = self._endpoint if self._endpoint is not None else self._kept
        assert endpoint is not None, "a pair transport has no end before the first offer"
        return endpoint.capabilities

    @property
    def max_message_size(self) -> int:
        """The largest message the survivor's channels carry (see :attr:`capabilities`)."""
        limit = self.capabilities.max_message_size
        assert limit is not None, "every transport here carries messages"
        return limit

    def offer(self, peer_sends: bool = True) -> Offer:
        """What the next peer needs; for a pair transport, a fresh pair (we keep one end).

        A pipe's first end writes and its second reads: the peer gets the
        first unless ``peer_sends`` is false.
        """
        if self.transport.verb != "pair":
            assert self._endpoint is not None and self._endpoint.address is not None
            return Offer(self._endpoint.address)
        self._close_kept()
        first, second = anyipc.pair(self._uri)
        handed, self._kept = (second, first)
        if self.transport.scheme == "pipe" and peer_sends:
            handed, self._kept = (first, second)
        assert handed.address is not None
        fds: tuple[int, ...] = handed.fds  # type: ignore[attr-defined]
        return Offer(re.sub(r"fd/\d+", "fd/{fd}", handed.address), fds, handed)

    def reader(self, peers: Peers, **drain: Any) -> tuple[anyipc.Channel, Worker]:
        """A peer that reads (``drain`` with those arguments), and our channel to it.

        For a bound transport the peer binds an endpoint of its own (the same
        name each time, but for ``signal://``, where it is the peer's pid)
        and the channel is ours, to close; otherwise it is accepted, or our
        end of a fresh pair.
        """
        if self.transport.verb == "bind":
            worker = peers.start("drain", uri=self._reader_uri, verb="bind", **drain)
            address = worker.event("ready")["address"]
            if self.transport.scheme != "signal":
                self._reader_uri = address
            return anyipc.connect(address), worker
        offer = self.offer(peer_sends=False)
        worker = peers.start("drain", uri=offer.uri, fds=offer.fds, verb="connect", **drain)
        offer.handed()
        return self.channel(), worker

    def channel_to(self, worker: Worker, timeout: float = 10.0) -> anyipc.Channel:
        """Our channel to ``worker``, the peer just offered; see :meth:`channel`.

        A bound endpoint waits until the worker reports that it connected: a
        FIFO's reader sees the end of the previous writer until the next one
        has opened the FIFO.
        """
        if self.transport.verb == "bind":
            worker.event("connected")
        return self.channel(timeout)

    def channel(self, timeout: float = 10.0) -> anyipc.Channel:
        """Our channel to the peer that was just offered: accepted, bound, or our pair end."""
        if isinstance(self._endpoint, anyipc.Listener):
            accepted = self._endpoint.accept(timeout=timeout)
            self._accepted.append(accepted)
            return accepted
        channel = self._kept if self._endpoint is None else self._endpoint
        assert channel is not None
        return channel

    def _close_kept(self) -> None:
        if self._kept is not None:
            self._kept.close()
            self._kept = None

    def close(self) -> None:
        """Close everything the survivor opened."""
        with contextlib.ExitStack() as stack:
            for channel in self._accepted:
                stack.callback(channel.close)
            if self._endpoint is not None:
                stack.callback(self._endpoint.close)
            stack.callback(self._close_kept)
        self._accepted.clear()
        self._endpoint = None

    def __enter__(self) -> Survivor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
