"""Repository-wide test settings: hypothesis profiles only."""

import os

from hypothesis import HealthCheck, settings

# Model-backed properties take tens of milliseconds per example on a CPU; the deadline
# would turn that into flakes, and CI wants a bounded number of examples.
settings.register_profile(
    "default",
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("ci", parent=settings.get_profile("default"), derandomize=True)
settings.register_profile("thorough", max_examples=300, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
