"""What the server's loop asks of a model, and the part the accepting models share.

The loop (:class:`anyipc.Server`) lets the model :meth:`~Model.tick`
(reap, refill), waits on its control signals, its doorbell and what
:meth:`Model.endpoints` names, then lets the model act on what is ready
(:meth:`~Model.on_ready`).  ``thread`` and ``fork`` accept in the loop
(:class:`AcceptingModel`): the listener is waited on only while fewer than
``workers`` handlers run, so the bound holds and the connections beyond it
wait in the listener's backlog.  ``prefork`` leaves accepting to its
children.
"""

from __future__ import annotations

import abc
import time
from typing import Protocol

from anyipc._channel import Channel, Listener
from anyipc._endpoint import Endpoint
from anyipc._errors import IPCError, Timeout
from anyipc._serve_children import LOG, Handler
from anyipc._serve_control import Control

__all__ = ["AcceptingModel", "Model", "accept_now"]

_ACCEPT_BACKOFF_S = 0.05  #: the pause after an accept failed (out of descriptors, say)


class Model(Protocol):
    """One way of running handlers: ``thread``, ``fork`` or ``prefork``."""

    def endpoints(self) -> list[Endpoint]:
        """What the loop waits on for this model now, besides its signals and doorbell."""

    def on_ready(self, ready: list[Endpoint]) -> None:
        """Act on the endpoints of :meth:`endpoints` that ``wait`` found ready."""

    def tick(self) -> None:
        """Before every wait: reap the children that ended, start those missing."""

    def replace(self, handler: Handler) -> None:
        """Serve new connections with ``handler``, replacing children gracefully."""

    def stop(self, control: Control, timeout: float) -> None:
        """Stop every handler at once; those that do not stop get ``timeout`` seconds."""


def accept_now(listener: Listener) -> Channel | None:
    """The connection waiting on ``listener``, or ``None`` when there is none (any more).

    Another process may have taken it (prefork), or it died in the backlog.
    A failure (out of descriptors, say) is logged, and the caller pauses
    briefly rather than spinning on a listener that stays ready.
    """
    try:
        return listener.accept(timeout=0)
    except Timeout:
        return None
    except IPCError as exc:
        LOG.warning("accept on %s failed: %s", listener.address, exc)
        time.sleep(_ACCEPT_BACKOFF_S)
        return None


class AcceptingModel(abc.ABC):
    """A model whose loop accepts, then hands each connection over (``thread``, ``fork``).

    Nothing is replaced on :meth:`replace`: handlers already running finish
    their connection, and new connections get the new handler.
    """

    def __init__(self, listener: Listener, workers: int, handler: Handler) -> None:
        self._listener = listener
        self._workers = workers
        self.handler = handler

    @abc.abstractmethod
    def busy(self) -> int:
        """How many handlers run now."""

    @abc.abstractmethod
    def hand_over(self, channel: Channel) -> None:
        """Run the handler on ``channel``, which is then no longer the loop's."""

    def endpoints(self) -> list[Endpoint]:
        """The listener, while fewer than ``workers`` handlers run."""
        return [self._listener] if self.busy() < self._workers else []

    def on_ready(self, ready: list[Endpoint]) -> None:
        """Accept one connection if the listener is ready, and hand it over."""
        if self._listener in ready:
            channel = accept_now(self._listener)
            if channel is not None:
                self.hand_over(channel)

    def replace(self, handler: Handler) -> None:
        """New connections get ``handler``; running ones finish with theirs."""
        self.handler = handler
