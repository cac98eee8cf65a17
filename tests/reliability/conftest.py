"""The reliability tier: faults, load, hostile input and access, across the transports.

Two profiles, chosen with the environment variable ``ANYIPC_RELIABILITY``:
``fast`` (the default, what CI runs) and ``long`` (the full figures, run on
demand: ``ANYIPC_RELIABILITY=long pytest tests/reliability``).  A test takes
each of its figures (repetitions, connections, messages, examples) from
:func:`figure`, so the two profiles run the same code.
"""

from __future__ import annotations

import os
from typing import TypeVar

import pytest

PROFILES = ("fast", "long")
PROFILE = os.environ.get("ANYIPC_RELIABILITY", "fast")
if PROFILE not in PROFILES:
    raise pytest.UsageError(f"ANYIPC_RELIABILITY={PROFILE!r}: choose one of {', '.join(PROFILES)}")
LONG = PROFILE == "long"

Figure = TypeVar("Figure")


def figure(fast: Figure, long: Figure) -> Figure:
    """The figure of the profile in use: ``fast`` in CI, ``long`` on demand."""
    return long if LONG else fast
