"""Polling cadence: fast while a job is young, slower for long jobs, backing off after failures."""

from __future__ import annotations

import pytest

from bot.jobs.schedule import (
    FAST_PHASE_S,
    MAX_FAILURE_DELAY_S,
    failure_delay,
    next_poll_delay,
    plan_next_check,
)


@pytest.mark.parametrize(
    ("age_s", "expected"),
    [(0, 3.0), (FAST_PHASE_S, 3.0), (FAST_PHASE_S * 2, 6.0), (FAST_PHASE_S * 5, 15.0), (3 * 3600, 30.0)],
)
def test_poll_interval_grows_with_age_up_to_ten_times(age_s, expected):
    assert next_poll_delay(3.0, age_s) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("failures", "retry_after", "expected"),
    [
        (1, None, 3.0),
        (2, None, 6.0),
        (4, None, 24.0),
        (30, None, MAX_FAILURE_DELAY_S),
        (1, 20.0, 20.0),
        (3, 1.0, 12.0),
        (1, 10_000.0, MAX_FAILURE_DELAY_S),
    ],
)
def test_failure_backoff_doubles_and_honours_retry_after(failures, retry_after, expected):
    assert failure_delay(3.0, failures, retry_after) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("in_flight", "age_s", "expected"),
    [
        (10, 0, 3.0),  # a quiet bot: the young job's own cadence
        (150, 0, 3.0),  # 150 jobs every 3 s is exactly the ceiling of 50 a second
        (2_000, 0, 40.0),  # a burst: each job is checked every 40 s, 50 checks a second in all
        (2_000, 3 * 3600, 40.0),
        (100, 3 * 3600, 30.0),  # an old job's slower cadence is already under the ceiling
    ],
)
def test_checks_are_spaced_out_so_the_total_stays_under_the_ceiling(in_flight, age_s, expected):
    assert plan_next_check(3.0, age_s, in_flight, 50.0) == pytest.approx(expected)
    # The planned checks of every job together never exceed the ceiling.
    assert in_flight / plan_next_check(3.0, age_s, in_flight, 50.0) <= 50.0 + 1e-9
