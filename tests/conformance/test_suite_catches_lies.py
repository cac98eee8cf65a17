"""The suite can fail: each mem:// fault, hidden behind honest=false, is caught.

The same faults declared honestly pass the same tests.  The suite runs in a
subprocess (pytester), exactly as ``anyipc conformance`` would run it.
"""

from __future__ import annotations

import pytest

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
