"""DiscordNotifier: shows a job's progress on its status message and delivers the video into its thread.

Everything here uses the bot token (channel and message endpoints), never an interaction token: a job
often outlives the 15-minute interaction token.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
import logging
import time
from typing import TYPE_CHECKING

import aiohttp
import discord

from bot.domain.models import ImageInfo, Job, JobState
from bot.jobs.errors import DeliveryError
from bot.jobs.notifier import DownloadedVideo
from bot.presentation import delivered_message, ended_message, status_card, too_large_message
from cogs.embeds import card_embed

if TYPE_CHECKING:
    from bot.app import SeedanceBot

log = logging.getLogger(__name__)

#: Discord's default per-file upload limit, used when neither the job nor the guild says otherwise.
DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024


def frame_filename(frame: ImageInfo) -> str:
    """The first frame's file name in a status message, which the embed points at as its thumbnail.

    The status message is posted by cogs.animate, which names each file after its upload label.
    """
    return f"first-frame.{frame.extension}"


def _last_frame_files(job: Job, video: DownloadedVideo, limit: int) -> list[discord.File]:
    """The video's last frame as a PNG attachment, when the provider sent one and it fits."""
    if video.last_frame is None or len(video.last_frame) > limit:
        return []
    return [discord.File(io.BytesIO(video.last_frame), filename=f"seedance-{job.id}-last-frame.png")]


def _addressing(job: Job) -> tuple[str, discord.AllowedMentions]:
    """The requester's mention, and allowed mentions that let it (and nothing else) ping."""
    user_id = job.requester.user_id
    mention = f"<@{user_id}>" if user_id else ""
    users: list[discord.Object] | bool = [discord.Object(user_id)] if user_id else False
    return mention, discord.AllowedMentions(everyone=False, roles=False, users=users)


class DiscordNotifier:
    """The Notifier for jobs that came from Discord."""

    def __init__(self, bot: SeedanceBot, *, edit_interval_s: float = 5.0) -> None:
        self._bot = bot
        self._edit_interval_s = edit_interval_s
        self._last_edit: dict[int, float] = {}
        self._pending: dict[int, Job] = {}
        self._flushers: dict[int, asyncio.Task[None]] = {}

    async def close(self) -> None:
        """Write out pending status edits, then stop."""
        flushers = list(self._flushers.values())
        for task in flushers:
            task.cancel()
        for task in flushers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for job in list(self._pending.values()):
            await self._edit_status(job)
        self._pending.clear()

    # --- Notifier -------------------------------------------------------------------------------------

    async def job_progressed(self, job: Job) -> None:
        """Edit the status message, at most once per `edit_interval_s` per job (the latest state wins)."""
        await self.show_status(job, final=False)

    async def deliver_video(self, job: Job, video: DownloadedVideo) -> str:
        """Upload the video into the job's thread (or channel), or post a link when it is too large."""
        mention, allowed = _addressing(job)
        limit = self._upload_limit(job)
        message = None
        for target_id in self._targets(job):
            channel = self._bot.get_partial_messageable(target_id, guild_id=job.requester.guild_id)
            try:
                if video.size_bytes <= limit:
                    try:
                        message = await channel.send(
                            content=delivered_message(job, mention),
                            files=[
                                discord.File(video.path, filename=f"seedance-{job.id}.mp4"),
                                *_last_frame_files(job, video, limit),
                            ],
                            allowed_mentions=allowed,
                        )
                    except discord.HTTPException as error:
                        if error.status != 413 and error.code != 40005:
                            raise
                        log.info("job %s: upload refused as too large; posting a link", job.id)
                if message is None:
                    message = await channel.send(
                        content=too_large_message(job, mention, video.size_bytes, limit, video.source_url),
                        files=_last_frame_files(job, video, limit),
                        allowed_mentions=allowed,
                    )
                break
            except (discord.Forbidden, discord.NotFound) as error:
                # The thread was deleted or locked, or we lost a permission: try the channel next.
                log.warning("job %s: cannot post in %s: %s", job.id, target_id, error)
                continue
            except discord.HTTPException as error:
                raise DeliveryError(
                    f"Discord refused the upload ({error.status})", permanent=False
                ) from error
            except (aiohttp.ClientError, TimeoutError, OSError) as error:
                raise DeliveryError(
                    f"the upload to Discord was interrupted ({error})", permanent=False
                ) from error
        if message is None:
            raise DeliveryError("the bot may no longer post in that channel or thread", permanent=True)
        done = dataclasses.replace(job, state=JobState.DELIVERED, finished_at=time.time())
        await self.show_status(done, final=True)
        return str(message.id)

    async def job_ended(self, job: Job) -> None:
        """Show the ending on the status message and tell the member under it."""
        await self.show_status(job, final=True)
        mention, allowed = _addressing(job)
        for target_id in self._targets(job):
            channel = self._bot.get_partial_messageable(target_id, guild_id=job.requester.guild_id)
            try:
                await channel.send(content=ended_message(job, mention), allowed_mentions=allowed)
                return
            except discord.HTTPException as error:
                log.warning("job %s: could not post its ending in %s: %s", job.id, target_id, error)

    # --- status message -------------------------------------------------------------------------------

    async def show_status(self, job: Job, *, final: bool) -> None:
        """Edit the status message now when allowed (or final), else once the interval has passed."""
        if job.status_message_id is None or job.requester.channel_id is None:
            return
        now = time.monotonic()
        waited = now - self._last_edit.get(job.id, 0.0)
        if final or waited >= self._edit_interval_s:
            self._pending.pop(job.id, None)
            flusher = self._flushers.pop(job.id, None)
            if flusher is not None and flusher is not asyncio.current_task():
                flusher.cancel()
            self._last_edit[job.id] = now
            await self._edit_status(job)
            if final:
                self._last_edit.pop(job.id, None)
            return
        self._pending[job.id] = job
        if job.id not in self._flushers:
            self._flushers[job.id] = asyncio.create_task(
                self._flush_later(job.id, self._edit_interval_s - waited), name=f"status-edit-{job.id}"
            )

    async def _flush_later(self, job_id: int, delay_s: float) -> None:
        await asyncio.sleep(delay_s)
        self._flushers.pop(job_id, None)
        job = self._pending.pop(job_id, None)
        if job is not None:
            self._last_edit[job_id] = time.monotonic()
            await self._edit_status(job)

    async def _edit_status(self, job: Job) -> None:
        assert job.requester.channel_id is not None and job.status_message_id is not None
        channel = self._bot.get_partial_messageable(job.requester.channel_id, guild_id=job.requester.guild_id)
        message = channel.get_partial_message(job.status_message_id)
        card = status_card(job, self._bot.model_name(job.model))
        # A /video job has no first frame: its status message shows reference files, not a thumbnail.
        thumbnail = f"attachment://{frame_filename(job.first_frame)}" if job.first_frame else None
        try:
            await message.edit(embed=card_embed(card, thumbnail_url=thumbnail))
        except discord.HTTPException as error:
            # The status message is a courtesy; the job goes on whether or not it can be edited.
            log.warning("job %s: could not edit its status message: %s", job.id, error)

    # --- helpers --------------------------------------------------------------------------------------

    def _targets(self, job: Job) -> list[int]:
        targets = [job.thread_id, job.requester.channel_id]
        return [target for target in dict.fromkeys(targets) if target is not None]

    def _upload_limit(self, job: Job) -> int:
        if job.upload_limit_bytes:
            return job.upload_limit_bytes
        guild = self._bot.get_guild(job.requester.guild_id) if job.requester.guild_id else None
        return guild.filesize_limit if guild is not None else DEFAULT_UPLOAD_LIMIT
