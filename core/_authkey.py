"""The ``auth+`` handshake: each end proves that it holds the shared key, before any data.

The wire format, version 1.  On a byte stream the three steps follow each
other with nothing in between; on a message transport each is one message.

1. The server sends 48 bytes: :data:`MAGIC` (16 bytes) and a fresh
   32-byte random *challenge*.
2. The client answers with 64 bytes: ``HMAC-SHA256(key, MAGIC + b"client"
   + challenge)``, then a fresh 32-byte random challenge of its own.
3. The server checks that proof (with :func:`hmac.compare_digest`) and
   sends 33 bytes: ``b"\\x01"`` and ``HMAC-SHA256(key, MAGIC + b"server" +
   client challenge + server challenge)`` when it is right, ``b"\\x00"``
   and 32 zero bytes when it is not.  The client checks the server's proof
   the same way.

Then the inner channel carries the application's data as it is.  The
client sends nothing before it has the server's proof, so nothing it sends
ever reaches a server that does not hold the key; a server hands nothing
to its application from a client that failed.  A recorded answer is useless
to anyone else: the challenge it answers is fresh for every connection,
and the two proofs differ (``b"client"``/``b"server"``), so that a proof
cannot be reflected back to the end that asked for it.  ``MAGIC`` names the
version and the digest, and is covered by both proofs.

Reading before authentication is bounded: the server reads exactly 64
bytes of the client before it decides (the client 48, then 33), never past
them on a stream whose channel offers ``recv_into`` (the socket transports
do; bytes read past them from another stream are kept and delivered
first).  On a message transport a step of any other size fails the
handshake; what one message may cost is the transport's
``max_message_size``.

The key comes from the options :data:`AUTHKEY` (a ``bytes`` keyword, never
written in a URI), :data:`AUTHKEY_ENV` or :data:`AUTHKEY_FILE`, the first
of them given; see :func:`read_key`.
"""

from __future__ import annotations

import errno
import hashlib
import hmac
import os
import re
import secrets
import stat
from typing import Protocol, runtime_checkable

from anyipc._address import Address
from anyipc._capabilities import Boundaries
from anyipc._channel import Channel
from anyipc._deadline import Deadline
from anyipc._errors import AuthenticationError, InvalidAddress, IPCError
from anyipc._options import Option, OptionValue

__all__ = [
    "AUTHKEY",
    "AUTHKEY_ENV",
    "AUTHKEY_FILE",
    "AUTH_TIMEOUT",
    "MAGIC",
    "MAX_KEY_FILE",
    "Steps",
    "client_side",
    "read_key",
    "server_side",
]

MAGIC = b"#anyipc-auth-1#\n"  #: version 1: HMAC-SHA256 challenges in both directions
NONCE = 32
PROOF = 32  # bytes of an HMAC-SHA256
CHALLENGE = len(MAGIC) + NONCE
ANSWER = PROOF + NONCE
VERDICT = 1 + PROOF
_WELCOME, _REFUSED = b"\x01", b"\x00"
MAX_KEY_FILE = 4096  #: the largest key file, in bytes
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def _check_key(value: OptionValue) -> str | None:
    return "the key must not be empty" if value == b"" else None


def _check_env(value: OptionValue) -> str | None:
    if isinstance(value, str) and _ENV_NAME.match(value):
        return None
    return "must be the name of an environment variable (letters, digits and _)"


AUTHKEY = Option(
    name="authkey",
    kind=bytes,
    default=None,
    keyword_only=True,
    check=_check_key,
    doc="the shared key, as bytes (a keyword only: never written in a URI)",
)
AUTHKEY_FILE = Option(
    name="authkey_file",
    kind=str,
    default=None,
    doc="a file holding the shared key (one trailing newline is not part of it)",
)
AUTHKEY_ENV = Option(
    name="authkey_env",
    kind=str,
    default=None,
    check=_check_env,
    doc="the name of an environment variable holding the shared key",
)
AUTH_TIMEOUT = Option(
    name="auth_timeout",
    kind=float,
    default=10.0,
    minimum=0.001,
    doc="seconds the peer has to prove that it holds the key",
)


def read_key(address: Address) -> bytes:
    """The shared key that ``address``'s options name; :class:`InvalidAddress` if there is none.

    The first given of ``authkey``, ``authkey_env`` and ``authkey_file`` is
    used (so that a client may connect to a listener's address, which names
    the listener's key file, with a key of its own).  A key file must be a
    regular file of at most
    :data:`MAX_KEY_FILE` bytes that other users may not read or write
    (``chmod 600``); one trailing newline is not part of the key.  The key,
    from wherever it comes, must not be empty.  Messages never show it.
    """
    given = [option for option in (AUTHKEY, AUTHKEY_ENV, AUTHKEY_FILE) if address.get(option)]
    if not given:
        raise InvalidAddress(
            "auth+ needs a key: authkey=b'...' (a keyword), authkey_env=NAME or authkey_file=PATH"
        )
    option = given[0]
    value = address.get(option)
    if option is AUTHKEY:
        assert isinstance(value, bytes)
        return value
    assert isinstance(value, str)
    if option is AUTHKEY_ENV:
        key = os.environb.get(os.fsencode(value))
        if not key:
            raise InvalidAddress(f"auth+: the environment variable {value} is not set or empty")
        return key
    return _key_file(value)


def _key_file(path: str) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as exc:
        raise InvalidAddress(f"auth+: cannot open the key file {path}: {exc.strerror}") from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise InvalidAddress(f"auth+: the key file {path} is not a regular file")
        if info.st_mode & stat.S_IRWXO:
            raise InvalidAddress(
                f"auth+: other users may use the key file {path} "
                f"(mode {stat.S_IMODE(info.st_mode):03o}): chmod o-rwx it"
            )
        key = os.read(fd, MAX_KEY_FILE + 1)
    finally:
        os.close(fd)
    if len(key) > MAX_KEY_FILE:
        raise InvalidAddress(f"auth+: the key file {path} is above {MAX_KEY_FILE} bytes")
    key = key.removesuffix(b"\n")
    if not key:
        raise InvalidAddress(f"auth+: the key file {path} is empty")
    return key


def _proof(key: bytes, *parts: bytes) -> bytes:
    return hmac.new(key, b"".join((MAGIC, *parts)), hashlib.sha256).digest()


@runtime_checkable
class _ReadsInto(Protocol):
    def recv_into(self, buffer: bytearray | memoryview, *, timeout: float | None = None) -> int:
        """Receive 1..len(buffer) stream bytes into ``buffer``."""


class Steps:
    """The handshake's reads and writes on ``inner``: whole steps, never more of a stream.

    ``surplus`` holds stream bytes read past the handshake (only from an
    inner channel without ``recv_into``); the channel delivers them first.
    """

    def __init__(self, inner: Channel, deadline: Deadline) -> None:
        self.inner = inner
        self.deadline = deadline
        self.surplus = b""
        self._stream = inner.capabilities.boundaries is Boundaries.STREAM
        self._read_into = inner.recv_into if isinstance(inner, _ReadsInto) else None

    def send(self, data: bytes) -> None:
        """Send one step."""
        self.inner.send(data, timeout=self.deadline.remaining())

    def take(self, size: int, what: str) -> bytes:
        """The next step, ``size`` bytes (named ``what`` in errors).

        :class:`AuthenticationError` for a message of another size; the
        inner channel's errors (:class:`Timeout` once the deadline passed).
        """
        if not self._stream:
            message = self.inner.recv(timeout=self.deadline.remaining())
            if len(message) != size:
                raise _refused(f"the peer sent {len(message)} bytes where {what} was due")
            return message
        taken = bytearray(self.surplus[:size])
        self.surplus = self.surplus[size:]
        while len(taken) < size:
            if self._read_into is not None:
                room = bytearray(size - len(taken))
                taken += room[: self._read_into(room, timeout=self.deadline.remaining())]
                continue
            piece = self.inner.recv(timeout=self.deadline.remaining())
            needed = size - len(taken)
            taken += piece[:needed]
            self.surplus = piece[needed:]
        return bytes(taken)


def _refused(why: str) -> AuthenticationError:
    return AuthenticationError(errno.EACCES, f"auth+: {why}")


def server_side(steps: Steps, key: bytes) -> None:
    """Challenge the client and prove the key to it; :class:`AuthenticationError` if it fails."""
    challenge = secrets.token_bytes(NONCE)
    steps.send(MAGIC + challenge)
    answer = steps.take(ANSWER, "the client's proof")
    if not hmac.compare_digest(answer[:PROOF], _proof(key, b"client", challenge)):
        try:
            steps.send(_REFUSED + bytes(PROOF))  # tells an auth+ client why
        except IPCError:
            pass  # it is gone, or reads nothing: refused all the same
        raise _refused("the client's proof is wrong: it does not hold this key")
    steps.send(_WELCOME + _proof(key, b"server", answer[PROOF:], challenge))


def client_side(steps: Steps, key: bytes) -> None:
    """Prove the key to the server and check its proof; :class:`AuthenticationError` if it fails."""
    opening = steps.take(CHALLENGE, "the server's challenge")
    if opening[: len(MAGIC)] != MAGIC:
        raise _refused("the server does not speak auth+ version 1 (is it an auth+ listener?)")
    challenge = opening[len(MAGIC) :]
    mine = secrets.token_bytes(NONCE)
    steps.send(_proof(key, b"client", challenge) + mine)
    verdict = steps.take(VERDICT, "the server's verdict")
    if verdict[:1] == _REFUSED:
        raise _refused("the server refused this end's key: the two keys differ")
    expected = _proof(key, b"server", mine, challenge)
    if verdict[:1] != _WELCOME or not hmac.compare_digest(verdict[1:], expected):
        raise _refused("the server's proof is wrong: it does not hold this key")
