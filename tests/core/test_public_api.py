"""The public surface is deliberate: pinned here, so that a change is a decision."""

from __future__ import annotations

import importlib.util

import anyipc

PUBLIC = {
    "Address",
    "AddressInUse",
    "Addressing",
    "AuthenticationError",
    "Boundaries",
    "BytesLike",
    "Capabilities",
    "Channel",
    "ChannelClosed",
    "Connection",
    "ConnectionLost",
    "Direction",
    "EndOfChannel",
    "IPCError",
    "InvalidAddress",
    "LayerSpec",
    "Listener",
    "MessageTooLarge",
    "NotSupported",
    "Option",
    "PermissionDenied",
    "Role",
    "Scope",
    "Server",
    "Timeout",
    "TransportInfo",
    "TransportSpec",
    "TransportUnavailable",
    "bind",
    "connect",
    "hookimpl",
    "listen",
    "pair",
    "rpc",
    "serve",
    "transports",
    "wait",
}


def test_all_is_pinned() -> None:
    assert set(anyipc.__all__) == PUBLIC
    for name in PUBLIC:
        assert hasattr(anyipc, name), name


def test_the_repository_folders_are_not_importable_as_top_level_packages() -> None:
    assert importlib.util.find_spec("core") is None
    assert importlib.util.find_spec("transports") is None


def test_transports_stays_callable_after_a_builtin_module_is_imported() -> None:
    import anyipc.transports.mem  # noqa: F401  (binds the package to anyipc.transports)

    assert "mem" in anyipc.transports()
    assert "tcp" in anyipc.transports()


def test_errors_are_also_the_familiar_builtins() -> None:
    assert issubclass(anyipc.InvalidAddress, ValueError)
    assert issubclass(anyipc.MessageTooLarge, ValueError)
    assert issubclass(anyipc.Timeout, TimeoutError)
    assert issubclass(anyipc.ConnectionLost, ConnectionError)
    assert issubclass(anyipc.ConnectionLost, anyipc.ChannelClosed)
    assert issubclass(anyipc.EndOfChannel, anyipc.ChannelClosed)
    assert issubclass(anyipc.AddressInUse, OSError)
    assert issubclass(anyipc.PermissionDenied, PermissionError)
    assert issubclass(anyipc.AuthenticationError, anyipc.PermissionDenied)
    for name in PUBLIC:
        value = getattr(anyipc, name)
        if isinstance(value, type) and issubclass(value, Exception):
            assert issubclass(value, anyipc.IPCError), name


def test_the_kit_for_transport_authors_is_pinned() -> None:
    import anyipc.kit

    assert set(anyipc.kit.__all__) == {
        "PIPE_BUF",
        "READABLE",
        "WRITABLE",
        "Deadline",
        "FdStream",
        "SeqpacketChannel",
        "SocketChannel",
        "SocketListener",
        "Watchers",
        "map_os_error",
        "wait_for_fd",
    }


def test_rpc_all_is_pinned() -> None:
    assert set(anyipc.rpc.__all__) == {
        "PROBE_S",
        "Client",
        "InvalidParams",
        "InvalidRequest",
        "InvalidResult",
        "MethodNotFound",
        "Pending",
        "ProtocolError",
        "RemoteError",
        "Service",
    }
