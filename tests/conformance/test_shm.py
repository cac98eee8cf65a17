"""The conformance suite on the shared-memory transports, with peers in other processes."""

from __future__ import annotations

from anyipc.testing import TransportConformance


class TestShm(TransportConformance):
    uri = "shm"


class TestShmSmallRing(TransportConformance):
    uri = "shm://?size=4096"


class TestSysvShm(TransportConformance):
    uri = "sysvshm"


class TestMmap(TransportConformance):
    uri = "mmap"
