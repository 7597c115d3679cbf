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
    """Receives every visible change of a job. Calls for one job never overlap.

    Exactly-once delivery rests on two of these: `deliver_video` posts in a way a retry can recognise
    (Discord: a nonce derived from the job), and `find_delivery` finds that post again after a crash.
    """

    async def job_progressed(self, job: Job) -> None:
        """The job's state, queue position or progress changed (not yet final).

        Must return quickly: the poller awaits it between polls (Discord hands it to a rate budget).
        """
        ...

    async def find_delivery(self, job: Job) -> str | None:
        """The reference of this job's video if an earlier attempt already posted it, else None.

        Called for a job found in DELIVERING. Raise DeliveryError(permanent=False) when it cannot tell now.
        """
        ...

    async def deliver_video(self, job: Job, video: DownloadedVideo) -> str:
        """Hand the finished video to the member; return a reference to where it went (a message id, a path).

        Raise DeliveryError(permanent=False) to be asked again later (after `find_delivery`), permanent=True
        to give up, hold=True to leave the job for another run.
        """
        ...

    async def video_delivered(self, job: Job) -> None:
        """The delivery is recorded: show it (the status card). Safe to repeat; failures change nothing."""
        ...

    async def job_ended(self, job: Job) -> None:
        """Tell the requester the job ended without a video: failed, cancelled, expired, timed out, unknown.

        May be called again for the same job after a crash, so make a repeat harmless. Raise
        DeliveryError(permanent=False) to be asked again later.
        """
        ...
