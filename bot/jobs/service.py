"""JobService: turn a member's raw request into a validated, stored, submitted job; cancel jobs."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from bot import metrics
from bot.aio import gather_in_order
from bot.domain.catalogue import DEFAULT_EXPIRES_AFTER_S, Catalogue, ModelSpec, RequestedOptions
from bot.domain.images import (
    ImageLimits,
    PreparedImage,
    fit_image_async,
    fit_memory_estimate,
    image_subject,
    prepare_image_async,
    prepare_memory_estimate,
)
from bot.domain.media import MediaClip, MediaKind, limits_for, probe_media_async
from bot.domain.models import (
    FIRST_FRAME,
    LAST_FRAME,
    FrameImage,
    Job,
    JobState,
    Lineage,
    MediaRole,
    MediaSlot,
    ProviderName,
    Requester,
    ServiceTier,
    VideoRequest,
)
from bot.domain.text import Text
from bot.jobs.audit import JobAudit
from bot.jobs.errors import (
    FetchError,
    ImageNotPublishedError,
    JobError,
    JobNotCancellableError,
    JobNotFoundError,
    MissingFrameError,
    ProviderNotConfiguredError,
)
from bot.jobs.explain import explain_submit_error
from bot.jobs.memory import MediaMemory
from bot.jobs.ports import JobStore, NewJob
from bot.jobs.quota import Member, QuotaService
from bot.logs import job_fields
from bot.presentation import human_size
from bot.providers.base import CancelOutcome, References, Submission, VideoProvider
from bot.providers.errors import ProviderError

log = logging.getLogger(__name__)

#: How much longer than the provider's own expiry the bot waits for a flex job before giving up on it.
FLEX_GRACE_S = 15 * 60


@dataclass(frozen=True)
class MediaUpload:
    """One validated file a front end must publish at a public URL before submitting (URL-only providers)."""

    slot: MediaSlot
    data: bytes = field(repr=False)
    mime_type: str
    extension: str

    @property
    def label(self) -> str:
        """The slot's key ("first_frame", "image2"): what `published` URLs are keyed by."""
        return self.slot.key

    @property
    def filename(self) -> str:
        """The name the file is re-posted under: "first-frame.png", "video1.mp4"."""
        return f"{self.slot.file_stem}.{self.extension}"


@dataclass(frozen=True)
class PreparedRequest:
    """A request whose options and media passed validation; nothing has been stored or sent yet."""

    spec: ModelSpec
    request: VideoRequest
    first_frame: PreparedImage | None
    last_frame: PreparedImage | None = None
    reference_images: tuple[PreparedImage, ...] = ()
    reference_videos: tuple[MediaClip, ...] = ()
    reference_audios: tuple[MediaClip, ...] = ()

    def uploads(self) -> list[MediaUpload]:
        """Every file of the request, labelled, in the order a front end should publish them."""
        items: list[MediaUpload] = []
        for slot, image in ((FIRST_FRAME, self.first_frame), (LAST_FRAME, self.last_frame)):
            if image is not None:
                items.append(_image_upload(slot, image))
        items.extend(
            _image_upload(MediaSlot(MediaRole.IMAGE, n), image)
            for n, image in enumerate(self.reference_images, 1)
        )
        clips_by_role = ((MediaRole.VIDEO, self.reference_videos), (MediaRole.AUDIO, self.reference_audios))
        for role, clips in clips_by_role:
            items.extend(
                MediaUpload(MediaSlot(role, n), clip.data, clip.info.mime_type, clip.info.format)
                for n, clip in enumerate(clips, 1)
            )
        return items


@dataclass(frozen=True)
class DeliveryTarget:
    """Where a front end shows a job: its status message, the thread under it, the upload limit there."""

    status_message_id: int | None = None
    thread_id: int | None = None
    upload_limit_bytes: int | None = None


@dataclass(frozen=True)
class InputFile:
    """A file the member gave, not yet fetched: the front end knows where it is and how to fetch it."""

    slot: MediaSlot
    size_bytes: int
    #: Fetches the bytes, refusing more than the given number (raises FetchError, or a JobError).
    fetch: Callable[[int], Awaitable[bytes]] = field(repr=False)


@dataclass(frozen=True)
class VideoOrder:
    """Everything a front end learned from the member: what to make, from which files, for whom."""

    model: str | None
    options: RequestedOptions
    inputs: tuple[InputFile, ...]
    requester: Requester
    member: Member | None = None
    upload_limit_bytes: int | None = None
    #: The front end's handle to answer the member privately later (see NewJob.reply_handle).
    reply_handle: str | None = None
    #: The earlier job a button made this request from.
    lineage: Lineage | None = None


@dataclass(frozen=True)
class PostedRequest:
    """What the front end published for a job: its status message and the files' public URLs by slot."""

    status_message_id: int | None
    urls: Mapping[str, str]  # MediaSlot.key -> URL


class RequestPublisher(Protocol):
    """The front end's part of starting a job (Discord posts a status card; the CLI publishes nothing)."""

    def check_uploads(self, uploads: Sequence[MediaUpload]) -> None:
        """Refuse, before anything is stored, files that cannot be published here (PublishError)."""
        ...

    async def post_request(self, job: Job, prepared: PreparedRequest) -> PostedRequest:
        """Show the stored request with its files re-posted (providers fetch them from there).

        Called once the job row exists, so a crash at any point leaves a job a restart can finish or undo.
        Raise PublishError when it cannot be shown; nothing has been sent to the provider then.
        """
        ...

    async def open_thread(self, job: Job) -> int | None:
        """Open the place the video will go (a thread under the status card); None to use the channel."""
        ...


class JobTracker(Protocol):
    """What JobService needs from the poller: to be told about a newly queued job, or a changed one."""

    def track(self, job: Job) -> None:
        """Start driving `job`."""
        ...

    def poll_now(self, job_id: int) -> None:
        """Look at a job at once (it changed: a cancel, a failed submit to announce)."""
        ...


class OptionDefaults(Protocol):
    """Fills what a member left unset with what they chose as their defaults (see bot.jobs.defaults)."""

    async def apply(
        self, guild_id: int | None, user_id: int | None, model: str | None, options: RequestedOptions
    ) -> tuple[str | None, RequestedOptions]:
        """The model and options to use; explicit options are never changed."""
        ...


class JobService:
    """The one entry point front ends use to start and cancel jobs."""

    def __init__(
        self,
        store: JobStore,
        providers: Mapping[ProviderName, VideoProvider],
        catalogue: Catalogue,
        *,
        tracker: JobTracker,
        job_timeout_s: float,
        image_limits: ImageLimits | None = None,
        quota: QuotaService | None = None,
        callback_url: str | None = None,
        owner: str | None = None,
        lease_s: float = 30.0,
        defaults: OptionDefaults | None = None,
        memory: MediaMemory | None = None,
        audit: JobAudit | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`owner` names the process (the poller's lease owner): jobs it creates are leased to it. `memory`
        bounds the memory members' files and image decoding take at once (default: no bound). `audit`
        hears of each job once its paid submit was accepted."""
        self._defaults = defaults
        self._audit = audit
        self._memory = memory or MediaMemory.within(None)
        self._store = store
        self._owner = owner
        self._lease_s = lease_s
        self._providers = providers
        self._catalogue = catalogue
        self._callback_url = callback_url
        self._tracker = tracker
        self._job_timeout_s = job_timeout_s
        self._image_limits = image_limits or ImageLimits()
        self._quota = quota
        self._clock = clock

    def provider_for(self, spec: ModelSpec) -> VideoProvider:
        """The provider that serves `spec`; a catalogue built from the configured providers has it."""
        try:
            return self._providers[spec.provider]
        except KeyError:  # only with a catalogue not built by `catalogue_for` from these providers
            raise ProviderNotConfiguredError(
                Text(
                    "{model} runs on {provider}, which is not configured on this bot.",
                    model=spec.display_name,
                    provider=spec.provider.value,
                )
            ) from None

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
        *,
        reference_images: Sequence[bytes] = (),
        reference_videos: Sequence[bytes] = (),
        reference_audios: Sequence[bytes] = (),
    ) -> PreparedRequest:
        """Validate options (cheap, first) then images (Pillow) and media (PyAV), off the event loop.

        Raises a DomainError or MissingFrameError that names what is wrong; nothing is stored or sent.
        """
        spec = self._catalogue.get(model)
        options = replace(
            options,
            reference_images=len(reference_images),
            reference_videos=len(reference_videos),
            reference_audios=len(reference_audios),
        )
        request = self._catalogue.validate(spec.key, options)
        if first_frame is None and spec.requires_first_frame:
            raise MissingFrameError(Text("{model} needs a first-frame image.", model=spec.display_name))
        first = await self._judged(first_frame, "first frame") if first_frame is not None else None
        last = await self._judged(last_frame, "last frame") if last_frame is not None else None
        # Each kind's checks run together, each in a thread: nine images take about as long as the slowest.
        images = await gather_in_order(
            self._judged(data, f"reference image {n}") for n, data in enumerate(reference_images, 1)
        )
        videos = await _probe_all(reference_videos, MediaKind.VIDEO, "reference video")
        audios = await _probe_all(reference_audios, MediaKind.AUDIO, "reference audio clip")
        return PreparedRequest(
            spec=spec,
            request=request,
            first_frame=first,
            last_frame=last,
            reference_images=tuple(images),
            reference_videos=videos,
            reference_audios=audios,
        )

    async def _judged(self, data: bytes, label: str) -> PreparedImage:
        """`prepare_image` off the event loop, once the decoding budget has room for what it will hold."""
        estimate = prepare_memory_estimate(data, limits=self._image_limits)
        async with self._memory.decoding.reserve(estimate):
            return await prepare_image_async(data, limits=self._image_limits, label=label)

    async def _images_within(self, prepared: PreparedRequest, limit_bytes: int) -> PreparedRequest:
        """`prepared` with each image over `limit_bytes` replaced by a recompressed copy that fits."""

        async def fitted(image: PreparedImage | None) -> PreparedImage | None:
            if image is None or len(image.data) <= limit_bytes:
                return image
            async with self._memory.decoding.reserve(fit_memory_estimate(image, self._image_limits)):
                return await fit_image_async(image, limit_bytes, limits=self._image_limits)

        references = await gather_in_order(fitted(image) for image in prepared.reference_images)
        return replace(
            prepared,
            first_frame=await fitted(prepared.first_frame),
            last_frame=await fitted(prepared.last_frame),
            reference_images=tuple(image for image in references if image is not None),
        )

    async def start(self, order: VideoOrder, publisher: RequestPublisher) -> Job:
        """Run the whole flow of one request: the one entry point every front end uses to start a job.

        Cheap checks first (options, quota), then fetching and judging the files, then — only once the job
        row exists with its credits reserved — the front end shows the request, the paid submit goes out
        once, and the front end opens the place the video will go. Returns the job (QUEUED, or FAILED /
        UNKNOWN when the provider refused or did not answer: an outcome, announced like any ending). Raises
        a JobError or DomainError naming what is wrong when the request cannot start; nothing is charged
        then.
        """
        model, options = order.model, order.options
        if self._defaults is not None:
            # The member's own defaults fill what they left unset; moderators' limits are checked after.
            requester = order.requester
            model, options = await self._defaults.apply(requester.guild_id, requester.user_id, model, options)
        request = self.check_options(model, options)
        if order.member is not None:
            await self.check_quota(request, order.member)
        limits = self._fetch_limits()
        announced = sum(item.size_bytes or limits[item.slot.role] for item in order.inputs)
        # The files stay in memory until they are posted and the provider has the request: held in the
        # budget until then, so a burst of big photos waits its turn instead of piling up.
        async with self._memory.files.reserve(announced) as held:
            data = await _fetch_all(order.inputs, limits)
            prepared = await self.prepare(
                model,
                options,
                data.get(FIRST_FRAME.key),
                data.get(LAST_FRAME.key),
                reference_images=_numbered(data, MediaRole.IMAGE),
                reference_videos=_numbered(data, MediaRole.VIDEO),
                reference_audios=_numbered(data, MediaRole.AUDIO),
            )
            data.clear()  # the originals now live on only where `prepared` passes them on as they were
            if order.upload_limit_bytes is not None:
                # The front end re-posts every file for the provider to fetch: an image over the server's
                # upload limit is recompressed (a copy: the original is not touched) rather than refused.
                prepared = await self._images_within(prepared, order.upload_limit_bytes)
            uploads = prepared.uploads()
            held.shrink(sum(len(upload.data) for upload in uploads))
            publisher.check_uploads(uploads)
            job = await self._create(
                prepared,
                order.requester,
                DeliveryTarget(upload_limit_bytes=order.upload_limit_bytes),
                order.member,
                reply_handle=order.reply_handle,
                lineage=order.lineage,
            )
            try:
                posted = await publisher.post_request(job, prepared)
            except BaseException as error:
                # Nothing was sent: end the job (its credits are released) and let the error answer them.
                await self._abandon(job, error)
                raise
            if posted.status_message_id is not None:
                job = await self._store.annotate(job.id, status_message_id=posted.status_message_id) or job
            job = await self._send(job, prepared, posted.urls)
            del uploads, prepared  # the files are not needed any more: let the budget's count be true
        if job.state.is_final:
            return job
        # Tracked before the thread is opened, so nothing that happens there can strand a paid job; a video
        # ready before the thread is recorded still finds it (a thread has its message's id).
        self._tracker.track(job)
        thread_id = await publisher.open_thread(job)
        if thread_id is not None:
            job = await self._store.annotate(job.id, thread_id=thread_id) or job
        return job

    async def submit(
        self,
        prepared: PreparedRequest,
        requester: Requester,
        *,
        first_frame_url: str | None = None,
        last_frame_url: str | None = None,
        published: Mapping[str, str] | None = None,
        delivery: DeliveryTarget | None = None,
        member: Member | None = None,
    ) -> Job:
        """Store the job, send the one paid submit, and hand the job to the poller.

        Returns the job in state QUEUED, or — when the provider refused or did not answer — FAILED or
        UNKNOWN with the reason in `error_message`. A failed submit is an outcome, not an exception. With a
        `member` and a quota service, the job is created only if the member's limits allow it, its credits
        reserved in the same transaction (QuotaExceededError otherwise).

        `published` maps `MediaUpload.label`s to the public URLs a front end published them at; the frame
        URLs may also come as `first_frame_url` / `last_frame_url`.
        """
        urls = dict(published or {})
        if first_frame_url:
            urls[FIRST_FRAME.key] = first_frame_url
        if last_frame_url:
            urls[LAST_FRAME.key] = last_frame_url
        self._submission(prepared, urls)  # refuses a file without the URL its provider needs, storing nothing
        job = await self._create(prepared, requester, delivery or DeliveryTarget(), member)
        job = await self._send(job, prepared, urls)
        if not job.state.is_final:
            self._tracker.track(job)
        return job

    async def _create(
        self,
        prepared: PreparedRequest,
        requester: Requester,
        delivery: DeliveryTarget,
        member: Member | None,
        *,
        reply_handle: str | None = None,
        lineage: Lineage | None = None,
    ) -> Job:
        """The job row, PENDING, leased to this process; with a quota, admitted and its credits reserved."""
        provider = self.provider_for(prepared.spec)
        now = self._clock()
        new = NewJob(
            provider=provider.name,
            request=prepared.request,
            requester=requester,
            deadline_at=now + self._time_allowed(prepared.request),
            first_frame=prepared.first_frame.info if prepared.first_frame else None,
            last_frame=prepared.last_frame.info if prepared.last_frame else None,
            status_message_id=delivery.status_message_id,
            thread_id=delivery.thread_id,
            upload_limit_bytes=delivery.upload_limit_bytes,
            lease_owner=self._owner,
            lease_expires_at=now + self._lease_s if self._owner else None,
            reply_handle=reply_handle,
            lineage=lineage,
        )
        if self._quota is not None and member is not None:
            # Raises QuotaExceededError: then nothing is stored and nothing is sent.
            admitted = await self._quota.admit(new, member, prepared.spec)
            metrics.credits_reserved(admitted)
            return admitted
        return await self._store.create(new)

    def _submission(self, prepared: PreparedRequest, urls: Mapping[str, str]) -> Submission:
        provider = self.provider_for(prepared.spec)
        first = _frame(prepared.first_frame, urls.get(FIRST_FRAME.key))
        last = _frame(prepared.last_frame, urls.get(LAST_FRAME.key))
        references = References(
            images=tuple(
                _frame_of(image, urls.get(MediaSlot(MediaRole.IMAGE, n).key))
                for n, image in enumerate(prepared.reference_images, 1)
            ),
            videos=tuple(
                replace(clip, url=urls.get(MediaSlot(MediaRole.VIDEO, n).key))
                for n, clip in enumerate(prepared.reference_videos, 1)
            ),
            audios=tuple(
                replace(clip, url=urls.get(MediaSlot(MediaRole.AUDIO, n).key))
                for n, clip in enumerate(prepared.reference_audios, 1)
            ),
        )
        _require_urls(provider, first, last, references)
        return Submission(
            spec=prepared.spec,
            request=prepared.request,
            first_frame=first,
            last_frame=last,
            references=references,
            callback_url=self._callback_url,
        )

    async def _send(self, job: Job, prepared: PreparedRequest, urls: Mapping[str, str]) -> Job:
        """The one paid submit of a stored PENDING job; the job comes back QUEUED, FAILED or UNKNOWN."""
        try:
            submission = self._submission(prepared, urls)
        except JobError as error:
            await self._abandon(job, error)
            raise
        provider = self.provider_for(prepared.spec)
        # Recorded before sending: from here on a crash leaves the job UNKNOWN, never resent.
        job = await self._store.annotate(job.id, submit_started_at=self._clock()) or job
        try:
            receipt = await provider.submit(submission)
        except ProviderError as error:
            explanation = explain_submit_error(error)
            to = JobState.UNKNOWN if explanation.code == "submit_unknown" else JobState.FAILED
            # The "failed" milestone of a job the provider never took (the poller only announces it).
            log.warning("job %s: submit %s: %s", job.id, to.value, error, extra=job_fields(job))
            ended = await self._store.transition(
                job.id, to, error_code=explanation.code, error_message=explanation.message
            )
            self._tracker.poll_now(job.id)  # the poller announces the ending like any other
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
        log.info(
            "job %s: submitted to %s as %s",
            queued.id,
            queued.provider.value,
            receipt.provider_job_id,
            extra=job_fields(queued),
        )
        metrics.job_started(queued)
        if self._audit is not None:  # after the one QUEUED write: one "started" line per job
            await self._audit.job_started(queued)
        return queued

    async def _abandon(self, job: Job, error: BaseException) -> None:
        """End a job that never reached the provider; the member hears why from the raised error itself."""
        message = error.message if isinstance(error, JobError) else "The request could not be shown."
        ended = await asyncio.shield(
            self._store.transition(
                job.id,
                JobState.FAILED,
                expected=(JobState.PENDING,),
                error_code="not_started",
                error_message=message,
            )
        )
        if ended is not None:
            await asyncio.shield(self._store.mark_announced(job.id))

    def _fetch_limits(self) -> dict[MediaRole, int]:
        """The most the bot downloads per kind of file before it has looked inside."""
        image = self._image_limits.max_bytes
        return {
            MediaRole.FIRST_FRAME: image,
            MediaRole.LAST_FRAME: image,
            MediaRole.IMAGE: image,
            MediaRole.VIDEO: limits_for(MediaKind.VIDEO).max_bytes,
            MediaRole.AUDIO: limits_for(MediaKind.AUDIO).max_bytes,
        }

    async def get_own(self, job_id: int, user_id: int | None) -> Job:
        """The job if it belongs to `user_id` (None: any job, for the CLI and moderators)."""
        job = await self._store.get(job_id)
        if job is None or (user_id is not None and job.requester.user_id != user_id):
            raise JobNotFoundError(Text("You have no job #{id}.", id=str(job_id)))
        return job

    async def recent_jobs(self, user_id: int, *, guild_id: int | None = None, limit: int = 10) -> list[Job]:
        """A member's latest jobs, newest first."""
        return await self._store.jobs_for_user(user_id, guild_id=guild_id, limit=limit)

    async def past_videos(
        self, user_id: int, guild_id: int, *, page: int, per_page: int
    ) -> tuple[list[Job], bool]:
        """A page (0 first) of a member's delivered videos in a server, newest first; and if more follow."""
        found = await self._store.jobs_for_user(
            user_id,
            guild_id=guild_id,
            limit=per_page + 1,
            offset=page * per_page,
            states=(JobState.DELIVERED,),
        )
        return found[:per_page], len(found) > per_page

    async def cancel(self, job_id: int, user_id: int | None) -> Job:
        """Cancel a queued job at the provider and record it; raises when it cannot be cancelled."""
        job = await self.get_own(job_id, user_id)
        if job.state.is_final or job.state in (JobState.SUCCEEDED, JobState.DELIVERING):
            raise JobNotCancellableError(
                Text("Job #{id} is already {state}.", id=str(job.id), state=_state_word(job.state))
            )
        if job.state is JobState.PENDING or job.provider_job_id is None:
            raise JobNotCancellableError(
                Text("Job #{id} is still being submitted; try again in a moment.", id=str(job.id))
            )
        spec = self._catalogue.spec_for(job.provider, job.model)
        outcome = await self.provider_for(spec).cancel(job.provider_job_id, spec)
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
                    state = _state_word(refreshed.state) if refreshed else Text("gone")
                    raise JobNotCancellableError(
                        Text("Job #{id} changed to {state} while cancelling.", id=str(job.id), state=state)
                    )
                self._tracker.poll_now(job.id)  # the job's owner announces the cancellation
                return cancelled
            case CancelOutcome.NOT_CANCELLABLE:
                raise JobNotCancellableError(
                    Text(
                        "Job #{id} is already being generated and the video service cannot stop it now.",
                        id=str(job.id),
                    )
                )
            case CancelOutcome.UNSUPPORTED:
                raise JobNotCancellableError(
                    Text(
                        "Job #{id} runs on {provider}, which offers no way to cancel a job. "
                        "It will finish (and count) as usual.",
                        id=str(job.id),
                        provider=spec.provider.value,
                    )
                )

    async def record_removal(self, job_id: int) -> None:
        """Note that the job's video post was deleted (the job stays, for usage and history)."""
        await self._store.mark_removed(job_id)

    def _time_allowed(self, request: VideoRequest) -> float:
        """How long the bot waits for a job: a flex job may take as long as the provider lets it."""
        if request.service_tier is ServiceTier.FLEX:
            provider_limit = request.expires_after_s or DEFAULT_EXPIRES_AFTER_S
            return max(self._job_timeout_s, provider_limit + FLEX_GRACE_S)
        return self._job_timeout_s


def _frame(prepared: PreparedImage | None, url: str | None) -> FrameImage | None:
    if prepared is None:
        return None
    return _frame_of(prepared, url)


def _frame_of(prepared: PreparedImage, url: str | None) -> FrameImage:
    return FrameImage(data=prepared.data, info=prepared.info, url=url or None)


def _image_upload(slot: MediaSlot, image: PreparedImage) -> MediaUpload:
    return MediaUpload(slot, image.data, image.info.mime_type, image.info.extension)


async def _fetch_all(inputs: Sequence[InputFile], limits: Mapping[MediaRole, int]) -> dict[str, bytes]:
    """Every input's bytes by slot key, fetched together; the first bad one in the member's order is named."""
    for item in inputs:
        limit = limits[item.slot.role]
        if item.size_bytes >= limit:
            size, most = human_size(item.size_bytes), human_size(limit)
            raise FetchError(
                Text(
                    "{subject} is {size}; it must be under {most}.",
                    subject=_slot_subject(item.slot),
                    size=size,
                    most=most,
                )
            )
    data = await gather_in_order(item.fetch(limits[item.slot.role]) for item in inputs)
    return {item.slot.key: content for item, content in zip(inputs, data, strict=True)}


def _numbered(data: Mapping[str, bytes], role: MediaRole) -> list[bytes]:
    found: list[bytes] = []
    while (content := data.get(MediaSlot(role, len(found) + 1).key)) is not None:
        found.append(content)
    return found


async def _probe_all(items: Sequence[bytes], kind: MediaKind, noun: str) -> tuple[MediaClip, ...]:
    infos = await gather_in_order(
        probe_media_async(data, kind, label=f"{noun} {n}") for n, data in enumerate(items, 1)
    )
    return tuple(MediaClip(data=data, info=info) for data, info in zip(items, infos, strict=True))


def _require_urls(
    provider: VideoProvider, first: FrameImage | None, last: FrameImage | None, references: References
) -> None:
    """Refuse before anything is stored when a URL-only provider would get a file without a URL."""
    name = provider.name.value
    if not provider.accepts_inline_images:
        if first is not None and first.url is None:
            raise ImageNotPublishedError(
                Text(
                    "{provider} only accepts images by public URL, and the first frame has none.",
                    provider=name,
                )
            )
        if last is not None and last.url is None:
            raise ImageNotPublishedError(
                Text(
                    "{provider} only accepts images by public URL, and the last frame has none.",
                    provider=name,
                )
            )
        for n, image in enumerate(references.images, 1):
            if image.url is None:
                raise ImageNotPublishedError(
                    Text(
                        "{provider} only accepts images by public URL, "
                        "and the reference image {number} has none.",
                        provider=name,
                        number=n,
                    )
                )
    for n, clip in enumerate(references.videos, 1):
        if clip.url is None:
            raise ImageNotPublishedError(
                Text(
                    "{provider} takes reference videos only by public URL, "
                    "and reference video {number} has none.",
                    provider=name,
                    number=n,
                )
            )
    for n, clip in enumerate(references.audios, 1):
        if clip.url is None:
            raise ImageNotPublishedError(
                Text(
                    "{provider} takes reference audio clips only by public URL, and reference audio clip "
                    "{number} has none.",
                    provider=name,
                    number=n,
                )
            )


def _slot_subject(slot: MediaSlot) -> Text:
    """How a refusal names the file in `slot` at the start of a sentence ("The reference video 2"): a
    sentence per kind of file, so that every language can say it its own way."""
    match slot.role:
        case MediaRole.VIDEO:
            return Text("The reference video {number}", number=slot.number)
        case MediaRole.AUDIO:
            return Text("The reference audio clip {number}", number=slot.number)
    return image_subject(slot.noun)


#: A job's state as "Job #4 is already {state}" says it (the English word is the state's own name).
_STATE_WORDS: dict[JobState, Text] = {
    JobState.PENDING: Text("pending"),
    JobState.QUEUED: Text("queued"),
    JobState.RUNNING: Text("running"),
    JobState.SUCCEEDED: Text("succeeded"),
    JobState.DELIVERING: Text("delivering"),
    JobState.DELIVERED: Text("delivered"),
    JobState.FAILED: Text("failed"),
    JobState.CANCELLED: Text("cancelled"),
    JobState.EXPIRED: Text("expired"),
    JobState.TIMED_OUT: Text("timed_out"),
    JobState.UNKNOWN: Text("unknown"),
}


def _state_word(state: JobState) -> Text:
    return _STATE_WORDS[state]
