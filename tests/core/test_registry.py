"""Plugins registered at run time: validated records, attribution, conflicts."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import anyipc
from anyipc import Address, TransportSpec, hookimpl
from anyipc._registry import registry
from anyipc.transports import mem


class _Twin:
    """A plugin that offers the scheme it is given, backed by mem://."""

    def __init__(self, scheme: str) -> None:
        self.scheme = scheme

    @hookimpl
    def anyipc_transports(self) -> list[TransportSpec]:
        return [
            TransportSpec(
                scheme=self.scheme,
                description="mem under another name",
                capabilities=mem.capabilities,
                check_location=lambda location: None,
                test_address=lambda: f"{self.scheme}://x",
                pair=mem.pair,
            )
        ]


class _SharedStream:
    """A STREAM transport (mem:// underneath) whose endpoint several writers may share."""

    @hookimpl
    def anyipc_transports(self) -> list[TransportSpec]:
        stream = Address("mem", "", {"boundaries": "stream"})
        return [
            TransportSpec(
                scheme="shared",
                description="a byte stream whose writes of up to 100 bytes are atomic",
                capabilities=lambda address: mem.capabilities(stream),
                check_location=lambda location: None,
                test_address=lambda: "shared://",
                pair=lambda address: mem.pair(stream),
                atomic_write=100,
            )
        ]


class _Broken:
    @hookimpl
    def anyipc_transports(self) -> list[object]:
        return ["not a record"]


@pytest.fixture
def registered() -> Iterator[list[str]]:
    names: list[str] = []
    yield names
    for name in names:
        registry().unregister(name)


def test_a_runtime_plugin_serves_its_scheme(registered: list[str]) -> None:
    registry().register(_Twin("twin"), "twin-plugin")
    registered.append("twin-plugin")
    first, second = anyipc.pair("twin://x")
    with first, second:
        first.send(b"hi")
        assert second.recv(timeout=1) == b"hi"
    assert anyipc.transports()["twin"].distribution == "registered at run time"


def test_a_scheme_claimed_twice_is_unavailable_naming_both(registered: list[str]) -> None:
    registry().register(_Twin("clash"), "clash-a")
    registry().register(_Twin("clash"), "clash-b")
    registered.extend(["clash-a", "clash-b"])
    with pytest.raises(anyipc.TransportUnavailable, match="clash-a.*clash-b"):
        anyipc.pair("clash://x")
    assert any("clash-b" in str(problem) for problem in registry().problems)
    first, second = anyipc.pair("mem://still-fine")
    first.close()
    second.close()


def test_invalid_records_are_reported_not_registered(registered: list[str]) -> None:
    registry().register(_Broken(), "broken-plugin")
    registered.append("broken-plugin")
    problem = registry().problems[-1]
    assert problem.plugin == "broken-plugin"
    assert "not a TransportSpec" in problem.message


def test_a_record_without_verbs_is_refused() -> None:
    with pytest.raises(ValueError, match="supports no verb"):
        TransportSpec(
            scheme="none",
            description="",
            capabilities=mem.capabilities,
            check_location=lambda location: None,
            test_address=lambda: "none://",
        )


@pytest.mark.parametrize("value", [0, -1, True, 4.0])
def test_an_atomic_write_size_must_be_a_positive_int(value: object) -> None:
    with pytest.raises(ValueError, match="atomic_write"):
        TransportSpec(
            scheme="atomic",
            description="",
            capabilities=mem.capabilities,
            check_location=lambda location: None,
            test_address=lambda: "atomic://",
            pair=mem.pair,
            atomic_write=value,  # type: ignore[arg-type]
        )


def test_framed_keeps_each_frame_within_the_atomic_write(registered: list[str]) -> None:
    registry().register(_SharedStream(), "shared-plugin")
    registered.append("shared-plugin")
    first, second = anyipc.pair("framed+shared://")
    with first, second:
        assert first.capabilities.max_message_size == 96  # the 4-byte header included
        with pytest.raises(anyipc.MessageTooLarge):
            first.send(b"x" * 97)
        first.send(b"x" * 96)
        assert second.recv(timeout=1) == b"x" * 96
    first, second = anyipc.pair("framed+shared://?max_message_size=50")
    with first, second:
        assert first.capabilities.max_message_size == 50
    with pytest.raises(anyipc.InvalidAddress, match="above 96"):
        anyipc.pair("framed+shared://?max_message_size=97")
