"""Shared test configuration."""

from hypothesis import HealthCheck, settings

# One profile for the whole suite: no per-example deadline (a loaded CI machine must not
# turn a slow example into a failure); each property test sets its own max_examples so
# the suite stays fast.
settings.register_profile(
    "jobwait",
    deadline=None,
    max_examples=100,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("jobwait")
