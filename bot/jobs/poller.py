"""JobPoller: one background task that drives every job of its process to an end, and announces the end.

Jobs wait in a heap ordered by due time, so a tick touches only the jobs that are due: thousands of jobs in
flight cost what the due ones cost. At most `max_concurrency` steps run at once, and calls for one job never
overlap. Every state change goes through the store's guarded transitions, so the poller can be killed at any
point and a new process resumes from the rows:

- batching: where a provider can report many jobs in one call (`BatchStatusProvider`: ModelArk's task
  list), the jobs of that provider that are due at the same moment and were last seen QUEUED or RUNNING are
  taken off the heap together (up to its batch size) and polled by one step with one call; each job's answer
  then goes through the same per-job logic as a single poll. Nothing waits to fill a batch: it holds what is
  due now, and a batch of one is an ordinary single poll;

- ownership: the poller drives only jobs whose lease it holds (`bot.jobs.ports`), renews all its leases in
  one statement every few seconds, and names itself in every transition, so two processes sharing a
  database never both drive one job; a dead process's leases expire and another process takes the jobs;
- discovery (with `discover`): every third of a lease, and whenever a job event says jobs were freed, the
  poller claims open jobs whose lease is free or expired (`JobStore.claim_due`) and adopts them, so a job
  released by a clean stop or left by a dead process is taken over while this process runs. Job events
  (`JobEvents`) also wake it for a job it holds when a provider's callback reached another process;
- delivery: DELIVERING is recorded before a video is posted; a job found there first asks the notifier for
  its own earlier post and adopts it, so a kill between the upload and the next write never posts twice;
  DELIVERED is recorded as soon as the post returns, and cosmetic edits come after;
- announcements: a job that ended without a video stays "unannounced" until its requester has been told, so
  a kill between the ending and the message only delays the message (an outbox).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import math
import os
import secrets
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import assert_never

import httpx

from bot import metrics
from bot.domain.catalogue import Catalogue, ModelSpec
from bot.domain.errors import DomainError
from bot.domain.models import Job, JobOrigin, JobState, ProviderName
from bot.jobs.audit import JobAudit
from bot.jobs.download import AddressPolicy, download_bytes, download_video
from bot.jobs.errors import DeliveryError, FetchError, VideoDownloadError
from bot.jobs.explain import describe_failure
from bot.jobs.notifier import Notifier
from bot.jobs.ports import JobEvents, JobStore
from bot.jobs.schedule import failure_delay, plan_next_check
from bot.logs import job_fields
from bot.providers.base import (
    BatchStatusProvider,
    ProviderState,
    ProviderStatus,
    VideoProvider,
    batch_status_provider,
)
from bot.providers.errors import ProviderError, ProviderNotFoundError

log = logging.getLogger(__name__)

#: How long a lease lasts without renewal; a process renews its leases every third of it.
DEFAULT_LEASE_S = 30.0
#: Give up delivering a finished video after this many failed attempts in a row.
MAX_DELIVERY_ATTEMPTS = 12
#: A returned last-frame image is a still of the video: far smaller than this unless something is wrong.
LAST_FRAME_MAX_BYTES = 30_000_000
#: How long stop() lets jobs that are mid-step finish before cancelling them.
STOP_GRACE_S = 10.0
#: Give up telling a requester how their job ended after this many failed attempts in a row.
MAX_ANNOUNCE_ATTEMPTS = 12
#: Jobs claimed per discovery statement (a round repeats it while it fills up).
DISCOVER_BATCH = 100


def new_owner_id() -> str:
    """A lease owner name unique to this process: host, process id and a random part (pids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class JobPoller:
    """Drives stored jobs through provider polling, download and delivery."""

    def __init__(
        self,
        store: JobStore,
        providers: Mapping[ProviderName, VideoProvider],
        catalogue: Catalogue,
        notifier: Notifier,
        http: httpx.AsyncClient,
        *,
        poll_interval_s: float,
        max_concurrency: int = 8,
        max_status_checks_per_s: float = 50.0,
        max_video_bytes: int = 512 * 1024 * 1024,
        job_filter: Callable[[Job], bool] | None = None,
        download_dir: Path | None = None,
        owner: str | None = None,
        lease_s: float = DEFAULT_LEASE_S,
        clock: Callable[[], float] = time.time,
        download_policy: AddressPolicy = AddressPolicy.PUBLIC_HTTPS,
        events: JobEvents | None = None,
        discover: JobOrigin | None = None,
        audit: JobAudit | None = None,
    ) -> None:
        """Drive the jobs of `store` that `job_filter` accepts.

        With `discover`, also claim and drive, while running, any open job of that origin whose lease is
        free or expired (every job of it must pass `job_filter`); `events` wakes the poller across
        processes and is told when its stop frees jobs. `audit` hears of each ending once, after the write
        that records it as announced.
        """
        self._store = store
        self._audit = audit
        self._events = events
        self._publishing: set[asyncio.Task[None]] = set()
        self._discover_origin = discover
        self._owner = owner or new_owner_id()
        self._lease_s = lease_s
        self._providers = providers
        # The providers that can report many jobs in one call, found once: the others are never batched.
        self._batchers: dict[ProviderName, BatchStatusProvider] = {}
        for name, provider in providers.items():
            batcher = batch_status_provider(provider)
            if batcher is not None:
                self._batchers[name] = batcher
        self._catalogue = catalogue
        self._notifier = notifier
        self._http = http
        self._poll_interval_s = poll_interval_s
        self._max_checks_per_s = max_status_checks_per_s
        self._max_concurrency = max_concurrency
        self._max_video_bytes = max_video_bytes
        self._job_filter = job_filter or (lambda _job: True)
        self._download_dir = download_dir
        # Which addresses a provider's output URL may lead to (public https only, unless a test allows more).
        self._download_policy = download_policy
        self._clock = clock

        self._heap: list[tuple[float, int]] = []
        self._due: dict[
            int, float
        ] = {}  # job id -> its current due time; heap entries that disagree are stale
        self._in_flight: dict[int, asyncio.Task[None]] = {}  # job id -> the step (single or batch) driving it
        self._steps: set[asyncio.Task[None]] = set()  # running steps: each takes one slot of max_concurrency
        # job id -> its batch-capable provider, for jobs last seen QUEUED or RUNNING with a provider job id:
        # the jobs `_run` may poll in a batch. Only a hint (the batch step reads every row before polling).
        self._batchable: dict[int, ProviderName] = {}
        self._look_again: dict[int, float] = {}  # job id -> due time asked for while its step was running
        self._announce_failures: dict[int, int] = {}
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._renew_task: asyncio.Task[None] | None = None
        self._discover_task: asyncio.Task[None] | None = None
        self._discover_wake = asyncio.Event()
        self._unsubscribe: Callable[[], None] | None = None
        self._stopping = False

    @property
    def owner(self) -> str:
        """The name this poller's leases carry."""
        return self._owner

    @property
    def lease_s(self) -> float:
        """How long a lease lasts without renewal."""
        return self._lease_s

    def lease_until(self) -> float:
        """When a lease taken or renewed now expires."""
        return self._clock() + self._lease_s

    @property
    def tracked(self) -> int:
        """How many jobs are scheduled or being worked on."""
        return len(self._due) + len(self._in_flight)

    def _check_load(self) -> int:
        """Status requests one round of every job costs: jobs polled in batches count a batch's share."""
        if not self._batchable:
            return self.tracked
        smallest = min(batcher.max_status_batch for batcher in self._batchers.values())
        batched = len(self._batchable)
        return self.tracked - batched + math.ceil(batched / smallest)

    async def start(self, *, take_over: bool = False) -> int:
        """Resume every open job in the store that this poller drives and can lease; return how many.

        A job another live process holds is looked at again when its lease would expire; with `take_over`
        (an operator resuming a job by hand) it is taken at once.
        """
        if self._loop_task is not None:
            raise RuntimeError("the poller is already running")
        if self._discover_origin is not None:
            return await self._start_discovering()
        now = self._clock()
        wanted = [job for job in await self._store.open_jobs() if self._job_filter(job)]
        taken = set(
            await self._store.claim(
                [job.id for job in wanted], self._owner, until=self.lease_until(), take_over=take_over
            )
        )
        for job in wanted:
            self._note(job)
            if job.id in taken:
                self._schedule(job.id, job.next_poll_at if job.next_poll_at is not None else now)
            else:
                self._schedule(job.id, self._look_again_at(job, now))
        self._loop_task = asyncio.create_task(self._run(), name="job-poller")
        self._renew_task = asyncio.create_task(self._renew_leases(), name="job-leases")
        if taken:
            log.debug("poller resumed %d open job(s)", len(taken))  # the ready line says it
        return len(taken)

    async def _start_discovering(self) -> int:
        # Only the jobs this process can lease now: the others are another live process's, and discovery
        # finds them here once they are freed (events) or their leases expire (every third of a lease).
        taken = await self._discover()
        self._loop_task = asyncio.create_task(self._run(), name="job-poller")
        self._renew_task = asyncio.create_task(self._renew_leases(), name="job-leases")
        self._discover_task = asyncio.create_task(self._discover_loop(), name="job-discovery")
        if self._events is not None:
            self._unsubscribe = self._events.subscribe(self._on_event)
        return taken

    async def _discover(self) -> int:
        """Claim and schedule open jobs whose lease is free or expired; return how many were taken."""
        taken = 0
        while not self._stopping:
            jobs = await self._store.claim_due(
                self._owner, until=self.lease_until(), limit=DISCOVER_BATCH, origin=self._discover_origin
            )
            now = self._clock()
            refused = [job.id for job in jobs if not self._job_filter(job)]
            if refused:  # not this front end's after all: hand them straight back
                await self._store.release_leases(self._owner, refused)
            for job in jobs:
                if job.id in refused:
                    continue
                taken += 1
                self._note(job)
                self._schedule(job.id, job.next_poll_at if job.next_poll_at is not None else now)
            if len(jobs) < DISCOVER_BATCH:
                break
        return taken

    async def _discover_loop(self) -> None:
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._discover_wake.wait(), self._lease_s / 3)
            self._discover_wake.clear()
            try:  # (a stop meanwhile: `_discover` claims nothing)
                taken = await self._discover()
            except Exception:  # the next round tries again; the jobs wait in the store meanwhile
                log.exception("could not look for jobs to take over; trying again")
                continue
            if taken:
                log.info("took over %d job(s) left free or expired by another process", taken)

    def _on_event(self, job_id: int | None) -> None:
        """A job event: poll a job this process drives at once; anything else may be free work."""
        if self._stopping:
            return
        if job_id is not None and (job_id in self._due or job_id in self._in_flight):
            self.poll_now(job_id)
        else:
            self._discover_wake.set()

    def track(self, job: Job) -> None:
        """Start driving a job that was just submitted."""
        if self._job_filter(job):
            self._note(job)
            self._schedule(job.id, job.next_poll_at if job.next_poll_at is not None else self._clock())

    def poll_now(self, job_id: int) -> None:
        """Look at a job at once (a provider callback said it changed, a member cancelled it). When another
        process drives it, that process is told too (a job event), so it is looked at there at once."""
        held_here = job_id in self._due or job_id in self._in_flight
        self._schedule(job_id, self._clock())
        if not held_here and self._events is not None and not self._stopping:
            task = asyncio.create_task(self._tell_the_others(job_id), name=f"job-event-{job_id}")
            self._publishing.add(task)
            task.add_done_callback(self._publishing.discard)

    async def _tell_the_others(self, job_id: int) -> None:
        assert self._events is not None
        try:
            await self._events.publish(job_id)
        except Exception:  # the holder still looks at the job at its next poll
            log.exception("job %s: could not tell the process driving it to look now", job_id)

    async def stop(self) -> None:
        """Stop polling; let jobs that are mid-step finish (bounded), then hand every lease back."""
        self._stopping = True
        self._wake.set()
        self._discover_wake.set()
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._discover_task is not None:
            self._discover_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._discover_task
            self._discover_task = None
        if self._loop_task is not None:
            await self._loop_task
            self._loop_task = None
        if self._steps:
            _, still_running = await asyncio.wait(list(self._steps), timeout=STOP_GRACE_S)
            for task in still_running:
                task.cancel()
            for task in still_running:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._renew_task is not None:
            self._renew_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renew_task
            self._renew_task = None
        # Another process (or the next start of this one) may take the jobs over at once.
        released = await self._store.release_leases(self._owner)
        if released and self._events is not None:
            try:
                await self._events.publish(None)  # tell the others now rather than at the next round
            except Exception:  # they find the jobs at their next discovery round anyway
                log.warning(
                    "could not tell other processes that %d job(s) were freed", released, exc_info=True
                )

    async def _renew_leases(self) -> None:
        # One statement renews every lease this process holds, however many jobs that is.
        while True:
            await asyncio.sleep(self._lease_s / 3)
            try:
                await self._store.renew_leases(self._owner, until=self.lease_until())
            except Exception:  # a failed renewal is retried; leases outlive two missed ones
                log.exception("could not renew this process's job leases; trying again")

    def _schedule(self, job_id: int, due: float) -> None:
        if job_id in self._in_flight:
            # The job's step is running: a heap entry now would be skipped on every pass (a busy loop) and
            # then overwritten when the step reschedules. Remember the wish; the step's end honours it.
            self._look_again[job_id] = min(due, self._look_again.get(job_id, due))
            return
        self._due[job_id] = due
        heapq.heappush(self._heap, (due, job_id))
        self._wake.set()

    def _note(self, job: Job) -> None:
        """Remember whether `job` may be polled in a batch: QUEUED or RUNNING at a batch-capable provider."""
        if (
            job.state in (JobState.QUEUED, JobState.RUNNING)
            and job.provider_job_id is not None
            and job.provider in self._batchers
        ):
            self._batchable[job.id] = job.provider
        else:
            self._batchable.pop(job.id, None)

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            now = self._clock()
            # Batches being filled in this pass, by provider; each already counts as one slot.
            filling: dict[ProviderName, list[int]] = {}
            while self._heap:
                due, job_id = self._heap[0]
                if self._due.get(job_id) != due:
                    heapq.heappop(self._heap)  # stale: the job was rescheduled
                    continue
                if due > now:
                    break
                provider = self._batchable.get(job_id)
                if provider is not None and provider in filling:
                    # Joins a batch whose slot is already counted.
                    heapq.heappop(self._heap)
                    del self._due[job_id]
                    metrics.poll_lag(now - due)
                    batch = filling[provider]
                    batch.append(job_id)
                    if len(batch) >= self._batchers[provider].max_status_batch:
                        self._launch(filling.pop(provider), provider)
                    continue
                if len(self._steps) + len(filling) >= self._max_concurrency:
                    break
                heapq.heappop(self._heap)
                del self._due[job_id]
                metrics.poll_lag(now - due)
                if provider is not None:
                    filling[provider] = [job_id]
                else:
                    self._launch([job_id], None)
            for provider, batch in filling.items():
                self._launch(batch, provider)
            timeout = None
            if self._heap and len(self._steps) < self._max_concurrency:
                timeout = max(0.0, self._heap[0][0] - now)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    def _launch(self, job_ids: list[int], provider: ProviderName | None) -> None:
        """Start one step for `job_ids`: a single poll, or a batch poll of several jobs of `provider`."""
        if provider is None or len(job_ids) == 1:
            # One job costs one call either way, and the single call tells a lost job from a missing one.
            [job_id] = job_ids
            task = asyncio.create_task(self._drive(job_id), name=f"job-{job_id}")
        else:
            task = asyncio.create_task(self._drive_batch(provider, job_ids), name=f"jobs-{job_ids[0]}+")
        self._steps.add(task)
        task.add_done_callback(self._step_done)
        for job_id in job_ids:
            self._in_flight[job_id] = task

    def _step_done(self, task: asyncio.Task[None]) -> None:
        self._steps.discard(task)
        self._wake.set()  # a slot is free

    def _release(self, job_id: int) -> None:
        """The job's step is over (or cancelled): calls for it may start again."""
        del self._in_flight[job_id]
        self._wake.set()

    def _reschedule(self, job_id: int, next_due: float | None) -> None:
        """After the job's step: schedule it for `next_due` or for a look asked for meanwhile, if any."""
        asked = self._look_again.pop(job_id, None)
        if asked is not None and next_due is not None:
            next_due = min(next_due, asked)
        elif asked is not None:
            next_due = asked  # the step thought the job was over; a callback says look once more
        if next_due is not None and not self._stopping:
            self._schedule(job_id, next_due)
        else:
            self._batchable.pop(job_id, None)

    async def _drive(self, job_id: int) -> None:
        next_due: float | None = None
        try:
            next_due = await self._step(job_id)
        finally:
            self._release(job_id)
        self._reschedule(job_id, next_due)

    async def _step(self, job_id: int) -> float | None:
        """One step of one job; when to look at it next, or None when it is over."""
        try:
            job = await self._lease(job_id)
            if isinstance(job, float):
                return job  # another process holds it: look again when its lease would expire
            if job is not None and self._job_filter(job):
                return await self._advance(job)
            return None
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("job %s: unexpected error while driving it; retrying later", job_id)
            return self._clock() + failure_delay(self._poll_interval_s, 3, None)

    async def _drive_batch(self, provider: ProviderName, job_ids: Sequence[int]) -> None:
        """Poll several jobs of one provider with one call; each job is released the moment it is done."""
        unfinished = dict.fromkeys(job_ids)

        def finish(job_id: int, next_due: float | None) -> None:
            del unfinished[job_id]
            self._release(job_id)
            self._reschedule(job_id, next_due)

        try:
            await self._poll_batch(self._batchers[provider], job_ids, finish)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("jobs %s: unexpected error while polling them together; retrying later", job_ids)
            due = self._clock() + failure_delay(self._poll_interval_s, 3, None)
            for job_id in list(unfinished):
                finish(job_id, due)
        finally:
            for job_id in unfinished:  # cancelled (stop): released, not rescheduled, like a single step
                self._release(job_id)

    async def _poll_batch(
        self,
        provider: BatchStatusProvider,
        job_ids: Sequence[int],
        finish: Callable[[int, float | None], None],
    ) -> None:
        # Each job's lease is checked as for a single poll; a job that cannot be polled in this batch goes
        # back to the heap at once, unmarked, so that the single-job path takes its next step.
        polled: dict[str, tuple[Job, ModelSpec]] = {}  # provider job id -> the job and its model
        now = self._clock()
        for job_id in job_ids:
            try:
                job = await self._lease(job_id)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("job %s: unexpected error while driving it; retrying later", job_id)
                finish(job_id, self._clock() + failure_delay(self._poll_interval_s, 3, None))
                continue
            if job is None or isinstance(job, float):
                finish(job_id, job)
                continue
            if not self._job_filter(job):
                finish(job_id, None)
                continue
            spec = self._batch_spec(job, now)
            if spec is None or job.provider_job_id is None or job.provider_job_id in polled:
                self._batchable.pop(job_id, None)
                finish(job_id, self._clock())
                continue
            polled[job.provider_job_id] = (job, spec)
        if len(polled) == 1:
            # The others went elsewhere: this one is an ordinary single poll, delivery included.
            [(job, _)] = polled.values()
            finish(job.id, await self._step_polled(job, None, now, deliver=True))
            return
        if not polled:
            return
        try:
            answers = await provider.statuses(list(polled), {key: spec for key, (_, spec) in polled.items()})
        except ProviderError as error:
            # Even a "not found" here says nothing about any one job: every job backs off as after a failed
            # single poll, and none is ended.
            log.warning("%d jobs: the status check for all of them failed: %s", len(polled), error)
            for job, _ in polled.values():
                finish(job.id, await self._step_polled(job, error, now))
            return
        missing = len(polled.keys() - answers.keys())
        if missing:
            log.info(
                "%d of %d jobs were not in the provider's answer; asking for each alone", missing, len(polled)
            )
        for key, (job, _) in polled.items():
            finish(job.id, await self._step_polled(job, answers.get(key), now))

    def _batch_spec(self, job: Job, now: float) -> ModelSpec | None:
        """The job's model if its next step is a plain status poll; None when the single path must decide."""
        if job.state not in (JobState.QUEUED, JobState.RUNNING) or now >= job.deadline_at:
            return None
        if job.provider not in self._batchers:
            return None
        try:
            return self._catalogue.spec_for(job.provider, job.model)
        except DomainError:
            return None

    async def _step_polled(
        self, job: Job, answer: ProviderStatus | ProviderError | None, now: float, *, deliver: bool = False
    ) -> float | None:
        """Apply one job's share of a batch poll: its status, the batch's error, or None (not in the answer:
        ask for it alone). A finished job is delivered by a step of its own unless `deliver`; an unexpected
        error stays with its job, as in `_step`.
        """
        try:
            if answer is None:
                return await self._poll(job, deliver=deliver)  # the single call tells a lost job apart
            if isinstance(answer, ProviderError):
                return await self._poll_failed(job, answer, now, quiet=True)
            return await self._apply_status(job, answer, now, deliver=deliver)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("job %s: unexpected error while driving it; retrying later", job.id)
            return self._clock() + failure_delay(self._poll_interval_s, 3, None)

    async def _lease(self, job_id: int) -> Job | float | None:
        """The job if this process holds (or could take) its lease; else when to try again; None if done."""
        job = await self._store.get(job_id)
        if job is None or job.announced_at is not None:
            return None
        now = self._clock()
        self._note(job)
        if job.lease_owner == self._owner and (job.lease_expires_at or 0) > now:
            return job
        until = self.lease_until()
        if await self._store.claim([job_id], self._owner, until=until):
            return replace(job, lease_owner=self._owner, lease_expires_at=until)
        if self._discover_origin is not None:
            return None  # another process drives it; discovery brings it back here if it is ever freed
        return self._look_again_at(job, now)

    def _look_again_at(self, job: Job, now: float) -> float:
        # When another process's lease would expire, or sooner: it may hand the job back (a clean stop).
        return max(now + 0.5, min(job.lease_expires_at or now, now + self._lease_s))

    async def _advance(self, job: Job) -> float | None:
        """Take one step with `job`; return when to look at it next, or None when it is over."""
        match job.state:
            case JobState.PENDING:
                return await self._resolve_pending(job)
            case JobState.QUEUED | JobState.RUNNING:
                return await self._poll(job)
            case JobState.SUCCEEDED | JobState.DELIVERING:
                return await self._deliver(job)
            case (
                JobState.DELIVERED
                | JobState.FAILED
                | JobState.CANCELLED
                | JobState.EXPIRED
                | JobState.TIMED_OUT
                | JobState.UNKNOWN
            ):
                return await self._announce(job)
            case _:
                assert_never(job.state)

    async def _resolve_pending(self, job: Job) -> float | None:
        # This poller holds the lease of a PENDING job only when the process that created it is gone (it
        # held the lease while it submitted): the request was interrupted half-way.
        if job.submit_started_at is None:
            code, to = "interrupted", JobState.FAILED
            message = (
                "The bot restarted before it sent this request to the video service. Nothing was sent "
                "and nothing was charged: please ask again."
            )
        else:
            code, to = "submit_unknown", JobState.UNKNOWN
            message = (
                "The bot stopped while sending this job, so it cannot tell whether the video service "
                "accepted it. It was not sent again, so you are not charged twice."
            )
        return await self._end(job, to, code, message)

    async def _poll(self, job: Job, *, deliver: bool = True) -> float | None:
        now = self._clock()
        if now >= job.deadline_at:
            return await self._time_out(job)
        provider = self._providers.get(job.provider)
        if provider is None or job.provider_job_id is None:
            log.error(
                "job %s: provider %s is not configured here; checking again later", job.id, job.provider
            )
            return now + failure_delay(self._poll_interval_s, 10, None)
        try:
            spec = self._catalogue.spec_for(job.provider, job.model)
        except DomainError:
            return await self._end(
                job, JobState.FAILED, "unknown_model", f"The model {job.model} is no longer offered."
            )
        try:
            status = await provider.status(job.provider_job_id, spec)
        except ProviderNotFoundError:
            return await self._end(
                job,
                JobState.FAILED,
                "provider_lost_job",
                "The video service no longer knows this job (it may have expired there).",
            )
        except ProviderError as error:
            return await self._poll_failed(job, error, now)
        return await self._apply_status(job, status, now, deliver=deliver)

    async def _poll_failed(self, job: Job, error: ProviderError, now: float, *, quiet: bool = False) -> float:
        """Back off after a failed status check; the failures in a row are counted on the row."""
        failures = job.poll_failures + 1
        due = now + failure_delay(self._poll_interval_s, failures, error.retry_after_s)
        if quiet:  # a batch's failure is logged once for all its jobs
            log.debug("job %s: status check failed (%d in a row): %s", job.id, failures, error)
        else:
            log.warning("job %s: status check failed (%d in a row): %s", job.id, failures, error)
        await self._store.annotate(job.id, owner=self._owner, poll_failures=failures, next_poll_at=due)
        return due

    async def _apply_status(
        self, job: Job, status: ProviderStatus, now: float, *, deliver: bool = True
    ) -> float | None:
        """Record what the provider said of `job`; when to look next, or None when it is over.

        Without `deliver`, a finished job is recorded as SUCCEEDED and handed back to be looked at at once,
        so that its download and post run as a step of their own instead of holding up a batch.
        """
        age = now - (job.submitted_at or job.created_at)
        due = now + plan_next_check(self._poll_interval_s, age, self._check_load(), self._max_checks_per_s)
        if status.state not in (ProviderState.QUEUED, ProviderState.RUNNING):
            self._batchable.pop(job.id, None)  # its next step, if any, is not a status poll
        match status.state:
            case ProviderState.QUEUED:
                # A provider may briefly report "queued" after "running"; keep our state, note the time.
                target = JobState.QUEUED if job.state is JobState.QUEUED else JobState.RUNNING
                updated = await self._store.transition(
                    job.id,
                    target,
                    expected=(job.state,),
                    owner=self._owner,
                    queue_position=status.queue_position,
                    poll_failures=0,
                    next_poll_at=due,
                )
            case ProviderState.RUNNING:
                updated = await self._store.transition(
                    job.id,
                    JobState.RUNNING,
                    expected=(JobState.QUEUED, JobState.RUNNING),
                    owner=self._owner,
                    queue_position=None,
                    progress_percent=status.progress_percent,
                    poll_failures=0,
                    next_poll_at=due,
                )
            case ProviderState.SUCCEEDED:
                succeeded = await self._store.transition(
                    job.id,
                    JobState.SUCCEEDED,
                    expected=(JobState.QUEUED, JobState.RUNNING),
                    owner=self._owner,
                    queue_position=None,
                    progress_percent=100.0,
                    video_url=status.video_url,
                    last_frame_url=status.last_frame_url,
                    cost_usd=status.cost_usd,
                    usage_tokens=status.usage_tokens,
                    poll_failures=0,
                    next_poll_at=now,
                )
                if succeeded is None:
                    return None
                log.info("job %s: finished at the provider", job.id, extra=job_fields(succeeded))
                await self._notifier.job_progressed(succeeded)
                if not deliver:
                    return now
                return await self._deliver(succeeded)
            case ProviderState.FAILED:
                return await self._end(
                    job,
                    JobState.FAILED,
                    status.error_code or "provider_failed",
                    describe_failure(status.error_code, status.error_message),
                    cost_usd=status.cost_usd,
                    usage_tokens=status.usage_tokens,
                )
            case ProviderState.CANCELLED:
                return await self._end(
                    job, JobState.CANCELLED, "cancelled", "The job was cancelled at the video service."
                )
            case ProviderState.EXPIRED:
                return await self._end(
                    job,
                    JobState.EXPIRED,
                    "expired",
                    "The video service dropped the job because it waited too long in its queue.",
                )
            case _:
                assert_never(status.state)
        if updated is None:
            # Someone else moved the job (a cancel): look once more, to announce it if it ended.
            self._batchable.pop(job.id, None)
            return now
        if (updated.state, updated.queue_position, updated.progress_percent) != (
            job.state,
            job.queue_position,
            job.progress_percent,
        ):
            await self._notifier.job_progressed(updated)
        return due

    async def _time_out(self, job: Job) -> float | None:
        provider = self._providers.get(job.provider)
        if provider is not None and job.provider_job_id is not None:
            try:
                # Best effort: a queued job stops costing anything; a running one finishes unseen.
                await provider.cancel(job.provider_job_id, self._catalogue.spec_for(job.provider, job.model))
            except (ProviderError, DomainError) as error:
                log.info("job %s: cancel after timeout failed: %s", job.id, error)
        limit_min = (job.deadline_at - job.created_at) / 60
        return await self._end(
            job,
            JobState.TIMED_OUT,
            "timed_out",
            f"The video was not ready within the bot's limit of {limit_min:.0f} minutes, so the bot stopped "
            "waiting for it.",
        )

    async def _deliver(self, job: Job) -> float | None:
        """Post the finished video exactly once: DELIVERING is written before the post, and a job found in
        DELIVERING (after a crash, or a post whose outcome is unknown) adopts its earlier post if it has one.
        """
        now = self._clock()
        if job.state is JobState.DELIVERING:
            try:
                earlier = await self._notifier.find_delivery(job)
            except DeliveryError as error:
                return await self._delivery_setback(job, "delivery_failed", error, now)
            if earlier is not None:
                log.info("job %s: found its video already posted (%s); adopting it", job.id, earlier)
                return await self._record_delivery(job, earlier, job.video_bytes)
        if job.video_url is None:
            return await self._end(
                job, JobState.FAILED, "no_output", "The video service finished but gave no video."
            )
        try:
            video = await download_video(
                self._http,
                job.video_url,
                max_bytes=self._max_video_bytes,
                directory=self._download_dir,
                policy=self._download_policy,
            )
        except VideoDownloadError as error:
            setback = DeliveryError(error.message, permanent=error.permanent)
            return await self._delivery_setback(job, "download_failed", setback, now)
        try:
            if job.last_frame_url is not None:
                video = replace(video, last_frame=await self._last_frame(job, job.last_frame_url))
            if job.state is JobState.SUCCEEDED:
                delivering = await self._store.transition(
                    job.id,
                    JobState.DELIVERING,
                    expected=(JobState.SUCCEEDED,),
                    owner=self._owner,
                    video_bytes=video.size_bytes,
                )
                if delivering is None:
                    return self._clock()  # moved or taken over meanwhile: look again
                job = delivering
            try:
                reference = await self._notifier.deliver_video(job, video)
            except DeliveryError as error:
                return await self._delivery_setback(job, "delivery_failed", error, now)
        finally:
            with contextlib.suppress(OSError):
                video.path.unlink()
        return await self._record_delivery(job, reference, video.size_bytes)

    async def _record_delivery(self, job: Job, reference: str, size_bytes: int | None) -> float | None:
        # Written the moment the post is known: a kill after this line cannot post the video again.
        delivered = await self._store.transition(
            job.id,
            JobState.DELIVERED,
            expected=(JobState.DELIVERING,),
            owner=self._owner,
            delivery_ref=reference,
            video_bytes=size_bytes,
        )
        if delivered is None:
            log.error("job %s: delivered, but the row was no longer DELIVERING and ours", job.id)
            return None
        log.info("job %s: delivered (%s)", job.id, reference, extra=job_fields(delivered))
        metrics.job_finished(delivered)
        if self._audit is not None:  # this write succeeds once per job: the DELIVERED ending is recorded
            await self._audit.job_ended(delivered)
        # Cosmetics (the status card) come after the record and are safe to repeat or to lose.
        try:
            await self._notifier.video_delivered(delivered)
        except Exception:  # the video is posted and recorded; a failed courtesy edit changes nothing
            log.exception("job %s: could not show the delivery on its status card", job.id)
        return None

    async def _last_frame(self, job: Job, url: str) -> bytes | None:
        # The last frame is a courtesy next to the video: without it the video is still worth posting.
        try:
            return await download_bytes(
                self._http, url, max_bytes=LAST_FRAME_MAX_BYTES, policy=self._download_policy
            )
        except FetchError as error:
            log.warning("job %s: the last frame could not be fetched: %s", job.id, error.message)
            return None

    async def _delivery_setback(self, job: Job, code: str, error: DeliveryError, now: float) -> float | None:
        if error.hold:
            # Nothing more can be done here (a local file cannot be written): the video stays at the
            # provider and the job stays as it is, for another run (`seedance-bot wait`) to finish.
            log.warning("job %s: delivery on hold: %s", job.id, error.message)
            await self._store.release_leases(self._owner, [job.id])
            return None
        failures = job.poll_failures + 1
        if error.permanent or failures >= MAX_DELIVERY_ATTEMPTS:
            return await self._end(job, JobState.FAILED, code, f"The video was made, but {error.message}.")
        due = now + failure_delay(self._poll_interval_s, failures, None)
        log.warning("job %s: delivery attempt %d failed: %s", job.id, failures, error.message)
        await self._store.annotate(job.id, owner=self._owner, poll_failures=failures, next_poll_at=due)
        return due

    async def _end(
        self,
        job: Job,
        to: JobState,
        code: str,
        message: str,
        *,
        cost_usd: float | None = None,
        usage_tokens: int | None = None,
    ) -> float | None:
        """End the job (its credits are settled in the same write), then tell its requester."""
        fields: dict[str, object] = {"error_code": code, "error_message": message}
        if cost_usd is not None:
            fields["cost_usd"] = cost_usd
        if usage_tokens is not None:
            fields["usage_tokens"] = usage_tokens
        ended = await self._store.transition(job.id, to, expected=(job.state,), owner=self._owner, **fields)
        if ended is None:
            return self._clock()  # moved meanwhile (a cancel): look again, to announce whatever it became
        log.info("job %s: %s (%s)", job.id, to.value, code, extra=job_fields(ended))
        return await self._announce(ended)

    async def _announce(self, job: Job) -> float | None:
        """Tell the requester how a final job ended, once; retried later while the front end cannot."""
        if job.announced_at is not None:
            return None
        if job.state is not JobState.DELIVERED:
            try:
                await self._notifier.job_ended(job)
            except DeliveryError as error:
                failures = self._announce_failures.get(job.id, 0) + 1
                self._announce_failures[job.id] = failures
                if not error.permanent and failures < MAX_ANNOUNCE_ATTEMPTS:
                    log.warning("job %s: could not announce its end (%d): %s", job.id, failures, error)
                    return self._clock() + failure_delay(self._poll_interval_s, failures, None)
                log.error("job %s: giving up announcing its end: %s", job.id, error)  # noqa: TRY400
            metrics.job_finished(job)  # once: the job is marked announced next, and never announced again
        self._announce_failures.pop(job.id, None)
        announced = await self._store.mark_announced(job.id, owner=self._owner)
        if announced is not None and self._audit is not None:
            # Only the one call that recorded the announcement gets a job back: one audit line per ending.
            await self._audit.job_ended(announced)
        return None
