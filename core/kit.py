"""Building blocks for transport authors: what the built-in transports are made of.

A transport subclasses :class:`anyipc.Channel` (and :class:`anyipc.Listener`
for connection-oriented ones) and implements ``_send``/``_recv``/``_close``
(``_accept`` for listeners).  These helpers keep it to the contract:

* :class:`Deadline`: the timeout of the current call, as a deadline.
* :func:`wait_for_fd`: block on a descriptor until ready, until the
  deadline (:class:`~anyipc.Timeout`), or until ``close()`` from another
  thread wakes it (:class:`~anyipc.ChannelClosed`); pass ``self._waker``.
  :data:`READABLE` and :data:`WRITABLE` are the events to wait for.
* :class:`Watchers`: for a channel with no descriptor, call
  ``self.watchers.notify()`` whenever it may have become ready, and
  implement ``_ready()``, so that :func:`anyipc.wait` works.
* :func:`map_os_error`: an ``OSError`` as the closest anyipc error (raise
  it ``from`` the ``OSError`` to keep the cause).
* :class:`SocketChannel` and :class:`SocketListener`: a connected or
  listening stream socket with all of the above done.
* :class:`SeqpacketChannel`: a connected ``SOCK_SEQPACKET`` socket as a
  MESSAGE channel (zero-length messages told from the end).
* :class:`FdStream`: one end of a pipe or FIFO as a simplex byte stream,
  its descriptor left in blocking mode for the processes that share it,
  SIGPIPE never delivered; :data:`PIPE_BUF` is the atomic write size.
"""

from anyipc._deadline import Deadline
from anyipc._errors import map_os_error
from anyipc._fdstream import PIPE_BUF, FdStream
from anyipc._readiness import READABLE, WRITABLE, Watchers, wait_for_fd
from anyipc._seqpacket import SeqpacketChannel
from anyipc._sockets import SocketChannel, SocketListener

__all__ = [
    "PIPE_BUF",
    "READABLE",
    "WRITABLE",
    "Deadline",
    "FdStream",
    "SeqpacketChannel",
    "SocketChannel",
    "SocketListener",
    "Watchers",
    "map_os_error",
    "wait_for_fd",
]
