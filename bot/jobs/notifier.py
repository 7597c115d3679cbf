"""The Notifier protocol: how a front end (Discord, the CLI) hears about its jobs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from bot.domain.models import Job


@dataclass(frozen=True)
class DownloadedVideo:
    """A finished video on local disk. The poller deletes the file after `deliver_video` returns."""

    path: Path
    size_bytes: int
    content_type: str
    source_url: str
    last_frame: bytes | None = field(default=None, repr=False)  # the video's last frame, when asked for


class Notifier(Protocol):
    """Receives every visible change of a job. Calls for one job never overlap."""

    async def job_progressed(self, job: Job) -> None:
        """The job's state, queue position or progress changed (not yet final)."""
        ...

    async def deliver_video(self, job: Job, video: DownloadedVideo) -> str:
        """Hand the finished video to the member; return a reference to where it went (a message id, a path).

        Raise DeliveryError(permanent=False) to be asked again later, permanent=True to give up.
        """
        ...

    async def job_ended(self, job: Job) -> None:
        """The job ended without a video: failed, cancelled, expired, timed out, or unknown."""
        ...
