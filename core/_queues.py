"""What the transports over named kernel message queues (``posixmq://``, ``sysvmq://``) share.

:class:`QueueEnd` is the base of their channels.  Such a queue has
receiving ends (the one that created it owns it and removes it on close)
and anonymous sending ends that enrol in its roster of senders while they
are open (see :mod:`anyipc._senders`).  A receiving end that follows its
senders reports their end once they are all gone and the queue holds
nothing more for it.
"""

from __future__ import annotations

from collections.abc import Callable

from anyipc._capabilities import Capabilities
from anyipc._channel import Channel
from anyipc._owner import OwnerLock
from anyipc._senders import Enrolment, Roster

__all__ = ["QueueEnd"]


class QueueEnd(Channel):
    """One end of a named message queue: a receiving end (``receiving``) or a sending end.

    ``uri`` is the queue's: the receiving end's address, a sending end's
    peer.  ``owner_file`` is the queue's owner file, ``owner`` the lock of
    the end that created the queue, ``roster`` the roster of senders that a
    receiving end follows, ``enrolment`` a sending end's ticket in it.
    """

    def __init__(
        self,
        capabilities: Capabilities,
        uri: str,
        *,
        receiving: bool,
        owner_file: str,
        owner: OwnerLock | None,
        roster: Roster | None,
        enrolment: Enrolment | None,
    ) -> None:
        self._owner_file = owner_file
        self._owner = owner
        self._roster = roster
        self._enrolment = enrolment
        super().__init__(
            capabilities,
            address=uri if receiving else None,
            peer=None if receiving else uri,
            can_send=not receiving,
            can_recv=receiving,
        )

    def _after_senders(self, roster: Roster, take: Callable[[], bytes | None]) -> bytes | None:
        """``None`` while senders are left; once all are gone, what ``take`` still finds.

        When it finds nothing, raises the end of the senders
        (:class:`~anyipc.EndOfChannel`, or :class:`~anyipc.ConnectionLost`
        when one was killed).
        """
        survey = roster.survey()
        if not survey.ended:
            return None
        message = take()  # what the last senders sent before they went
        if message is not None:
            return message
        roster.report_end()
        raise survey.end_error(f"recv on {self.address}")
