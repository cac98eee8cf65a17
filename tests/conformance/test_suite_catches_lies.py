"""The suite can fail: each mem:// fault, hidden behind honest=false, is caught.

The same faults declared honestly pass the same tests.  The suite runs in a
subprocess (pytester), exactly as ``anyipc conformance`` would run it.
"""

from __future__ import annotations

import pytest

from anyipc.testing import Harness, check_burst

SELECTION = "b2_to_b6 or b4_burst or state_machine or peer_sends"

# fault -> the claim whose violation the suite must report
LIES = {
    "lose": "lossless is claimed",
    "duplicate": "duplicate_free is claimed",
    "reorder": "ordered is claimed",
    "corrupt": "intact is claimed",
    "split": "MESSAGE boundaries are claimed",
    "merge": "MESSAGE boundaries are claimed",
}


PROFILE = """
from hypothesis import settings
settings.register_profile("lies", max_examples=20, deadline=None, derandomize=True)
settings.load_profile("lies")
"""


def _run_suite(pytester: pytest.Pytester, uri: str, *extra: str) -> pytest.RunResult:
    pytester.makepyfile(lies_profile=PROFILE)
    pytester.syspathinsert()
    return pytester.runpytest_subprocess(
        "-p",
        "lies_profile",
        "-p",
        "no:cacheprovider",
        "--pyargs",
        "anyipc.testing",
        "--anyipc-uri",
        uri,
        "-k",
        SELECTION,
        *extra,
    )


@pytest.mark.parametrize("fault", sorted(LIES))
def test_a_lying_transport_fails(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, fault: str
) -> None:
    # in-process delivery is immediate: a short patience keeps shrinking quick
    monkeypatch.setenv("ANYIPC_CONFORMANCE_PATIENCE", "0.2")
    result = _run_suite(pytester, f"mem://?{fault}=0.2&seed=7&honest=false", "-x")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) >= 1, result.stdout.str()
    assert LIES[fault] in result.stdout.str()


@pytest.mark.parametrize("fault", sorted(LIES))
def test_the_same_faults_declared_honestly_pass(pytester: pytest.Pytester, fault: str) -> None:
    result = _run_suite(pytester, f"mem://?{fault}=0.2&seed=7")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0, result.stdout.str()
    assert outcomes.get("passed", 0) >= 2


def test_a_perfect_transport_passes(pytester: pytest.Pytester) -> None:
    result = _run_suite(pytester, "mem")
    assert result.ret == 0, result.stdout.str()


LOSSY = "mem://?connection=connectionless&lose=0.95&seed=3"  # about 5% of a burst arrives


def test_a_transport_that_delivers_too_little_of_a_burst_is_below_the_floor() -> None:
    harness = Harness(LOSSY)
    with harness.session(), pytest.raises(AssertionError, match="below the floor of 10%"):
        check_burst(harness)


def test_the_floor_is_tunable_and_the_share_delivered_is_returned(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ANYIPC_CONFORMANCE_DELIVERY_FLOOR", "0.01")
    harness = Harness(LOSSY)
    with harness.session():
        share = check_burst(harness)
    assert 0.01 <= share < 0.1


def test_the_share_of_a_burst_that_arrived_is_reported(pytester: pytest.Pytester) -> None:
    uri = "mem://?connection=connectionless&lose=0.2&seed=7"
    result = _run_suite(pytester, uri, "-k", "b4_burst")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "*anyipc conformance: delivery by transports that may lose*",
            f"{uri}: *% of a burst arrived (floor 10%)",
        ]
    )
