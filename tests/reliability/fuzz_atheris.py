"""Coverage-guided fuzzing of anyipc's decoders with atheris: the fuzz tier's long run.

The same decoders and contracts as ``test_fuzz_decoders.py`` (they are in
``_decoder_oracles.py``), driven by libFuzzer through atheris instead of
hypothesis, for as long as one likes.  Not a pytest file: run it.

atheris is not in the ``dev`` extra (it is a 35 MB native wheel; PyPI has
one for CPython 3.11 on x86-64 Linux)::

    pip install atheris

Then one target at a time, with libFuzzer's options after it; a corpus
directory keeps what was learnt for the next run::

    python tests/reliability/fuzz_atheris.py --list
    mkdir -p corpus/framed
    python tests/reliability/fuzz_atheris.py framed corpus/framed -max_total_time=3600 -timeout=1

``-timeout=1`` makes any input that takes over a second a failure (a
hang), as the contracts require.  A failure is reported with the input
written to ``crash-<hash>`` (or ``timeout-<hash>``); give that file in
place of the corpus to replay it::

    python tests/reliability/fuzz_atheris.py framed crash-0a1b2c...

Targets: ``framed`` (the ``framed+`` decoder, fed in chunks), ``uri``
(``Address.parse_syntax`` and ``Address.parse``), ``option`` (every declared
option's ``coerce``), ``ring`` (a shared-memory ring's consumer over a
scribbled control block and records), ``setup`` (the rendezvous' setup line
and segment header), ``rpc`` (``anyipc.rpc``'s request and reply decoders
and a service's answer).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

try:
    import atheris
except ImportError:
    sys.exit("fuzz_atheris.py needs atheris, which the dev extra leaves out: pip install atheris")

sys.path.insert(0, str(Path(__file__).parent))  # run as a script: the oracles are beside it
import _decoder_oracles as oracles  # noqa: E402

import anyipc  # noqa: E402

_SCHEMES = [*sorted(anyipc.transports()), "framed+tcp", "tls+tcp", "tls+unix", "framed+tls+tcp"]
_OPTION_NAMES = sorted({option.name for option in oracles.OPTIONS})
_SETUP_WORDS = ["anyipc-shm", "2", str(oracles.RING_CAPACITY), "lockfree", "locked", "12345"]


def _framed(provider: Any) -> None:
    chunks = [
        provider.ConsumeBytes(provider.ConsumeIntInRange(0, 64))
        for _ in range(provider.ConsumeIntInRange(0, 8))
    ]
    _FRAMED.check(chunks)


def _pick(provider: Any, choices: list[str]) -> str:
    return choices[provider.ConsumeIntInRange(0, len(choices) - 1)]


def _uri(provider: Any) -> None:
    if provider.ConsumeBool():  # anything at all
        oracles.check_uri(provider.ConsumeUnicode(200))
        return
    uri = f"{_pick(provider, _SCHEMES)}://{provider.ConsumeUnicode(40)}"
    pairs = [
        f"{_pick(provider, _OPTION_NAMES)}={provider.ConsumeUnicode(8)}"
        for _ in range(provider.ConsumeIntInRange(0, 3))
    ]
    oracles.check_uri(f"{uri}?{'&'.join(pairs)}" if pairs else uri)


def _option(provider: Any) -> None:
    option = oracles.OPTIONS[provider.ConsumeIntInRange(0, len(oracles.OPTIONS) - 1)]
    kind = provider.ConsumeIntInRange(0, 4)
    raw: object
    if kind == 0:
        raw = provider.ConsumeUnicode(16)
    elif kind == 1:
        raw = provider.ConsumeInt(8)
    elif kind == 2:
        raw = provider.ConsumeFloat()
    elif kind == 3:
        raw = provider.ConsumeBool()
    else:
        raw = provider.ConsumeBytes(4)
    oracles.check_option(option, raw)


def _ring(provider: Any) -> None:
    control = [provider.ConsumeIntInRange(0, 2**64 - 1) for _ in range(3)]
    first = provider.ConsumeIntInRange(0, oracles.RING_CAPACITY // 8 - 1)
    lengths = [
        provider.ConsumeIntInRange(0, 2**64 - 1) for _ in range(provider.ConsumeIntInRange(0, 8))
    ]
    fill = provider.ConsumeIntInRange(0, 255)
    oracles.check_ring(control, first, lengths, fill, provider.ConsumeBytes(6) or b"\0")


def _setup(provider: Any) -> None:
    locked = provider.ConsumeBool()
    fds = [provider.ConsumeIntInRange(3, 1023) for _ in range(provider.ConsumeIntInRange(0, 5))]
    if provider.ConsumeBool():  # the words of a setup line, some of them right
        words = [
            _pick(provider, _SETUP_WORDS) if provider.ConsumeBool() else provider.ConsumeUnicode(8)
            for _ in range(provider.ConsumeIntInRange(0, 6))
        ]
        line = " ".join(words).encode("utf-8", "surrogatepass") + b"\n"
    else:
        line = provider.ConsumeBytes(provider.ConsumeIntInRange(0, 300))
    oracles.check_setup(line, fds, provider.ConsumeBytes(200), locked)


def _json_value(provider: Any, depth: int = 0) -> object:
    """A JSON value the provider picks: a scalar, or (shallow) an array or an object."""
    kind = provider.ConsumeIntInRange(0, 6 if depth < 3 else 4)
    if kind == 0:
        return None
    if kind == 1:
        return provider.ConsumeBool()
    if kind == 2:
        return provider.ConsumeInt(8)
    if kind == 3:
        return provider.ConsumeRegularFloat()
    if kind == 4:
        return provider.ConsumeUnicode(8)
    items = [_json_value(provider, depth + 1) for _ in range(provider.ConsumeIntInRange(0, 3))]
    if kind == 5:
        return items
    return {str(index): item for index, item in enumerate(items)}


def _rpc(provider: Any) -> None:
    if provider.ConsumeBool():  # anything at all
        oracles.check_rpc(provider.ConsumeBytes(4096))
        return
    message = {
        "id": _json_value(provider),
        "method": "echo" if provider.ConsumeBool() else _json_value(provider),
        "params": _json_value(provider),
    }
    for member in ("result", "error", "reply_to"):
        if provider.ConsumeBool():
            message[member] = _json_value(provider)
    oracles.check_rpc(json.dumps(message).encode("utf-8", "surrogatepass"))


TARGETS: dict[str, Callable[[Any], None]] = {
    "framed": _framed,
    "uri": _uri,
    "option": _option,
    "ring": _ring,
    "setup": _setup,
    "rpc": _rpc,
}
_FRAMED: oracles.FramedDecoder


def main() -> None:
    """``fuzz_atheris.py TARGET [libFuzzer options and corpus]``; see the module."""
    global _FRAMED
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        print(f"usage: {sys.argv[0]} {{{','.join(TARGETS)}}} [libFuzzer arguments]")
        sys.exit(0 if sys.argv[1:2] == ["--list"] else 2)
    target = TARGETS[sys.argv.pop(1)]
    atheris.instrument_all()  # every plugin is loaded (by _SCHEMES): all of their code too
    oracles.quiet_rpc_log()
    _FRAMED = oracles.FramedDecoder()

    def one_input(data: bytes) -> None:
        target(atheris.FuzzedDataProvider(data))

    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
