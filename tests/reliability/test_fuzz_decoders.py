"""Property-based fuzzing of every decoder of peer input, :data:`EXAMPLES` examples each.

The decoders and what each may do with any input are in
``_decoder_oracles.py``: the ``framed+`` decoder (arbitrary bytes, cut
anywhere, against a plain reading of the format), the URI parser and the
typed options, the shared-memory ring's consumer over a control block and
records a hostile peer wrote, the rendezvous' setup line and segment
header, and ``anyipc.rpc``'s requests and replies.  The strategies mix raw
bytes or text with inputs built near the formats (valid frames beside
lengths at the limit, URIs from the installed schemes and options, JSON
objects with ids), so that the decoders' deeper paths are reached as well
as their first checks.

CI runs the issue's 10,000 examples per decoder; the long profile runs
100,000.  Decoders of unrelated inputs share a property (each example
feeds each of them), as hypothesis's own cost per example is most of the
run.  The ``framed+`` decoder's allocations are traced in a property of
their own (:func:`tracemalloc` slows everything it traces): a header
announcing up to the limit, then fewer bytes, 300 examples (3,000 long).
``fuzz_atheris.py`` fuzzes the same checks with coverage guidance, for as
long as one likes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import anyipc
from anyipc._options import Option
from anyipc.transports.framed import DEFAULT_MAX

from ._decoder_oracles import (
    OPTIONS,
    RING_CAPACITY,
    FramedDecoder,
    check_option,
    check_ring,
    check_rpc,
    check_setup,
    check_uri,
    quiet_rpc_log,
)
from .conftest import figure

EXAMPLES = figure(10_000, 100_000)
fuzzing = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
u64 = st.one_of(
    st.integers(0, 2**64 - 1),
    st.integers(0, 4 * RING_CAPACITY // 8).map(lambda n: 8 * n),
    st.sampled_from([1, 7, RING_CAPACITY - 8, RING_CAPACITY, 2**40, 2**63, 2**64 - 8, 2**64 - 1]),
)


# -- framed+ ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def framed_decoder() -> Iterator[FramedDecoder]:
    decoder = FramedDecoder()
    yield decoder
    decoder.close()


lengths_near_the_limit = st.sampled_from([0, 1, 64, DEFAULT_MAX, DEFAULT_MAX + 1, 2**31, 2**32 - 1])
frame_pieces = st.one_of(
    st.binary(max_size=64).map(lambda payload: len(payload).to_bytes(4, "big") + payload),
    st.binary(max_size=64),
    st.tuples(lengths_near_the_limit, st.binary(max_size=16)).map(
        lambda pair: pair[0].to_bytes(4, "big") + pair[1]
    ),
)


@st.composite
def cut_streams(draw: st.DrawFn) -> list[bytes]:
    """A stream of frames and garbage, cut into chunks at arbitrary points."""
    stream = b"".join(draw(st.lists(frame_pieces, max_size=6)))
    cuts = sorted(draw(st.lists(st.integers(0, len(stream)), max_size=4)))
    return [stream[start:end] for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True)]


@pytest.mark.timeout(figure(120, 1200))
@fuzzing
@given(chunks=cut_streams())
def test_the_framed_decoder(framed_decoder: FramedDecoder, chunks: list[bytes]) -> None:
    framed_decoder.check(chunks)


@pytest.mark.timeout(figure(120, 1200))
@settings(max_examples=figure(300, 3000), deadline=None)
@given(
    announced=st.one_of(st.integers(0, DEFAULT_MAX), st.just(DEFAULT_MAX)),
    sent=st.integers(0, 200_000),  # under mem://'s capacity of 256 KiB
)
def test_the_framed_decoder_allocates_what_arrives_not_what_is_announced(
    framed_decoder: FramedDecoder, announced: int, sent: int
) -> None:
    body = bytes(min(announced, sent))
    framed_decoder.check([announced.to_bytes(4, "big"), body], traced=True)


# -- URIs, options and anyipc.rpc --------------------------------------------------------
any_character = st.characters(exclude_categories=())  # lone surrogates and controls too
location_parts = st.sampled_from(
    ["a", "0", "9", ":", "/", "@", "[", "]", ".", "..", "-", "_", "%", "%00", "%ff", "%2F"]
    + ["%3F", "%25", "%zz", "?", "&", "=", "#", "+", " ", "é", "\udcff", "::1", "127.0.0.1"]
)
schemes = st.sampled_from(
    sorted(anyipc.transports())
    + ["framed+tcp", "framed+unix", "tls+tcp", "tls+unix", "framed+tls+tcp", "framed+udp", "nosuch"]
)
option_values = st.one_of(
    st.sampled_from(["0", "1", "true", "no", "600", "0777x", "-1", "1e999", "nan", "%ff", ""]),
    st.integers().map(str),
    st.text(max_size=6),
)
queries = st.lists(
    st.tuples(st.sampled_from(sorted({o.name for o in OPTIONS} | {"bogus"})), option_values),
    max_size=3,
).map(lambda pairs: "&".join(f"{name}={value}" for name, value in pairs))
built_uris = st.builds(
    lambda scheme, parts, query: f"{scheme}://{''.join(parts)}" + (f"?{query}" if query else ""),
    schemes,
    st.lists(location_parts, max_size=10),
    queries,
)
raw_values = st.one_of(
    st.text(any_character, max_size=10),
    st.sampled_from(["0o777", "0777", "0x10", "1_000", " 1", "1e3", "inf", "-0", "TRUE", "On"]),
    st.integers(),
    st.floats(),
    st.booleans(),
    st.none(),
    st.binary(max_size=4),
    st.builds(object),
)
json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(any_character, max_size=6)
)
requests = st.builds(
    lambda request_id, method, params, extra: {
        "id": request_id,
        "method": method,
        "params": params,
        **extra,
    },
    json_scalars,
    st.one_of(st.sampled_from(["echo", "", "nothing"]), json_scalars),
    st.one_of(
        st.lists(json_scalars, max_size=3),
        st.dictionaries(st.sampled_from(["value", "x"]), json_scalars),
        json_scalars,
    ),
    st.sampled_from(
        [{}, {"result": 1}, {"error": {"type": "E", "message": "m"}}, {"error": 5}, {"reply_to": 5}]
    ),
)
rpc_messages = st.one_of(
    st.binary(max_size=200),
    requests.map(lambda value: json.dumps(value).encode("utf-8", "surrogatepass")),
    st.integers(0, 3000).map(lambda depth: b"[" * depth + b"]" * depth),
)


@pytest.fixture(scope="module")
def quiet() -> Iterator[None]:
    logger = quiet_rpc_log()
    yield
    logger.disabled = False


@pytest.mark.timeout(figure(120, 1200))
@fuzzing
@given(
    text=st.one_of(st.text(any_character, max_size=40), built_uris),
    option=st.sampled_from(OPTIONS),
    raw=raw_values,
    message=rpc_messages,
)
def test_the_uri_option_and_rpc_decoders(
    quiet: None, text: str, option: Option, raw: object, message: bytes
) -> None:
    check_uri(text)
    check_option(option, raw)
    check_rpc(message)


# -- shared memory ------------------------------------------------------------------------
length_words = st.lists(
    st.one_of(st.integers(0, 64), u64, st.sampled_from([RING_CAPACITY - 8, RING_CAPACITY])),
    max_size=8,
)
setup_words = st.one_of(
    st.sampled_from(["anyipc-shm", "anyipc-mmap", "2", "3", str(RING_CAPACITY), "4096x"]),
    st.sampled_from(["lockfree", "locked", "12345", "", "-1"]),
    st.text(any_character, max_size=8),
)
setup_lines = st.one_of(
    st.binary(max_size=300),
    st.lists(setup_words, max_size=7).map(
        lambda words: " ".join(words).encode("utf-8", "surrogatepass") + b"\n"
    ),
)
headers = st.one_of(
    st.binary(max_size=200),
    st.binary(max_size=40).map(lambda tail: b"anyipc-shm-segment" + bytes(13) + b"\x01" + tail),
)


@pytest.mark.timeout(figure(120, 1200))
@fuzzing
@given(
    control=st.tuples(u64, u64, u64),
    first=st.integers(0, RING_CAPACITY // 8 - 1),
    lengths=length_words,
    fill=st.integers(0, 255),
    operations=st.binary(min_size=1, max_size=6),
    line=setup_lines,
    fds=st.lists(st.integers(3, 1023), max_size=5),
    segment=headers,
    locked=st.booleans(),
)
def test_the_ring_consumer_and_the_rendezvous(
    control: tuple[int, int, int],
    first: int,
    lengths: list[int],
    fill: int,
    operations: bytes,
    line: bytes,
    fds: list[int],
    segment: bytes,
    locked: bool,
) -> None:
    check_ring(control, first, lengths, fill, operations)
    check_setup(line, fds, segment, locked)
