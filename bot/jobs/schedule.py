"""When to poll a job next: small pure functions, so that the rules are tested without time passing."""

from __future__ import annotations

#: A job is polled at the base interval for its first minutes; long jobs are polled less often.
FAST_PHASE_S = 120.0
MAX_SLOWDOWN = 10.0
#: After failed polls (provider down, rate limited) back off up to this.
MAX_FAILURE_DELAY_S = 300.0


def next_poll_delay(base_interval_s: float, age_s: float) -> float:
    """Seconds until the next poll of a job that has been running for `age_s`.

    Most jobs end within minutes, so they are polled at the base interval; one that takes hours (the flex
    tier) is polled up to ten times less often, which keeps thousands of long jobs cheap.
    """
    if age_s <= FAST_PHASE_S:
        return base_interval_s
    slowdown = min(MAX_SLOWDOWN, age_s / FAST_PHASE_S)
    return base_interval_s * slowdown


def failure_delay(base_interval_s: float, consecutive_failures: int, retry_after_s: float | None) -> float:
    """Seconds to wait after the `consecutive_failures`-th failed poll in a row (1 = the first)."""
    exponent = max(0, consecutive_failures - 1)
    delay = min(MAX_FAILURE_DELAY_S, base_interval_s * 2.0**exponent)
    if retry_after_s is not None:
        delay = max(delay, min(retry_after_s, MAX_FAILURE_DELAY_S))
    return delay


def load_spacing(jobs_in_flight: int, max_checks_per_s: float) -> float:
    """The least interval between two checks of one job that keeps every job's checks within the ceiling.

    Polling 2,000 queued jobs every 3 s would be about 670 status requests a second: more than a provider
    allows or one process can make. Spacing each job's checks by in-flight / ceiling keeps the total under
    `max_checks_per_s`, and keeps every job's schedule honest: a check lands when it was planned, not
    whenever a congested poller gets to it.
    """
    return jobs_in_flight / max_checks_per_s


def plan_next_check(
    base_interval_s: float, age_s: float, jobs_in_flight: int, max_checks_per_s: float
) -> float:
    """Seconds until a job's next status check: its age's cadence, spaced out under load."""
    return max(next_poll_delay(base_interval_s, age_s), load_spacing(jobs_in_flight, max_checks_per_s))
