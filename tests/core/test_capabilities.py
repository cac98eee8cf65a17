"""Capabilities: frozen, validated claims."""

from __future__ import annotations

import attrs
import pytest

from anyipc import Addressing, Boundaries, Capabilities, Connection, Direction, Scope

BASE = {
    "direction": Direction.DUPLEX,
    "boundaries": Boundaries.MESSAGE,
    "connection": Connection.ORIENTED,
    "lossless": True,
    "ordered": True,
    "intact": True,
    "duplicate_free": True,
    "scope": Scope.HOST,
    "addressing": Addressing.NAMED,
}


def test_a_consistent_record_is_frozen_and_reliable() -> None:
    caps = Capabilities(**BASE, max_message_size=10)  # type: ignore[arg-type]
    assert caps.reliable
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        caps.lossless = False  # type: ignore[misc]


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"boundaries": Boundaries.STREAM, "max_message_size": 5}, "no max_message_size"),
        (
            {"boundaries": Boundaries.STREAM, "connection": Connection.CONNECTIONLESS},
            "needs MESSAGE",
        ),
        ({"boundaries": Boundaries.STREAM, "lossless": False}, "declare MESSAGE"),
        ({"max_message_size": -1}, "non-negative"),
        ({"max_message_size": True}, "non-negative"),
        ({"lossless": 1}, "must be <class 'bool'>"),
        ({"scope": "host"}, "Scope"),
    ],
)
def test_inconsistent_claims_are_refused_at_construction(
    changes: dict[str, object], words: str
) -> None:
    with pytest.raises((ValueError, TypeError), match=words):
        Capabilities(**{**BASE, **changes})  # type: ignore[arg-type]


def test_evolve_validates_the_copy() -> None:
    caps = Capabilities(**BASE)  # type: ignore[arg-type]
    assert caps.evolve(lossless=False).lossless is False
    with pytest.raises(ValueError):
        caps.evolve(boundaries=Boundaries.STREAM, max_message_size=3)


def test_describe_gives_short_strings_for_tables() -> None:
    described = Capabilities(**BASE).describe()  # type: ignore[arg-type]
    assert described["boundaries"] == "message"
    assert described["lossless"] == "yes"
    assert described["max_message_size"] == "-"
