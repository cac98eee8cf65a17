"""A quick hypothesis profile for these tests (``HYPOTHESIS_PROFILE=thorough`` for more).

The conformance suite takes the profile loaded when ``anyipc.testing`` is
first imported, so it is loaded here, before any test module imports it.
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("pty-ci", max_examples=15, deadline=None)
settings.register_profile("thorough", max_examples=300, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "pty-ci"))
