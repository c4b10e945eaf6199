"""Hypothesis settings for the property tests, and a guard against hangs.

The default profile is deterministic (derandomize: the same examples on every
run, so CI failures reproduce) and keeps no example database (nothing is written
into the checkout). HYPOTHESIS_PROFILE=thorough explores with fresh random
examples and many more of them, for a local bug hunt.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

from tests.fuzz.contract import time_limit  # noqa: F401 - the autouse fixture

settings.register_profile(
    "ci", database=None, derandomize=True, deadline=None, max_examples=60, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "thorough", database=None, derandomize=False, deadline=None, max_examples=2000, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
