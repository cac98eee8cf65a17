"""Keyword-only options that take objects, and layers that check the role they will play."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import anyipc
from anyipc import Address, InvalidAddress, LayerSpec, Option, Role, hookimpl
from anyipc._channel import Channel
from anyipc._registry import registry


class Token:
    """An object that a URI cannot write."""


TOKEN = Option(name="token", kind=Token, default=None, keyword_only=True, doc="a Token object")


def test_a_keyword_only_option_takes_an_instance_of_its_kind() -> None:
    token = Token()
    assert TOKEN.coerce(token) is token


def test_a_keyword_only_option_cannot_come_from_a_uri() -> None:
    with pytest.raises(InvalidAddress, match="cannot be written in a URI.*keyword argument token="):
        TOKEN.coerce("from-a-query")
    with pytest.raises(InvalidAddress, match="must be a Token, not int"):
        TOKEN.coerce(3)


def test_only_keyword_only_options_may_have_other_kinds() -> None:
    with pytest.raises(ValueError, match="keyword_only"):
        Option(name="token", kind=Token, default=None, doc="")


def test_an_object_has_no_uri_form() -> None:
    address = Address("tcp", "127.0.0.1:1", {"token": Token(), "nodelay": False})
    assert str(address) == "tcp://127.0.0.1:1?nodelay=false"


class _Checked:
    """A layer over mem:// that refuses one role, and records what it was asked."""

    def __init__(self, refused: Role) -> None:
        self.refused = refused
        self.asked: list[tuple[str, Role]] = []

    def check_role(self, address: Address, role: Role) -> str | None:
        self.asked.append((str(address), role))
        return "no such side here" if role is self.refused else None

    @hookimpl
    def anyipc_layers(self) -> list[LayerSpec]:
        return [
            LayerSpec(
                name="checked",
                description="passes everything through; refuses one role",
                requires=lambda inner: None,
                capabilities=lambda inner, address: inner,
                wrap=self.wrap,
                check_role=self.check_role,
            )
        ]

    def wrap(self, channel: Channel, address: Address, role: Role) -> Channel:
        return channel


@pytest.fixture
def checked() -> Iterator[_Checked]:
    layer = _Checked(Role.SERVER)
    registry().register(layer, "checked-layer")
    yield layer
    registry().unregister("checked-layer")


def test_a_refused_role_is_invalid_before_anything_is_opened(
    checked: _Checked, tmp_path: Path
) -> None:
    path = tmp_path / "never.sock"
    with pytest.raises(InvalidAddress, match=r"checked\+ cannot be the server side of listen"):
        anyipc.listen(f"checked+unix://{path}")
    assert not path.exists()
    assert checked.asked == [(f"checked+unix://{path}", Role.SERVER)]


def test_each_verb_asks_about_the_roles_it_wraps(checked: _Checked) -> None:
    checked.refused = Role.CLIENT
    with pytest.raises(InvalidAddress, match="client side of pair"):
        anyipc.pair("checked+mem://roles")
    assert [role for _, role in checked.asked] == [Role.SERVER, Role.CLIENT]
    checked.asked.clear()
    with pytest.raises(InvalidAddress, match="client side of connect"):
        anyipc.connect("checked+mem://roles")
    assert [role for _, role in checked.asked] == [Role.CLIENT]


def test_a_layer_sees_the_stack_from_itself_downwards(checked: _Checked) -> None:
    checked.refused = Role.CLIENT
    with pytest.raises(InvalidAddress):
        anyipc.connect("framed+checked+mem://below?boundaries=stream")
    assert checked.asked == [("checked+mem://below?boundaries=stream", Role.CLIENT)]
