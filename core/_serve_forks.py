"""``model="fork"`` and ``model="prefork"``: handlers in child processes.

``fork``: the server accepts a connection, forks a child that runs the
handler on it and exits, and closes its own copy at once.  At most
``workers`` children live at a time: while that many do, the server stops
accepting, and connections wait in the listener's backlog.  Restarting has
nothing to replace: each child serves one connection and ends.

``prefork``: ``workers`` children, forked in advance, each accept on the
listener they inherited, one connection at a time, until they are retired.
A child that dies (a crash, a signal) is reaped, logged and replaced.
Children belong to a *generation*, which shares one pipe with the server:
to retire a generation (restart, reload), the server closes its end, and
each child of it sees the end of the pipe as soon as it is between two
connections, and exits.  A connection a child has accepted is always
served to its end, and the connections that arrive meanwhile wait in the
backlog for the new generation: none is dropped.  The server forks the
new generation's children as the old ones leave, so never more than
``workers`` children live at once.  The same pipe tells the children that
the server died (SIGKILL, say): they finish their connection and exit.
"""

from __future__ import annotations

import attrs

from anyipc._api import pair
from anyipc._channel import Channel, Listener
from anyipc._endpoint import Endpoint
from anyipc._serve_children import LOG, Children, Handler, run_handler
from anyipc._serve_control import Control
from anyipc._serve_models import AcceptingModel, accept_now
from anyipc._wait import wait

__all__ = ["ForkModel", "PreforkModel"]


def _never() -> bool:
    return False


class ForkModel(AcceptingModel):
    """See the module docstring."""

    def __init__(
        self, listener: Listener, workers: int, handler: Handler, children: Children
    ) -> None:
        super().__init__(listener, workers, handler)
        self._children = children

    def busy(self) -> int:
        """How many children live (or are not yet reaped)."""
        return len(self._children)

    def hand_over(self, channel: Channel) -> None:
        """Fork a child that runs the handler on ``channel``; close the server's copy.

        If the fork fails, the error is logged and the connection closed.
        """
        handler = self.handler
        try:
            self._children.spawn(lambda: 0 if run_handler(handler, channel, _never) else 1)
        except OSError as exc:  # out of processes or memory: this connection is dropped
            where = channel.peer or channel.address or "an unnamed peer"
            LOG.error("cannot fork a child for a connection with %s: %s", where, exc)
        finally:
            channel.close()

    def tick(self) -> None:
        """Reap the children that ended."""
        self._children.reap()

    def stop(self, control: Control, timeout: float) -> None:
        """Stop every child (``SIGTERM``, then ``SIGKILL`` after ``timeout``)."""
        self._children.stop(control, timeout)


@attrs.define
class _Generation:
    """Children forked with one handler, retired together by closing ``retire``."""

    number: int
    handler: Handler
    retire: Channel  #: the server's end of the pipe
    retired: Channel  #: the children's end: it reports the end once ``retire`` is closed

    @classmethod
    def new(cls, number: int, handler: Handler) -> _Generation:
        retire, retired = pair("pipe://")
        return cls(number, handler, retire, retired)

    def close(self) -> None:
        self.retire.close()
        self.retired.close()


class PreforkModel:
    """See the module docstring."""

    def __init__(
        self,
        listener: Listener,
        workers: int,
        handler: Handler,
        children: Children,
    ) -> None:
        self._listener = listener
        self._workers = workers
        self._children = children
        self._generation = _Generation.new(1, handler)

    def endpoints(self) -> list[Endpoint]:
        """Nothing: the children accept, and ``SIGCHLD`` tells when one ended."""
        return []

    def on_ready(self, ready: list[Endpoint]) -> None:
        """Nothing: the loop waits on nothing of this model's."""

    def tick(self) -> None:
        """Reap the children that ended; fork the current generation's up to ``workers``."""
        self._children.reap()
        generation = self._generation
        while len(self._children) < self._workers:
            self._children.spawn(lambda: self._child(generation))

    def replace(self, handler: Handler) -> None:
        """Retire the current generation; the next one runs ``handler``."""
        old = self._generation
        self._generation = _Generation.new(old.number + 1, handler)
        old.close()
        LOG.info("generation %d retired: its children exit once idle", old.number)

    def _child(self, generation: _Generation) -> int:
        """A child's life: accept and handle until its generation is retired or the server died."""
        generation.retire.close()  # only the server's copy may keep the pipe open
        while True:
            ready = wait([generation.retired, self._listener])
            if generation.retired in ready:
                return 0
            channel = accept_now(self._listener)
            if channel is not None:
                run_handler(generation.handler, channel, _never)

    def stop(self, control: Control, timeout: float) -> None:
        """Stop every child (``SIGTERM``, then ``SIGKILL`` after ``timeout``)."""
        self._children.stop(control, timeout)
        self._generation.close()
