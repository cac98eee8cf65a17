"""Hypothesis profiles and the leak check that wraps every test.

Profiles: ``ci`` (the default, quick) and ``thorough`` (on demand), chosen
with ``HYPOTHESIS_PROFILE=thorough pytest``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "thorough", max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# The suite's settings take the profile loaded when it is first imported: load first.
from anyipc.testing import Snapshot, assert_no_leaks  # noqa: E402

pytest_plugins = ["pytester"]


@pytest.fixture(autouse=True)
def no_leaked_descriptors_or_threads() -> Iterator[None]:
    """Every test gives back the descriptors, threads, /dev/shm entries and SysV objects it took."""
    before = Snapshot.take()
    yield
    assert_no_leaks(before)
