"""When to try a provider call again, and how long to wait first: small pure rules, tested on their own.

Two rules, because two kinds of call exist:

- Reads (status, result) and cancel are idempotent: retry whatever the error says is retryable, while
  attempts remain.
- A submit costs money. Repeat it only when the first one provably did not create a job: the server refused
  it with 429, or the connection never opened. A 5xx, a read timeout or a dropped connection may each hide a
  job that was created, so they are never retried (the caller records the outcome as unknown).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime

from bot.providers.errors import ProviderError, ProviderRateLimitError, ProviderTransportError

# 2**62 seconds is already far past any sane max_delay_s; clamping the exponent keeps the float maths finite.
_MAX_EXPONENT = 62


@dataclass(frozen=True)
class RetryPolicy:
    """How many times, and how patiently, a call is repeated."""

    max_attempts: int = 5  # total attempts, the first one included
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0
    max_retry_after_s: float = 120.0  # a server asking for longer gets this instead

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base_delay_s < 0 or self.max_delay_s < 0 or self.max_retry_after_s < 0:
            raise ValueError("delays must not be negative")


def backoff_delay(
    policy: RetryPolicy,
    attempt: int,
    *,
    rng: Callable[[], float],
    retry_after_s: float | None = None,
) -> float:
    """Seconds to wait before the next attempt, after `attempt` attempts have been made (1 or more).

    Full jitter (`rng() * min(max_delay, base * 2**(attempt-1))`) spreads retries of many clients apart.
    A server's own Retry-After wins over the computed delay, capped by `policy.max_retry_after_s`.
    """
    if attempt < 1:
        raise ValueError(f"attempt counts attempts already made and starts at 1; got {attempt}")
    if retry_after_s is not None:
        return min(max(retry_after_s, 0.0), policy.max_retry_after_s)
    ceiling = min(policy.max_delay_s, policy.base_delay_s * 2.0 ** min(attempt - 1, _MAX_EXPONENT))
    return rng() * ceiling


def may_retry_read(error: ProviderError, attempt: int, policy: RetryPolicy) -> bool:
    """Whether an idempotent call (a GET, a cancel) that failed on attempt `attempt` may be sent again."""
    return error.retryable and attempt < policy.max_attempts


def may_retry_submit(error: ProviderError, attempt: int, policy: RetryPolicy) -> bool:
    """Whether a paid submit that failed on attempt `attempt` may be sent again.

    Only when no job can exist: a 429 (the server refused to look at it) or a connection that never opened.
    """
    if attempt >= policy.max_attempts:
        return False
    if isinstance(error, ProviderRateLimitError):
        return True
    return isinstance(error, ProviderTransportError) and not error.reached_server


def parse_retry_after(value: str | None, *, now: Callable[[], float]) -> float | None:
    """A Retry-After header as seconds from `now()` (a Unix time), or None when absent or unreadable.

    The header holds either a number of seconds or an HTTP date; a date in the past means "now" (0 s).
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        # "nan", "inf" and negative numbers parse as floats but are not delays.
        if not math.isfinite(seconds) or seconds < 0:
            return None
        return seconds
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        # RFC 9110 dates are always GMT; a date without a zone is read the same way.
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, moment.timestamp() - now())
