"""When will it be ready: a job's queue position, progress and estimated time of arrival, for its status card.

The estimate is learned from the bot's own history. A job's *generation time* is measured from `submitted_at`
(the provider accepted the job) to `finished_at` (the store stamps it when the job ends, so for a job whose
video was made that is when the video was posted). Why those two ends:

- the start is the same moment for every job, whatever came before it: the seconds spent admitting the
  request and uploading its images (`created_at` → `submitted_at`) depend on the member's files, not on the
  job, and a job on its card has been submitted already;
- the end is what the member waits for: the video in the channel, not the provider's "done" (which the store
  does not keep a time of). Fetching and posting a video grow with its resolution and duration, which the key
  holds anyway.

Only jobs whose video was made count (SUCCEEDED, DELIVERING, DELIVERED: `GENERATED_STATES`); failures end at
arbitrary times. The expected total is the median of the newest `SAMPLE_LIMIT` such jobs of the same
`GenerationKey` (provider, model, resolution, duration, tier), so one stuck job or one lucky empty queue does
not move it. The server's own jobs come first (its members share its hours and habits); with fewer than
`MIN_SAMPLES` of them, all servers' jobs; with fewer than that too, there is no estimate and the card says
nothing about time.

The card shows the arrival as a Discord timestamp (`<t:…:R>`) that every client counts down by itself, so the
estimate needs no edits of its own: the card is redrawn only when the job changes, as before.
"""

from __future__ import annotations

import asyncio
import logging
import statistics
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from bot.domain.models import Job, JobState
from bot.jobs.ports import GenerationKey, JobStore

log = logging.getLogger(__name__)

#: Fewer finished jobs than this say too little: one slow night would be the estimate.
MIN_SAMPLES = 3
#: How many of the newest finished jobs of a key are looked at: recent enough to follow a provider that got
#: faster or slower, many enough for a steady median.
SAMPLE_LIMIT = 50
#: How long an estimate is reused before the store is asked again. Status cards of busy servers are redrawn
#: many times a minute; one more finished job hardly moves a median of up to 50.
CACHE_TTL_S = 60.0
#: How many (key, server) estimates are kept; the least recently used goes first.
CACHE_ENTRIES = 1024
#: A progress bar drawn from elapsed time alone stops here until the job is done: never "100 %" while waiting.
ESTIMATED_FRACTION_CAP = 0.95


class EstimateScope(StrEnum):
    """Whose past jobs an estimate was learned from."""

    SERVER = "server"
    ALL_SERVERS = "all servers"


@dataclass(frozen=True)
class Estimate:
    """How long jobs of one key take from submit to posted video, and what that is based on."""

    expected_total_s: float
    sample_size: int
    scope: EstimateScope


@dataclass(frozen=True)
class JobProgress:
    """What is known of when a job will be ready, as of `computed_at` (unix time).

    Every figure is None when nothing is known of it. `queue_position` is the job's place in its provider's
    queue while QUEUED: the provider's own figure when it reports one, else 1 + the bot's jobs queued at the
    same provider before it (so 1 means next). `fraction` is 0..1: the provider's progress when it reports
    one, else the elapsed share of the expected total (`fraction_estimated`), at most
    `ESTIMATED_FRACTION_CAP` until the job is done. `overdue`: the expected time has passed and the job is
    not done yet. `sample_size` and `scope` say what the estimate rests on (0 and None: no estimate).
    """

    computed_at: float
    expected_total_s: float | None = None
    eta_at: float | None = None
    queue_position: int | None = None
    fraction: float | None = None
    fraction_estimated: bool = False
    overdue: bool = False
    sample_size: int = 0
    scope: EstimateScope | None = None


def estimate(
    times_s: Sequence[float], scope: EstimateScope, *, min_samples: int = MIN_SAMPLES
) -> Estimate | None:
    """The median of `times_s` as an estimate learned in `scope`; None with fewer than `min_samples`."""
    if len(times_s) < max(1, min_samples):
        return None
    return Estimate(float(statistics.median(times_s)), len(times_s), scope)


def progress_of(
    job: Job, found: Estimate | None, *, now: float, queued_ahead: int | None = None
) -> JobProgress:
    """Where `job` stands at `now`, given the estimate for its key and, while it is QUEUED without a position
    from its provider, how many of the bot's jobs are queued ahead of it. Pure: no I/O, no clock.
    """
    if job.state is JobState.DELIVERED:
        return JobProgress(computed_at=now, fraction=1.0)
    if job.state.is_final:
        return JobProgress(computed_at=now)
    queue_position: int | None = None
    if job.state is JobState.QUEUED:
        if job.queue_position is not None:
            queue_position = job.queue_position
        elif queued_ahead is not None:
            queue_position = queued_ahead + 1
    expected = found.expected_total_s if found is not None else None
    # A job not yet accepted by the provider is counted from its creation: seconds earlier, usually.
    start = job.submitted_at if job.submitted_at is not None else job.created_at
    eta_at = start + expected if expected is not None else None
    fraction: float | None = None
    fraction_estimated = False
    if job.progress_percent is not None:
        fraction = min(1.0, max(0.0, job.progress_percent / 100))
    elif expected is not None and expected > 0:
        fraction = min(ESTIMATED_FRACTION_CAP, max(0.0, (now - start) / expected))
        fraction_estimated = True
    return JobProgress(
        computed_at=now,
        expected_total_s=expected,
        eta_at=eta_at,
        queue_position=queue_position,
        fraction=fraction,
        fraction_estimated=fraction_estimated,
        overdue=eta_at is not None and now >= eta_at,
        sample_size=found.sample_size if found is not None else 0,
        scope=found.scope if found is not None else None,
    )


@dataclass(frozen=True)
class _Cached:
    fetched_at: float
    estimate: Estimate | None


class EtaService:
    """Progress and ETA of jobs, from the job store's history, with estimates cached per key and server.

    A status card is a courtesy: when the store fails, `progress` logs it and answers without the figures it
    could not get, so that the card is still drawn. Concurrent calls for one (key, server) share one query.
    """

    def __init__(
        self,
        store: JobStore,
        *,
        clock: Callable[[], float] = time.time,
        min_samples: int = MIN_SAMPLES,
        sample_limit: int = SAMPLE_LIMIT,
        cache_ttl_s: float = CACHE_TTL_S,
        cache_entries: int = CACHE_ENTRIES,
    ) -> None:
        if min_samples < 1 or sample_limit < min_samples:
            raise ValueError(f"need 1 <= min_samples <= sample_limit; got {min_samples}, {sample_limit}")
        if cache_entries < 1:
            raise ValueError(f"cache_entries must be at least 1; got {cache_entries}")
        self._store = store
        self._clock = clock
        self._min_samples = min_samples
        self._sample_limit = sample_limit
        self._ttl_s = cache_ttl_s
        self._entries = cache_entries
        self._cache: OrderedDict[tuple[GenerationKey, int | None], _Cached] = OrderedDict()
        self._fetching: dict[tuple[GenerationKey, int | None], asyncio.Future[Estimate | None]] = {}

    async def progress(self, job: Job) -> JobProgress:
        """Where `job` stands now: queue position, progress fraction, and its ETA once history allows.

        A final job costs no query. A QUEUED job whose provider gives no position costs one small count
        (not cached: positions move with every job that starts).
        """
        if job.state.is_final:
            return progress_of(job, None, now=self._clock())
        found = await self.estimate_for(GenerationKey.of(job), job.requester.guild_id)
        queued_ahead: int | None = None
        if job.state is JobState.QUEUED and job.queue_position is None:
            try:
                queued_ahead = await self._store.queued_ahead(job)
            except Exception:
                log.warning("job %s: could not count the jobs queued ahead of it", job.id, exc_info=True)
        return progress_of(job, found, now=self._clock(), queued_ahead=queued_ahead)

    def forget(self, key: GenerationKey) -> None:
        """A job of `key` just finished: forget that `key` had too little history (a new server's third video
        makes the fourth's card show an estimate at once, not a minute later). Estimates already known stay
        cached for their minute: dropping them at every delivery made every card edit of a busy bot query
        the store again (status checks ran late under the load benchmark)."""
        for slot in [
            slot for slot, cached in self._cache.items() if slot[0] == key and cached.estimate is None
        ]:
            del self._cache[slot]

    async def estimate_for(self, key: GenerationKey, guild_id: int | None) -> Estimate | None:
        """How long jobs of `key` take: from the server's history, else all servers'; None when too little."""
        if guild_id is not None:
            here = await self._scoped(key, guild_id)
            if here is not None:
                return here
        return await self._scoped(key, None)

    async def _scoped(self, key: GenerationKey, guild_id: int | None) -> Estimate | None:
        """The estimate from exactly one scope's history, cached for `cache_ttl_s`."""
        slot = (key, guild_id)
        cached = self._cache.get(slot)
        if cached is not None and 0 <= self._clock() - cached.fetched_at < self._ttl_s:
            self._cache.move_to_end(slot)
            return cached.estimate
        fetching = self._fetching.get(slot)
        if fetching is None:
            fetching = self._fetching[slot] = asyncio.ensure_future(self._fetch(slot))
        # Shielded: a caller that gives up (its card edit was cancelled) leaves the query to the others.
        return await asyncio.shield(fetching)

    async def _fetch(self, slot: tuple[GenerationKey, int | None]) -> Estimate | None:
        key, guild_id = slot
        try:
            times = await self._store.generation_times(key, guild_id=guild_id, limit=self._sample_limit)
        except Exception:
            # Not cached: the next card asks again.
            log.warning("could not read the generation times of %s", key, exc_info=True)
            return None
        finally:
            del self._fetching[slot]
        scope = EstimateScope.ALL_SERVERS if guild_id is None else EstimateScope.SERVER
        found = estimate(times, scope, min_samples=self._min_samples)
        self._cache[slot] = _Cached(self._clock(), found)
        self._cache.move_to_end(slot)
        while len(self._cache) > self._entries:
            self._cache.popitem(last=False)
        return found
