"""Who may talk to an abstract unix socket: the peer's uid, as the kernel reports it.

A name in Linux's abstract namespace (``unix://@name``) has no file, so no
permission bits: any process in the network namespace may connect to it,
or bind it first.  The unix-domain transports therefore check the uid of
the process at the other end themselves, on abstract names only (a socket
file's ``mode`` already decides who may reach it):

* who is admitted: this end's own effective uid (taken when the endpoint is
  created), root (uid 0, which may open any socket file too), and the uids
  of the ``allow_uids`` option (``allow_uids=1001,1002``; ``allow_uids=any``
  admits everyone, the kernel's own rule);
* a listener (``unix://@``, ``unix-seqpacket://@``) reads each accepted
  client's ``SO_PEERCRED`` before it reads anything else: a client it does
  not admit is closed unread and never handed out by ``accept``, which goes
  on waiting for the next one within its timeout.  The client sees its
  connection end (:class:`~anyipc.ConnectionLost` once it has sent
  something, which the listener never read; :class:`~anyipc.EndOfChannel`
  otherwise);
* a client checks the listener's ``SO_PEERCRED`` (its uid when it called
  ``listen``) as soon as it is connected, so that a name taken first by
  another user is not mistaken for the real listener: ``connect`` raises
  :class:`~anyipc.PermissionDenied` naming the uid it found;
* a bound datagram endpoint (``unix-dgram://@``) receives with
  ``SO_PASSCRED``, so that every datagram carries its sender's credentials
  (``SCM_CREDENTIALS``); one from a uid it does not admit, or without
  credentials, is dropped unread, as if never sent.  A datagram client
  cannot learn who bound the name before it sends (the kernel keeps no
  credentials for a datagram connection): where the server must be
  authenticated too, use ``unix-seqpacket://@``.

Every client or datagram refused by a listener or bound endpoint is
logged as a warning on the logger ``anyipc.access``, naming the endpoint
and the uid (a refusing client raises instead).  Credentials cannot be
forged: the kernel fills them in, and a process may claim another uid only
with ``CAP_SETUID``.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import struct
from collections.abc import Sequence

import attrs

from anyipc._address import Address
from anyipc._options import Option, OptionValue

__all__ = [
    "ALLOW_UIDS",
    "CREDENTIALS_SPACE",
    "PeerPolicy",
    "log",
    "peer_uid",
    "policy_of",
    "sender_uid",
]

log = logging.getLogger("anyipc.access")

_UCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid
CREDENTIALS_SPACE = socket.CMSG_SPACE(_UCRED.size)  #: ancillary room for SCM_CREDENTIALS
_ANYONE = "any"
_UIDS = re.compile(r"[0-9]{1,10}(,[0-9]{1,10})*\Z")


def _check_uids(value: OptionValue) -> str | None:
    if value in ("", _ANYONE) or (isinstance(value, str) and _UIDS.match(value)):
        return None
    return "must be uids separated by commas (1001,1002), or 'any' to admit everyone"


ALLOW_UIDS = Option(
    name="allow_uids",
    kind=str,
    default="",
    check=_check_uids,
    doc="abstract names: uids admitted besides this user's and root's (comma-separated, or any)",
)


@attrs.frozen
class PeerPolicy:
    """The uids one endpoint admits at the other end; see the module docstring."""

    owner: int  #: this end's effective uid when it was created
    uids: frozenset[int] = frozenset()  #: admitted besides the owner and root
    anyone: bool = False  #: ``allow_uids=any``: no check at all

    def admits(self, uid: int) -> bool:
        """True when a peer running as ``uid`` may talk to this end."""
        return self.anyone or uid in (0, self.owner) or uid in self.uids

    def refusal(self, uid: int | None) -> str:
        """Why a peer running as ``uid`` (``None``: unknown) is refused, in words."""
        if uid is None:
            return "a peer whose credentials the kernel did not report"
        extra = f", nor in allow_uids={','.join(map(str, sorted(self.uids)))}" if self.uids else ""
        return f"uid {uid}, which is neither this user's ({self.owner}) nor root's{extra}"


def policy_of(address: Address) -> PeerPolicy | None:
    """The policy for an endpoint on ``address``: ``None`` for a socket file (its mode decides)."""
    if not address.location.startswith("@"):
        return None
    value = address.get(ALLOW_UIDS)
    assert isinstance(value, str)
    if value == _ANYONE:
        return PeerPolicy(os.geteuid(), anyone=True)
    uids = frozenset(int(uid) for uid in value.split(",")) if value else frozenset()
    return PeerPolicy(os.geteuid(), uids)


def peer_uid(sock: socket.socket) -> int:
    """The uid of the process at the other end of the connected ``sock`` (``SO_PEERCRED``).

    For an accepted socket, the client's when it connected; for a connected
    one, the listener's when it called ``listen``.  Raises ``OSError``.
    """
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
    return int(_UCRED.unpack(raw)[1])


def sender_uid(ancillary: Sequence[tuple[int, int, bytes]]) -> int | None:
    """The sender's uid from a datagram's ``SCM_CREDENTIALS``; ``None`` when it has none."""
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            if len(data) >= _UCRED.size:
                return int(_UCRED.unpack_from(data)[1])
    return None
