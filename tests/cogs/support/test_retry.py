"""Discord's transient failures are retried under a deadline; everything else is raised at once."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp
import discord
import pytest

from bot.jobs.errors import JobError
from cogs.support.retry import (
    DISCORD_UNAVAILABLE_MESSAGE,
    MAX_DELAY_S,
    DiscordUnavailableError,
    call_with_retries,
    is_transient,
    retry_after_of,
    retry_delay,
)


@dataclass
class FakeResponse:
    """What discord.HTTPException reads from an aiohttp response: status, reason and headers."""

    status: int
    reason: str = "Reason"
    headers: dict[str, str] = field(default_factory=dict)


def http_error(status: int, code: int = 0, *, headers: dict[str, str] | None = None) -> discord.HTTPException:
    """The exception discord.py raises for `status`, built the way discord/http.py builds it."""
    response = FakeResponse(status, headers=headers or {})
    body = {"code": code, "message": "scripted"}
    if status == 403:
        return discord.Forbidden(response, body)
    if status == 404:
        return discord.NotFound(response, body)
    if status >= 500:
        return discord.DiscordServerError(response, body)
    return discord.HTTPException(response, body)


# Discord's own 429s carry a Via header (discord.py checks it); Cloudflare's do not.
DISCORD_429 = {"Via": "1.1 google", "Retry-After": "1"}


class FixedRandom(random.Random):
    """An rng whose every draw is `value`: jitter at its floor (0.0) or its ceiling (1.0)."""

    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def random(self) -> float:
        return self.value


class FakeClock:
    """A monotonic clock that only moves when the code under test sleeps (or a test moves it)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class ScriptedOp:
    """An operation that raises the scripted errors in turn, then returns `value` (or fails `forever`)."""

    def __init__(
        self, *errors: BaseException, value: str = "done", forever: Callable[[], BaseException] | None = None
    ) -> None:
        self.errors = list(errors)
        self.forever = forever
        self.value = value
        self.calls = 0
        self.raised: list[BaseException] = []

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            error = self.errors.pop(0)
        elif self.forever is not None:
            error = self.forever()  # a new exception each time, as discord.py raises
        else:
            return self.value
        self.raised.append(error)
        raise error


# --- is_transient -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        http_error(503),  # the one 5xx discord.py does not retry itself
        http_error(500),  # ...and the ones it gave up on
        http_error(502),
        http_error(504),
        http_error(429, headers=DISCORD_429),
        discord.RateLimited(3.0),
        aiohttp.ServerDisconnectedError(),
        aiohttp.ClientOSError(104, "Connection reset by peer"),
        aiohttp.ClientConnectionError("connection lost"),
        aiohttp.ClientPayloadError("response payload is not completed"),
        TimeoutError(),  # asyncio.TimeoutError is the same class since 3.11
        ConnectionResetError(104, "reset"),
    ],
    ids=repr,
)
def test_server_errors_lost_connections_and_abandoned_429s_are_transient(error: BaseException) -> None:
    assert is_transient(error)


@pytest.mark.parametrize(
    "error",
    [
        http_error(403, 50013),  # Missing Permissions
        http_error(404, 10008),  # Unknown Message
        http_error(400, 50035),  # Invalid Form Body
        http_error(413, 40005),  # Request entity too large
        http_error(401, 0),
        http_error(429),  # no Via header: Cloudflare's ban, which retrying only prolongs
        aiohttp.ServerFingerprintMismatch(b"expected", b"got", "discord.com", 443),
        asyncio.CancelledError(),
        ValueError("a bug"),
        OSError(2, "No such file or directory"),  # e.g. opening the file to upload: not the network
    ],
    ids=repr,
)
def test_refusals_bans_cancellation_and_bugs_are_not_transient(error: BaseException) -> None:
    assert not is_transient(error)


# --- retry_delay and retry_after_of ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attempt", "ceiling"), [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 4.0), (60, 4.0), (10_000, 4.0)]
)
def test_delay_ceiling_doubles_per_attempt_up_to_a_few_seconds(attempt: int, ceiling: float) -> None:
    assert retry_delay(attempt, rng=FixedRandom(1.0)) == ceiling
    assert retry_delay(attempt, rng=FixedRandom(0.0)) == 0.0
    assert ceiling <= MAX_DELAY_S


def test_delays_are_jittered_within_the_ceiling() -> None:
    rng = random.Random(7)
    delays = [retry_delay(3, rng=rng) for _ in range(200)]
    assert all(0.0 <= delay <= 2.0 for delay in delays)
    assert len(set(delays)) > 150  # spread out, not one value


def test_retry_after_is_never_undercut_nor_capped() -> None:
    assert retry_delay(1, retry_after=3.0, rng=FixedRandom(1.0)) == 3.0
    assert retry_delay(1, retry_after=30.0, rng=FixedRandom(1.0)) == 30.0  # the caller's deadline caps it
    # A retry_after shorter than the backoff does not make the retry come sooner than the backoff.
    assert retry_delay(4, retry_after=0.1, rng=FixedRandom(1.0)) == 4.0


def test_attempt_counts_from_one() -> None:
    with pytest.raises(ValueError, match="starts at 1"):
        retry_delay(0)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (discord.RateLimited(2.5), 2.5),
        (http_error(503, headers={"Retry-After": "3"}), 3.0),
        (http_error(429, headers=DISCORD_429), 1.0),
        (http_error(503), None),
        (http_error(503, headers={"Retry-After": "soon"}), None),
        (http_error(503, headers={"Retry-After": "-1"}), None),
        (http_error(503, headers={"Retry-After": "nan"}), None),
        (TimeoutError(), None),
    ],
    ids=repr,
)
def test_retry_after_is_read_from_rate_limits_and_headers(
    error: BaseException, expected: float | None
) -> None:
    assert retry_after_of(error) == expected


# --- call_with_retries ----------------------------------------------------------------------------------


async def test_a_503_is_retried_once_and_the_value_returned() -> None:
    clock = FakeClock()
    op = ScriptedOp(http_error(503))
    result = await call_with_retries(
        op, what="posting video", clock=clock, sleep=clock.sleep, rng=FixedRandom(1.0)
    )
    assert result == "done"
    assert op.calls == 2
    assert clock.sleeps == [0.5]


async def test_a_dropped_connection_is_retried() -> None:
    clock = FakeClock()
    op = ScriptedOp(aiohttp.ServerDisconnectedError())
    assert await call_with_retries(op, what="editing card", clock=clock, sleep=clock.sleep) == "done"
    assert op.calls == 2
    assert len(clock.sleeps) == 1


async def test_forbidden_is_raised_at_once_and_unchanged() -> None:
    clock = FakeClock()
    forbidden = http_error(403, 50013)
    op = ScriptedOp(forbidden)
    with pytest.raises(discord.Forbidden) as raised:
        await call_with_retries(op, what="posting video", clock=clock, sleep=clock.sleep)
    assert raised.value is forbidden
    assert op.calls == 1
    assert clock.sleeps == []


async def test_a_bug_is_not_retried() -> None:
    clock = FakeClock()
    op = ScriptedOp(KeyError("oops"))
    with pytest.raises(KeyError):
        await call_with_retries(op, what="posting video", clock=clock, sleep=clock.sleep)
    assert op.calls == 1


async def test_cancellation_is_not_retried() -> None:
    clock = FakeClock()
    op = ScriptedOp(asyncio.CancelledError())
    with pytest.raises(asyncio.CancelledError):
        await call_with_retries(op, what="posting video", clock=clock, sleep=clock.sleep)
    assert op.calls == 1


async def test_past_the_deadline_discord_is_reported_unavailable_to_the_member() -> None:
    clock = FakeClock()
    op = ScriptedOp(forever=lambda: http_error(503))
    with pytest.raises(DiscordUnavailableError) as raised:
        await call_with_retries(
            op, what="posting video", deadline_s=20.0, clock=clock, sleep=clock.sleep, rng=random.Random(3)
        )
    error = raised.value
    assert isinstance(error, JobError)
    assert error.message == DISCORD_UNAVAILABLE_MESSAGE
    assert error.__cause__ is op.raised[-1]
    assert error.what == "posting video"
    assert error.attempts == op.calls > 1
    assert sum(clock.sleeps) == pytest.approx(20.0)  # waited right up to the deadline, not past it


async def test_the_caller_chooses_the_member_message_after_a_paid_submit() -> None:
    clock = FakeClock()
    op = ScriptedOp(forever=lambda: aiohttp.ClientConnectionError("gone"))
    message = "Your video is on its way; it will be posted when Discord recovers."
    with pytest.raises(DiscordUnavailableError) as raised:
        await call_with_retries(op, what="x", member_message=message, clock=clock, sleep=clock.sleep)
    assert raised.value.message == message
    assert isinstance(raised.value.__cause__, aiohttp.ClientConnectionError)


async def test_delays_grow_then_stay_capped_and_the_last_one_stops_at_the_deadline() -> None:
    clock = FakeClock()
    op = ScriptedOp(forever=lambda: http_error(503))
    with pytest.raises(DiscordUnavailableError):
        await call_with_retries(
            op, what="x", deadline_s=20.0, clock=clock, sleep=clock.sleep, rng=FixedRandom(1.0)
        )
    # 0.5 + 1 + 2 + 4 + 4 + 4 + 4 = 19.5 s: the next 4 s wait is cut to the 0.5 s left.
    assert clock.sleeps == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0, 0.5]
    assert op.calls == len(clock.sleeps) + 1  # a last try at the deadline itself


async def test_retry_after_is_honoured() -> None:
    clock = FakeClock()
    op = ScriptedOp(discord.RateLimited(3.0), http_error(503, headers={"Retry-After": "2"}))
    result = await call_with_retries(op, what="x", clock=clock, sleep=clock.sleep, rng=FixedRandom(0.0))
    assert result == "done"
    assert clock.sleeps == [3.0, 2.0]


async def test_a_retry_after_past_the_deadline_gives_up_without_waiting() -> None:
    clock = FakeClock()
    op = ScriptedOp(discord.RateLimited(60.0))
    with pytest.raises(DiscordUnavailableError) as raised:
        await call_with_retries(op, what="x", deadline_s=20.0, clock=clock, sleep=clock.sleep)
    assert isinstance(raised.value.__cause__, discord.RateLimited)
    assert clock.sleeps == []
    assert op.calls == 1


async def test_a_first_try_that_used_the_deadline_up_is_the_last() -> None:
    """discord.py's own retries of a 502 take about 25 s before it raises: no more tries after that."""
    clock = FakeClock()

    async def slow_failure() -> str:
        clock.now += 25.0
        raise http_error(502)

    with pytest.raises(DiscordUnavailableError):
        await call_with_retries(slow_failure, what="x", deadline_s=20.0, clock=clock, sleep=clock.sleep)
    assert clock.sleeps == []


async def test_each_retry_is_logged_with_what_was_being_done(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    op = ScriptedOp(http_error(503), http_error(503))
    with caplog.at_level(logging.INFO, logger="cogs.support.retry"):
        await call_with_retries(op, what="posting the video of job 12", clock=clock, sleep=clock.sleep)
    retries = [record for record in caplog.records if "posting the video of job 12" in record.getMessage()]
    assert [record.levelno for record in retries] == [logging.INFO, logging.WARNING]
    assert "HTTP 503" in retries[0].getMessage()
