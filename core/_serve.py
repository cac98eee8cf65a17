"""``anyipc.serve`` and :class:`anyipc.Server`: the server loop, done right, over any transport.

A server accepts connections and runs ``handler(channel)`` on each, with
one of three models (``thread``, ``fork``, ``prefork``; see
:class:`Server`).  It is controlled by signals read from ``signal://self``
(see :mod:`anyipc._serve_control`), reaps every child it forks, logs what
fails on the ``anyipc.serve`` logger, and bounds the handlers that run at
once by ``workers``.
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading
from collections.abc import Callable, Mapping

from anyipc._address import Address
from anyipc._api import listen
from anyipc._channel import Listener
from anyipc._registry import registry
from anyipc._serve_children import LOG, Children, Handler
from anyipc._serve_control import DEFAULT_SIGNALS, Action, Control, Doorbell, signal_actions
from anyipc._serve_fit import check_connection, check_model
from anyipc._serve_forks import ForkModel, PreforkModel
from anyipc._serve_models import Model
from anyipc._serve_threads import ThreadModel
from anyipc._wait import wait

__all__ = ["Server", "serve"]

#: what a reload callback returns: the handler for new connections, or None to keep the current one
Reload = Callable[[], Handler | None]
SignalMap = Mapping[str | signal.Signals, str]


def _check_numbers(workers: int, stop_timeout: float) -> None:
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a whole number >= 1, not {workers!r}")
    if isinstance(stop_timeout, bool) or not isinstance(stop_timeout, int | float):
        raise TypeError(f"stop_timeout must be a number of seconds, not {stop_timeout!r}")
    if not (math.isfinite(stop_timeout) and stop_timeout >= 0):
        raise ValueError(f"stop_timeout must be finite and >= 0 seconds, not {stop_timeout!r}")


def _fit(listener: str | Address | Listener, model: str) -> Address | Listener:
    """``listener`` if it is a Listener, else its address; raises unless ``model`` can serve it."""
    if isinstance(listener, Listener):
        check_model(Address.parse_syntax(listener.address), model)
        check_connection(listener.capabilities, listener.address)
        return listener
    if not isinstance(listener, str | Address):
        raise TypeError(f"a server listens on a URI or a Listener, not {listener!r}")
    address = Address.parse(str(listener))
    check_model(address, model)
    check_connection(registry().capabilities(address), str(address))
    return address


class Server:
    """A server on a listener: ``handler(channel)`` for each connection, until stopped.

    ``listener`` is a URI, which the server listens on and closes when it
    is done, or a :class:`Listener`, which stays the caller's.
    ``address`` is the address to connect to (port 0 resolved).  Each
    connection is closed once its handler returns; an exception from a
    handler is logged (logger ``anyipc.serve``) and the server goes on.
    At most ``workers`` handlers run at once; further connections wait in
    the listener's backlog.

    Models:

    * ``"thread"``: a thread per connection.  Any connection-oriented
      transport, ``mem://`` included.
    * ``"fork"``: a child process per connection, which exits when its
      handler returns.  ``tcp``, ``unix``, ``unix-seqpacket``, under
      ``framed+`` too.
    * ``"prefork"``: ``workers`` child processes forked in advance, each
      accepting connections one at a time; a child that dies is replaced.
      The same transports, and ``tls+`` over them.

    A model that cannot serve the transport raises
    :class:`~anyipc.NotSupported` naming what it can serve, before
    anything is opened; a connectionless transport is refused the same way.

    Signals.  ``signals`` maps signals to actions (default
    :attr:`DEFAULT_SIGNALS`): ``"stop"`` (TERM, INT) stops accepting,
    sends ``SIGTERM`` to the children, waits up to ``stop_timeout``
    seconds and then kills what is left with ``SIGKILL``; no child is
    left when :meth:`serve_forever` returns.  The thread model closes the
    connections being handled instead, and waits as long for the threads;
    a thread cannot be killed, so one still running then is logged and
    left behind.  ``"reload"`` (HUP) calls
    ``reload()`` in the server process: it returns the handler for new
    connections (or ``None`` to keep the current one); then the children
    are replaced as for ``"restart"``.  If ``reload`` raises, the error is
    logged and nothing changes.  Without a ``reload`` callback, ``"reload"``
    is ``"restart"``.  ``"restart"`` (USR1) replaces the prefork children
    gracefully: each finishes its current connection, new connections go to
    new children, and none is dropped; the other models have nothing to
    replace, and new connections simply get the current handler.  Unlike
    Apache, whose HUP kills the children at once, HUP cuts no connection
    either: it differs from USR1 only by the reload callback.

    The signals are read from ``signal://self``, bound here, in the calling
    thread, which must be the process's only thread, or the other threads
    must block these signals (:class:`~anyipc.TransportUnavailable`
    otherwise); threads started later (handler threads included) inherit
    the mask.  ``fork`` and ``prefork`` bind ``SIGCHLD`` too, to reap their
    children, and so need that in any case; ``signals={}`` lets the thread
    model run without signals, for instance in a program with threads of
    its own, stopped by :meth:`stop`.  Children get the server's signals back
    with their default dispositions, unblocked: ``SIGTERM`` ends a child at once
    unless its handler chose otherwise.

    Construct, then :meth:`serve_forever` (in the same thread); or use
    :func:`serve`.  The server is a context manager; :meth:`close` releases
    what it holds if it is never served.
    """

    DEFAULT_SIGNALS: SignalMap = DEFAULT_SIGNALS

    def __init__(
        self,
        listener: str | Address | Listener,
        handler: Handler,
        *,
        model: str = "thread",
        workers: int = 8,
        reload: Reload | None = None,
        signals: SignalMap = DEFAULT_SIGNALS,
        stop_timeout: float = 5.0,
    ) -> None:
        if not callable(handler):
            raise TypeError(f"handler must be callable with a channel, not {handler!r}")
        _check_numbers(workers, stop_timeout)
        actions = signal_actions(signals)
        target = _fit(listener, model)
        self._handler = handler
        self._reload = reload
        self._model_name = model
        self._workers = workers
        self._stop_timeout = stop_timeout
        self._owns_listener = isinstance(target, Address)
        with contextlib.ExitStack() as undo:  # what was opened is closed if the rest fails
            self._doorbell = Doorbell()
            undo.callback(self._doorbell.close)
            self._control = Control(actions, reap=model != "thread")
            undo.callback(self._control.close)
            self._listener = listen(target) if isinstance(target, Address) else target
            undo.pop_all()
        self._thread = threading.get_ident()
        self._stopping = False
        self._serving = False
        self._served = False
        self._closed = False

    @property
    def address(self) -> str:
        """The address clients connect to (port 0 resolved, automatic names filled in)."""
        return self._listener.address

    def _model(self) -> Model:
        if self._model_name == "thread":
            return ThreadModel(self._listener, self._workers, self._handler, self._doorbell)
        if self._model_name == "fork":
            return ForkModel(
                self._listener, self._workers, self._handler, Children(self._control.in_child)
            )
        return PreforkModel(
            self._listener, self._workers, self._handler, Children(self._control.in_child)
        )

    def serve_forever(self) -> None:
        """Serve until stopped (a ``"stop"`` signal, or :meth:`stop`), then release everything.

        Returns normally after an orderly stop, with no child process left.
        Runs once, in the thread that created the server when it bound
        signals (that thread's mask holds them); ``RuntimeError`` otherwise.
        """
        if self._served or self._closed:
            raise RuntimeError("a Server serves once; make a new one")
        if self._control.channel is not None and threading.get_ident() != self._thread:
            raise RuntimeError(
                "serve_forever must run in the thread that created the Server: "
                "that thread's signal mask holds the server's signals"
            )
        self._served = self._serving = True
        model = self._model()
        LOG.info("serving %s: %s model, %d workers", self.address, self._model_name, self._workers)
        try:
            while not self._stopping:
                self._step(model)
        finally:
            LOG.info("stopping: %s", self.address)
            try:
                if self._owns_listener:
                    self._listener.close()  # no new connection from now on
                model.stop(self._control, self._stop_timeout)
            finally:
                self._serving = False
                self.close()

    def _step(self, model: Model) -> None:
        """Reap and refill, wait for something to happen, then act on it."""
        model.tick()
        waited = [*model.endpoints(), self._doorbell.receiver]
        if self._control.channel is not None:
            waited.append(self._control.channel)
        ready = wait(waited)
        self._doorbell.clear()
        for signo, action in self._control.take():
            self._act(signo, action, model)
        if not self._stopping:
            model.on_ready(ready)

    def _act(self, signo: signal.Signals, action: Action, model: Model) -> None:
        LOG.info("%s: %s", signo.name, action.value)
        if action is Action.STOP:
            self._stopping = True
        elif action is Action.RESTART or self._reload is None or self._reloaded():
            model.replace(self._handler)

    def _reloaded(self) -> bool:
        """Call the reload callback; True when it succeeded (the handler may have changed)."""
        assert self._reload is not None
        try:
            handler = self._reload()
        except Exception:
            LOG.exception("the reload callback failed: the server goes on unchanged")
            return False
        if handler is not None and not callable(handler):
            LOG.error("the reload callback returned %r, not a handler: nothing changes", handler)
            return False
        if handler is not None:
            self._handler = handler
        return True

    def stop(self) -> None:
        """Ask :meth:`serve_forever` to stop as a ``"stop"`` signal would; returns at once.

        Safe from any thread of the server process, handlers included.  In
        a child process (fork, prefork) it changes nothing: signal the
        server (``os.kill(os.getppid(), signal.SIGTERM)``) instead.
        """
        self._stopping = True
        self._doorbell.ring()

    def close(self) -> None:
        """Release the listener (if the server opened it), the signals and the doorbell.

        Idempotent; :meth:`serve_forever` does it when it returns.  Call it
        from the thread that created the server (that thread's mask is
        restored).  While :meth:`serve_forever` runs in another thread, it
        only :meth:`stop` s it, and ``serve_forever`` releases everything.
        """
        if self._serving:
            self.stop()
            return
        if self._closed:
            return
        self._closed = True
        if self._owns_listener:
            self._listener.close()
        self._control.close()
        self._doorbell.close()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def serve(
    listener: str | Address | Listener,
    handler: Handler,
    *,
    model: str = "thread",
    workers: int = 8,
    reload: Reload | None = None,
    signals: SignalMap = DEFAULT_SIGNALS,
    stop_timeout: float = 5.0,
) -> None:
    """Serve ``handler`` on ``listener`` until a ``"stop"`` signal; see :class:`Server`.

    ``Server(...).serve_forever()``, closing the server in any case.  Use
    :class:`Server` to learn the address before serving (port 0) or to
    stop it from a handler.
    """
    with Server(
        listener,
        handler,
        model=model,
        workers=workers,
        reload=reload,
        signals=signals,
        stop_timeout=stop_timeout,
    ) as server:
        server.serve_forever()
