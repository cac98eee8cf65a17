"""The options of the ``tls+`` layer, and what an address says through them.

The option declarations (their meaning is in :mod:`anyipc.transports.tls`),
the server name a client checks (the option, else the host of a
``host:port`` location), and the ``tls+`` form of an inner channel's
``address`` and ``peer``.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Callable

from anyipc._address import Address
from anyipc._options import Option, OptionValue


def _path(value: OptionValue) -> str | None:
    return None if isinstance(value, str) and value else "must be the path of a PEM file"


def _name(value: OptionValue) -> str | None:
    return None if isinstance(value, str) and value else "must be a host name"


def _positive(value: OptionValue) -> str | None:
    return None if isinstance(value, float) and value > 0 else "must be above 0 seconds"


def _text(name: str, check: Callable[[OptionValue], str | None], doc: str) -> Option:
    """A string option with no default, its values checked by ``check``."""
    return Option(name=name, kind=str, default=None, check=check, doc=doc)


def _switch(name: str, default: bool, doc: str) -> Option:
    """A true/false option."""
    return Option(name=name, kind=bool, default=default, doc=doc)


def _seconds(name: str, default: float, doc: str) -> Option:
    """A duration option, in seconds above 0."""
    return Option(name=name, kind=float, default=default, check=_positive, doc=doc)


CERT = _text("cert", _path, "server: its certificate chain (PEM file)")
KEY = _text("key", _path, "server: the private key of cert (PEM file; default: in cert's file)")
CLIENT_CERT = _text(
    "client_cert", _path, "client: its certificate chain, for servers that ask for one (PEM file)"
)
CLIENT_KEY = _text(
    "client_key",
    _path,
    "client: the private key of client_cert (PEM file; default: in client_cert's file)",
)
CA = _text(
    "ca",
    _path,
    "the CAs trusted for the peer's certificate (PEM bundle; client default: the system's)",
)
REQUIRE_CLIENT_CERT = _switch(
    "require_client_cert",
    False,
    "server: refuse clients without a certificate that ca trusts (mutual TLS)",
)
SERVER_HOSTNAME = _text(
    "server_hostname",
    _name,
    "client: the name the server's certificate must have (default: the URI's host)",
)
VERIFY = _switch(
    "verify", True, "client: check the server's certificate and name (false: encryption only)"
)
HANDSHAKE_TIMEOUT = _seconds("handshake_timeout", 10.0, "seconds the handshake may take")
CONTEXT = Option(
    name="context",
    kind=ssl.SSLContext,
    default=None,
    keyword_only=True,
    doc="an ssl.SSLContext to use instead of the file options (keyword only)",
)
OPTIONS = (
    CERT,
    KEY,
    CLIENT_CERT,
    CLIENT_KEY,
    CA,
    REQUIRE_CLIENT_CERT,
    SERVER_HOSTNAME,
    VERIFY,
    HANDSHAKE_TIMEOUT,
    CONTEXT,
)
#: the options that a ``context`` replaces (giving both is an error)
REPLACED_BY_CONTEXT = (CERT, KEY, CLIENT_CERT, CLIENT_KEY, CA, REQUIRE_CLIENT_CERT, VERIFY)
_NAMES = frozenset(option.name for option in OPTIONS)
_HOST_PORT = re.compile(r"\[(?P<ipv6>[^\]]+)\]:\d+|(?P<host>[^:/@\[\]]+):\d+")


def given(address: Address, option: Option) -> str | None:
    """The value of the ``str`` option ``option`` in ``address``, if one is given."""
    value = address.get(option)
    return value if isinstance(value, str) else None


def server_hostname(address: Address) -> str | None:
    """The name a client checks: the option, else the host of a ``host:port`` location."""
    return given(address, SERVER_HOSTNAME) or host(address.location)


def host(location: str) -> str | None:
    """The host of a ``host:port`` (or ``[ipv6]:port``) location; None for other locations."""
    match = _HOST_PORT.fullmatch(location)
    return None if match is None else match.group("ipv6") or match.group("host")


def tls_uri(uri: str | None, address: Address, extra: dict[str, OptionValue]) -> str | None:
    """``uri`` with the ``tls+`` prefix, the layer's options given in ``address``, and ``extra``."""
    if uri is None:
        return None
    inner = Address.parse_syntax(uri)
    given_here = {name: value for name, value in address.options if name in _NAMES}
    options = {**inner.query, **given_here, **extra}
    return str(inner.replace(layers=("tls", *inner.layers), options=options))
