"""QuotaStore: admissions that cannot overrun a limit, credits settled exactly once, usage windows, config."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from bot.domain.models import (
    FINAL_STATES,
    JobOrigin,
    JobState,
    ProviderName,
    Ratio,
    Requester,
    Resolution,
    VideoRequest,
    sources_of,
)
from bot.domain.quota import LimitName, MemberLimits, Refusal, ServerRules, Usage
from bot.jobs.ledger import settlement_for
from bot.jobs.ports import JobStore, NewJob, QuotaStore
from bot.storage.quota import (
    QuotaRefusedError,
    ReservationState,
    UsageRow,
    limits_from_json,
    limits_to_json,
    rules_from_json,
    rules_to_json,
)

GUILD = 1
MEMBER = 7
PRO = "seedance-1.5-pro"
LITE = "seedance-1.0-lite"
DAY = 86_400.0


def utc(*parts: int) -> float:
    return datetime(*parts, tzinfo=UTC).timestamp()


class FakeClock:
    def __init__(self) -> None:
        self.now = utc(2024, 5, 10, 12)

    def __call__(self) -> float:
        return self.now


def new_job(user_id: int = MEMBER, guild_id: int = GUILD, model: str = PRO) -> NewJob:
    return NewJob(
        provider=ProviderName.RUNCOMFY,
        request=VideoRequest(
            model=model, prompt="waves roll in", resolution=Resolution.P720, ratio=Ratio.R16_9, duration_s=5
        ),
        requester=Requester(origin=JobOrigin.DISCORD, user_id=user_id, guild_id=guild_id, channel_id=3),
        deadline_at=10**10,
    )


def accept(usage: Usage) -> Refusal | None:
    return None


def member_day_limit(limit: int, cost: int) -> Callable[[Usage], Refusal | None]:
    """A policy stand-in: refuse when the member's credits today plus this job's cost exceed `limit`."""

    def decide(usage: Usage) -> Refusal | None:
        if usage.member_credits_today + cost > limit:
            return Refusal(LimitName.MEMBER_DAY, f"You have used {usage.member_credits_today} of {limit}.")
        return None

    return decide


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def driver(backend, clock):
    """The process whose job store drives the jobs."""
    return await backend.open(clock)


@pytest.fixture
async def jobs(driver):
    return driver.jobs


@pytest.fixture
async def quota(jobs, backend, clock):
    """A quota store with connections of its own, as in the bot before the stores shared one writer."""
    return (await backend.open(clock)).quota


async def admit(quota: QuotaStore, credits: int = 1, **job_args):
    return await quota.admit(new_job(**job_args), credits=credits, decide=accept)


async def end_job(jobs: JobStore, job_id: int, to: JobState, **fields):
    """Drive a PENDING job along a legal path into the final state `to`."""
    if JobState.PENDING not in sources_of(to):
        await jobs.transition(job_id, JobState.QUEUED, provider_job_id=f"req-{job_id}")
        if JobState.QUEUED not in sources_of(to):
            await jobs.transition(job_id, JobState.SUCCEEDED)
    ended = await jobs.transition(job_id, to, **fields)
    assert ended is not None and ended.state is to
    return ended


# --- Admission under concurrency -------------------------------------------------------------------------


async def test_fifty_simultaneous_submissions_against_a_limit_of_ten_admit_exactly_ten(jobs, quota):
    decide = member_day_limit(10, cost=1)
    results = await asyncio.gather(
        *(quota.admit(new_job(), credits=1, decide=decide) for _ in range(50)), return_exceptions=True
    )
    admitted = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, QuotaRefusedError)]
    assert (len(admitted), len(refused)) == (10, 40)
    assert all(r.refusal.limit is LimitName.MEMBER_DAY for r in refused)
    assert "You have used 10 of 10." in str(refused[0])
    # Refused submissions left nothing behind: only the admitted jobs exist, each with its reservation.
    stored = await jobs.jobs_for_user(MEMBER, limit=100)
    assert sorted(j.id for j in stored) == sorted(j.id for j in admitted)
    assert all(j.state is JobState.PENDING and j.credits == 1 for j in stored)
    for job in stored:
        reservation = await quota.reservation(job.id)
        assert reservation is not None and reservation.state is ReservationState.RESERVED
    assert (await quota.usage(GUILD, MEMBER)).member_credits_today == 10


async def test_the_storm_holds_while_the_job_store_writes_other_jobs_on_its_own_connection(jobs, quota):
    others = [await jobs.create(new_job(user_id=99, guild_id=2)) for _ in range(20)]

    async def drive_to_delivery(job_id: int) -> list[JobState | None]:
        steps = [
            await jobs.transition(job_id, JobState.QUEUED, provider_job_id=f"other-{job_id}"),
            await jobs.transition(job_id, JobState.RUNNING, progress_percent=50.0),
            await jobs.transition(job_id, JobState.SUCCEEDED, cost_usd=0.1),
            await jobs.transition(job_id, JobState.DELIVERED, delivery_ref="msg"),
        ]
        return [step.state if step else None for step in steps]

    decide = member_day_limit(10, cost=1)
    admissions = [quota.admit(new_job(), credits=1, decide=decide) for _ in range(50)]
    results = await asyncio.gather(
        *admissions, *(drive_to_delivery(job.id) for job in others), return_exceptions=True
    )
    admission_results, driven = results[:50], results[50:]
    # No "database is locked" or any other error surfaced; every write of the job store landed.
    unexpected = [r for r in results if isinstance(r, BaseException) and not isinstance(r, QuotaRefusedError)]
    assert unexpected == []
    assert sum(not isinstance(r, BaseException) for r in admission_results) == 10
    assert driven == [[JobState.QUEUED, JobState.RUNNING, JobState.SUCCEEDED, JobState.DELIVERED]] * 20
    for job in others:
        stored = await jobs.get(job.id)
        assert stored is not None and (stored.state, stored.cost_usd) == (JobState.DELIVERED, 0.1)
    assert len(await jobs.jobs_for_user(MEMBER, limit=100)) == 10


async def test_two_quota_stores_on_one_database_still_cannot_overrun_the_limit(jobs, quota, backend, clock):
    # Like two bot processes: the asyncio lock does not span them, the database's lock does.
    second = (await backend.open(clock)).quota
    decide = member_day_limit(10, cost=2)
    results = await asyncio.gather(
        *(store.admit(new_job(), credits=2, decide=decide) for store in (quota, second) * 15),
        return_exceptions=True,
    )
    assert sum(not isinstance(r, BaseException) for r in results) == 5
    assert all(isinstance(r, QuotaRefusedError) for r in results if isinstance(r, BaseException))
    assert (await quota.usage(GUILD, MEMBER)).member_credits_today == 10


async def test_a_policy_that_raises_rolls_the_admission_back_and_the_store_stays_usable(jobs, quota):
    def broken(usage: Usage) -> Refusal | None:
        raise RuntimeError("policy bug")

    with pytest.raises(RuntimeError, match="policy bug"):
        await quota.admit(new_job(), credits=3, decide=broken)
    assert await jobs.jobs_for_user(MEMBER) == []
    job = await admit(quota, credits=3)
    assert (await quota.usage(GUILD, MEMBER)).member_credits_today == 3
    assert (await jobs.get(job.id)) == job


async def test_the_policy_sees_the_members_usage_at_admission_time(quota, clock):
    submitted_at = clock.now
    await admit(quota, credits=4)
    clock.now += 60
    seen: list[Usage] = []

    def record(usage: Usage) -> Refusal | None:
        seen.append(usage)
        return None

    await quota.admit(new_job(), credits=2, decide=record)
    assert len(seen) == 1
    assert (seen[0].now, seen[0].member_credits_today, seen[0].member_active_jobs) == (clock.now, 4, 1)
    assert seen[0].member_last_submit_at == submitted_at


# --- Reserve → commit / release ----------------------------------------------------------------------------


@pytest.mark.parametrize("final", sorted(FINAL_STATES))
async def test_every_final_state_settles_the_reservation_once(jobs, quota, clock, final):
    job = await admit(quota, credits=5)
    assert (await quota.usage(GUILD, MEMBER)).member_credits_today == 5
    clock.now += 30
    ended_at = clock.now
    await end_job(jobs, job.id, final)

    reservation = await quota.reservation(job.id)
    assert reservation is not None
    delivered = final is JobState.DELIVERED
    assert reservation.state is (ReservationState.COMMITTED if delivered else ReservationState.RELEASED)
    assert reservation.settled_at == ended_at
    # Committed credits stay spent; released ones no longer count against the member or the server.
    usage = await quota.usage(GUILD, MEMBER)
    assert usage.member_credits_today == usage.server_credits_this_month == (5 if delivered else 0)
    assert usage.member_active_jobs == 0

    # A second ending (a replay, a competing worker) is refused by the job store and settles nothing again.
    clock.now += 30
    for again in (JobState.DELIVERED, JobState.FAILED, JobState.CANCELLED):
        assert await jobs.transition(job.id, again) is None
    assert await quota.reservation(job.id) == reservation


@pytest.mark.parametrize(("first", "then"), [("delivered", "failed"), ("cancelled", "delivered")])
async def test_settlement_happens_once_even_for_a_replay_that_skips_the_state_guard(
    driver, jobs, quota, clock, first, then
):
    # Settlement is the job layer's rule applied in the ending's transaction (no triggers): a replay that
    # slipped past the state guard (another backend's bug, a repair by hand) still settles nothing twice.
    job = await admit(quota, credits=3)
    await jobs.transition(job.id, JobState.QUEUED, provider_job_id="req-1")
    for state, at in ((JobState(first), clock.now + 10), (JobState(then), clock.now + 20)):
        clock.now = at
        settle = settlement_for(state)
        assert settle is not None
        await driver.settle(job.id, settle, at)
    reservation = await quota.reservation(job.id)
    expected = ReservationState.COMMITTED if first == "delivered" else ReservationState.RELEASED
    assert reservation is not None and (reservation.state, reservation.settled_at) == (
        expected,
        clock.now - 10,
    )


async def test_progress_before_the_end_leaves_the_credits_reserved(jobs, quota):
    job = await admit(quota, credits=2)
    await jobs.transition(job.id, JobState.QUEUED, provider_job_id="req-1")
    await jobs.transition(job.id, JobState.RUNNING, progress_percent=10.0)
    await jobs.annotate(job.id, status_message_id=44)
    await jobs.transition(job.id, JobState.SUCCEEDED, cost_usd=0.2)
    reservation = await quota.reservation(job.id)
    assert reservation is not None and (reservation.state, reservation.settled_at) == (
        ReservationState.RESERVED,
        None,
    )
    assert (await quota.usage(GUILD, MEMBER)).member_credits_today == 2


async def test_a_job_created_without_a_quota_ends_normally_and_has_no_reservation(jobs, quota):
    job = await jobs.create(new_job())
    await end_job(jobs, job.id, JobState.FAILED)
    assert await quota.reservation(job.id) is None
    assert (await quota.usage(GUILD, MEMBER)).member_credits_today == 0


async def test_a_crash_between_submit_and_delivery_keeps_the_credits_reserved_until_delivery(backend, clock):
    before = await backend.open(clock)
    job = await admit(before.quota, credits=4)
    await before.jobs.transition(job.id, JobState.QUEUED, provider_job_id="req-1")
    await before.jobs.transition(job.id, JobState.SUCCEEDED, video_url="https://files.test/v.mp4")
    # The process dies before delivery: its connections go away.
    await before.close()

    after = await backend.open(clock)
    jobs, quota = after.jobs, after.quota
    reservation = await quota.reservation(job.id)
    assert reservation is not None and reservation.state is ReservationState.RESERVED
    usage = await quota.usage(GUILD, MEMBER)
    assert (usage.member_credits_today, usage.member_active_jobs) == (4, 1)
    assert [j.id for j in await jobs.active_jobs()] == [job.id]

    clock.now += 5
    await jobs.transition(job.id, JobState.DELIVERED, delivery_ref="msg-1")
    reservation = await quota.reservation(job.id)
    assert reservation is not None
    assert (reservation.state, reservation.settled_at) == (ReservationState.COMMITTED, clock.now)
    usage = await quota.usage(GUILD, MEMBER)
    assert (usage.member_credits_today, usage.member_active_jobs) == (4, 0)


# --- Usage windows -----------------------------------------------------------------------------------------


async def test_usage_windows_roll_over_at_midnight_utc_after_thirty_days_and_at_the_month(quota, clock):
    first = utc(2024, 2, 1, 12)
    clock.now = first
    await admit(quota, credits=4)
    clock.now = leap_day_late = utc(2024, 2, 29, 23, 30)
    await admit(quota, credits=2)

    usage = await quota.usage(GUILD, MEMBER)
    assert (usage.member_credits_today, usage.member_credits_30_days) == (2, 6)
    assert (usage.server_credits_today, usage.server_credits_this_month) == (2, 6)
    assert usage.member_30_days_oldest_at == first
    assert usage.now == leap_day_late

    clock.now = utc(2024, 3, 1, 0, 30)  # past midnight UTC, and a new month
    await admit(quota, credits=3)
    usage = await quota.usage(GUILD, MEMBER)
    assert (usage.member_credits_today, usage.server_credits_today) == (3, 3)
    assert usage.server_credits_this_month == 3
    assert usage.member_credits_30_days == 9

    # The rolling window: the first job's credits count until exactly 30 days have passed.
    just_before = await quota.usage(GUILD, MEMBER, now=first + 30 * DAY - 1)
    assert (just_before.member_credits_30_days, just_before.member_30_days_oldest_at) == (9, first)
    after = await quota.usage(GUILD, MEMBER, now=first + 30 * DAY)
    assert (after.member_credits_30_days, after.member_30_days_oldest_at) == (5, leap_day_late)
    assert (after.member_credits_today, after.server_credits_this_month) == (0, 3)


async def test_usage_counts_only_this_member_in_this_server_for_member_figures(quota, clock):
    await admit(quota, credits=2)
    await admit(quota, credits=5, user_id=8)  # another member of the same server
    await admit(quota, credits=7, guild_id=2)  # the same member in another server
    usage = await quota.usage(GUILD, MEMBER)
    assert (usage.member_credits_today, usage.member_credits_30_days, usage.member_active_jobs) == (2, 2, 1)
    assert (usage.server_credits_today, usage.server_credits_this_month) == (7, 7)
    assert (await quota.usage(2, MEMBER)).server_credits_today == 7
    assert await quota.usage(3, MEMBER) == Usage(now=clock.now)


async def test_active_jobs_and_last_submit_follow_the_members_jobs(jobs, quota, clock):
    clock.now = start = utc(2024, 5, 10, 9)
    first = await admit(quota)
    clock.now = start + 120
    await admit(quota)
    await admit(quota, user_id=8)
    usage = await quota.usage(GUILD, MEMBER)
    assert (usage.member_active_jobs, usage.member_last_submit_at) == (2, start + 120)

    await end_job(jobs, first.id, JobState.CANCELLED)
    clock.now = start + 600
    usage = await quota.usage(GUILD, MEMBER)
    assert (usage.member_active_jobs, usage.member_last_submit_at) == (1, start + 120)


async def test_the_rolling_hour_counts_the_members_admitted_videos_not_the_returned_ones(jobs, quota, clock):
    clock.now = start = utc(2024, 5, 10, 9)
    first = await admit(quota)
    clock.now = start + 600
    returned = await admit(quota)
    await admit(quota)
    await admit(quota, user_id=8)  # another member
    await admit(quota, guild_id=2)  # another server
    await end_job(jobs, returned.id, JobState.FAILED)  # its credits come back: it does not count
    await end_job(jobs, first.id, JobState.DELIVERED)  # delivered: it counts

    usage = await quota.usage(GUILD, MEMBER, now=start + 3_599)
    assert (usage.member_videos_last_hour, usage.member_hour_oldest_at) == (2, start)
    usage = await quota.usage(GUILD, MEMBER, now=start + 3_600)  # the first has left the hour
    assert (usage.member_videos_last_hour, usage.member_hour_oldest_at) == (1, start + 600)
    usage = await quota.usage(GUILD, MEMBER, now=start + 600 + 3_600)
    assert (usage.member_videos_last_hour, usage.member_hour_oldest_at) == (0, None)


async def test_a_burst_against_an_hourly_limit_admits_exactly_that_many(jobs, quota):
    def three_an_hour(usage: Usage) -> Refusal | None:
        if usage.member_videos_last_hour >= 3:
            return Refusal(LimitName.MEMBER_HOUR, "three an hour")
        return None

    results = await asyncio.gather(
        *(quota.admit(new_job(), credits=1, decide=three_an_hour) for _ in range(20)), return_exceptions=True
    )
    assert sum(not isinstance(r, BaseException) for r in results) == 3
    assert all(isinstance(r, QuotaRefusedError) for r in results if isinstance(r, BaseException))
    assert (await quota.usage(GUILD, MEMBER)).member_videos_last_hour == 3


# --- Configuration and reports -----------------------------------------------------------------------------

FULL_LIMITS = MemberLimits(
    credits_per_day=20,
    credits_per_30_days=300,
    concurrent_jobs=2,
    cooldown_s=60,
    allowed_models=frozenset({PRO, LITE}),
    max_resolution=Resolution.P720,
    max_duration_s=5,
    videos_per_hour=4,
)
FULL_RULES = ServerRules(
    credits_per_day=500,
    credits_per_month=9_000,
    allowed_channel_ids=frozenset({30, 10, 20}),
    banned_user_ids=frozenset({5, 4}),
    banned_words=("zeta", "alpha"),
    max_credits_per_job=40,
    audit_channel_id=1_234_567_890_123_456_789,
    alert_role_id=987_654_321_098_765_432,
)


@pytest.mark.parametrize("limits", [MemberLimits(), FULL_LIMITS, MemberLimits(allowed_models=frozenset())])
def test_limits_survive_their_json_form(limits):
    assert limits_from_json(limits_to_json(limits)) == limits


@pytest.mark.parametrize("rules", [ServerRules(), FULL_RULES, ServerRules(allowed_channel_ids=frozenset())])
def test_rules_survive_their_json_form(rules):
    assert rules_from_json(rules_to_json(rules)) == rules


async def test_config_round_trips_limits_per_scope_and_per_server(quota):
    assert (await quota.config(GUILD)).rules == ServerRules()
    await quota.set_limits(GUILD, "server", 0, MemberLimits(credits_per_day=10), by=42)
    await quota.set_limits(GUILD, "role", 555, FULL_LIMITS, by=42)
    await quota.set_limits(GUILD, "member", MEMBER, MemberLimits(cooldown_s=0), by=42)
    await quota.set_rules(GUILD, FULL_RULES, by=42)
    await quota.set_limits(2, "role", 555, MemberLimits(credits_per_day=1), by=None)

    config = await quota.config(GUILD)
    assert config.server_default == MemberLimits(credits_per_day=10)
    assert dict(config.roles) == {555: FULL_LIMITS}
    assert dict(config.members) == {MEMBER: MemberLimits(cooldown_s=0)}
    assert config.rules == FULL_RULES

    other = await quota.config(2)
    assert (other.server_default, dict(other.roles), dict(other.members)) == (
        None,
        {555: MemberLimits(credits_per_day=1)},
        {},
    )
    assert other.rules == ServerRules()


async def test_setting_limits_again_replaces_them_and_none_resets(quota):
    await quota.set_limits(GUILD, "member", MEMBER, MemberLimits(credits_per_day=3), by=1)
    await quota.set_limits(GUILD, "member", MEMBER, MemberLimits(credits_per_day=8), by=2)
    assert dict((await quota.config(GUILD)).members) == {MEMBER: MemberLimits(credits_per_day=8)}
    await quota.set_limits(GUILD, "member", MEMBER, None, by=2)
    await quota.set_limits(GUILD, "server", 0, None, by=2)  # resetting what was never set is fine
    config = await quota.config(GUILD)
    assert (config.server_default, dict(config.members)) == (None, {})


async def test_the_server_default_is_stored_under_target_zero_only(quota):
    with pytest.raises(ValueError, match="target_id must be 0"):
        await quota.set_limits(GUILD, "server", GUILD, MemberLimits(), by=None)


async def test_usage_report_sums_credits_by_member_and_model_with_the_providers_costs(jobs, quota, clock):
    start = clock.now
    delivered = await admit(quota, credits=4)
    await end_job(jobs, delivered.id, JobState.DELIVERED)
    failed = await admit(quota, credits=2)
    await end_job(jobs, failed.id, JobState.FAILED, cost_usd=0.05, usage_tokens=1_000)
    await admit(quota, credits=1)  # still running
    lite = await admit(quota, credits=3, model=LITE)
    await jobs.transition(lite.id, JobState.QUEUED, provider_job_id="lite")
    await jobs.transition(lite.id, JobState.SUCCEEDED, cost_usd=0.3, usage_tokens=20_000)
    await end_job(jobs, (await admit(quota, credits=6, user_id=8)).id, JobState.EXPIRED)
    await admit(quota, credits=9, guild_id=2)  # another server
    clock.now = start + DAY
    await admit(quota, credits=9)  # outside the period

    report = await quota.usage_report(GUILD, since=start, until=start + DAY)
    # Ordered by member, then model name ("seedance-1.0-lite" sorts before "seedance-1.5-pro").
    assert report == [
        UsageRow(
            MEMBER,
            LITE,
            jobs=1,
            credits_committed=0,
            credits_reserved=3,
            credits_released=0,
            cost_usd=0.3,
            usage_tokens=20_000,
        ),
        UsageRow(
            MEMBER,
            PRO,
            jobs=3,
            credits_committed=4,
            credits_reserved=1,
            credits_released=2,
            cost_usd=0.05,
            usage_tokens=1_000,
        ),
        UsageRow(
            8,
            PRO,
            jobs=1,
            credits_committed=0,
            credits_reserved=0,
            credits_released=6,
            cost_usd=None,
            usage_tokens=None,
        ),
    ]
