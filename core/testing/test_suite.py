"""Run the conformance suite on the transports named with ``--anyipc-uri``.

``pytest --pyargs anyipc.testing --anyipc-uri tcp --anyipc-uri framed+unix``
(what ``anyipc conformance`` runs).  Without ``--anyipc-uri``, every
available installed transport is tested.
"""

from __future__ import annotations

import pytest

from anyipc.testing._suite import TransportConformance


class TestConformance(TransportConformance):
    @pytest.fixture(scope="class")
    @classmethod
    def conformance_uri(cls, anyipc_uri: str) -> str:
        return anyipc_uri
