"""The conformance suite on the message-queue transports, posixmq:// and sysvmq://.

Both are SIMPLEX and ORIENTED (see their module docstrings for why) and
claim ``reports_end=False``: the kernel records no senders, so a receiver
never learns that they closed or died.  The suite then skips the orderly
end (D2), checks a dead sender only for "no partial message, never a hang"
(D3), and never closes the sender in its state machine.
"""

from __future__ import annotations

from anyipc.testing import TransportConformance


class TestPosixMQ(TransportConformance):
    uri = "posixmq"


class TestSysvMQ(TransportConformance):
    uri = "sysvmq"
