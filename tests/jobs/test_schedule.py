"""Polling cadence: fast while a job is young, slower for long jobs, backing off after failures."""

from __future__ import annotations

import pytest

from bot.jobs.schedule import FAST_PHASE_S, MAX_FAILURE_DELAY_S, failure_delay, next_poll_delay


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
