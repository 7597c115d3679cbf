"""DiscordNotifier: shows a job's progress on its status card and posts its outcome under it, exactly once.

Everything here uses the bot token (channel and message endpoints), never an interaction token that may have
expired (15 minutes) — except for answering a member whose request was interrupted while they were still
looking at "thinking…".

Exactly once: every outcome post carries a nonce derived from the job and the channel, so Discord itself
turns a retried create (after a 503 or a dropped connection) into the message already made; and after a crash
`find_delivery` finds the earlier post in the thread's or channel's recent history by its marker (the job's
file name and text) before anything is posted again. Status edits go through a per-channel budget and are
never awaited by the poller.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import logging
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import discord

from bot.domain.models import Derivation, ImageInfo, Job, JobOrigin
from bot.domain.text import Text
from bot.domain.transcode import JoinedVideo, fit_video_async, join_clips_async
from bot.i18n import Translator, translator
from bot.jobs.errors import DeliveryError
from bot.jobs.notifier import DownloadedVideo
from bot.jobs.ports import GenerationKey
from bot.presentation import (
    card_title_prefix,
    delivered_marker_text,
    delivered_text,
    ended_marker_text,
    ended_text,
    every_language,
    human_size,
    localized_status_card,
    too_large_text,
)
from cogs.embeds import card_embed, video_link
from cogs.support.result_buttons import card_view, result_view
from cogs.support.retry import DiscordUnavailableError, call_with_retries, is_transient
from cogs.support.status_board import StatusBoard

if TYPE_CHECKING:
    from bot.app import SeedanceBot

log = logging.getLogger(__name__)

_T = TypeVar("_T")

#: Discord's default per-file upload limit, used when neither the job nor the guild says otherwise.
DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024
#: How far back in a thread or channel a job looks for its own earlier post after a crash.
HISTORY_LOOKBACK = 100
#: An interaction's token lasts 15 minutes; past this, answering through it is not tried.
REPLY_WINDOW_S = 14 * 60
#: Status card edits per channel per 5 s. One, measured: at three, a channel's bucket ran dry often, and
#: discord.py then sleeps out the window inside the next call — a status card post or a video upload, which
#: held up the status checks behind it (90.9 % on time under the load bench; 100 % at one). Finals go first.
STATUS_EDITS_PER_WINDOW = 1
#: How far back a start repaints the status cards of jobs that ended just before a crash.
STALE_CARD_WINDOW_S = 7 * 86_400
#: How long one Discord call is retried through 5xx answers and dropped connections.
RETRY_DEADLINE_S = 20.0


def frame_filename(frame: ImageInfo) -> str:
    """The first frame's file name in a status message, which the embed points at as its thumbnail."""
    return f"first-frame.{frame.extension}"


def video_filename(job: Job) -> str:
    """The video's file name: also the marker a crashed delivery is recognised by."""
    return f"seedance-{job.id}.mp4"


def outcome_nonce(job: Job, channel_id: int, kind: str) -> str:
    """A nonce derived from the job, the channel and the kind of post (Discord takes up to 25 characters).

    The same post retried gets the same nonce, so Discord returns the message already created instead of a
    second one (discord.py sends `enforce_nonce` with every nonce).
    """
    return hashlib.blake2s(f"seedance:{job.id}:{channel_id}:{kind}".encode()).hexdigest()[:25]


#: Handles of requests made by mentioning the bot: there is no private answer to replace, only the message.
MESSAGE_HANDLE_PREFIX = "message:"


def reply_handle(interaction: discord.Interaction) -> str:
    """What a job keeps to answer its requester privately later: the interaction's application and token."""
    return f"{interaction.application_id}:{interaction.token}"


def message_handle(message: discord.Message) -> str:
    """What a job made from a mention keeps: the member's message (an intake finds the job by it)."""
    return f"{MESSAGE_HANDLE_PREFIX}{message.channel.id}:{message.id}"


async def answer_privately(bot: discord.Client, handle: str, content: str) -> bool:
    """Replace an interaction's first (private) response, by the handle a job or an intake kept."""
    if handle.startswith(MESSAGE_HANDLE_PREFIX):
        return False  # a mention's request has no private answer; its card and thread tell the member
    application_id, _, token = handle.partition(":")
    webhook = discord.Webhook.partial(int(application_id), token, client=bot)
    try:
        # "@original" names the interaction's first response on the webhook message routes.
        original: Any = "@original"  # discord.py types message ids as int; the route takes the word
        await webhook.edit_message(original, content=content, allowed_mentions=discord.AllowedMentions.none())
    except discord.HTTPException as error:
        log.info("could not answer a requester privately: %s", error)
        return False
    return True


def last_frame_filename(job: Job) -> str:
    """The file name of the video's last frame, when the provider returned one."""
    return f"seedance-{job.id}-last-frame.png"


def _last_frame_files(job: Job, video: DownloadedVideo, limit: int) -> list[discord.File]:
    """The video's last frame as a PNG attachment, when the provider sent one and it fits."""
    if video.last_frame is None or len(video.last_frame) > limit:
        return []
    return [discord.File(io.BytesIO(video.last_frame), filename=last_frame_filename(job))]


def _addressing(job: Job) -> tuple[str, discord.AllowedMentions]:
    """The requester's mention, and allowed mentions that let it (and nothing else) ping."""
    user_id = job.requester.user_id
    mention = f"<@{user_id}>" if user_id else ""
    users: list[discord.Object] | bool = [discord.Object(user_id)] if user_id else False
    return mention, discord.AllowedMentions(everyone=False, roles=False, users=users)


@dataclass(frozen=True)
class Upload:
    """The file a delivery posts: the downloaded clip, or what was made of it (joined, re-encoded)."""

    video: DownloadedVideo
    path: Path
    size_bytes: int
    limit_bytes: int
    #: What the member should know about the file ("Re-encoded to 720p to fit…"), in the post's language;
    #: None when nothing.
    note: str | None = None


class DiscordNotifier:
    """The Notifier for jobs that came from Discord."""

    def __init__(
        self,
        bot: SeedanceBot,
        *,
        edits_per_window: int = STATUS_EDITS_PER_WINDOW,
        edit_window_s: float = 5.0,
        retry_deadline_s: float = RETRY_DEADLINE_S,
    ) -> None:
        self._bot = bot
        self._retry_deadline_s = retry_deadline_s
        # Discord allows about 5 creates and edits per 5 s per channel, shared with the posts.
        self._board = StatusBoard(
            self._edit_status, edits_per_window=edits_per_window, window_s=edit_window_s
        )

    async def close(self) -> None:
        """Write out pending final status edits (bounded), then stop."""
        await self._board.close()

    # --- Notifier -------------------------------------------------------------------------------------

    async def job_progressed(self, job: Job) -> None:
        """Queue the status card's edit; it goes out within the channel's budget, the latest state first."""
        self._board.show(job)

    def show_status(self, job: Job, *, final: bool) -> None:
        """Queue the status card's edit (for front ends that changed a job themselves)."""
        self._board.show(job, final=final)

    async def _reader(self, job: Job) -> Translator:
        """The language of the job's posts: its requester's last known one, else the server's, else
        English."""
        return translator(await self._bot.post_language(job.requester.user_id, job.requester.guild_id))

    async def find_delivery(self, job: Job) -> str | None:
        """The id of this job's video message if an earlier attempt already posted it."""
        markers = every_language(delivered_marker_text, job)
        filename = video_filename(job)
        for channel_id in self._targets(job):
            found = await self._find_own_post(
                job,
                channel_id,
                lambda message: (
                    any(marker in message.content for marker in markers)
                    or any(a.filename == filename for a in message.attachments)
                ),
            )
            if found is not None:
                return str(found.id)
        return None

    async def deliver_video(self, job: Job, video: DownloadedVideo) -> str:
        """Upload the video into the job's thread (or channel): joined to the video it extends, re-encoded
        to fit the server's upload limit when it is over; a link only when no watchable file fits."""
        tr = await self._reader(job)
        with tempfile.TemporaryDirectory(prefix="seedance-post-") as scratch:
            upload = await self._upload_for(job, video, Path(scratch), tr)
            return await self._deliver(job, upload, tr)

    async def _deliver(self, job: Job, upload: Upload, tr: Translator) -> str:
        for channel_id in self._targets(job):
            try:
                return str((await self._post_video(job, upload, channel_id, tr)).id)
            except (discord.Forbidden, discord.NotFound) as error:
                # The thread was deleted or locked, or we lost a permission: try the channel next.
                log.warning("job %s: cannot post in %s: %s", job.id, channel_id, error)
            except DiscordUnavailableError as error:
                message = "Discord kept failing while the video was posted"
                raise DeliveryError(message, permanent=False) from error
            except discord.HTTPException as error:
                message = f"Discord refused the upload ({error.status})"
                raise DeliveryError(message, permanent=False) from error
        raise DeliveryError("the bot may no longer post in that channel or thread", permanent=True)

    async def video_delivered(self, job: Job) -> None:
        """Show "Done" on the status card (the video's post, with its mention, told the member), and send a
        DM with its link to a member who asked for one in /settings."""
        self._board.show(job, final=True)
        self._bot.eta.forget(GenerationKey.of(job))
        if await self._bot.member_defaults.wants_dm(job.requester.guild_id, job.requester.user_id):
            await self._send_dm(job)

    async def _send_dm(self, job: Job) -> None:
        """A direct message pointing at the video; a member with DMs closed simply gets none."""
        user_id, link = job.requester.user_id, video_link(job)
        if user_id is None or link is None:
            return
        try:
            user = self._bot.get_user(user_id) or await self._bot.fetch_user(user_id)
            channel = await user.create_dm()
            nonce = outcome_nonce(job, channel.id, "dm")
            tr = await self._reader(job)
            content = tr.text(Text("Your video #{id} is ready: {link}", id=str(job.id), link=link))
            await channel.send(content, nonce=nonce)
        except discord.HTTPException as error:
            log.info("job %s: no DM to its requester: %s", job.id, error)

    async def job_ended(self, job: Job) -> None:
        """Show the ending on the status card and tell the member under it (once, even after a crash)."""
        tr = await self._reader(job)
        if job.status_message_id is None:
            # A crash between posting the card and recording it leaves a card only its title can find.
            card = await self._find_card(job)
            if card is None:
                await self._answer_requester(job, ended_text(tr, job, "").strip())
                return  # nothing was posted for this request: the private answer is all there is
            # Recorded, so that a crash before the card's edit still finds it (repaint_stale_cards).
            await self._bot.runtime.store.set_status_message(job.id, card.id)
            job = dataclasses.replace(job, status_message_id=card.id)
        self._board.show(job, final=True)
        await self._answer_requester(job, ended_text(tr, job, "").strip())
        markers = every_language(ended_marker_text, job)
        for channel_id in self._targets(job):
            if await self._find_own_post(
                job, channel_id, lambda message: any(marker in message.content for marker in markers)
            ):
                return
            try:
                await self._post_ending(job, channel_id, tr)
                return
            except (discord.Forbidden, discord.NotFound) as error:
                log.warning("job %s: could not post its ending in %s: %s", job.id, channel_id, error)
            except (DiscordUnavailableError, discord.HTTPException) as error:
                raise DeliveryError(
                    "Discord kept failing while the ending was posted", permanent=False
                ) from (error)

    # --- helpers --------------------------------------------------------------------------------------

    async def _answer_requester(self, job: Job, content: str) -> None:
        """Replace the member's private answer with the outcome, while the interaction's token still works.

        A request interrupted before the member was answered needs it (no "thinking…" left behind); for the
        others it turns "Started video #12" into how it ended.
        """
        if job.reply_handle is None or time.time() - job.created_at > REPLY_WINDOW_S:
            return
        await answer_privately(self._bot, job.reply_handle, content)

    async def _find_card(self, job: Job) -> discord.Message | None:
        if job.requester.channel_id is None:
            return None
        # In any language: the member may have changed theirs since the card was posted.
        titles = every_language(card_title_prefix, job)
        return await self._find_own_post(
            job,
            job.requester.channel_id,
            lambda message: any((embed.title or "").startswith(titles) for embed in message.embeds),
        )

    async def _find_own_post(
        self, job: Job, channel_id: int, matches: Callable[[discord.Message], bool]
    ) -> discord.Message | None:
        """The bot's most recent message in the channel for which `matches` holds, if any."""
        me = self._bot.user
        channel = self._bot.get_partial_messageable(channel_id, guild_id=job.requester.guild_id)
        try:
            async for message in channel.history(limit=HISTORY_LOOKBACK):
                if me is not None and message.author.id == me.id and matches(message):
                    return message
        except (discord.Forbidden, discord.NotFound):
            return None  # nothing of ours can be there, or we cannot see it: nothing to adopt
        except discord.HTTPException as error:
            raise DeliveryError("Discord did not show the thread's history", permanent=False) from error
        except Exception as error:
            if is_transient(error):
                raise DeliveryError("Discord could not be reached", permanent=False) from error
            raise
        return None

    async def _upload_for(self, job: Job, video: DownloadedVideo, scratch: Path, tr: Translator) -> Upload:
        """The file to post: the clip (joined to the one it extends), re-encoded when over the limit."""
        limit = self._upload_limit(job)
        path, size, notes = video.path, video.size_bytes, []
        if job.lineage is not None and job.lineage.derivation is Derivation.EXTEND:
            joined = await self._joined_to_parent(job, video, scratch)
            if joined is not None:
                path, size = joined.path, joined.size_bytes
                joined_note = Text(
                    "It continues video #{parent}: both clips joined, {seconds} s in all.",
                    parent=str(job.lineage.parent_job_id),
                    seconds=round(joined.duration_s),
                )
                notes.append(tr.text(joined_note))
            else:
                gone = Text(
                    "Video #{parent} is gone, so this is the new part alone.",
                    parent=str(job.lineage.parent_job_id),
                )
                notes.append(tr.text(gone))
        if size > limit:
            fitted = await fit_video_async(path, scratch / "fitted.mp4", limit)
            if fitted is not None:
                log.info("job %s: re-encoded %d bytes into %d to fit", job.id, size, fitted.size_bytes)
                fitted_note = Text(
                    "Re-encoded to {height}p to fit this server's {limit} upload limit.",
                    height=str(fitted.height),
                    limit=human_size(limit),
                )
                notes.append(tr.text(fitted_note))
                path, size = fitted.path, fitted.size_bytes
        note = " ".join(notes) or None
        return Upload(video=video, path=path, size_bytes=size, limit_bytes=limit, note=note)

    async def _joined_to_parent(self, job: Job, video: DownloadedVideo, scratch: Path) -> JoinedVideo | None:
        """The extended video and this clip as one MP4; None when the earlier video's post is gone."""
        assert job.lineage is not None
        parent = await self._bot.runtime.store.get(job.lineage.parent_job_id)
        message = await self.video_message(parent) if parent is not None else None
        attachment = (
            next((a for a in message.attachments if a.filename == video_filename(parent)), None)
            if message is not None and parent is not None
            else None
        )
        if attachment is None:
            return None
        earlier = scratch / "earlier.mp4"
        try:
            await attachment.save(earlier)
        except discord.HTTPException as error:
            log.warning("job %s: could not fetch the video it extends: %s", job.id, error)
            return None
        return await join_clips_async(earlier, video.path, scratch / "joined.mp4")

    async def video_message(self, job: Job) -> discord.Message | None:
        """The post of a delivered job's video, if it is still there."""
        if job.delivery_ref is None or not job.delivery_ref.isdigit():
            return None
        for channel_id in self._targets(job):
            channel = self._bot.get_partial_messageable(channel_id, guild_id=job.requester.guild_id)
            try:
                return await channel.fetch_message(int(job.delivery_ref))
            except (discord.NotFound, discord.Forbidden):
                continue
        return None

    async def remove_video(self, job: Job) -> bool:
        """Delete a delivered job's video post; False when it was already gone."""
        message = await self.video_message(job)
        if message is None:
            return False
        try:
            await message.delete()
        except discord.NotFound:
            return False
        return True

    async def _post_video(self, job: Job, upload: Upload, channel_id: int, tr: Translator) -> discord.Message:
        mention, allowed = _addressing(job)
        video, limit = upload.video, upload.limit_bytes
        channel = self._bot.get_partial_messageable(channel_id, guild_id=job.requester.guild_id)
        catalogue = self._bot.runtime.catalogue

        def post_file() -> Awaitable[discord.Message]:
            files = [
                discord.File(upload.path, filename=video_filename(job)),
                *_last_frame_files(job, video, limit),
            ]
            content = delivered_text(tr, job, mention, upload.note)
            nonce = outcome_nonce(job, channel_id, "video")
            view = result_view(job, catalogue, tr=tr)
            return channel.send(
                content=content, files=files, allowed_mentions=allowed, nonce=nonce, view=view
            )

        def link() -> Awaitable[discord.Message]:
            content = too_large_text(
                tr, job, mention, size_bytes=upload.size_bytes, limit_bytes=limit, url=video.source_url
            )
            files = _last_frame_files(job, video, limit)
            nonce = outcome_nonce(job, channel_id, "link")
            view = result_view(job, catalogue, with_file=False, tr=tr)
            return channel.send(
                content=content, files=files, allowed_mentions=allowed, nonce=nonce, view=view
            )

        if upload.size_bytes <= limit:
            try:
                return await self._retrying(f"posting the video of job {job.id}", post_file)
            except discord.HTTPException as error:
                if error.status != 413 and error.code != 40005:
                    raise
                log.info("job %s: upload refused as too large; posting a link", job.id)
        return await self._retrying(f"posting the link to the video of job {job.id}", link)

    async def _post_ending(self, job: Job, channel_id: int, tr: Translator) -> discord.Message:
        mention, allowed = _addressing(job)
        channel = self._bot.get_partial_messageable(channel_id, guild_id=job.requester.guild_id)

        def post() -> Awaitable[discord.Message]:
            nonce = outcome_nonce(job, channel_id, "ended")
            content = ended_text(tr, job, mention)
            return channel.send(content=content, allowed_mentions=allowed, nonce=nonce)

        return await self._retrying(f"posting the ending of job {job.id}", post)

    async def _retrying(self, what: str, op: Callable[[], Awaitable[_T]]) -> _T:
        return await call_with_retries(op, what=what, deadline_s=self._retry_deadline_s)

    async def _edit_status(self, job: Job) -> None:
        assert job.requester.channel_id is not None and job.status_message_id is not None
        channel = self._bot.get_partial_messageable(job.requester.channel_id, guild_id=job.requester.guild_id)
        message = channel.get_partial_message(job.status_message_id)
        tr = await self._reader(job)
        card = localized_status_card(
            tr, job, self._bot.model_name(job.model), await self._bot.eta.progress(job)
        )
        # A /video job has no first frame: its status message shows reference files, not a thumbnail.
        thumbnail = f"attachment://{frame_filename(job.first_frame)}" if job.first_frame else None
        embed = card_embed(card, thumbnail_url=thumbnail)
        view = card_view(job, tr=tr)
        if not job.state.is_final:
            await message.edit(embed=embed, view=view)  # a newer state will follow: not worth a retry
            return
        # The last state stays on the card for good: ride out Discord's hiccups for it, and record it, so
        # that a crash before this edit is repaired at the next start (see repaint_stale_cards).
        try:
            await self._retrying(
                f"showing the end of job {job.id}", lambda: message.edit(embed=embed, view=None)
            )
        except (discord.NotFound, discord.Forbidden):
            await self._bot.runtime.store.mark_card_final(job.id)  # no card to repaint
            raise
        await self._bot.runtime.store.mark_card_final(job.id)

    async def repaint_stale_cards(self) -> int:
        """Show the end on the cards of jobs that ended just before a crash, before their card was edited."""
        since = time.time() - STALE_CARD_WINDOW_S
        stale = await self._bot.runtime.store.stale_cards(JobOrigin.DISCORD, finished_since=since)
        for job in stale:
            self._board.show(job, final=True)
        return len(stale)

    def _targets(self, job: Job) -> list[int]:
        # A thread started from a message has the message's id: a thread opened just before a crash, and
        # never recorded, is still found there (a 404 moves on to the channel).
        thread_id = job.thread_id or job.status_message_id
        targets = [thread_id, job.requester.channel_id]
        return [target for target in dict.fromkeys(targets) if target is not None]

    def _upload_limit(self, job: Job) -> int:
        if job.upload_limit_bytes:
            return job.upload_limit_bytes
        guild = self._bot.get_guild(job.requester.guild_id) if job.requester.guild_id else None
        return guild.filesize_limit if guild is not None else DEFAULT_UPLOAD_LIMIT
