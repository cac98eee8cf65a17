"""The whole anyipc conformance suite on pty://: one class is all it takes."""

from anyipc.testing import TransportConformance


class TestPty(TransportConformance):
    """Every property the suite derives from pty://'s capabilities."""

    uri = "pty://"
