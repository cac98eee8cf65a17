"""The conformance suite on the local inherited and named-pipe transports and their framed forms.

``pipe://`` and ``socketpair://`` are exercised with an end handed to a
child process (F2); ``fifo://`` with the writer in another process (F1).
"""

from __future__ import annotations

from anyipc.testing import TransportConformance


class TestPipe(TransportConformance):
    uri = "pipe"


class TestSocketpair(TransportConformance):
    uri = "socketpair"


class TestSocketpairSeqpacket(TransportConformance):
    uri = "socketpair?type=seqpacket"


class TestFifo(TransportConformance):
    uri = "fifo"


class TestFramedPipe(TransportConformance):
    uri = "framed+pipe"


class TestFramedSocketpair(TransportConformance):
    uri = "framed+socketpair"


class TestFramedFifo(TransportConformance):
    uri = "framed+fifo"
