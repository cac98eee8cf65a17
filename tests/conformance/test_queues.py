"""The conformance suite on the message-queue transports, posixmq:// and sysvmq://.

Both are SIMPLEX and ORIENTED (see their module docstrings for why).  By
default they claim ``reports_end=False``: the kernel records no senders, so
a receiver never learns that they closed or died.  The suite then skips the
orderly end (D2), checks a dead sender only for "no partial message, never
a hang" (D3), and never closes the sender in its state machine.  With
``end=senders`` the receiver follows its senders through their roster and
claims ``reports_end``: the suite holds it to the orderly end and to a
killed sender's report like any connection.
"""

from __future__ import annotations

from anyipc.testing import TransportConformance


class TestPosixMQ(TransportConformance):
    uri = "posixmq"


class TestSysvMQ(TransportConformance):
    uri = "sysvmq"


class TestPosixMQEndingWithItsSenders(TransportConformance):
    uri = "posixmq://?end=senders"


class TestSysvMQEndingWithItsSenders(TransportConformance):
    uri = "sysvmq://?end=senders"
