"""Typed transport options: declared by plugins, validated strictly, never ignored."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TypeAlias

import attrs

from anyipc._errors import InvalidAddress

__all__ = ["Option", "OptionValue", "resolve_options"]

#: A typed option value: what a URI can write (``str``, ``int``, ``float``,
#: ``bool``), or, for a keyword-only option, an object of its ``kind``.
OptionValue: TypeAlias = str | int | float | bool | object

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
URI_KINDS = (str, int, float, bool)  #: the kinds of value a URI can write


def _check_kind(instance: Option, attribute: object, value: type) -> None:
    if instance.keyword_only:
        if not isinstance(value, type):
            raise ValueError(f"option {instance.name!r}: kind must be a class")
        return
    if value not in URI_KINDS:
        raise ValueError(
            f"option {instance.name!r}: kind must be one of str, int, float, bool "
            "(or any class, for a keyword_only option)"
        )


@attrs.frozen(kw_only=True)
class Option:
    """One option a transport or layer accepts in its URI query or as a keyword.

    ``kind`` is ``str``, ``int``, ``float`` or ``bool``; ``choices`` limits a
    ``str``; ``minimum``/``maximum`` bound numbers; ``check`` may reject a
    value with a message (return ``None`` when it is fine).  Booleans are
    written ``1/0``, ``true/false``, ``yes/no`` or ``on/off`` in URIs.

    A ``keyword_only`` option takes a Python object that a URI cannot write
    (``tls+``'s ``context``, an ``ssl.SSLContext``): its ``kind`` may be any
    class, the value must be an instance of it, given as a keyword argument
    to a verb; the same name in a URI query raises :class:`InvalidAddress`.
    Such values are left out of the address's string form and out of error
    messages (a key passed this way is never shown).
    """

    name: str = attrs.field(validator=attrs.validators.matches_re(r"[a-z][a-z0-9_]*"))
    kind: type = attrs.field(validator=_check_kind)
    default: OptionValue | None
    doc: str
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    check: Callable[[OptionValue], str | None] | None = attrs.field(default=None, eq=False)
    keyword_only: bool = False

    def coerce(self, raw: object) -> OptionValue:
        """The typed value of ``raw`` (a URI string or a Python value).

        Raises :class:`InvalidAddress` naming the option and what is valid.
        """
        value = self._convert(raw)
        shown = self.name if self.keyword_only else f"{self.name}={raw!r}"
        if self.choices and value not in self.choices:
            raise InvalidAddress(f"option {shown} is not one of: {', '.join(self.choices)}")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if self.minimum is not None and value < self.minimum:
                raise InvalidAddress(f"option {shown} is below its minimum {self.minimum:g}")
            if self.maximum is not None and value > self.maximum:
                raise InvalidAddress(f"option {shown} is above its maximum {self.maximum:g}")
        if self.check is not None:
            problem = self.check(value)
            if problem:
                raise InvalidAddress(f"option {shown}: {problem}")
        return value

    def _convert(self, raw: object) -> OptionValue:
        kind_name = self.kind.__name__
        if self.keyword_only:
            if isinstance(raw, self.kind):
                return raw
            if isinstance(raw, str):
                raise InvalidAddress(
                    f"option {self.name} cannot be written in a URI: pass a {kind_name} "
                    f"object as the keyword argument {self.name}=..."
                )
            raise InvalidAddress(
                f"option {self.name} must be a {kind_name}, not {type(raw).__name__}"
            )
        if self.kind is bool:
            if isinstance(raw, bool):
                return raw
            if isinstance(raw, str) and raw.lower() in _TRUE | _FALSE:
                return raw.lower() in _TRUE
            raise InvalidAddress(f"option {self.name}={raw!r} must be a boolean (true/false, 1/0)")
        if isinstance(raw, bool):
            raise InvalidAddress(f"option {self.name}={raw!r} must be {kind_name}, not bool")
        if self.kind is str:
            if isinstance(raw, str):
                return raw
            raise InvalidAddress(f"option {self.name}={raw!r} must be a string")
        try:
            if self.kind is int:
                if isinstance(raw, float):
                    raise ValueError
                return int(raw) if isinstance(raw, int) else int(str(raw), 10)
            value = float(raw) if isinstance(raw, (int, float, str)) else float("nan")
        except ValueError:
            raise InvalidAddress(f"option {self.name}={raw!r} must be {kind_name}") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise InvalidAddress(f"option {self.name}={raw!r} must be a finite number")
        return value


def resolve_options(
    declared: Iterable[Option], given: Mapping[str, object], owner: str
) -> dict[str, OptionValue]:
    """Validate ``given`` against ``declared`` and return the typed values.

    Only options that were given appear in the result (defaults are read with
    :func:`option_value`).  An unknown name raises :class:`InvalidAddress`
    listing the options ``owner`` accepts.
    """
    by_name = {option.name: option for option in declared}
    typed: dict[str, OptionValue] = {}
    for name, raw in given.items():
        option = by_name.get(name)
        if option is None:
            known = ", ".join(sorted(by_name)) or "none"
            raise InvalidAddress(f"unknown option {name!r} for {owner} (it accepts: {known})")
        typed[name] = option.coerce(raw)
    return typed
