"""The whole conformance suite over tls+: streams and framed messages, tcp, unix, mem, socketpair.

The certificates are made once per session with trustme and written to a
temporary directory; their paths travel in the URI, so that the suite's
peer process (a fresh interpreter that opens the URI from a string) uses
them too.  The listener's address carries them to every client.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pytest
import trustme

from anyipc.testing import TransportConformance


@pytest.fixture(scope="session")
def tls_query(tmp_path_factory: pytest.TempPathFactory) -> str:
    """``cert=...&ca=...``: a server certificate for localhost and 127.0.0.1, and its CA."""
    directory: Path = tmp_path_factory.mktemp("tls")
    authority = trustme.CA()
    server = authority.issue_cert("localhost", "127.0.0.1", "::1")
    server.private_key_and_cert_chain_pem.write_to_path(str(directory / "server.pem"))
    authority.cert_pem.write_to_path(str(directory / "ca.pem"))
    return f"cert={directory / 'server.pem'}&ca={directory / 'ca.pem'}"


class _TlsConformance(TransportConformance):
    """The suite over ``stack`` (layers and a bare scheme), with the session's certificates."""

    stack: ClassVar[str] = ""

    @pytest.fixture(scope="class")
    @classmethod
    def conformance_uri(cls, tls_query: str) -> str:
        joiner = "&" if "?" in cls.stack else "?"
        return f"{cls.stack}{joiner}{tls_query}"


class TestTlsTcp(_TlsConformance):
    stack = "tls+tcp"


class TestTlsUnix(_TlsConformance):
    stack = "tls+unix?server_hostname=localhost"


class TestFramedTlsTcp(_TlsConformance):
    stack = "framed+tls+tcp"


class TestFramedTlsUnix(_TlsConformance):
    stack = "framed+tls+unix?server_hostname=localhost"


class TestTlsMemStream(_TlsConformance):
    """Over an in-process stream with no descriptor: pairs, and readiness by notification."""

    stack = "tls+mem?boundaries=stream&server_hostname=localhost"


class TestTlsSocketpair(_TlsConformance):
    """An inherited pair: its ends cannot be handed to a child (no fds), the rest holds."""

    stack = "tls+socketpair?server_hostname=localhost"
