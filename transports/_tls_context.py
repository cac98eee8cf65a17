"""The ``ssl`` objects of a ``tls+`` end, made from its options.

The :class:`ssl.SSLContext` for the end's role, built from the file options
(read again for each connection) or the caller's ``context=`` checked; and
the :class:`ssl.SSLObject` over two :class:`ssl.MemoryBIO` that a channel
runs.  Every problem (a bad combination of options, a file that cannot be
loaded, a name the ssl module refuses) is :class:`~anyipc.InvalidAddress`,
raised before anything is opened.  The semantics are in
:mod:`anyipc.transports.tls`.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable

from anyipc._address import Address
from anyipc._errors import OUT_OF_DESCRIPTORS, InvalidAddress, map_os_error
from anyipc._records import Role
from anyipc.transports._tls_options import (
    CA,
    CERT,
    CLIENT_CERT,
    CLIENT_KEY,
    CONTEXT,
    KEY,
    REPLACED_BY_CONTEXT,
    REQUIRE_CLIENT_CERT,
    VERIFY,
    given,
    server_hostname,
)


def open_session(
    address: Address, role: Role
) -> tuple[ssl.SSLObject, ssl.MemoryBIO, ssl.MemoryBIO]:
    """A fresh TLS session for ``role`` and its two buffers; InvalidAddress naming the problem."""
    context = _context(address, role)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    hostname = server_hostname(address) if role is Role.CLIENT else None
    try:
        session = context.wrap_bio(
            incoming, outgoing, server_side=role is Role.SERVER, server_hostname=hostname
        )
    except ValueError as exc:  # a name the ssl module refuses (UnicodeError included)
        raise InvalidAddress(
            f"server_hostname={hostname!r} is not a valid host name: {exc}"
        ) from None
    return session, incoming, outgoing


def _context(address: Address, role: Role) -> ssl.SSLContext:
    context_given = address.get(CONTEXT)
    if isinstance(context_given, ssl.SSLContext):
        return _checked(context_given, address, role)
    if role is Role.SERVER:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.num_tickets = (
            0  # sessions are never resumed: no tickets for clients to leave unread
        )
        _server_settings(context, address)
    else:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # checks the certificate and name
        _client_settings(context, address)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_RENEGOTIATION
    return context


def _server_settings(context: ssl.SSLContext, address: Address) -> None:
    cert, key, ca = given(address, CERT), given(address, KEY), given(address, CA)
    if cert is None:
        raise InvalidAddress(
            "a TLS server needs its certificate: cert=PATH (a PEM chain) and key=PATH (unless "
            "the key is in cert's file), or context=ssl.SSLContext"
        )
    _load(
        f"cert={cert}" + (f" key={key}" if key else ""), lambda: context.load_cert_chain(cert, key)
    )
    if ca is not None:
        _load(f"ca={ca}", lambda: context.load_verify_locations(cafile=ca))
        required = address.get(REQUIRE_CLIENT_CERT)
        context.verify_mode = ssl.CERT_REQUIRED if required else ssl.CERT_OPTIONAL
    elif address.get(REQUIRE_CLIENT_CERT):
        raise InvalidAddress(
            "require_client_cert=true needs ca=PATH: the CAs that client certificates must chain to"
        )


def _client_settings(context: ssl.SSLContext, address: Address) -> None:
    cert, key, ca = given(address, CLIENT_CERT), given(address, CLIENT_KEY), given(address, CA)
    if key is not None and cert is None:
        raise InvalidAddress("client_key= needs client_cert=, the certificate it belongs to")
    if not address.get(VERIFY):
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif ca is not None:
        _load(f"ca={ca}", lambda: context.load_verify_locations(cafile=ca))
    else:
        context.load_default_certs()
    if cert is not None:
        _load(
            f"client_cert={cert}" + (f" client_key={key}" if key else ""),
            lambda: context.load_cert_chain(cert, key),
        )
    _check_name(context, address)


def _checked(context: ssl.SSLContext, address: Address, role: Role) -> ssl.SSLContext:
    """The caller's ``context``, if it suits ``role`` and no file option competes with it."""
    competing = [option.name for option in REPLACED_BY_CONTEXT if option.name in address.query]
    if competing:
        raise InvalidAddress(
            f"context= replaces {', '.join(competing)}: give either context or the file options"
        )
    wanted = ssl.PROTOCOL_TLS_SERVER if role is Role.SERVER else ssl.PROTOCOL_TLS_CLIENT
    if context.protocol not in (wanted, ssl.PROTOCOL_TLS):
        raise InvalidAddress(
            f"context= is a {context.protocol.name} context; the {role.value} side needs "
            f"{wanted.name} (or PROTOCOL_TLS)"
        )
    if context.minimum_version < ssl.TLSVersion.TLSv1_2:
        raise InvalidAddress(
            f"context= allows TLS before 1.2 (minimum_version={context.minimum_version.name}); "
            "set context.minimum_version = ssl.TLSVersion.TLSv1_2 or later"
        )
    if role is Role.CLIENT:
        _check_name(context, address)
    return context


def _check_name(context: ssl.SSLContext, address: Address) -> None:
    if context.check_hostname and server_hostname(address) is None:
        raise InvalidAddress(
            f"{address.scheme}://{address.location} has no host name to check the server's "
            "certificate against: give server_hostname=NAME (a name the certificate was "
            "issued for), or verify=false to encrypt without authenticating the server"
        )


def _load(what: str, load: Callable[[], None]) -> None:
    try:
        load()
    except OSError as exc:  # ssl.SSLError included: not PEM, or a key that does not match
        if not isinstance(exc, ssl.SSLError) and exc.errno in OUT_OF_DESCRIPTORS:
            raise map_os_error(exc, f"{what}: cannot be loaded") from exc  # not the file's fault
        detail = exc.strerror if exc.strerror else str(exc)
        if isinstance(exc, ssl.SSLError) and exc.reason:
            detail = f"{exc.reason} (not PEM, or a key that does not match the certificate?)"
        raise InvalidAddress(f"{what}: cannot be loaded: {detail}") from None
