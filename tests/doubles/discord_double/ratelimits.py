"""Discord's per-channel message bucket, its headers and its 429s.

Discord answers every request on a rate-limited route with ``X-RateLimit-Limit``, ``-Remaining``,
``-Reset`` (epoch seconds), ``-Reset-After`` (seconds) and ``-Bucket`` (an opaque hash naming the
route's bucket; the same for every channel - clients tell the channels' buckets apart by the channel id,
as discord.py does with ``Route.major_parameters``). Message creates, edits and deletes in one channel
share one bucket of, commonly, 5 requests per 5 s. A window opens with the first request after the
previous one reset and closes ``period_s`` later; a request over the limit gets a 429 that discord.py
honours (it carries ``Via``) and retries after ``retry_after``. The bot's own reactions (add and remove)
have a stricter bucket of their own: 1 per 0.25 s per channel.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

# Routes that share the per-channel message bucket.
MESSAGE_BUCKET_ROUTES = frozenset(
    {
        ("POST", "/channels/{channel_id}/messages"),
        ("PATCH", "/channels/{channel_id}/messages/{message_id}"),
        ("DELETE", "/channels/{channel_id}/messages/{message_id}"),
    }
)
MESSAGE_BUCKET_HASH = hashlib.sha256(b"discord-double/channel-messages").hexdigest()[:32]
REACTION_ROUTE = "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me"
# Routes that share the per-channel reaction bucket.
REACTION_BUCKET_ROUTES = frozenset({("PUT", REACTION_ROUTE), ("DELETE", REACTION_ROUTE)})
REACTION_BUCKET_HASH = hashlib.sha256(b"discord-double/channel-reactions").hexdigest()[:32]
RATE_LIMITED_MESSAGE = "You are being rate limited."


def _ceil_ms(seconds: float) -> float:
    # Rounded up: a client that sleeps exactly Reset-After must never arrive before the reset.
    return math.ceil(round(seconds * 1000, 6)) / 1000


def rate_limit_reply(
    retry_after: float, *, is_global: bool = False, bucket_headers: Mapping[str, str] | None = None
) -> tuple[dict[str, Any], dict[str, str]]:
    """Body and headers of a 429 as Discord sends it (and as discord.py needs it to wait and retry)."""
    retry_after = _ceil_ms(retry_after)
    body = {"message": RATE_LIMITED_MESSAGE, "retry_after": retry_after, "global": is_global}
    headers = {
        "X-RateLimit-Limit": "5",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": f"{time.time() + retry_after:.3f}",
        "X-RateLimit-Reset-After": f"{retry_after:.3f}",
        **(bucket_headers or {}),
        "Retry-After": str(math.ceil(retry_after)),
        "X-RateLimit-Scope": "global" if is_global else "user",
        # discord.py only honours a 429 that came through Discord's proxy (else: Cloudflare ban).
        "Via": "1.1 google",
    }
    if is_global:
        headers["X-RateLimit-Global"] = "true"
    return body, headers


@dataclass(frozen=True)
class ChannelRateLimitStats:
    """What the message bucket of one channel saw.

    ``peak_per_window`` is the most requests accepted in one bucket window (never above the limit: that
    is what the double enforces); ``peak_per_period`` the most accepted in any sliding interval of
    ``period_s``, which can reach twice the limit for a client that uses a window's last tokens and the
    next window's first ones back to back - as Discord allows.
    """

    channel_id: int
    accepted: int = 0
    rate_limited: int = 0
    windows: int = 0
    peak_per_window: int = 0
    peak_per_period: int = 0


@dataclass(frozen=True)
class RateLimitStats:
    """A snapshot of the double's rate limiting (``DiscordDouble.rate_limit_stats()``).

    ``rate_limited`` counts the 429s the per-channel message bucket served, ``injected_rate_limited``
    those of ``rate_limit_next``; ``limit``/``period_s`` are None when the bucket is off. The reaction
    bucket's figures are in ``reaction_channels`` and ``reaction_rate_limited``.
    """

    limit: int | None
    period_s: float | None
    channels: Mapping[int, ChannelRateLimitStats]
    rate_limited: int
    injected_rate_limited: int
    reaction_channels: Mapping[int, ChannelRateLimitStats] = field(default_factory=dict)
    reaction_rate_limited: int = 0

    def channel(self, channel: Any) -> ChannelRateLimitStats:
        """Stats of one channel (a ``ChannelSpec`` or an id); all zero if it saw no request."""
        channel_id = int(getattr(channel, "id", channel))
        return self.channels.get(channel_id, ChannelRateLimitStats(channel_id))

    @property
    def peak_per_window(self) -> int:
        """The most requests any channel's bucket accepted within one window."""
        return max((stats.peak_per_window for stats in self.channels.values()), default=0)

    @property
    def peak_per_period(self) -> int:
        """The most requests any channel accepted within any sliding ``period_s``."""
        return max((stats.peak_per_period for stats in self.channels.values()), default=0)


@dataclass(frozen=True)
class Admission:
    """The bucket's verdict on one request: its headers, and for a refusal how long to wait."""

    allowed: bool
    headers: dict[str, str]
    retry_after: float = 0.0


@dataclass(eq=False)
class _Bucket:
    reset_at: float = -math.inf
    count: int = 0
    accepted: int = 0
    rate_limited: int = 0
    windows: int = 0
    peak_per_window: int = 0
    peak_per_period: int = 0
    recent: deque[float] = field(default_factory=deque)


class ChannelBuckets:
    """Fixed-window buckets keyed by channel id, ``limit`` requests per ``period_s``."""

    def __init__(
        self,
        limit: int,
        period_s: float,
        clock: Callable[[], float] = time.monotonic,
        *,
        bucket_hash: str = MESSAGE_BUCKET_HASH,
    ) -> None:
        if limit < 1 or period_s <= 0:
            raise ValueError(
                f"channel rate limit must be (limit >= 1, period_s > 0), not {(limit, period_s)}"
            )
        self.limit = limit
        self.period_s = period_s
        self.bucket_hash = bucket_hash
        self._clock = clock
        # Epoch = monotonic + offset, fixed once so every response of a window names the same reset.
        self._epoch_offset = time.time() - clock()
        self._buckets: dict[str, _Bucket] = {}

    def admit(self, channel_id: str) -> Admission:
        """Count a request on ``channel_id``'s bucket, or refuse it when the window is used up."""
        now = self._clock()
        bucket = self._buckets.setdefault(channel_id, _Bucket())
        if now >= bucket.reset_at:
            bucket.reset_at = now + self.period_s
            bucket.count = 0
            bucket.windows += 1
        reset_after = _ceil_ms(bucket.reset_at - now)
        if bucket.count >= self.limit:
            bucket.rate_limited += 1
            return Admission(False, self._headers(bucket, reset_after), reset_after)
        bucket.count += 1
        bucket.accepted += 1
        bucket.peak_per_window = max(bucket.peak_per_window, bucket.count)
        bucket.recent.append(now)
        while bucket.recent and bucket.recent[0] <= now - self.period_s:
            bucket.recent.popleft()
        bucket.peak_per_period = max(bucket.peak_per_period, len(bucket.recent))
        return Admission(True, self._headers(bucket, reset_after))

    def _headers(self, bucket: _Bucket, reset_after: float) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.limit - bucket.count),
            "X-RateLimit-Reset": f"{_ceil_ms(bucket.reset_at + self._epoch_offset):.3f}",
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Bucket": self.bucket_hash,
        }

    def stats(self) -> dict[int, ChannelRateLimitStats]:
        """Per-channel statistics (channels named by a non-numeric id are left out)."""
        return {
            int(key): ChannelRateLimitStats(
                channel_id=int(key),
                accepted=bucket.accepted,
                rate_limited=bucket.rate_limited,
                windows=bucket.windows,
                peak_per_window=bucket.peak_per_window,
                peak_per_period=bucket.peak_per_period,
            )
            for key, bucket in self._buckets.items()
            if key.isdigit()
        }
