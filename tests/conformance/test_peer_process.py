"""The suite's peer process (anyipc.testing._peer): how its echo ends on each kind of transport."""

from __future__ import annotations

import uuid

import pytest

import anyipc
from anyipc.testing._peer import HELLO, _serve_echo


@pytest.mark.parametrize(("faults", "lossless"), [("", True), ("&lose=0.001", False)])
def test_an_echoing_peer_takes_silence_for_the_end_only_where_messages_may_be_lost(
    faults: str, lossless: bool
) -> None:
    uri = f"mem://peer-{uuid.uuid4().hex[:8]}?connection=connectionless{faults}"
    with anyipc.bind(uri) as bound:
        assert bound.address is not None and bound.capabilities.lossless is lossless
        request = {"op": "echo", "uri": bound.address, "count": 2, "timeout": 0.05}
        if lossless:
            with pytest.raises(anyipc.Timeout):  # reported to the parent as a failure
                _serve_echo(request)
        else:
            _serve_echo(request)  # the two messages may have been lost: not a failure
        assert bound.recv_from(timeout=1)[0] == HELLO
