"""The conformance suite on signal:// in both modes (the receiving end binds signal://self).

Classic signals claim little (not lossless, not ordered) and the suite checks
that little; rt signals claim reliable delivery and are held to it.  Both
carry only their own vocabulary, which the suite draws from the transport's
``message_strategy``.
"""

from __future__ import annotations

from anyipc.testing import TransportConformance


class TestSignal(TransportConformance):
    uri = "signal://self"


class TestSignalRt(TransportConformance):
    uri = "signal://self?mode=rt"
