"""The whole conformance suite on the other unix-domain sockets: datagram and seqpacket.

Each is run on socket files (a fresh path per conversation) and on one
abstract name.  unix-dgram is the suite's HOST-scope connectionless case:
its ``peer`` tests bind here and let a spawned process connect and answer.
``framed+unix-seqpacket`` has no class: the framed layer frames byte
streams only, and seqpacket already keeps message boundaries
(tests/transports/test_unix_seqpacket.py checks that it is refused).
"""

from __future__ import annotations

import uuid

from anyipc.testing import TransportConformance


class TestUnixDgram(TransportConformance):
    uri = "unix-dgram"


class TestUnixDgramAbstract(TransportConformance):
    uri = f"unix-dgram://@anyipc-conformance-{uuid.uuid4().hex[:12]}"


class TestUnixSeqpacket(TransportConformance):
    uri = "unix-seqpacket"


class TestUnixSeqpacketAbstract(TransportConformance):
    uri = f"unix-seqpacket://@anyipc-conformance-{uuid.uuid4().hex[:12]}"
