"""URI addresses: ``[layer+...]scheme://location?option=value&...``."""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import parse_qsl, quote, unquote

import attrs

from anyipc._errors import InvalidAddress
from anyipc._options import URI_KINDS, Option, OptionValue

__all__ = ["MAX_LOCATION", "Address"]

_NAME = re.compile(r"[a-z][a-z0-9-]*\Z")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
#: the longest location, in UTF-8 bytes: no OS object has a longer name (PATH_MAX)
MAX_LOCATION = 4096
_LOCATION_SAFE = "/:@[]!$'()*,;=-._~"
_VALUE_SAFE = "/:@[]!$'()*,;-._~"


def _freeze(
    options: Mapping[str, OptionValue] | tuple[tuple[str, OptionValue], ...],
) -> tuple[tuple[str, OptionValue], ...]:
    pairs = options.items() if isinstance(options, Mapping) else options
    return tuple(sorted(pairs))


@attrs.frozen
class Address:
    """A parsed, validated address.  ``Address.parse(str(a)) == a`` always holds.

    The one exception: an object given by keyword to a ``keyword_only``
    option (``tls+``'s ``context``) has no URI form, and ``str()`` leaves it
    out.

    ``scheme`` names the transport and ``layers`` the layers stacked on it,
    outermost first (``framed+tcp://`` has ``layers == ("framed",)``).
    ``location`` is everything between ``://`` and ``?``, percent-decoded:
    ``host:port``, ``/path``, ``@abstract-name``, a queue name...  The
    options are typed by the transport's and layers' declarations; only the
    options that were given are stored, :meth:`get` supplies defaults.
    """

    scheme: str
    location: str = ""
    options: tuple[tuple[str, OptionValue], ...] = attrs.field(factory=dict, converter=_freeze)
    layers: tuple[str, ...] = ()

    @classmethod
    def parse(cls, uri: str) -> Address:
        """Parse and validate ``uri`` against the installed transports and layers.

        Raises :class:`InvalidAddress` (naming what is valid) for a malformed
        URI, an unknown scheme or layer, a location the transport rejects, an
        unknown option or a bad option value.  Nothing is created on the OS.
        """
        from anyipc._registry import registry

        return registry().validate(cls.parse_syntax(uri))

    @classmethod
    def parse_syntax(cls, uri: str) -> Address:
        """Split ``uri`` into its parts without consulting any transport.

        Option values stay strings; :meth:`parse` types them.  Raises
        :class:`InvalidAddress` for anything but a string, control
        characters, text UTF-8 cannot encode (lone surrogates), a ``%`` that
        does not start a %-escape of two hex digits, %-escapes that do not
        decode as UTF-8, a NUL byte (``%00``) in the location
        or an option value, a location longer than :data:`MAX_LOCATION`
        bytes, a malformed query, or an option given twice.
        """
        if not isinstance(uri, str):
            raise InvalidAddress(f"an address is a URI string, not {type(uri).__name__}")
        if any(ord(char) < 0x20 or ord(char) == 0x7F for char in uri):
            raise InvalidAddress(f"{uri!r}: control characters are not allowed in an address")
        try:
            uri.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidAddress(
                f"{uri!r}: an address is text that UTF-8 can encode (no lone surrogates)"
            ) from None
        head, sep, rest = uri.partition("://")
        if not sep:
            raise InvalidAddress(
                f"{uri!r} is not a URI: expected scheme://location (e.g. tcp://127.0.0.1:4242)"
            )
        if "#" in rest:
            raise InvalidAddress(f"{uri!r}: an address has no #fragment")
        if _BAD_ESCAPE.search(rest):
            raise InvalidAddress(
                f"{uri!r}: a '%' starts a %-escape of two hex digits (write '%' itself as %25)"
            )
        *layers, scheme = head.split("+")
        for name in (*layers, scheme):
            if not _NAME.match(name):
                raise InvalidAddress(
                    f"{uri!r}: {name!r} is not a valid scheme or layer name "
                    "(lowercase letters, digits and '-', starting with a letter)"
                )
        raw_location, _, query = rest.partition("?")
        options: dict[str, OptionValue] = {}
        if query:
            try:
                pairs = parse_qsl(
                    query, keep_blank_values=True, strict_parsing=True, errors="strict"
                )
            except ValueError:  # UnicodeDecodeError too: a %-escape that is not UTF-8
                raise InvalidAddress(
                    f"{uri!r}: malformed query {query!r}; expected name=value&... "
                    "(with %-escapes of UTF-8)"
                ) from None
            for name, value in pairs:
                if name in options:
                    raise InvalidAddress(f"{uri!r}: option {name!r} is given twice")
                if "\0" in value:
                    raise InvalidAddress(f"{uri!r}: option {name!r} holds a NUL byte (%00)")
                options[name] = value
        return cls(scheme, _location(uri, raw_location), options, tuple(layers))

    def get(self, option: Option) -> OptionValue | None:
        """The value of ``option`` here: the one given, else its default."""
        for name, value in self.options:
            if name == option.name:
                return value
        return option.default

    @property
    def query(self) -> dict[str, OptionValue]:
        """The given options as a new dict."""
        return dict(self.options)

    def replace(
        self,
        *,
        location: str | None = None,
        options: Mapping[str, OptionValue] | None = None,
        layers: tuple[str, ...] | None = None,
        scheme: str | None = None,
    ) -> Address:
        """A copy with the given parts replaced (not re-validated)."""
        return Address(
            self.scheme if scheme is None else scheme,
            self.location if location is None else location,
            self.query if options is None else options,
            self.layers if layers is None else layers,
        )

    def __str__(self) -> str:
        prefix = "".join(f"{layer}+" for layer in self.layers)
        text = f"{prefix}{self.scheme}://{quote(self.location, safe=_LOCATION_SAFE)}"
        written = [(name, value) for name, value in self.options if isinstance(value, URI_KINDS)]
        if written:
            query = "&".join(
                f"{name}={quote(_format_value(value), safe=_VALUE_SAFE)}" for name, value in written
            )
            text = f"{text}?{query}"
        return text


def _location(uri: str, raw: str) -> str:
    """The %-decoded location of ``uri``; :class:`InvalidAddress` if it cannot name anything."""
    try:
        location = unquote(raw, errors="strict")
    except UnicodeDecodeError:
        raise InvalidAddress(f"{uri!r}: a %-escape in the location is not UTF-8") from None
    if "\0" in location:
        raise InvalidAddress(f"{uri!r}: the location holds a NUL byte (%00); no name can")
    size = len(location.encode("utf-8"))
    if size > MAX_LOCATION:
        raise InvalidAddress(
            f"{uri[:60]!r}...: the location is {size} bytes; at most {MAX_LOCATION} "
            "(no OS object has a longer name)"
        )
    return location


def _format_value(value: str | int | float | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)
