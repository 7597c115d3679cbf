"""The `VideoProvider` protocol and the typed values that cross it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from bot.domain.catalogue import ModelSpec
from bot.domain.models import FrameImage, ProviderName, VideoRequest


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


@dataclass(frozen=True)
class Submission:
    """Everything a provider needs to start one job."""

    spec: ModelSpec
    request: VideoRequest
    first_frame: FrameImage | None
    last_frame: FrameImage | None = None


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
        """Whether images may be sent as bytes; when False, every FrameImage needs a public `url`."""
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
