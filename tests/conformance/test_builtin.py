"""The whole conformance suite, run on every built-in transport and its variants.

Bare schemes get a fresh test address per conversation; mem:// is run in
each cell of the taxonomy its options select.  HOST and NETWORK transports
are also exercised with the peer in a spawned process (the suite's ``peer``
tests).
"""

from __future__ import annotations

import uuid

from anyipc.testing import TransportConformance


class TestMem(TransportConformance):
    uri = "mem"


class TestMemStream(TransportConformance):
    uri = "mem://?boundaries=stream"


class TestMemConnectionless(TransportConformance):
    uri = "mem://?connection=connectionless"


class TestMemSimplex(TransportConformance):
    uri = "mem://?direction=simplex"


class TestMemLimited(TransportConformance):
    uri = "mem://?max_message_size=1000&capacity=4096"


class TestTcp(TransportConformance):
    uri = "tcp"


class TestTcp6(TransportConformance):
    uri = "tcp://[::1]:0"


class TestUnix(TransportConformance):
    uri = "unix"


class TestUnixAbstract(TransportConformance):
    uri = f"unix://@anyipc-conformance-{uuid.uuid4().hex[:12]}"


class TestFramedTcp(TransportConformance):
    uri = "framed+tcp"


class TestFramedUnix(TransportConformance):
    uri = "framed+unix"


class TestFramedSmallLimit(TransportConformance):
    uri = "framed+unix?max_message_size=1000"
