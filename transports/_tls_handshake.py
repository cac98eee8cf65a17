"""The TLS handshake of a ``tls+`` channel, in a thread of its own.

:class:`Handshake` starts as soon as the channel exists, so that no verb
blocks on it, and drives the channel's :class:`Session` until the
handshake is done or has failed, within ``handshake_timeout``: the failure
is noted in the session, translated to the error that every call raises.
It reads the peer's records one at a time when the inner channel offers
``recv_into``, so that application data sent right after the handshake
stays in the inner channel, where its descriptor shows it.  The semantics
are in :mod:`anyipc.transports.tls`.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from anyipc._deadline import Deadline
from anyipc._errors import ChannelClosed, ConnectionLost, EndOfChannel, IPCError, Timeout
from anyipc.transports._tls_session import CLOSE_TIMEOUT, Session, refusal

_HEADER = 5  # a TLS record header: content type, version (2 bytes), length (2 bytes)


@runtime_checkable
class _ReadsInto(Protocol):
    def recv_into(self, buffer: bytearray | memoryview, *, timeout: float | None = None) -> int:
        """Receive 1..len(buffer) stream bytes into ``buffer``."""


class Handshake:
    """The handshake of ``session`` within ``timeout`` seconds, once :meth:`start` is called.

    ``done`` is set when it is over, whatever the outcome; ``over`` is
    called right after (the channel's readiness changes then).
    """

    def __init__(self, session: Session, timeout: float, over: Callable[[], None]) -> None:
        self.timeout = timeout
        self.done = threading.Event()
        self._session = session
        self._over = over
        inner = session.inner
        self._read_into = inner.recv_into if isinstance(inner, _ReadsInto) else None
        self._header = bytearray()  # the record header being read
        self._received = 0  # bytes of the peer's handshake received so far
        self._record_left = 0  # bytes of the record being read
        self._thread = threading.Thread(target=self._run, name="anyipc-tls-handshake", daemon=True)

    def start(self) -> None:
        """Start the thread; if none can be started, the handshake is over, failed."""
        try:
            self._thread.start()
        except BaseException:
            self._session.fail(ChannelClosed, "no thread could be started for the TLS handshake")
            self.done.set()
            raise

    def wait(self, deadline: Deadline) -> None:
        """Wait until the handshake is over; Timeout when ``deadline`` passes first."""
        while not self.done.wait(deadline.remaining()):
            if deadline.expired():
                raise Timeout(
                    "timed out waiting for the TLS handshake (it goes on, within "
                    f"handshake_timeout={self.timeout:g} s)"
                )

    def join(self) -> None:
        """Wait for the thread to end, if it was started."""
        if self._thread.ident is not None:
            self._thread.join()

    def _run(self) -> None:
        session = self._session
        try:
            self._shake(Deadline(self.timeout))
        except ssl.SSLError as exc:
            try:  # the alert that tells the peer why
                session.flush(Deadline(CLOSE_TIMEOUT))
            except IPCError:
                pass
            session.fail(*refusal(exc))
        except Timeout:
            session.fail(
                ConnectionLost,
                f"no TLS handshake within handshake_timeout={self.timeout:g} s: "
                "the peer sent too little (does it speak TLS?)",
            )
        except EndOfChannel:
            if self._received:  # a truncated handshake, not an end before any
                session.fail(
                    ConnectionLost,
                    f"the peer closed the connection in the middle of the TLS handshake "
                    f"(after {self._received} bytes of it)",
                )
            else:
                with session.lock:
                    session.ended = (
                        "the peer closed the connection before the TLS handshake completed"
                    )
                    session.failed = (ConnectionLost, session.ended)
        except ConnectionLost as exc:
            session.fail(ConnectionLost, f"during the TLS handshake: {exc}")
        except ChannelClosed:
            session.fail(ChannelClosed, "the channel was closed during the TLS handshake")
        except Exception as exc:  # reported to the channel's users, never lost in this thread
            session.fail(ConnectionLost, f"TLS handshake failed: {type(exc).__name__}: {exc}")
        finally:
            self.done.set()
            self._over()

    def _shake(self, deadline: Deadline) -> None:
        session = self._session
        while True:
            with session.lock:
                try:
                    session.tls.do_handshake()
                    done = True
                except ssl.SSLWantReadError:
                    done = False
                finally:
                    session.outbox += session.outgoing.read()
            session.flush(deadline)
            if done:
                with session.lock:
                    session.decrypt()  # bytes read past the handshake (an inner without recv_into)
                return
            piece = self._more(deadline)
            with session.lock:
                session.incoming.write(piece)

    def _more(self, deadline: Deadline) -> bytes:
        """More of the peer's handshake, read without going past the record in progress."""
        if self._read_into is None:
            piece = self._session.inner.recv(timeout=deadline.remaining())
            self._received += len(piece)
            return piece
        buffer = bytearray(self._record_left or _HEADER - len(self._header))
        piece = bytes(buffer[: self._read_into(buffer, timeout=deadline.remaining())])
        self._received += len(piece)
        if self._record_left:
            self._record_left -= len(piece)
            return piece
        self._header += piece
        if len(self._header) == _HEADER:
            self._record_left = int.from_bytes(self._header[3:], "big")
            self._header.clear()
        return piece
