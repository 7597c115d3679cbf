"""When will it be ready: medians of past jobs like this one, per server first, cached; progress figures."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from bot.domain.models import (
    Job,
    JobOrigin,
    JobState,
    ProviderName,
    Ratio,
    Requester,
    Resolution,
    ServiceTier,
    VideoRequest,
)
from bot.jobs.eta import (
    ESTIMATED_FRACTION_CAP,
    Estimate,
    EstimateScope,
    EtaService,
    estimate,
    progress_of,
)
from bot.jobs.ports import GenerationKey, NewJob
from tests.factories import make_job

REQUEST = VideoRequest(
    model="seedance-1.5-pro",
    prompt="a fox blinks",
    resolution=Resolution.P720,
    ratio=Ratio.R16_9,
    duration_s=5,
)
NOW = 1_700_000_000.0
TWO_MIN = Estimate(120.0, 12, EstimateScope.SERVER)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


class CountingStore:
    """The real store, counting the history queries EtaService makes (and failing them on demand)."""

    def __init__(self, store) -> None:
        self._store = store
        self.queries: list[tuple[GenerationKey, int | None]] = []
        self.fail = False
        self.gate: asyncio.Event | None = None

    async def generation_times(self, key, *, guild_id=None, limit=50):
        self.queries.append((key, guild_id))
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            raise OSError("disk I/O error")
        return await self._store.generation_times(key, guild_id=guild_id, limit=limit)

    async def queued_ahead(self, job):
        if self.fail:
            raise OSError("disk I/O error")
        return await self._store.queued_ahead(job)


def job(**changes) -> Job:
    at_start = {
        "state": JobState.RUNNING,
        "requester": Requester(origin=JobOrigin.DISCORD, user_id=1, guild_id=1, channel_id=3),
        "created_at": NOW - 65,
        "updated_at": NOW - 65,
        "deadline_at": NOW + 3600,
        "submitted_at": NOW - 60,
    }
    return make_job(REQUEST, **{**at_start, **changes})


async def seed(store, took: list[float], *, guild_id: int | None = 1, **request_changes) -> None:
    """Jobs like REQUEST that were delivered `took` seconds after their submit, one a minute in the past."""
    for n, seconds in enumerate(took):
        new = NewJob(
            provider=ProviderName.RUNCOMFY,
            request=dataclasses.replace(REQUEST, **request_changes),
            requester=Requester(origin=JobOrigin.DISCORD, user_id=1, guild_id=guild_id, channel_id=3),
            deadline_at=NOW + 3600,
        )
        created = await store.create(new)
        finished_at = NOW - 3600 + n * 60
        await store.transition(
            created.id, JobState.QUEUED, provider_job_id=f"p{created.id}", submitted_at=finished_at - seconds
        )
        await store.transition(created.id, JobState.SUCCEEDED)
        await store.transition(created.id, JobState.DELIVERED, finished_at=finished_at)


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def counting(store):
    return CountingStore(store)


@pytest.fixture
def eta(counting, clock):
    return EtaService(counting, clock=clock)


# --- the estimator ----------------------------------------------------------------------------------------


def test_the_estimate_is_the_median_of_enough_past_jobs():
    assert estimate([100.0, 900.0, 110.0], EstimateScope.SERVER) == Estimate(110.0, 3, EstimateScope.SERVER)
    # One stuck job does not drag the estimate, unlike a mean.
    assert estimate([100.0, 120.0, 110.0, 5_000.0], EstimateScope.ALL_SERVERS).expected_total_s == 115.0
    assert estimate([100.0, 120.0], EstimateScope.SERVER) is None
    assert estimate([100.0, 120.0], EstimateScope.SERVER, min_samples=2) is not None


def test_provider_progress_fills_the_bar_and_the_eta_counts_from_the_submit():
    progress = progress_of(job(progress_percent=40.0), TWO_MIN, now=NOW)
    assert (progress.fraction, progress.fraction_estimated) == (0.4, False)
    assert progress.eta_at == NOW - 60 + 120
    assert (progress.overdue, progress.sample_size, progress.scope) == (False, 12, EstimateScope.SERVER)


def test_without_provider_progress_the_bar_follows_the_time_and_never_claims_done():
    assert progress_of(job(), TWO_MIN, now=NOW).fraction == 0.5
    late = progress_of(job(), TWO_MIN, now=NOW + 600)
    assert (late.fraction, late.fraction_estimated, late.overdue) == (ESTIMATED_FRACTION_CAP, True, True)


def test_nothing_known_means_no_bar_and_no_eta():
    progress = progress_of(job(), None, now=NOW)
    assert (progress.fraction, progress.eta_at, progress.expected_total_s, progress.scope) == (None,) * 4


def test_a_job_not_yet_submitted_counts_from_its_creation():
    progress = progress_of(job(state=JobState.PENDING, submitted_at=None), TWO_MIN, now=NOW)
    assert progress.eta_at == NOW - 65 + 120


def test_the_queue_position_is_the_providers_else_one_after_the_bots_jobs_ahead():
    queued = job(state=JobState.QUEUED)
    reported = dataclasses.replace(queued, queue_position=9)
    assert progress_of(reported, None, now=NOW, queued_ahead=2).queue_position == 9
    assert progress_of(queued, None, now=NOW, queued_ahead=2).queue_position == 3
    assert progress_of(queued, None, now=NOW).queue_position is None
    # Running: out of the queue, whatever a stale figure says.
    assert progress_of(job(queue_position=4), None, now=NOW, queued_ahead=2).queue_position is None


@pytest.mark.parametrize("state", [JobState.FAILED, JobState.CANCELLED, JobState.TIMED_OUT, JobState.EXPIRED])
def test_a_job_that_ended_without_a_video_shows_no_progress(state):
    progress = progress_of(job(state=state, progress_percent=40.0), TWO_MIN, now=NOW)
    assert (progress.fraction, progress.eta_at, progress.queue_position) == (None, None, None)


def test_a_delivered_job_is_complete():
    progress = progress_of(job(state=JobState.DELIVERED, finished_at=NOW), TWO_MIN, now=NOW)
    assert (progress.fraction, progress.eta_at) == (1.0, None)


# --- EtaService over the real store ----------------------------------------------------------------------


async def test_a_servers_own_history_comes_first(store, eta):
    await seed(store, [60.0, 80.0, 70.0], guild_id=1)
    await seed(store, [600.0] * 10, guild_id=2)
    progress = await eta.progress(job())
    assert (progress.expected_total_s, progress.scope, progress.sample_size) == (
        70.0,
        EstimateScope.SERVER,
        3,
    )
    assert progress.eta_at == NOW - 60 + 70


async def test_a_server_with_too_little_history_falls_back_to_all_servers(store, eta):
    await seed(store, [60.0, 80.0], guild_id=1)
    await seed(store, [600.0] * 3, guild_id=2)
    progress = await eta.progress(job())
    # Five jobs in all: 60, 80, 600, 600, 600.
    assert (progress.expected_total_s, progress.scope, progress.sample_size) == (
        600.0,
        EstimateScope.ALL_SERVERS,
        5,
    )
    cli = await eta.progress(job(requester=Requester(origin=JobOrigin.CLI)))
    assert cli.scope is EstimateScope.ALL_SERVERS


async def test_with_too_little_history_anywhere_there_is_no_eta(store, eta):
    await seed(store, [60.0, 80.0], guild_id=1)
    progress = await eta.progress(job())
    assert (progress.eta_at, progress.fraction, progress.sample_size) == (None, None, 0)


async def test_flex_and_default_tiers_are_estimated_apart(store, eta):
    await seed(store, [100.0, 110.0, 120.0])
    await seed(store, [3_000.0, 3_600.0, 4_000.0], service_tier=ServiceTier.FLEX)
    default = await eta.progress(job(request=dataclasses.replace(REQUEST, service_tier=ServiceTier.DEFAULT)))
    untiered = await eta.progress(job())
    flex = await eta.progress(job(request=dataclasses.replace(REQUEST, service_tier=ServiceTier.FLEX)))
    assert [p.expected_total_s for p in (default, untiered, flex)] == [110.0, 110.0, 3_600.0]


async def test_estimates_are_reused_for_a_minute_then_refreshed(store, counting, clock, eta):
    await seed(store, [100.0, 110.0, 120.0])
    assert (await eta.progress(job())).expected_total_s == 110.0
    queries = len(counting.queries)
    await seed(store, [500.0, 500.0])  # finished since: not seen while the estimate is fresh
    clock.now += 59
    assert (await eta.progress(job())).expected_total_s == 110.0
    assert len(counting.queries) == queries
    clock.now += 2
    assert (await eta.progress(job())).expected_total_s == 120.0
    assert len(counting.queries) == queries + 1


async def test_many_cards_at_once_share_one_query(store, counting, eta):
    await seed(store, [100.0, 110.0, 120.0])
    counting.gate = asyncio.Event()
    cards = [asyncio.ensure_future(eta.progress(job(id=n))) for n in range(20)]
    await asyncio.sleep(0)  # every card asks before the store answers
    counting.gate.set()
    results = await asyncio.gather(*cards)
    assert {progress.expected_total_s for progress in results} == {110.0}
    assert counting.queries == [(GenerationKey.of(job()), 1)]


async def test_the_cache_is_bounded(store, counting, clock):
    await seed(store, [100.0, 110.0, 120.0])
    ten_s = job(request=dataclasses.replace(REQUEST, duration_s=10))
    # This server's 5 s jobs: one query. 10 s jobs: none here, none anywhere: two. Then 5 s again.
    roomy = EtaService(counting, clock=clock)
    for card in (job(), ten_s, job()):
        await roomy.progress(card)
    assert len(counting.queries) == 1 + 2 + 0
    counting.queries.clear()
    tight = EtaService(counting, clock=clock, cache_entries=1)
    for card in (job(), ten_s, job()):
        assert (await tight.progress(card)).expected_total_s == (None if card is ten_s else 110.0)
    assert len(counting.queries) == 1 + 2 + 1  # the 5 s estimate was pushed out


async def test_a_failing_store_leaves_the_card_without_an_eta_and_is_asked_again(store, counting, eta):
    await seed(store, [100.0, 110.0, 120.0])
    counting.fail = True
    queued = await eta.progress(job(state=JobState.QUEUED))
    assert (queued.eta_at, queued.queue_position) == (None, None)
    counting.fail = False
    assert (await eta.progress(job())).expected_total_s == 110.0


async def test_a_queued_job_without_a_provider_position_is_placed_after_the_bots_earlier_jobs(store, eta):
    jobs = []
    for n in range(3):
        new = NewJob(
            provider=ProviderName.RUNCOMFY,
            request=REQUEST,
            requester=Requester(origin=JobOrigin.DISCORD, guild_id=1, channel_id=3),
            deadline_at=NOW + 3600,
        )
        created = await store.create(new)
        jobs.append(
            await store.transition(
                created.id, JobState.QUEUED, provider_job_id=f"q{n}", submitted_at=NOW - 30 + n
            )
        )
    assert [(await eta.progress(queued)).queue_position for queued in jobs] == [1, 2, 3]


async def test_a_final_job_costs_no_query(counting, eta):
    await eta.progress(job(state=JobState.DELIVERED, finished_at=NOW))
    await eta.progress(job(state=JobState.FAILED, finished_at=NOW))
    assert counting.queries == []
