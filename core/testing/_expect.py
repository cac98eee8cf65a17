"""What the capabilities allow a receiver to observe, given what was sent.

Pure functions over lists of messages: no channels, no pytest.  Each raises
``AssertionError`` with a message naming the broken claim.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from anyipc._capabilities import Boundaries, Capabilities

__all__ = ["check_delivery"]


def _preview(data: bytes) -> str:
    return repr(data[:24]) + ("..." if len(data) > 24 else "")


def check_delivery(
    capabilities: Capabilities, sent: Sequence[bytes], received: Sequence[bytes], *, complete: bool
) -> None:
    """Assert that ``received`` is something ``capabilities`` allow for ``sent``.

    ``complete`` says the receiver saw the orderly end (or waited long enough
    for everything), so a lossless transport must have delivered it all.
    """
    if capabilities.boundaries is Boundaries.STREAM:
        _check_stream(sent, received, complete=complete)
        return
    known = set(sent)
    fabricated = any(message not in known for message in received)
    if fabricated and b"".join(sent).startswith(b"".join(received)):
        raise AssertionError(
            f"MESSAGE boundaries are claimed, but {len(sent)} messages arrived as "
            f"{len(received)}: they were split or merged"
        )
    if capabilities.intact:
        _check_nothing_fabricated(sent, received)
    if capabilities.duplicate_free:
        _check_no_duplicates(capabilities, sent, received)
    if capabilities.ordered and capabilities.intact:
        _check_order(sent, received, allow_repeats=not capabilities.duplicate_free)
    if capabilities.lossless and complete:
        if capabilities.intact:
            missing = Counter(sent) - Counter(received)
            assert not missing, (
                f"lossless is claimed, but {sum(missing.values())} of {len(sent)} messages "
                f"never arrived (e.g. {_preview(next(iter(missing)))})"
            )
        else:
            assert len(received) >= len(sent), (
                f"lossless is claimed, but only {len(received)} of {len(sent)} messages arrived"
            )


def _check_stream(sent: Sequence[bytes], received: Sequence[bytes], *, complete: bool) -> None:
    assert all(received), "a STREAM recv returned b'' (it must return 1..n bytes)"
    expected = b"".join(sent)
    got = b"".join(received)
    if complete:
        assert got == expected, _stream_difference(expected, got)
    else:
        assert expected.startswith(got), _stream_difference(expected, got)


def _stream_difference(expected: bytes, got: bytes) -> str:
    index = next((i for i, (a, b) in enumerate(zip(expected, got, strict=False)) if a != b), None)
    if index is None:
        return f"stream: {len(got)} bytes received where {len(expected)} were sent"
    return f"stream: byte {index} differs ({expected[index]:#04x} sent, {got[index]:#04x} received)"


def _check_nothing_fabricated(sent: Sequence[bytes], received: Sequence[bytes]) -> None:
    sent_set = set(sent)
    for message in received:
        assert message in sent_set, (
            f"intact is claimed, but a message that was never sent arrived: {_preview(message)} "
            "(damaged, split or merged)"
        )


def _check_no_duplicates(
    capabilities: Capabilities, sent: Sequence[bytes], received: Sequence[bytes]
) -> None:
    if capabilities.intact:
        extra = Counter(received) - Counter(sent)
        assert not extra, (
            f"duplicate_free is claimed, but {_preview(next(iter(extra)))} arrived more often "
            "than it was sent"
        )
    else:
        assert len(received) <= len(sent), (
            f"duplicate_free is claimed, but {len(received)} messages arrived for {len(sent)} sent"
        )


def _check_order(sent: Sequence[bytes], received: Sequence[bytes], *, allow_repeats: bool) -> None:
    """``received`` must be a subsequence of ``sent`` (repeats of one item allowed if asked)."""
    position = 0
    last = None
    for index, message in enumerate(received):
        if allow_repeats and last is not None and message == sent[last]:
            continue
        while position < len(sent) and sent[position] != message:
            position += 1
        assert position < len(sent), (
            f"ordered is claimed, but message #{index} ({_preview(message)}) arrived out of the "
            "order it was sent in"
        )
        last = position
        position += 1
