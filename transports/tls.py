"""``tls+`` — TLS over any duplex byte stream (``tls+tcp://``, ``tls+unix://``).

The layer runs TLS (1.2 or later) with :class:`ssl.SSLObject` and two
:class:`ssl.MemoryBIO` over the inner anyipc channel, which therefore need
not be a socket: ``tls+socketpair://`` and ``tls+mem://?boundaries=stream``
work as well as ``tls+tcp://`` and ``tls+unix://``.  The result is a STREAM
channel with the inner capabilities; ``framed+tls+tcp://`` carries messages
over it.

Options (in the URI or as keywords; each end uses those of its role and
ignores the others, so that one URI serves both ends of a ``pair`` and a
listener's ``address`` can be given to ``connect`` as it is):

* ``cert``, ``key`` (server): the server's certificate chain and private
  key, PEM files (``key`` may be left out when the key is in ``cert``'s
  file).  A server needs them (or ``context``).
* ``client_cert``, ``client_key`` (client): the client's certificate and
  key, for servers that ask for one (mutual TLS).
* ``ca``: a PEM bundle of the CAs this end trusts for the peer's
  certificate.  A client without it trusts the system's CAs; a server with
  it asks clients for a certificate and checks any that is sent.
* ``require_client_cert`` (server, default false): refuse clients that
  present no certificate; needs ``ca``.
* ``server_hostname`` (client): the name the server's certificate must be
  issued for (also sent as SNI).  Default: the host of a ``host:port``
  location as written (``tls+tcp://localhost:4242`` checks ``localhost``;
  an IP address is checked against the certificate's IP addresses).
  Locations without a host (``tls+unix://``, ``tls+socketpair://``) must
  name it, or say ``verify=false``: a client that verifies always checks
  the name.
* ``verify`` (client, default true): check the server's certificate
  and name.  ``verify=false`` encrypts without authenticating the server.
* ``handshake_timeout`` (seconds, default 10): the bound on the handshake
  (and what a silent or non-TLS peer costs).
* ``context`` (keyword only, an :class:`ssl.SSLContext`): used as it is
  instead of the file options above (giving both is an error);
  ``server_hostname`` and ``handshake_timeout`` still apply.  It must be
  made for the end's role (``PROTOCOL_TLS_SERVER`` / ``PROTOCOL_TLS_CLIENT``,
  or ``PROTOCOL_TLS`` for both) and allow no TLS before 1.2.

A bad combination (a server without ``cert``, ``require_client_cert``
without ``ca``, ``client_key`` without ``client_cert``, a client with
nothing to check the server's name against) or a file that cannot be
loaded raises :class:`~anyipc.InvalidAddress` from
``connect``/``listen``/``pair`` before anything is opened.  The files are
read again for each connection, so a replaced certificate takes effect for
the next one.  Servers made from the options send no TLS 1.3 session
tickets (sessions are never resumed).

The handshake.  It starts as soon as a channel exists, in a thread of its
own, and never blocks a verb: ``connect`` and ``accept`` return at once (a
silent client costs a server's ``accept`` nothing; and one thread may
connect, accept, send and receive in turn, as with plain sockets, which a
handshake inside ``connect`` would deadlock), and the first
``send``/``recv`` of each end waits for the handshake within the call's own
timeout (:class:`~anyipc.Timeout` leaves the handshake running), which is
where its failure is raised, on both sides, and again by every later call:

* :class:`~anyipc.PermissionDenied` when authentication fails: the peer's
  certificate is refused here (unknown CA, wrong name, expired, missing
  though required), or the peer refused this end's.  The message names the
  TLS reason (``CERTIFICATE_VERIFY_FAILED``, ``TLSV1_ALERT_UNKNOWN_CA``...).
* :class:`~anyipc.ConnectionLost` for every other failure: the peer does not
  speak TLS, no version in common, the connection broke, or no handshake
  within ``handshake_timeout``.
* A peer that closes the connection before the handshake completes (having
  sent nothing) is the end: ``recv`` raises :class:`~anyipc.EndOfChannel`,
  ``send`` :class:`~anyipc.ConnectionLost`.  One that closes in the middle
  of its handshake (a truncated ClientHello) is ``ConnectionLost``.

No application data is ever passed on over a rejected connection: a
``recv`` on the refusing side raises without decrypting anything, and a
client whose check of the server fails never sends.  (TLS 1.3 lets a client
finish its side before the server checks the client's certificate: such a
client's first sends may succeed, into the void; its first ``recv`` raises
``PermissionDenied`` when the server's alert arrives.)

Sending.  ``send`` encrypts 64 KiB at a time and writes each piece before
encrypting the next.  On :class:`~anyipc.Timeout`, ``sent`` counts the
bytes of every piece encrypted so far: they are committed (TLS records
cannot be taken back), the rest of the last one is written first by the
next ``send`` (or by ``close``), and the bytes after ``sent`` were not sent.

Receiving and the end.  ``recv`` returns 1..n decrypted bytes, never
``b""``.  The peer's ``close_notify`` after everything it sent is
:class:`~anyipc.EndOfChannel`; the inner stream ending without it is
:class:`~anyipc.ConnectionLost` ("truncated"), as is any TLS error after
the handshake.

Closing.  ``close()`` lets a handshake in progress end (an orderly end
needs one), reads away whatever arrived unread (a socket closed with
unread bytes is reset by its kernel, which can destroy what this end sent
last), writes what is committed and ``close_notify``, then closes the inner
channel; each wait is at most :data:`CLOSE_TIMEOUT` seconds (a peer that
never answers or never reads).  No ``close_notify`` goes out while another
thread is in ``send``, after a failure, or when the handshake did not end
in time: the peer then sees ``ConnectionLost``, or the end before the
handshake, as the case is.

Readiness.  ``fileno()`` is the inner channel's descriptor, and
:func:`anyipc.wait` reports a channel holding decrypted data, its end or a
failure, whatever the descriptor says.  The handshake reads the peer's
records one at a time (when the inner channel offers ``recv_into``) so that
application data sent right after it stays in the inner channel, where its
descriptor shows it.  While the handshake runs, the descriptor turns
readable with handshake bytes too: a channel reported ready then may still
wait in ``recv`` (give it a timeout); and ``wait`` re-checks the channel
every 50 ms (its ``poll_interval``), so that a handshake that fails with
nothing for the descriptor to show (``handshake_timeout``) is reported.

``address`` and ``peer`` are the inner ones with the ``tls+`` prefix and
the layer's options as given (a client's ``peer`` adds the
``server_hostname`` it checked when the peer's address would not give it).
A TLS end cannot be handed to a child process, since its handshake runs
in this one: it has no ``fds``, and an end of an inherited pair
(``tls+socketpair://``) has no ``address``.

The layer's parts: its options (``_tls_options``), the ``ssl`` objects made
from them (``_tls_context``), the session state that the handshake thread
and the verbs share (``_tls_session``), the handshake thread
(``_tls_handshake``) and the channel (``_tls_channel``), all in
:mod:`anyipc.transports`.
"""

from __future__ import annotations

from anyipc import hookimpl
from anyipc._address import Address
from anyipc._capabilities import Boundaries, Capabilities, Direction
from anyipc._channel import Channel
from anyipc._errors import InvalidAddress
from anyipc._records import LayerSpec, Role
from anyipc.transports._tls_channel import TLSChannel
from anyipc.transports._tls_context import open_session
from anyipc.transports._tls_options import OPTIONS
from anyipc.transports._tls_session import CLOSE_TIMEOUT

__all__ = ["CLOSE_TIMEOUT", "OPTIONS", "TLSChannel"]


def _requires(inner: Capabilities) -> str | None:
    if inner.boundaries is not Boundaries.STREAM:
        return "TLS runs over a byte stream, and this transport keeps message boundaries"
    if inner.direction is not Direction.DUPLEX:
        return f"TLS talks both ways at once, and this transport is {inner.direction.value}"
    if not inner.intact:
        return "TLS needs a stream that is never damaged"
    return None


def _capabilities(inner: Capabilities, address: Address) -> Capabilities:
    return inner


def _check_role(address: Address, role: Role) -> str | None:
    try:
        open_session(address, role)
    except InvalidAddress as exc:
        return str(exc)
    return None


def _wrap(channel: Channel, address: Address, role: Role) -> Channel:
    return TLSChannel(channel, address, role)


@hookimpl
def anyipc_layers() -> list[LayerSpec]:
    return [
        LayerSpec(
            name="tls",
            description="TLS 1.2+ over a duplex byte stream (ssl.SSLObject over the inner channel)",
            requires=_requires,
            capabilities=_capabilities,
            wrap=_wrap,
            options=OPTIONS,
            check_role=_check_role,
        )
    ]
