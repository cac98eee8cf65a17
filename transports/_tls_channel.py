"""The channel of the ``tls+`` layer: TLS over an inner STREAM channel that it owns.

:class:`TLSChannel` starts the :class:`Handshake` of its :class:`Session`
when it is made, and is the verbs over them: ``send`` (encrypting a piece
at a time), ``recv`` (decrypting), readiness, and the orderly close
(``close_notify``).  The semantics are in :mod:`anyipc.transports.tls`.
"""

from __future__ import annotations

import ssl
from typing import Protocol, runtime_checkable

from anyipc._address import Address
from anyipc._channel import Channel
from anyipc._deadline import Deadline
from anyipc._errors import ConnectionLost, EndOfChannel, IPCError, Timeout
from anyipc._options import OptionValue
from anyipc._records import Role
from anyipc.transports._tls_handshake import Handshake
from anyipc.transports._tls_options import HANDSHAKE_TIMEOUT, SERVER_HOSTNAME, host, tls_uri
from anyipc.transports._tls_session import CLOSE_TIMEOUT, Session, refusal

_CHUNK = 65536  # plaintext bytes encrypted per step of a send
_HANDSHAKE_POLL = 0.05  # how often anyipc.wait re-checks a channel whose handshake runs


@runtime_checkable
class _Inherited(Protocol):
    fds: tuple[int, ...]


class TLSChannel(Channel):
    """A TLS session over the STREAM channel ``inner``, which it owns; see the module."""

    def __init__(self, inner: Channel, address: Address, role: Role) -> None:
        session = Session(inner, address, role)
        extra: dict[str, OptionValue] = {}
        hostname = session.tls.server_hostname
        if hostname and inner.peer is not None:
            if host(Address.parse_syntax(inner.peer).location) != hostname:
                extra[SERVER_HOSTNAME.name] = hostname
        inherited = isinstance(inner, _Inherited) and bool(inner.fds)
        super().__init__(
            inner.capabilities,  # the layer's: the inner channel's as they are
            # an inherited end's address says how to adopt it, which a TLS end does not allow
            address=None if inherited else tls_uri(inner.address, address, {}),
            peer=tls_uri(inner.peer, address, extra),
        )
        self.watchers = inner.watchers  # an fd-less inner rings these when data arrives
        self.poll_interval = _HANDSHAKE_POLL  # until the handshake is over: see _handshake_over
        self._inner = inner
        self._session = session
        timeout = address.get(HANDSHAKE_TIMEOUT)
        assert isinstance(timeout, float)
        self._handshake = Handshake(session, timeout, self._handshake_over)
        try:
            self._handshake.start()
        except BaseException:
            self.close()
            raise

    def _handshake_over(self) -> None:
        """The handshake thread's last act: readiness no longer needs re-checks."""
        self.poll_interval = None
        self.watchers.notify()

    def _await_handshake(self, deadline: Deadline) -> None:
        self._handshake.wait(deadline)
        self._check_open()

    # -- receiving --------------------------------------------------------------------
    def _recv(self, deadline: Deadline) -> bytes:
        self._await_handshake(deadline)
        session = self._session
        while True:
            with session.lock:
                session.decrypt()
                if session.plain:
                    data = bytes(session.plain)
                    session.plain.clear()
                    return data
                if session.ended is not None:
                    raise EndOfChannel(session.ended)
                session.raise_failure()
            try:
                piece = self._inner.recv(timeout=deadline.remaining())
            except EndOfChannel:
                with session.lock:
                    session.incoming.write_eof()  # close_notify came first, or this is truncation
                continue
            except ConnectionLost as exc:
                session.fail(ConnectionLost, str(exc))
                raise
            with session.lock:
                session.incoming.write(piece)

    # -- sending ----------------------------------------------------------------------
    def _send(self, data: memoryview, deadline: Deadline) -> None:
        self._await_handshake(deadline)
        session = self._session
        session.raise_failure()
        try:
            session.flush(deadline)
        except Timeout:
            raise Timeout("send timed out writing earlier bytes; none of these was sent") from None
        sent = 0
        while sent < len(data):
            chunk = data[sent : sent + _CHUNK]
            with session.lock:
                session.raise_failure()
                try:
                    session.tls.write(chunk)
                except ssl.SSLError as exc:
                    session.failed = refusal(exc)
                    session.raise_failure()
                finally:
                    session.outbox += session.outgoing.read()
            sent += len(chunk)
            try:
                session.flush(deadline)
            except Timeout:
                raise Timeout(
                    f"send timed out after {sent} of {len(data)} bytes (the last of them are "
                    "written first by the next send, or by close)",
                    sent=sent,
                ) from None

    # -- readiness and closing ----------------------------------------------------------
    def _wait_fd(self) -> int | None:
        return None if self._inner.closed else self._inner._wait_fd()

    def _ready(self) -> bool:
        if not self._handshake.done.is_set():
            return False
        session = self._session
        ended = session.ended is not None or session.failed is not None
        return ended or bool(session.plain) or self._inner._ready()

    def _interrupt(self) -> None:
        # First thing close() does: let a handshake in progress end (an orderly end needs
        # it), say goodbye unless a send is in progress, then close the inner channel,
        # which wakes every call blocked in it.
        self._handshake.done.wait(CLOSE_TIMEOUT)
        if self._send_lock.acquire(blocking=False):
            try:
                self._goodbye()
            finally:
                self._send_lock.release()
        self._inner.close()

    def _goodbye(self) -> None:
        """Write what is committed and close_notify, within CLOSE_TIMEOUT (best effort)."""
        if not self._handshake.done.is_set():
            return
        self._discard_unread()
        session = self._session
        with session.lock:
            if session.failed is not None:
                return
            try:
                session.tls.unwrap()
            except ssl.SSLError:  # SSLWantReadError: the peer's close_notify is not awaited
                pass
            session.outbox += session.outgoing.read()
        try:
            session.flush(Deadline(CLOSE_TIMEOUT))
        except IPCError:  # the peer reads nothing or is gone: it sees the stream cut
            pass

    def _discard_unread(self) -> None:
        """Read away what arrived unread (session tickets, say) unless a recv is in progress.

        A socket closed with unread bytes makes its kernel reset the connection,
        and the reset can destroy what this end sent last, close_notify included.
        A peer that keeps sending is read for CLOSE_TIMEOUT at most.
        """
        deadline = Deadline(CLOSE_TIMEOUT)
        while not deadline.expired():
            try:
                self._inner.recv(timeout=0)
            except IPCError:  # nothing more now (Timeout), a recv in progress, or the end
                return

    def _close(self) -> None:
        self._handshake.join()
