"""The conformance suite on the shared-memory transports, with peers in other processes.

Each transport runs in its default ring protocol and in ``protocol=locked``.
"""

from __future__ import annotations

from anyipc.testing import TransportConformance


class TestShm(TransportConformance):
    uri = "shm"


class TestShmSmallRing(TransportConformance):
    uri = "shm://?size=4096"


class TestShmLocked(TransportConformance):
    uri = "shm?protocol=locked"


class TestSysvShm(TransportConformance):
    uri = "sysvshm"


class TestSysvShmLocked(TransportConformance):
    uri = "sysvshm?protocol=locked"


class TestMmap(TransportConformance):
    uri = "mmap"


class TestMmapLocked(TransportConformance):
    uri = "mmap?protocol=locked"
