"""Addresses: parsing, formatting, typed options, and errors that name what is valid."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

import anyipc
from anyipc import Address, InvalidAddress


def test_parse_splits_layers_scheme_location_and_typed_options() -> None:
    address = Address.parse("framed+tcp://127.0.0.1:4242?max_message_size=100&nodelay=0")
    assert address.layers == ("framed",)
    assert address.scheme == "tcp"
    assert address.location == "127.0.0.1:4242"
    assert address.query == {"max_message_size": 100, "nodelay": False}


def test_formatting_is_canonical_and_round_trips() -> None:
    address = Address.parse("mem://x?seed=3&honest=0&lose=0.5")
    assert str(address) == "mem://x?honest=false&lose=0.5&seed=3"
    assert Address.parse(str(address)) == address


def test_percent_encoding_round_trips_paths_with_spaces() -> None:
    address = Address.parse("unix:///tmp/a%20b.sock")
    assert address.location == "/tmp/a b.sock"
    assert str(address) == "unix:///tmp/a%20b.sock"


def test_get_returns_the_default_for_options_not_given() -> None:
    from anyipc.transports.mem import OPTIONS

    capacity = next(option for option in OPTIONS if option.name == "capacity")
    assert Address.parse("mem://x").get(capacity) == capacity.default
    assert Address.parse("mem://x?capacity=7").get(capacity) == 7


@pytest.mark.parametrize(
    ("uri", "words"),
    [
        ("tcpp://127.0.0.1:1", ["unknown scheme 'tcpp'", "did you mean 'tcp'", "installed:"]),
        ("no-separator", ["not a URI", "scheme://"]),
        ("mem://x?bogus=1", ["unknown option 'bogus'", "it accepts:", "capacity"]),
        ("mem://x?capacity=lots", ["capacity", "must be int"]),
        ("mem://x?capacity=0", ["below its minimum"]),
        ("mem://x?honest=maybe", ["must be a boolean"]),
        ("mem://x?boundaries=blob", ["not one of: message, stream"]),
        ("mem://x?seed=1&seed=2", ["given twice"]),
        ("mem://x#frag", ["no #fragment"]),
        ("mem://x\n", ["control characters"]),
        ("Mem://x", ["not a valid scheme"]),
        ("nosuchlayer+tcp://127.0.0.1:1", ["unknown layer 'nosuchlayer'"]),
        ("framed+mem://x", ["cannot sit on mem://", "STREAM"]),
    ],
)
def test_invalid_addresses_raise_invalid_address_naming_what_is_valid(
    uri: str, words: list[str]
) -> None:
    with pytest.raises(InvalidAddress) as caught:
        Address.parse(uri)
    for word in words:
        assert word.lower() in str(caught.value).lower()
    assert isinstance(caught.value, ValueError)


def test_a_non_string_is_an_invalid_address() -> None:
    with pytest.raises(InvalidAddress, match="URI string"):
        Address.parse(42)  # type: ignore[arg-type]


def test_keyword_options_win_over_the_query() -> None:
    first, second = anyipc.pair("mem://x?max_message_size=10", max_message_size=20)
    with first, second:
        assert first.capabilities.max_message_size == 20


def test_keyword_options_are_validated_like_query_options() -> None:
    with pytest.raises(InvalidAddress, match="unknown option 'bogus'"):
        anyipc.pair("mem://x", bogus=1)
    with pytest.raises(InvalidAddress, match="must be int"):
        anyipc.pair("mem://x", capacity=1.5)


@pytest.fixture
def os_calls() -> Iterator[list[str]]:
    """Audit events that would create something on the OS, recorded while the test runs."""
    seen: list[str] = []
    watched = {"socket.__new__", "socket.bind", "socket.connect", "open", "os.mkfifo", "os.mkdir"}
    active = [True]

    def hook(event: str, args: tuple[object, ...]) -> None:
        if active[0] and event in watched:
            seen.append(event)

    sys.addaudithook(hook)
    yield seen
    active[0] = False


@pytest.mark.parametrize(
    "uri",
    [
        "tcp://127.0.0.1",
        "tcp://127.0.0.1:99999",
        "tcp://[::1:80",
        "unix://relative/path",
        "unix:///" + "x" * 200,
        "unix:///tmp/s.sock?bogus=1",
        "framed+tcp://127.0.0.1:0?max_message_size=-1",
    ],
)
def test_bad_input_creates_nothing_on_the_os(uri: str, os_calls: list[str]) -> None:
    for verb in (anyipc.connect, anyipc.listen):
        with pytest.raises(InvalidAddress):
            verb(uri)
    assert os_calls == []


option_values = st.dictionaries(
    st.sampled_from(["capacity", "seed", "max_message_size"]), st.integers(1, 2**40), max_size=3
)


@given(name=st.text("abcxyz-_.~0123456789", max_size=12), options=option_values)
def test_generated_addresses_round_trip(name: str, options: dict[str, int]) -> None:
    address = Address("mem", name, options)
    parsed = Address.parse(str(address))
    assert parsed == address
