"""JobService: turn a member's raw request into a validated, stored, submitted job; cancel jobs."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from bot.domain.catalogue import Catalogue, ModelSpec, RequestedOptions
from bot.domain.images import ImageLimits, PreparedImage, prepare_image_async
from bot.domain.models import FrameImage, Job, JobState, Requester, VideoRequest
from bot.jobs.errors import (
    ImageNotPublishedError,
    JobNotCancellableError,
    JobNotFoundError,
    MissingFrameError,
)
from bot.jobs.explain import explain_submit_error
from bot.jobs.quota import Member, QuotaService
from bot.providers.base import CancelOutcome, Submission, VideoProvider
from bot.providers.errors import ProviderError
from bot.storage.jobs import JobStore, NewJob

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PreparedRequest:
    """A request whose options and images passed validation; nothing has been stored or sent yet."""

    spec: ModelSpec
    request: VideoRequest
    first_frame: PreparedImage | None
    last_frame: PreparedImage | None = None


@dataclass(frozen=True)
class DeliveryTarget:
    """Where a front end shows a job: its status message, the thread under it, the upload limit there."""

    status_message_id: int | None = None
    thread_id: int | None = None
    upload_limit_bytes: int | None = None


class JobTracker(Protocol):
    """What JobService needs from the poller: to be told about a newly queued job."""

    def track(self, job: Job) -> None:
        """Start driving `job`."""
        ...


class JobService:
    """The one entry point front ends use to start and cancel jobs."""

    def __init__(
        self,
        store: JobStore,
        provider: VideoProvider,
        catalogue: Catalogue,
        *,
        tracker: JobTracker,
        job_timeout_s: float,
        image_limits: ImageLimits | None = None,
        quota: QuotaService | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._provider = provider
        self._catalogue = catalogue
        self._tracker = tracker
        self._job_timeout_s = job_timeout_s
        self._image_limits = image_limits or ImageLimits()
        self._quota = quota
        self._clock = clock

    @property
    def provider(self) -> VideoProvider:
        """The provider jobs are submitted to."""
        return self._provider

    @property
    def quota(self) -> QuotaService | None:
        """The quota service, when limits are enforced (the Discord bot)."""
        return self._quota

    def check_options(self, model: str | None, options: RequestedOptions) -> VideoRequest:
        """Validate the options alone (no I/O): run it before fetching any image."""
        return self._catalogue.validate(model, options)

    async def check_quota(self, request: VideoRequest, member: Member) -> None:
        """The early quota check, before anything is downloaded or posted (raises QuotaExceededError)."""
        if self._quota is not None:
            await self._quota.precheck(member, self._catalogue.get(request.model), request)

    async def prepare(
        self,
        model: str | None,
        options: RequestedOptions,
        first_frame: bytes | None,
        last_frame: bytes | None = None,
    ) -> PreparedRequest:
        """Validate options (cheap, first) then images (Pillow, off the event loop).

        Raises a DomainError or MissingFrameError that names what is wrong; nothing is stored or sent.
        """
        spec = self._catalogue.get(model)
        request = self._catalogue.validate(spec.key, options)
        if first_frame is None and spec.requires_first_frame:
            raise MissingFrameError(f"{spec.display_name} needs a first-frame image.")
        first = (
            await prepare_image_async(first_frame, limits=self._image_limits, label="first frame")
            if first_frame is not None
            else None
        )
        last = (
            await prepare_image_async(last_frame, limits=self._image_limits, label="last frame")
            if last_frame is not None
            else None
        )
        return PreparedRequest(spec=spec, request=request, first_frame=first, last_frame=last)

    async def submit(
        self,
        prepared: PreparedRequest,
        requester: Requester,
        *,
        first_frame_url: str | None = None,
        last_frame_url: str | None = None,
        delivery: DeliveryTarget | None = None,
        member: Member | None = None,
    ) -> Job:
        """Store the job, send the one paid submit, and hand the job to the poller.

        Returns the job in state QUEUED, or — when the provider refused or did not answer — FAILED or
        UNKNOWN with the reason in `error_message`. A failed submit is an outcome, not an exception. With a
        `member` and a quota service, the job is created only if the member's limits allow it, its credits
        reserved in the same transaction (QuotaExceededError otherwise).
        """
        first = _frame(prepared.first_frame, first_frame_url)
        last = _frame(prepared.last_frame, last_frame_url)
        if not self._provider.accepts_inline_images:
            for frame, label in ((first, "first frame"), (last, "last frame")):
                if frame is not None and frame.url is None:
                    raise ImageNotPublishedError(
                        f"{self._provider.name.value} only accepts images by public URL, "
                        f"and the {label} has none."
                    )
        now = self._clock()
        new = NewJob(
            provider=self._provider.name,
            request=prepared.request,
            requester=requester,
            deadline_at=now + self._job_timeout_s,
            first_frame=first.info if first else None,
            last_frame=last.info if last else None,
            status_message_id=delivery.status_message_id if delivery else None,
            thread_id=delivery.thread_id if delivery else None,
            upload_limit_bytes=delivery.upload_limit_bytes if delivery else None,
        )
        if self._quota is not None and member is not None:
            # Raises QuotaExceededError: then nothing is stored and nothing is sent.
            job = await self._quota.admit(new, member, prepared.spec)
        else:
            job = await self._store.create(new)
        submission = Submission(
            spec=prepared.spec, request=prepared.request, first_frame=first, last_frame=last
        )
        try:
            receipt = await self._provider.submit(submission)
        except ProviderError as error:
            explanation = explain_submit_error(error)
            to = JobState.UNKNOWN if explanation.code == "submit_unknown" else JobState.FAILED
            log.warning("job %s: submit %s: %s", job.id, to.value, error)
            ended = await self._store.transition(
                job.id, to, error_code=explanation.code, error_message=explanation.message
            )
            return ended or job
        queued = await self._store.transition(
            job.id,
            JobState.QUEUED,
            provider_job_id=receipt.provider_job_id,
            submitted_at=self._clock(),
            next_poll_at=self._clock(),
        )
        if queued is None:  # pragma: no cover - only this coroutine touches a PENDING job it created
            raise RuntimeError(f"job {job.id} left PENDING while its submit was in flight")
        log.info("job %s: submitted as %s", queued.id, receipt.provider_job_id)
        self._tracker.track(queued)
        return queued

    async def get_own(self, job_id: int, user_id: int | None) -> Job:
        """The job if it belongs to `user_id` (None: any job, for the CLI and moderators)."""
        job = await self._store.get(job_id)
        if job is None or (user_id is not None and job.requester.user_id != user_id):
            raise JobNotFoundError(f"You have no job #{job_id}.")
        return job

    async def set_thread(self, job_id: int, thread_id: int) -> Job | None:
        """Record the thread a job's video goes to (None when the job is already over)."""
        return await self._store.annotate(job_id, thread_id=thread_id)

    async def recent_jobs(self, user_id: int, *, guild_id: int | None = None, limit: int = 10) -> list[Job]:
        """A member's latest jobs, newest first."""
        return await self._store.jobs_for_user(user_id, guild_id=guild_id, limit=limit)

    async def cancel(self, job_id: int, user_id: int | None) -> Job:
        """Cancel a queued job at the provider and record it; raises when it cannot be cancelled."""
        job = await self.get_own(job_id, user_id)
        if job.state.is_final or job.state is JobState.SUCCEEDED:
            raise JobNotCancellableError(f"Job #{job.id} is already {job.state.value}.")
        if job.state is JobState.PENDING or job.provider_job_id is None:
            raise JobNotCancellableError(f"Job #{job.id} is still being submitted; try again in a moment.")
        spec = self._catalogue.get(job.model)
        outcome = await self._provider.cancel(job.provider_job_id, spec)
        match outcome:
            case CancelOutcome.CANCELLED:
                cancelled = await self._store.transition(
                    job.id,
                    JobState.CANCELLED,
                    expected=(JobState.QUEUED, JobState.RUNNING),
                    error_code="cancelled",
                    error_message="Cancelled at your request.",
                )
                if cancelled is None:
                    refreshed = await self._store.get(job.id)
                    state = refreshed.state.value if refreshed else "gone"
                    raise JobNotCancellableError(f"Job #{job.id} changed to {state} while cancelling.")
                return cancelled
            case CancelOutcome.NOT_CANCELLABLE:
                raise JobNotCancellableError(
                    f"Job #{job.id} is already being generated and the video service cannot stop it now."
                )


def _frame(prepared: PreparedImage | None, url: str | None) -> FrameImage | None:
    if prepared is None:
        return None
    return FrameImage(data=prepared.data, info=prepared.info, url=url)
