"""The `VideoProvider` protocol and the typed values that cross it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from bot.domain.catalogue import ModelSpec
from bot.domain.models import FrameImage, ProviderName, VideoRequest

if TYPE_CHECKING:
    from bot.domain.media import MediaClip


class ProviderState(StrEnum):
    """A provider's job state, normalised across providers."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"

    @property
    def is_terminal(self) -> bool:
        """Whether the provider will never change this job again."""
        return self not in (ProviderState.QUEUED, ProviderState.RUNNING)


class CancelOutcome(StrEnum):
    """What a cancel request achieved."""

    CANCELLED = "cancelled"
    NOT_CANCELLABLE = "not_cancellable"  # already running, or already over
    UNSUPPORTED = "unsupported"  # the provider has no way to cancel a job (Novita)


@dataclass(frozen=True)
class References:
    """Seedance 2.0's reference media: images, videos and audio clips the video should draw on."""

    images: tuple[FrameImage, ...] = ()
    videos: tuple[MediaClip, ...] = ()
    audios: tuple[MediaClip, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.images or self.videos or self.audios)


@dataclass(frozen=True)
class Submission:
    """Everything a provider needs to start one job.

    `callback_url`, when set, is where the provider may POST status changes (ModelArk); providers without
    callbacks ignore it, and polling stays the source of truth either way.
    """

    spec: ModelSpec
    request: VideoRequest
    first_frame: FrameImage | None
    last_frame: FrameImage | None = None
    references: References = References()
    callback_url: str | None = None


@dataclass(frozen=True)
class SubmitReceipt:
    """The provider accepted a job."""

    provider_job_id: str
    request_id: str | None = None  # the HTTP request id, for support tickets


@dataclass(frozen=True)
class ProviderStatus:
    """One observation of a provider job."""

    state: ProviderState
    queue_position: int | None = None
    progress_percent: float | None = None
    video_url: str | None = None
    last_frame_url: str | None = None  # when the request asked for the last frame back (ModelArk)
    error_code: str | None = None
    error_message: str | None = None
    cost_usd: float | None = None
    usage_tokens: int | None = None


class VideoProvider(Protocol):
    """A Seedance provider: submit a job, watch it, fetch its video URL, cancel it."""

    @property
    def name(self) -> ProviderName:
        """Which provider this is."""
        ...

    @property
    def accepts_inline_images(self) -> bool:
        """Whether images may be sent as bytes; when False, every FrameImage needs a public `url`.

        Reference videos and audio clips always need a public URL: no provider documents taking them inline.
        """
        ...

    async def submit(self, submission: Submission) -> SubmitReceipt:
        """Start a paid job. Sent at most once: raises SubmitOutcomeUnknownError when it may have arrived."""
        ...

    async def status(self, provider_job_id: str, spec: ModelSpec) -> ProviderStatus:
        """The job's current state; when SUCCEEDED, `video_url` is set."""
        ...

    async def cancel(self, provider_job_id: str, spec: ModelSpec) -> CancelOutcome:
        """Ask the provider to cancel a job."""
        ...


@runtime_checkable
class BatchStatusProvider(Protocol):
    """An optional capability of a `VideoProvider`: report many jobs in one call (ModelArk's task list).

    The poller checks for it with `isinstance` (or `batch_status_provider`); providers without it are polled
    one job per call, as before.
    """

    @property
    def max_status_batch(self) -> int:
        """The most ids one `statuses` call takes."""
        ...

    async def statuses(
        self, provider_job_ids: Sequence[str], spec_for: Mapping[str, ModelSpec]
    ) -> dict[str, ProviderStatus]:
        """The current state of each job the provider reported, by provider job id, in one call.

        `spec_for` holds each id's model spec. An id missing from the result was not reported (an unknown or
        deleted job, one past the provider's listing window, an entry that could not be read): the caller
        asks `status` for it, which tells those cases apart. Raises ProviderError when the call itself
        fails, ValueError for more than `max_status_batch` ids.
        """
        ...


def batch_status_provider(provider: object) -> BatchStatusProvider | None:
    """`provider` as a `BatchStatusProvider` when it has the capability and batches of two or more."""
    if not isinstance(provider, BatchStatusProvider):
        return None
    size = getattr(provider, "max_status_batch", 0)
    if isinstance(size, bool) or not isinstance(size, int) or size < 2:
        return None
    return provider
