"""The TLS session of one ``tls+`` channel, shared by its handshake thread and its callers.

:class:`Session` holds the :class:`ssl.SSLObject`, its two memory buffers,
the bytes decrypted and not yet returned, the bytes encrypted and committed
but not yet written, and the end or failure that calls report; one lock
guards them all and is never held while blocking.  It decrypts what has
arrived and writes what is committed to the inner channel.
:func:`refusal` says which error a TLS failure is reported as.  The
semantics are in :mod:`anyipc.transports.tls`.
"""

from __future__ import annotations

import ssl
import threading

from anyipc._address import Address
from anyipc._channel import Channel
from anyipc._deadline import Deadline
from anyipc._errors import ConnectionLost, IPCError, PermissionDenied, Timeout
from anyipc._records import Role
from anyipc.transports._tls_context import open_session

CLOSE_TIMEOUT = 2.0  #: seconds close() waits for the handshake, then to write close_notify
_READ = 65536  # plaintext bytes asked of one SSLObject.read

#: TLS reasons (OpenSSL's) that mean "authentication failed", and what they say in words
_AUTHENTICATION = ("CERTIFICATE", "UNKNOWN_CA", "ACCESS_DENIED")
_EXPLAINED = {
    "TLSV13_ALERT_CERTIFICATE_REQUIRED": "the server requires a client certificate "
    "(give client_cert= and client_key=)",
    "PEER_DID_NOT_RETURN_A_CERTIFICATE": "the client sent no certificate, and "
    "require_client_cert=true",
    "TLSV1_ALERT_UNKNOWN_CA": "the peer does not trust the CA of this end's certificate",
    "SSLV3_ALERT_BAD_CERTIFICATE": "the peer refused this end's certificate",
    "WRONG_VERSION_NUMBER": "the peer does not speak TLS, or no version allowed here (1.2+)",
    "UNSUPPORTED_PROTOCOL": "no TLS version in common (this end allows 1.2 and later)",
}


def refusal(exc: ssl.SSLError) -> tuple[type[IPCError], str]:
    """The error a TLS failure is reported as, and its message."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return PermissionDenied, (
            f"TLS authentication failed: the peer's certificate is refused here: "
            f"{exc.verify_message} (CERTIFICATE_VERIFY_FAILED; see ca= and server_hostname=)"
        )
    reason = exc.reason or type(exc).__name__
    words = _EXPLAINED.get(reason, reason.lower().replace("_", " "))
    if any(marker in reason for marker in _AUTHENTICATION):
        return PermissionDenied, f"TLS authentication failed: {words} ({reason})"
    return ConnectionLost, f"TLS failed: {words} ({reason})"


class Session:
    """The TLS session for ``role`` over the STREAM channel ``inner`` (which it does not own)."""

    def __init__(self, inner: Channel, address: Address, role: Role) -> None:
        self.tls, self.incoming, self.outgoing = open_session(address, role)
        self.inner = inner
        # Guards the session, its buffers and the state below; never held while blocking.
        self.lock = threading.Lock()
        self.plain = bytearray()  # decrypted, not yet returned by recv
        self.outbox = bytearray()  # encrypted, committed, not yet written to the inner channel
        self.ended: str | None = None  # why recv raises EndOfChannel
        self.failed: tuple[type[IPCError], str] | None = None  # what every call raises

    def fail(self, kind: type[IPCError], message: str) -> None:
        """Note the failure that every call raises from now on (the first one noted)."""
        with self.lock:
            if self.failed is None:
                self.failed = (kind, message)

    def raise_failure(self) -> None:
        """Raise the failure noted, if any."""
        if self.failed is not None:
            kind, message = self.failed
            raise kind(message)

    def decrypt(self) -> None:
        """Decrypt every complete record received; note the end or a failure (lock held)."""
        if self.ended is not None or self.failed is not None:
            return
        try:
            while piece := self.tls.read(_READ):
                self.plain += piece
            self.ended = "the peer ended the TLS session (close_notify)"
        except ssl.SSLWantReadError:
            pass
        except ssl.SSLZeroReturnError:
            self.ended = "the peer ended the TLS session (close_notify)"
        except ssl.SSLEOFError:
            self.failed = (
                ConnectionLost,
                "the connection ended without TLS close_notify: what the peer sent may have "
                "been truncated",
            )
        except ssl.SSLError as exc:
            self.failed = refusal(exc)
        finally:
            self.outbox += self.outgoing.read()  # a reply the session owes (a key update)

    def flush(self, deadline: Deadline) -> None:
        """Write the outbox to the inner channel (the handshake thread, or under the send lock)."""
        while True:
            with self.lock:
                if not self.outbox:
                    return
                data = bytes(self.outbox)
            try:
                self.inner.send(data, timeout=deadline.remaining())
            except Timeout as exc:
                with self.lock:
                    del self.outbox[: exc.sent]
                raise
            with self.lock:
                del self.outbox[: len(data)]
