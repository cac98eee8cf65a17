"""Plugins registered at run time: validated records, attribution, conflicts."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import anyipc
from anyipc import TransportSpec, hookimpl
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
