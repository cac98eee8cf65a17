"""The conformance suite: hold a transport to the capabilities it claims.

Three layers, usable separately:

* plain check functions over a :class:`Harness` (``check_*``), raising
  ``AssertionError`` or :class:`NotApplicable`, no pytest needed;
* :class:`TransportConformance`, a pytest class to subclass with one line::

      class TestMine(TransportConformance):
          uri = "mine"

  or from the shell: ``anyipc conformance mine`` (which runs
  ``pytest --pyargs anyipc.testing --anyipc-uri mine``);
* :func:`channel_machine`, a hypothesis state machine that drives a
  conversation against a model built from the capabilities.

Importing this package needs pytest and hypothesis (``anyipc[testing]``).
"""

from anyipc.testing._checks import (
    check_absent_operations,
    check_address_roundtrip,
    check_backpressure,
    check_burst,
    check_close_idempotent,
    check_close_wakes_recv,
    check_connect_refused,
    check_declarations,
    check_duplex,
    check_invalid_address,
    check_large_payloads,
    check_listen_twice,
    check_many_connections,
    check_max_size,
    check_orderly_close,
    check_recv_timeout,
    check_reply,
    check_roundtrip,
    check_sequence,
)
from anyipc.testing._expect import check_delivery
from anyipc.testing._harness import Conversation, Harness, NotApplicable
from anyipc.testing._peer import PeerProcess
from anyipc.testing._processes import check_peer_death, check_peer_echoes, check_peer_sends
from anyipc.testing._snapshot import Snapshot, assert_no_leaks
from anyipc.testing._stateful import channel_machine, payloads_for
from anyipc.testing._suite import TransportConformance

__all__ = [
    "Conversation",
    "Harness",
    "NotApplicable",
    "PeerProcess",
    "Snapshot",
    "TransportConformance",
    "assert_no_leaks",
    "channel_machine",
    "check_absent_operations",
    "check_address_roundtrip",
    "check_backpressure",
    "check_burst",
    "check_close_idempotent",
    "check_close_wakes_recv",
    "check_connect_refused",
    "check_declarations",
    "check_delivery",
    "check_duplex",
    "check_invalid_address",
    "check_large_payloads",
    "check_listen_twice",
    "check_many_connections",
    "check_max_size",
    "check_orderly_close",
    "check_peer_death",
    "check_peer_echoes",
    "check_peer_sends",
    "check_recv_timeout",
    "check_reply",
    "check_roundtrip",
    "check_sequence",
    "payloads_for",
]
