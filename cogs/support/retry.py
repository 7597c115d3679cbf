"""Retrying Discord's transient failures: small pure rules, and one loop that applies them under a deadline.

What discord.py 2.7 already does (discord/http.py, `HTTPClient.request`), so that this adds only the rest:

- a 429 with Discord's `Via` header is waited out and resent, up to 5 tries in all; past the tries it raises
  `HTTPException` with status 429. With `max_ratelimit_timeout` set, a longer wait raises `RateLimited`.
- 500, 502, 504 and 524 are resent after 1, 3, 5, 7 s; past the tries it raises `DiscordServerError`.
- **503 and the other 5xx are raised at once** (`DiscordServerError`), not retried.
- a connection reset (errno 54/10054) is resent; **any other dropped connection** (aiohttp's
  `ServerDisconnectedError`, `ClientOSError`, `ClientConnectionError`, a `TimeoutError`) **is raised**.

Repeating a call is only safe when the call is idempotent: an edit is, a message create is only with a fixed
`nonce=` (discord.py 2.7 then sends `enforce_nonce`, and Discord answers a repeat with the message it already
created). Making the operation safe to repeat is the caller's job; this module only decides when and how long.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import aiohttp
import discord

from bot.jobs.errors import JobError

log = logging.getLogger(__name__)

_T = TypeVar("_T")

#: What a member is told when Discord stayed unavailable past the deadline before anything was paid for.
DISCORD_UNAVAILABLE_MESSAGE = (
    "Discord is having trouble right now; nothing was charged, try again in a minute."
)

#: The first retry waits up to this long; each later one up to twice as long as the one before...
BASE_DELAY_S = 0.5
#: ...but never more than this: Discord outages are either seconds long or much longer than a caller waits.
MAX_DELAY_S = 4.0

# The jitter's source when the caller passes none.
_rng = random.Random()

# 2**62 * BASE_DELAY_S is already far past MAX_DELAY_S; clamping the exponent keeps the float maths finite.
_MAX_EXPONENT = 62

# Dropped or refused connections, and timeouts: the request may be repeated (when the caller made it safe to).
_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    aiohttp.ClientConnectionError,  # ServerDisconnectedError, ClientOSError, ClientConnectorError, ...
    aiohttp.ClientPayloadError,  # the connection closed in the middle of the response body
    TimeoutError,  # asyncio.TimeoutError is the same class since Python 3.11
    ConnectionError,  # ConnectionResetError, BrokenPipeError, ... raised outside aiohttp's wrappers
)
# Connection errors that will fail the same way every time: a bad certificate is configuration, not weather.
_PERMANENT_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    aiohttp.ClientConnectorCertificateError,
    aiohttp.ServerFingerprintMismatch,
)


class DiscordUnavailableError(JobError):
    """Discord kept failing with transient errors until the deadline passed.

    `message` is member-facing. The default says nothing was charged, which holds only before a paid submit;
    a caller that already submitted must pass its own (for example "your video is on its way; it will be
    posted when Discord recovers").
    """

    def __init__(
        self, message: str = DISCORD_UNAVAILABLE_MESSAGE, *, what: str = "", attempts: int = 0
    ) -> None:
        super().__init__(message)
        self.what = what
        self.attempts = attempts


def _is_cloudflare_ban(error: discord.HTTPException) -> bool:
    """Whether a 429 came from Cloudflare, not Discord's API; discord.py tells them apart by the `Via` header.

    Cloudflare bans an IP for a long while after too many invalid requests (401, 403, 429 count), so
    retrying within seconds cannot succeed and only adds to the count.
    """
    headers = getattr(error.response, "headers", None)
    if headers is None:
        return False  # nothing to tell by: assume Discord's own 429, which discord.py gave up on
    return not headers.get("Via")


def is_transient(error: BaseException) -> bool:
    """Whether `error` from a Discord call is worth trying again in a moment.

    Yes: any 5xx (`DiscordServerError`, including the 503 that discord.py never retries), a 429 that
    discord.py gave up on (`HTTPException` 429 or `RateLimited`), and dropped connections or timeouts.
    No: every other 4xx (Forbidden, NotFound, 50035 invalid form, 40005 too large), a Cloudflare ban,
    a bad certificate, cancellation, and anything that is not a Discord or network error (those are bugs).
    """
    if isinstance(error, discord.RateLimited):
        return True
    if isinstance(error, discord.HTTPException):
        if error.status >= 500:
            return True
        return error.status == 429 and not _is_cloudflare_ban(error)
    if isinstance(error, _PERMANENT_CONNECTION_ERRORS):
        return False
    return isinstance(error, _CONNECTION_ERRORS)


def retry_after_of(error: BaseException) -> float | None:
    """The wait the server asked for with `error`, in seconds, or None when it asked for none.

    `RateLimited` carries it; an `HTTPException` may have a `Retry-After` header (a 503 often does). An
    unreadable, negative or infinite value is ignored rather than trusted.
    """
    if isinstance(error, discord.RateLimited):
        seconds: float | None = error.retry_after
    elif isinstance(error, discord.HTTPException):
        headers = getattr(error.response, "headers", None)
        value = headers.get("Retry-After") if headers is not None else None
        try:
            seconds = float(value) if value is not None else None
        except (TypeError, ValueError):
            seconds = None
    else:
        seconds = None
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return None
    return seconds


def retry_delay(attempt: int, *, retry_after: float | None = None, rng: random.Random | None = None) -> float:
    """Seconds to wait before the next try, after `attempt` tries (1 or more) have failed.

    Full jitter: a uniform draw below `min(MAX_DELAY_S, BASE_DELAY_S * 2**(attempt-1))`, so that the many
    calls an outage fails at the same instant do not all come back at the same instant. When the server
    asked for `retry_after` seconds, never sooner than that (it is not capped: the caller's deadline is).
    """
    if attempt < 1:
        raise ValueError(f"attempt counts the tries already made and starts at 1; got {attempt}")
    ceiling = min(MAX_DELAY_S, BASE_DELAY_S * 2.0 ** min(attempt - 1, _MAX_EXPONENT))
    jittered = (rng if rng is not None else _rng).random() * ceiling
    if retry_after is not None and math.isfinite(retry_after) and retry_after > jittered:
        return retry_after
    return jittered


def _describe(error: BaseException) -> str:
    """One short line for the log: Discord's status and code, or the exception's type and text."""
    if isinstance(error, discord.HTTPException):
        return f"HTTP {error.status} (code {error.code})"
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


async def call_with_retries(
    op: Callable[[], Awaitable[_T]],
    *,
    what: str,
    deadline_s: float = 20.0,
    member_message: str = DISCORD_UNAVAILABLE_MESSAGE,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    rng: random.Random | None = None,
) -> _T:
    """`await op()`, calling it again after transient Discord errors until `deadline_s` has passed.

    `op` must be safe to repeat (see the module docstring: a message create needs a fixed nonce). `what`
    names the call in the log ("posting the video of job 12"). A non-transient error propagates unchanged
    at once. When the deadline passes, or the server asks for a wait that would end past it, this raises
    `DiscordUnavailableError(member_message)` chained from the last error.

    The deadline bounds when a new try may start, not how long one try may take: an upload can rightly
    take longer, and discord.py's own retries of 500/502/504 may already have used the deadline up, in
    which case the first failure is the last.
    """
    started = clock()
    attempt = 0
    while True:
        attempt += 1
        try:
            return await op()
        except Exception as error:
            if not is_transient(error):
                raise
            remaining = deadline_s - (clock() - started)
            retry_after = retry_after_of(error)
            if remaining <= 0 or (retry_after is not None and retry_after > remaining):
                log.warning(
                    "%s: Discord still failing after %d tries in %.1f s (%s); giving up",
                    what,
                    attempt,
                    clock() - started,
                    _describe(error),
                )
                raise DiscordUnavailableError(member_message, what=what, attempts=attempt) from error
            # A last try exactly at the deadline is better than giving up with time left.
            delay = min(retry_delay(attempt, retry_after=retry_after, rng=rng), remaining)
            # The first retry is routine; Discord failing again is worth a warning.
            level = logging.INFO if attempt == 1 else logging.WARNING
            log.log(
                level, "%s: Discord failed (%s); try %d in %.2f s", what, _describe(error), attempt + 1, delay
            )
            await sleep(delay)
