"""``auth+`` — a shared key, proven by both ends before any data (``auth+tcp://``, ``auth+unix://``).

A TCP port on the loopback interface, or a socket whose mode lets a group
in, may be reached by processes that should not talk to the server.  With
``auth+`` each end proves that it holds one shared secret key (an
HMAC-SHA256 challenge in each direction, with fresh random challenges, so
a recorded exchange cannot be replayed; the wire format is in
:mod:`anyipc._authkey`), and nothing passes before both proofs are checked.
It authenticates; it does not encrypt (use ``tls+`` beneath or instead for
that: ``auth+tls+tcp://``).

It sits on any connection-oriented, duplex, reliable transport: byte
streams (``tcp``, ``unix``, ``tls+tcp``...) and message transports
(``unix-seqpacket``, ``shm``, ``framed+tcp``...); the capabilities are the
inner ones.  ``framed+auth+tcp://`` carries messages over an
authenticated stream.

The key: the first given of

* ``authkey=b"..."``, a keyword argument only: a key written in a URI is
  refused (:class:`~anyipc.InvalidAddress`), and no address or message ever
  shows one;
* ``authkey_env=NAME``: the environment variable ``NAME`` holds the key;
* ``authkey_file=/path``: a regular file of at most 4096 bytes, which other
  users may not read or write (``chmod 600``; anything else is refused),
  read again for each connection so that a replaced key takes effect for
  the next one; one trailing newline is not part of the key.

A listener's ``address`` names its ``authkey_file`` or ``authkey_env`` (never
the key): a client that connects to it uses the same source, or one of its
own given as a keyword (``authkey`` or ``authkey_env`` win over
``authkey_file``).  No key, an empty key or a key file that cannot be used is
:class:`~anyipc.InvalidAddress` from ``connect``/``listen``/``pair``
before anything is opened.  Option ``auth_timeout`` (seconds, default 10)
bounds the handshake.

The handshake runs beside the channel, in a thread of its own, so no verb
waits for it: ``connect`` and ``accept`` return at once (a client that
says nothing costs ``accept`` nothing: it goes on serving the others, and
the silent one fails after ``auth_timeout``), and one thread may connect,
accept, send and receive in turn.  The first ``send`` or ``recv`` of each
end waits for the handshake within the call's own timeout
(:class:`~anyipc.Timeout` leaves it running), and raises its failure, as
does every later call:

* :class:`~anyipc.AuthenticationError` (a
  :class:`~anyipc.PermissionDenied`) when the key is not proven: the
  peer's proof is wrong (the keys differ), the peer refused this end's
  proof, the peer does not speak the handshake (a client or server without
  ``auth+``), or no proof came within ``auth_timeout``;
* :class:`~anyipc.ConnectionLost` when the connection ended or broke
  before the handshake completed.

Nothing a peer sends is ever delivered by a channel whose handshake failed,
and a client sends nothing before the server has proven the key.  A server
reads at most 64 bytes of a client before it decides (see
:mod:`anyipc._authkey`).

Readiness: ``fileno()`` is the inner channel's descriptor; it also turns
readable with handshake bytes, so a channel reported ready while its
handshake runs may still wait in ``recv``, and :func:`anyipc.wait`
re-checks it every 50 ms until the handshake is over.  ``address`` and
``peer`` are the inner ones with the ``auth+`` prefix and the layer's
options as given (never ``authkey``).  An ``auth+`` end cannot be handed
to a child process (its handshake runs in this one): an end of an
inherited pair has no ``address``.  Closing lets a handshake in progress
end first (for at most :data:`CLOSE_TIMEOUT` seconds), so that a channel
closed right after ``connect`` or ``accept`` ends in order, then closes
the inner channel.
"""

from __future__ import annotations

import errno
import threading
from collections.abc import Callable
from functools import partial
from typing import Protocol, runtime_checkable

from anyipc import hookimpl
from anyipc._address import Address
from anyipc._authkey import (
    AUTH_TIMEOUT,
    AUTHKEY,
    AUTHKEY_ENV,
    AUTHKEY_FILE,
    Steps,
    client_side,
    read_key,
    server_side,
)
from anyipc._capabilities import Boundaries, Capabilities, Connection, Direction
from anyipc._channel import Channel
from anyipc._deadline import Deadline
from anyipc._errors import (
    AuthenticationError,
    ChannelClosed,
    ConnectionLost,
    EndOfChannel,
    InvalidAddress,
    IPCError,
    Timeout,
)
from anyipc._records import LayerSpec, Role

__all__ = ["CLOSE_TIMEOUT", "OPTIONS", "AuthChannel"]

OPTIONS = (AUTHKEY, AUTHKEY_FILE, AUTHKEY_ENV, AUTH_TIMEOUT)
_URI_OPTIONS = frozenset(option.name for option in OPTIONS if not option.keyword_only)
_LARGEST_STEP = 64  # the client's answer: what a message transport must carry
_HANDSHAKE_POLL = 0.05  # how often anyipc.wait re-checks a channel whose handshake runs
CLOSE_TIMEOUT = 2.0  #: the longest close() waits for a handshake in progress, in seconds

Side = Callable[[Steps, bytes], None]


@runtime_checkable
class _Inherited(Protocol):
    fds: tuple[int, ...]


def _auth_uri(uri: str | None, address: Address) -> str | None:
    """``uri`` with the ``auth+`` prefix and the layer's options given in ``address``."""
    if uri is None:
        return None
    inner = Address.parse_syntax(uri)
    given = {name: value for name, value in address.options if name in _URI_OPTIONS}
    return str(inner.replace(layers=("auth", *inner.layers), options={**inner.query, **given}))


class AuthChannel(Channel):
    """The channel ``inner``, which it owns, once its handshake as ``role`` succeeded."""

    def __init__(self, inner: Channel, address: Address, role: Role) -> None:
        key = read_key(address)
        inherited = isinstance(inner, _Inherited) and bool(inner.fds)
        super().__init__(
            inner.capabilities,
            address=None if inherited else _auth_uri(inner.address, address),
            peer=_auth_uri(inner.peer, address),
        )
        self.watchers = inner.watchers  # an fd-less inner rings these when data arrives
        self.poll_interval = _HANDSHAKE_POLL
        self._inner = inner
        timeout = address.get(AUTH_TIMEOUT)
        assert isinstance(timeout, float)
        self._timeout = timeout
        self._steps = Steps(inner, Deadline(timeout))
        self._failed: Callable[[], IPCError] | None = None  # makes the error of a failure
        self._surplus = b""
        self._done = threading.Event()
        side: Side = server_side if role is Role.SERVER else client_side
        self._thread = threading.Thread(
            target=self._run, args=(side, key), name="anyipc-auth-handshake", daemon=True
        )
        try:
            self._thread.start()
        except BaseException:
            self._done.set()  # no handshake to wait for: close at once
            self.close()
            raise

    # -- the handshake, in its thread ---------------------------------------------------
    def _run(self, side: Side, key: bytes) -> None:
        try:
            side(self._steps, key)
            self._surplus = self._steps.surplus
        except AuthenticationError as exc:
            self._failed = partial(AuthenticationError, errno.EACCES, exc.strerror)
        except Timeout:
            self._failed = partial(
                AuthenticationError,
                errno.EACCES,
                f"auth+: the peer proved no key within auth_timeout={self._timeout:g} s "
                "(does it use auth+?)",
            )
        except (EndOfChannel, ConnectionLost) as exc:
            self._failed = partial(
                ConnectionLost, f"auth+: the connection ended during the handshake ({exc})"
            )
        except ChannelClosed:
            self._failed = partial(ChannelClosed, "the channel was closed during the handshake")
        except Exception as exc:  # reported to the channel's users, never lost in this thread
            self._failed = partial(
                ConnectionLost, f"auth+ handshake failed: {type(exc).__name__}: {exc}"
            )
        finally:
            self._done.set()
            self.poll_interval = None
            self.watchers.notify()

    def _await_handshake(self, deadline: Deadline) -> None:
        while not self._done.wait(deadline.remaining()):
            if deadline.expired():
                raise Timeout(
                    "timed out waiting for the auth+ handshake (it goes on, within "
                    f"auth_timeout={self._timeout:g} s)"
                )
        self._check_open()
        if self._failed is not None:
            raise self._failed()

    # -- the verbs ------------------------------------------------------------------------
    def _recv(self, deadline: Deadline) -> bytes:
        self._await_handshake(deadline)
        if self._surplus:
            data, self._surplus = self._surplus, b""
            return data
        return self._inner.recv(timeout=deadline.remaining())

    def _send(self, data: memoryview, deadline: Deadline) -> None:
        self._await_handshake(deadline)
        self._inner.send(data, timeout=deadline.remaining())

    # -- readiness and closing ----------------------------------------------------------
    def _wait_fd(self) -> int | None:
        return None if self._inner.closed else self._inner._wait_fd()

    def _ready(self) -> bool:
        if not self._done.is_set():
            return False
        return self._failed is not None or bool(self._surplus) or self._inner._ready()

    def _interrupt(self) -> None:
        # First thing close() does: let a handshake in progress end (within CLOSE_TIMEOUT), so
        # that closing right after connect or accept is an orderly end, not a cut handshake;
        # then close the inner channel, which wakes every call blocked in it.
        self._done.wait(CLOSE_TIMEOUT)
        self._inner.close()

    def _close(self) -> None:
        if self._thread.ident is not None:
            self._thread.join()


def _requires(inner: Capabilities) -> str | None:
    if inner.connection is not Connection.ORIENTED or inner.direction is not Direction.DUPLEX:
        return "the handshake needs a connection that carries both ways"
    if not (inner.lossless and inner.ordered and inner.intact):
        return "the handshake needs a transport that loses, reorders and damages nothing"
    limit = inner.max_message_size
    if inner.boundaries is Boundaries.MESSAGE and limit is not None and limit < _LARGEST_STEP:
        return f"the handshake sends messages of {_LARGEST_STEP} bytes, above this one's {limit}"
    return None


def _capabilities(inner: Capabilities, address: Address) -> Capabilities:
    return inner


def _check_role(address: Address, role: Role) -> str | None:
    try:
        read_key(address)
    except InvalidAddress as exc:
        return str(exc)
    return None


def _wrap(channel: Channel, address: Address, role: Role) -> Channel:
    return AuthChannel(channel, address, role)


@hookimpl
def anyipc_layers() -> list[LayerSpec]:
    return [
        LayerSpec(
            name="auth",
            description="a shared key, proven by both ends before any data (HMAC-SHA256 "
            "challenges in both directions)",
            requires=_requires,
            capabilities=_capabilities,
            wrap=_wrap,
            options=OPTIONS,
            check_role=_check_role,
        )
    ]
