"""The Channel and Listener interfaces that every transport implements."""

from __future__ import annotations

import abc
from collections.abc import Iterator
from typing import TypeAlias

from anyipc._capabilities import Boundaries, Capabilities, Connection
from anyipc._deadline import Deadline
from anyipc._endpoint import Endpoint
from anyipc._errors import EndOfChannel, MessageTooLarge, NotSupported

__all__ = ["BytesLike", "Channel", "Listener", "receiving_view"]

BytesLike: TypeAlias = bytes | bytearray | memoryview


def as_byte_view(data: object) -> memoryview:
    """``data`` as a flat, read-only byte view; ``TypeError`` if it is not bytes-like."""
    if isinstance(data, str):
        raise TypeError("data must be bytes-like, not str: encode it first")
    try:
        view = memoryview(data)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"data must be bytes-like, not {type(data).__name__}") from None
    if view.format != "B" or view.ndim != 1 or not view.c_contiguous:
        view = memoryview(view.tobytes())
    return view.toreadonly()


def receiving_view(buffer: bytearray | memoryview) -> memoryview:
    """``buffer`` as a flat byte view for ``recv_into``; ``TypeError``/``ValueError`` if unfit."""
    view = memoryview(buffer).cast("B")
    if view.readonly:
        raise TypeError("recv_into needs a writable buffer")
    if not len(view):
        raise ValueError("recv_into needs a non-empty buffer")
    return view


class Channel(Endpoint, abc.ABC):
    """One end of a conversation.  Thread-safe: sends never interleave.

    The public methods validate their arguments, the channel's state and the
    capabilities, then call the transport's ``_send``/``_recv`` (and, for
    CONNECTIONLESS transports, ``_send_to``/``_recv_from``) under a lock.

    Semantics, for every transport:

    * MESSAGE boundaries: a ``send`` is one whole message or nothing, and a
      ``recv`` returns exactly one whole message (zero-length included).
    * STREAM boundaries: ``send`` delivers all bytes (an empty send does
      nothing) and ``recv`` returns 1..n bytes as they arrive, never ``b""``.
    * ``recv`` raises :class:`EndOfChannel` once the peer closed in an orderly
      way and everything it sent was received, :class:`ConnectionLost` if it
      vanished, :class:`Timeout` if nothing arrived in time (the channel stays
      usable), :class:`ChannelClosed` after this end was closed, including
      when another thread closes it during the call.
    * ``send`` raises :class:`MessageTooLarge` before sending anything when the
      message exceeds ``capabilities.max_message_size``, :class:`Timeout` when
      the transport's buffer stays full, :class:`ConnectionLost` when the peer
      is gone (never ``BrokenPipeError``, never SIGPIPE).
    * Operations this end cannot do raise :class:`NotSupported` at once.
    """

    def __init__(
        self,
        capabilities: Capabilities,
        *,
        address: str | None = None,
        peer: str | None = None,
        can_send: bool = True,
        can_recv: bool = True,
    ) -> None:
        super().__init__(capabilities, address)
        self.peer = peer
        self.can_send = can_send
        self.can_recv = can_recv

    # -- for implementers -------------------------------------------------------
    @abc.abstractmethod
    def _send(self, data: memoryview, deadline: Deadline) -> None:
        """Send ``data`` (size already checked) before ``deadline``."""

    @abc.abstractmethod
    def _recv(self, deadline: Deadline) -> bytes:
        """Receive one message, or 1..n stream bytes, before ``deadline``."""

    def _send_to(self, data: memoryview, address: str, deadline: Deadline) -> None:
        raise NotSupported(f"{type(self).__name__} cannot send_to")

    def _recv_from(self, deadline: Deadline) -> tuple[bytes, str]:
        raise NotSupported(f"{type(self).__name__} cannot recv_from")

    # -- public -------------------------------------------------------------------
    def send(self, data: BytesLike, *, timeout: float | None = None) -> None:
        """Send ``data`` (any bytes-like object) to the peer; see the class semantics."""
        view = as_byte_view(data)
        self._check_can_send()
        if self.capabilities.connection is Connection.CONNECTIONLESS and self.peer is None:
            raise NotSupported("this channel has no default peer: use send_to(data, address)")
        self._check_size(view)
        deadline = Deadline(timeout)
        if not len(view) and self.capabilities.boundaries is Boundaries.STREAM:
            return
        self._locked(self._send_lock, deadline, "send")
        try:
            self._check_open()
            self._send(view, deadline)
        finally:
            self._send_lock.release()

    def recv(self, *, timeout: float | None = None) -> bytes:
        """Receive the next message (or stream bytes); see the class semantics."""
        self._check_can_recv()
        deadline = Deadline(timeout)
        self._locked(self._recv_lock, deadline, "recv")
        try:
            self._check_open()
            return self._recv(deadline)
        finally:
            self._recv_lock.release()

    def send_to(self, data: BytesLike, address: str, *, timeout: float | None = None) -> None:
        """Send one message to ``address`` (a URI) on a CONNECTIONLESS channel."""
        view = as_byte_view(data)
        self._check_can_send()
        self._check_connectionless("send_to", "send")
        self._check_size(view)
        deadline = Deadline(timeout)
        self._locked(self._send_lock, deadline, "send_to")
        try:
            self._check_open()
            self._send_to(view, address, deadline)
        finally:
            self._send_lock.release()

    def recv_from(self, *, timeout: float | None = None) -> tuple[bytes, str]:
        """Receive one message and the sender's address (a URI) on a CONNECTIONLESS channel."""
        self._check_can_recv()
        self._check_connectionless("recv_from", "recv")
        deadline = Deadline(timeout)
        self._locked(self._recv_lock, deadline, "recv_from")
        try:
            self._check_open()
            return self._recv_from(deadline)
        finally:
            self._recv_lock.release()

    def __iter__(self) -> Iterator[bytes]:
        """Yield what ``recv`` returns until the peer's orderly end."""
        while True:
            try:
                yield self.recv()
            except EndOfChannel:
                return

    # -- checks -------------------------------------------------------------------
    def _check_can_send(self) -> None:
        self._check_open()
        if not self.can_send:
            raise NotSupported(
                "this is the receiving end of a simplex channel: it supports recv, not send"
            )

    def _check_can_recv(self) -> None:
        self._check_open()
        if not self.can_recv:
            raise NotSupported(
                "this is the sending end of a simplex channel: it supports send, not recv"
            )

    def _check_connectionless(self, verb: str, instead: str) -> None:
        if self.capabilities.connection is not Connection.CONNECTIONLESS:
            raise NotSupported(
                f"{verb} is for CONNECTIONLESS channels; this one is connected: use {instead}"
            )

    def _check_size(self, view: memoryview) -> None:
        limit = self.capabilities.max_message_size
        if limit is not None and len(view) > limit:
            raise MessageTooLarge(
                f"a message of {len(view)} bytes exceeds this channel's maximum of {limit} bytes"
            )


class Listener(Endpoint, abc.ABC):
    """The passive side of a connection-oriented transport.

    ``accept`` returns the next connection as a :class:`Channel`; it raises
    :class:`Timeout` when none came in time and :class:`ChannelClosed` once
    the listener is closed (also from another thread during the call).
    ``address`` is the real address after binding (port 0 resolved,
    automatic names filled in) as a URI that ``connect`` accepts.  ``close``
    stops accepting and removes what the listener created (its socket file,
    for instance); connections already accepted stay open.
    """

    address: str

    def __init__(self, capabilities: Capabilities, address: str) -> None:
        super().__init__(capabilities, address)

    @abc.abstractmethod
    def _accept(self, deadline: Deadline) -> Channel:
        """Accept the next connection before ``deadline``."""

    def accept(self, *, timeout: float | None = None) -> Channel:
        """The next connection; see the class semantics."""
        self._check_open()
        deadline = Deadline(timeout)
        self._locked(self._recv_lock, deadline, "accept")
        try:
            return self._accept(deadline)
        finally:
            self._recv_lock.release()
