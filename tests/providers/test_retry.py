"""The retry rules: a paid submit is repeated only when no job can exist; reads back off with jitter."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from bot.providers.errors import (
    ProviderAuthError,
    ProviderBalanceError,
    ProviderError,
    ProviderInvalidRequestError,
    ProviderNotFoundError,
    ProviderProtocolError,
    ProviderRateLimitError,
    ProviderServerError,
    ProviderTransportError,
    SubmitOutcomeUnknownError,
)
from bot.providers.retry import (
    RetryPolicy,
    backoff_delay,
    may_retry_read,
    may_retry_submit,
    parse_retry_after,
)

POLICY = RetryPolicy(max_attempts=5, base_delay_s=0.5, max_delay_s=30.0, max_retry_after_s=120.0)
NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("attempt", "expected"),
    [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 8.0), (6, 16.0), (7, 30.0), (8, 30.0), (10_000, 30.0)],
)
def test_backoff_ceiling_doubles_per_attempt_up_to_the_cap(attempt: int, expected: float) -> None:
    assert backoff_delay(POLICY, attempt, rng=lambda: 1.0) == expected


@pytest.mark.parametrize(("draw", "expected"), [(0.0, 0.0), (0.25, 0.5), (0.5, 1.0), (0.999, 1.998)])
def test_full_jitter_scales_the_ceiling_by_the_draw(draw: float, expected: float) -> None:
    assert backoff_delay(POLICY, 3, rng=lambda: draw) == pytest.approx(expected)


def test_jittered_delays_stay_within_zero_and_the_ceiling() -> None:
    rng = random.Random(1234).random
    for attempt in range(1, 12):
        ceiling = min(POLICY.max_delay_s, POLICY.base_delay_s * 2 ** (attempt - 1))
        delays = [backoff_delay(POLICY, attempt, rng=rng) for _ in range(50)]
        assert all(0.0 <= delay <= ceiling for delay in delays)
        assert len(set(delays)) > 1  # jitter really varies


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [(7.0, 7.0), (0.0, 0.0), (120.0, 120.0), (3600.0, 120.0), (-5.0, 0.0)],
)
def test_retry_after_wins_over_backoff_and_is_capped(retry_after: float, expected: float) -> None:
    assert backoff_delay(POLICY, 1, rng=lambda: 1.0, retry_after_s=retry_after) == expected


def test_attempt_numbers_start_at_one() -> None:
    with pytest.raises(ValueError, match="starts at 1"):
        backoff_delay(POLICY, 0, rng=lambda: 1.0)


@pytest.mark.parametrize(
    "kwargs",
    [{"max_attempts": 0}, {"base_delay_s": -1.0}, {"max_delay_s": -1.0}, {"max_retry_after_s": -0.1}],
)
def test_a_policy_that_cannot_work_is_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def transport(*, reached_server: bool) -> ProviderTransportError:
    return ProviderTransportError("network", reached_server=reached_server)


READ_CASES: list[tuple[str, ProviderError, int, bool]] = [
    ("5xx", ProviderServerError("502", status_code=502), 1, True),
    ("5xx on the last attempt", ProviderServerError("502", status_code=502), 5, False),
    ("429", ProviderRateLimitError("slow down", status_code=429), 4, True),
    ("malformed answer", ProviderProtocolError("not json"), 1, True),
    ("read timeout", transport(reached_server=True), 1, True),
    ("connection refused", transport(reached_server=False), 2, True),
    ("auth", ProviderAuthError("bad key", status_code=401), 1, False),
    ("balance", ProviderBalanceError("no credit", status_code=402), 1, False),
    ("not found", ProviderNotFoundError("gone", status_code=404), 1, False),
    ("invalid", ProviderInvalidRequestError("bad", status_code=422), 1, False),
    ("unknown outcome", SubmitOutcomeUnknownError("?"), 1, False),
    ("plain error", ProviderError("teapot", status_code=418), 1, False),
]


@pytest.mark.parametrize(
    ("error", "attempt", "expected"),
    [case[1:] for case in READ_CASES],
    ids=[case[0] for case in READ_CASES],
)
def test_reads_retry_what_is_retryable_while_attempts_remain(
    error: ProviderError, attempt: int, expected: bool
) -> None:
    assert may_retry_read(error, attempt, POLICY) is expected


SUBMIT_CASES: list[tuple[str, ProviderError, int, bool]] = [
    ("429 is retried", ProviderRateLimitError("slow down", status_code=429), 1, True),
    ("429 until attempts run out", ProviderRateLimitError("slow down", status_code=429), 5, False),
    ("connection refused is retried", transport(reached_server=False), 1, True),
    ("connection refused on the last attempt", transport(reached_server=False), 5, False),
    ("5xx is never retried", ProviderServerError("500", status_code=500), 1, False),
    ("503 is never retried", ProviderServerError("503", status_code=503, retry_after_s=1.0), 1, False),
    ("read timeout is never retried", transport(reached_server=True), 1, False),
    ("dropped connection is never retried", transport(reached_server=True), 1, False),
    ("unreadable 200 is never retried", ProviderProtocolError("not json", status_code=200), 1, False),
    ("auth is never retried", ProviderAuthError("bad key", status_code=401), 1, False),
    ("invalid is never retried", ProviderInvalidRequestError("bad", status_code=422), 1, False),
]


@pytest.mark.parametrize(
    ("error", "attempt", "expected"),
    [case[1:] for case in SUBMIT_CASES],
    ids=[case[0] for case in SUBMIT_CASES],
)
def test_submits_retry_only_when_no_job_can_exist(error: ProviderError, attempt: int, expected: bool) -> None:
    assert may_retry_submit(error, attempt, POLICY) is expected


def http_date(moment: datetime) -> str:
    return format_datetime(moment, usegmt=True)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("   ", None),
        ("5", 5.0),
        (" 7 ", 7.0),
        ("1.5", 1.5),
        ("0", 0.0),
        ("-3", None),
        ("nan", None),
        ("inf", None),
        ("soon", None),
        (http_date(NOW + timedelta(seconds=30)), 30.0),
        (http_date(NOW - timedelta(seconds=30)), 0.0),
        ((NOW + timedelta(seconds=90)).strftime("%a, %d %b %Y %H:%M:%S"), 90.0),  # no zone: GMT
        ("Mon, 99 Foo 2026 99:00:00 GMT", None),
    ],
)
def test_retry_after_reads_seconds_or_an_http_date(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header, now=NOW.timestamp) == expected
