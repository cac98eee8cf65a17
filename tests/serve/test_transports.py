"""The forking models serve every transport they claim, over real connections."""

from __future__ import annotations

import signal
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import trustme

import anyipc

from .conftest import ServerProcess, receive_line


def _uri(template: str, tmp_path: Path) -> str:
    return template.format(path=tmp_path, name=uuid.uuid4().hex)


@pytest.mark.parametrize(
    ("model", "template"),
    [
        ("fork", "unix://{path}/s.sock"),
        ("fork", "unix-seqpacket://@anyipc-serve-{name}"),
        ("fork", "framed+tcp://127.0.0.1:0"),
        ("prefork", "framed+unix://@anyipc-serve-{name}"),
        ("prefork", "unix-seqpacket://{path}/s.sock"),
    ],
)
def test_a_forking_model_serves_its_socket_transports(
    start_server: Callable[..., ServerProcess], model: str, template: str, tmp_path: Path
) -> None:
    server = start_server(uri=_uri(template, tmp_path), model=model, handler="echo")
    _talk(server.address)
    _stop(server)
    assert not (tmp_path / "s.sock").exists(), "the server removed its socket file"


def test_prefork_serves_tls(start_server: Callable[..., ServerProcess], tmp_path: Path) -> None:
    authority = trustme.CA()
    authority.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(
        tmp_path / "server.pem"
    )
    authority.cert_pem.write_to_path(tmp_path / "ca.pem")
    server = start_server(
        uri=f"tls+tcp://127.0.0.1:0?cert={tmp_path}/server.pem", model="prefork", handler="echo"
    )
    _talk(server.address, ca=str(tmp_path / "ca.pem"))
    _stop(server)


def _talk(address: str, **options: object) -> None:
    """Two connections at once, two requests each, every answer checked."""
    clients = [anyipc.connect(address, **options) for _ in range(2)]
    try:
        for turn in range(2):
            for number, client in enumerate(clients):
                client.send(f"{number}.{turn}\n".encode(), timeout=10)
            for number, client in enumerate(clients):
                assert receive_line(client).endswith(f"v1 {number}.{turn}")
    finally:
        for client in clients:
            client.close()


def _stop(server: ServerProcess) -> None:
    server.signal(signal.SIGTERM)
    status, log = server.finish(timeout=15)
    assert status == 0 and "WARNING" not in log, log
