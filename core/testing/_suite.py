"""The pytest face of the conformance suite: subclass it, name your URI, run pytest.

::

    from anyipc.testing import TransportConformance

    class TestMine(TransportConformance):
        uri = "mine"            # a bare scheme: fresh test addresses each time
        # uri = "mine://fixed"  # or one full URI, reused for every conversation

Every test maps to a property of the conformance catalogue (its id starts
the test name).  The hypothesis tests take their settings (``max_examples``
...) from the profile loaded when this module is first imported: load your
profile before importing :mod:`anyipc.testing` (at the top of conftest.py,
or with ``--hypothesis-profile``).  A property the capabilities make meaningless is skipped
with the reason.  Cross-process tests start the peer in a fresh interpreter
and need the transport installed (an entry point), not just registered.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import ClassVar, TypeVar

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import run_state_machine_as_test

from anyipc._address import Address
from anyipc._errors import InvalidAddress
from anyipc._options import Option
from anyipc.pytest_plugin import CLAIMS, DELIVERY
from anyipc.testing import _checks as checks
from anyipc.testing import _processes as processes
from anyipc.testing._harness import Harness, NotApplicable
from anyipc.testing._peer import PeerProcess
from anyipc.testing._snapshot import Snapshot, assert_no_leaks
from anyipc.testing._stateful import channel_machine, payloads_for

__all__ = ["TransportConformance"]

_T = TypeVar("_T")

suite_settings = settings(
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.differing_executors,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)


def _run(harness: Harness, check: Callable[..., _T], *args: object) -> _T:
    try:
        return check(harness, *args)
    except NotApplicable as exc:
        pytest.skip(str(exc))
    finally:
        harness.close_all()


def _option_values(option: Option) -> st.SearchStrategy[object]:
    if option.choices:
        return st.sampled_from(option.choices)
    if option.kind is bool:
        return st.booleans()
    if option.kind is int:
        low = int(option.minimum) if option.minimum is not None else -(2**31)
        high = int(option.maximum) if option.maximum is not None else 2**31
        return st.integers(low, high)
    if option.kind is float:
        return st.floats(option.minimum, option.maximum, allow_nan=False, allow_infinity=False)
    return st.nothing()


class TransportConformance:
    """Every conformance property, run against the transport named by :attr:`uri`."""

    uri: ClassVar[str] = ""

    @pytest.fixture(scope="class")
    @classmethod
    def conformance_uri(cls) -> str:
        """The URI or scheme under test; override this fixture to compute it."""
        if not cls.uri:
            pytest.fail(f"{cls.__name__} must set `uri` (e.g. uri = 'tcp')")
        return cls.uri

    @pytest.fixture(scope="class")
    @classmethod
    def harness(cls, conformance_uri: str, request: pytest.FixtureRequest) -> Iterator[Harness]:
        """The harness for the transport under test (skipped where unavailable)."""
        harness = Harness(conformance_uri)
        reason = harness.transport.available()
        if reason:
            pytest.skip(f"{conformance_uri} is not available here: {reason}")
        described = harness.capabilities.describe()
        claims = request.config.stash.setdefault(CLAIMS, {})
        claims[conformance_uri] = ", ".join(f"{key}={value}" for key, value in described.items())
        yield harness
        harness.close_all()

    @pytest.fixture(scope="class")
    @classmethod
    def peer(cls, harness: Harness) -> Iterator[PeerProcess | None]:
        """A peer process for named transports (inherited ones hand an end to a new child)."""
        if not harness.cross_process:
            pytest.skip(
                f"{harness.uri}: scope {harness.capabilities.scope.value} or no named endpoint"
            )
        if harness.inherited:
            yield None
            return
        peer = PeerProcess()
        peer.start()
        yield peer
        peer.close()

    @pytest.fixture(autouse=True)
    def no_leaks(self, harness: Harness, request: pytest.FixtureRequest) -> Iterator[None]:
        """G2: every test leaves no descriptor, thread, socket file, segment or queue behind."""
        paths = harness.watched_paths(harness.fresh_uri())
        before = Snapshot.take(paths)
        yield
        harness.close_all()
        peer = request.node.funcargs.get("peer")
        allowed = peer.descriptors() if isinstance(peer, PeerProcess) else set()
        assert_no_leaks(before, paths, allowed_fds=allowed)

    # -- A ------------------------------------------------------------------------------
    def test_a1_declarations(self, harness: Harness) -> None:
        _run(harness, checks.check_declarations)

    def test_a2_absent_operations(self, harness: Harness) -> None:
        _run(harness, checks.check_absent_operations)

    # -- B ------------------------------------------------------------------------------
    @suite_settings
    @given(data=st.data())
    def test_b1_roundtrip(self, harness: Harness, data: st.DataObject) -> None:
        _run(harness, checks.check_roundtrip, data.draw(payloads_for(harness, 65536)))

    @suite_settings
    @given(data=st.data())
    def test_b2_to_b6_sequence(self, harness: Harness, data: st.DataObject) -> None:
        payloads = data.draw(st.lists(payloads_for(harness), max_size=40))
        _run(harness, checks.check_sequence, payloads)

    @settings(suite_settings, max_examples=1)
    @given(data=st.data())
    def test_b4_burst(
        self,
        harness: Harness,
        data: st.DataObject,
        record_property: Callable[[str, object], None],
        request: pytest.FixtureRequest,
    ) -> None:
        if harness.message_strategy is None:
            share = _run(harness, checks.check_burst)
            if not harness.capabilities.lossless:  # B5: reported, asserted only above the floor
                record_property("anyipc_delivered_share", share)
                delivery = request.config.stash.setdefault(DELIVERY, {})
                delivery[harness.uri] = (
                    f"{share:.0%} of a burst arrived (floor {harness.delivery_floor:.0%})"
                )
            return
        burst = st.lists(payloads_for(harness), min_size=100, max_size=100)
        _run(harness, checks.check_sequence, data.draw(burst))

    def test_b7_duplex(self, harness: Harness) -> None:
        _run(harness, checks.check_duplex)

    # -- C ------------------------------------------------------------------------------
    def test_c1_connect_refused(self, harness: Harness) -> None:
        _run(harness, checks.check_connect_refused)

    def test_c2_listen_twice(self, harness: Harness) -> None:
        _run(harness, checks.check_listen_twice)

    def test_c3_many_connections(self, harness: Harness) -> None:
        _run(harness, checks.check_many_connections)

    def test_c4_reply(self, harness: Harness) -> None:
        _run(harness, checks.check_reply)

    # -- D ------------------------------------------------------------------------------
    def test_d1_close_idempotent(self, harness: Harness) -> None:
        _run(harness, checks.check_close_idempotent)

    def test_d2_orderly_close(self, harness: Harness) -> None:
        _run(harness, checks.check_orderly_close)

    def test_d3_peer_death(self, harness: Harness) -> None:
        _run(harness, processes.check_peer_death)

    @settings(suite_settings, max_examples=5)
    @given(timeout=st.floats(0.0, 0.2), data=st.data())
    def test_d4_recv_timeout(self, harness: Harness, timeout: float, data: st.DataObject) -> None:
        message = data.draw(payloads_for(harness).filter(bool))
        _run(harness, checks.check_recv_timeout, timeout, message)

    def test_d5_close_wakes_recv(self, harness: Harness) -> None:
        _run(harness, checks.check_close_wakes_recv)

    # -- E ------------------------------------------------------------------------------
    @settings(suite_settings, max_examples=1)
    @given(data=st.data())
    def test_e1_e2_max_size(self, harness: Harness, data: st.DataObject) -> None:
        limit = harness.capabilities.max_message_size
        exact = None
        if harness.message_strategy is not None and limit is not None:
            exact = data.draw(payloads_for(harness, limit).filter(lambda m: len(m) == limit))
        _run(harness, checks.check_max_size, exact)

    def test_e3_large_payloads(self, harness: Harness) -> None:
        _run(harness, checks.check_large_payloads)

    def test_e4_backpressure(self, harness: Harness) -> None:
        _run(harness, checks.check_backpressure)

    # -- F ------------------------------------------------------------------------------
    @suite_settings
    @given(data=st.data())
    def test_f1_f2_peer_sends(
        self, harness: Harness, peer: PeerProcess | None, data: st.DataObject
    ) -> None:
        payloads = data.draw(st.lists(payloads_for(harness), max_size=20))
        _run(harness, processes.check_peer_sends, peer, payloads)

    @suite_settings
    @given(data=st.data())
    def test_f1_f2_peer_echoes(
        self, harness: Harness, peer: PeerProcess | None, data: st.DataObject
    ) -> None:
        payloads = data.draw(st.lists(payloads_for(harness), max_size=20))
        _run(harness, processes.check_peer_echoes, peer, payloads)

    # -- G ------------------------------------------------------------------------------
    @suite_settings
    @given(data=st.data())
    def test_g1_address_roundtrip(self, harness: Harness, data: st.DataObject) -> None:
        base = Address.parse_syntax(harness.fresh_uri())
        options = {}
        for option in harness.transport.options:
            if data.draw(st.booleans(), label=f"set {option.name}"):
                value = data.draw(_option_values(option), label=option.name)
                options[option.name] = value
        try:
            address = Address.parse(str(base.replace(options={**base.query, **options})))
        except InvalidAddress:
            assume(False)
            return
        _run(harness, checks.check_address_roundtrip, str(address))

    @suite_settings
    @given(data=st.data())
    def test_g1_invalid_addresses(self, harness: Harness, data: st.DataObject) -> None:
        uri = harness.fresh_uri()
        scheme = Address.parse_syntax(uri).scheme
        rest = uri.split("://", 1)[1]
        joiner = "&" if "?" in rest else "?"
        catalogue = [
            uri.replace(f"{scheme}://", f"{scheme}x://", 1),
            uri.replace("://", ":/", 1),
            f"{uri}{joiner}no_such_option=1",
            f"{uri}#fragment",
            uri + "\n",
            "",
        ]
        for option in harness.transport.options:
            if option.kind in (int, float):
                catalogue.append(f"{uri}{joiner}{option.name}=not-a-number")
            elif option.kind is bool:
                catalogue.append(f"{uri}{joiner}{option.name}=maybe")
        _run(harness, checks.check_invalid_address, data.draw(st.sampled_from(catalogue)))

    # -- Q: model-based --------------------------------------------------------------------
    def test_q_state_machine(self, harness: Harness) -> None:
        machine = channel_machine(harness)
        try:
            run_state_machine_as_test(
                machine, settings=settings(suite_settings, stateful_step_count=30)
            )
        finally:
            harness.close_all()
