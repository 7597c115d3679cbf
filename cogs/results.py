"""The buttons on results and status cards: Re-roll, Extend, Variations, Delete and Cancel.

Every press is acknowledged at once (privately), then runs through the same flow as any request: a re-roll,
extension or variation is a new job charged to whoever pressed — anyone who can see the result may — and
goes through their quota. Delete is for the requester or a moderator; Cancel for the requester or a
moderator while the job waits. Errors go through the one error mapping.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import discord
from discord.ext import commands

from bot.domain.models import FIRST_FRAME, LAST_FRAME, Job, JobState
from bot.domain.text import Text
from bot.domain.transcode import last_frame_png_async
from bot.i18n import for_locale
from bot.jobs.derive import DerivationRefusedError, DerivedRequest, Variation, extend, reroll, vary
from bot.jobs.download import download_policy, download_video
from bot.jobs.errors import FetchError, JobNotFoundError
from bot.jobs.service import InputFile
from cogs.embeds import reply_privately
from cogs.support.errors import answer_failure
from cogs.support.notifier import last_frame_filename, video_filename
from cogs.support.requests import MemberRequest, answer_started, start_from_interaction
from cogs.support.result_buttons import ResultAction, ResultButton, VariationSelect
from cogs.support.sources import cdn_input, reposted_inputs

if TYPE_CHECKING:
    from bot.app import SeedanceBot

#: How many messages after a status card are searched for its second batch of re-posted files.
_CARD_FOLLOW_UP_LOOKAHEAD = 20


def _is_moderator(interaction: discord.Interaction) -> bool:
    permissions = interaction.permissions
    return permissions.manage_messages or permissions.manage_guild or permissions.administrator


class ResultsCog(commands.Cog):
    """Presses on result buttons and status cards."""

    def __init__(self, bot: SeedanceBot) -> None:
        self.bot = bot

    @commands.Cog.listener()
    async def on_result_press(
        self, interaction: discord.Interaction, action: ResultAction, job_id: int
    ) -> None:
        """A Re-roll, Extend, Delete or Cancel press."""
        try:
            await interaction.response.defer(ephemeral=True, thinking=True)
            job = await self._job_here(interaction, job_id)
            match action:
                case ResultAction.REROLL:
                    await self._derive(interaction, job, reroll(job, self.bot.runtime.catalogue))
                case ResultAction.EXTEND:
                    await self._derive(interaction, job, extend(job, self.bot.runtime.catalogue))
                case ResultAction.DELETE:
                    await self._delete(interaction, job)
                case ResultAction.CANCEL:
                    user_id = None if _is_moderator(interaction) else interaction.user.id
                    cancelled = await self.bot.jobs.cancel(job.id, user_id)
                    sentence = Text("Cancelled video #{id}.", id=str(cancelled.id))
                    await reply_privately(interaction, for_locale(interaction.locale).text(sentence))
        except Exception as error:  # noqa: BLE001 - every failure is answered through the one mapping
            await answer_failure(interaction, error)

    @commands.Cog.listener()
    async def on_variation_chosen(self, interaction: discord.Interaction, job_id: int, choice: str) -> None:
        """A choice in a result's Variations menu."""
        try:
            await interaction.response.defer(ephemeral=True, thinking=True)
            job = await self._job_here(interaction, job_id)
            derived = vary(job, Variation.from_token(choice), self.bot.runtime.catalogue)
            await self._derive(interaction, job, derived)
        except Exception as error:  # noqa: BLE001 - every failure is answered through the one mapping
            await answer_failure(interaction, error)

    async def _job_here(self, interaction: discord.Interaction, job_id: int) -> Job:
        job = await self.bot.runtime.store.get(job_id)
        if job is None or job.requester.guild_id != interaction.guild_id:
            raise JobNotFoundError(Text("There is no video #{id} in this server.", id=str(job_id)))
        return job

    async def _derive(self, interaction: discord.Interaction, parent: Job, derived: DerivedRequest) -> None:
        """Start the new job, charged to the member who pressed."""
        if derived.reuses_inputs:
            skip = frozenset() if derived.options.has_last_frame else frozenset({LAST_FRAME})
            inputs = reposted_inputs(self.bot, await self._card_messages(parent), skip=skip)
        else:
            inputs = (InputFile(FIRST_FRAME, 0, functools.partial(self._last_frame, parent)),)
        request = MemberRequest(derived.model, derived.options, inputs, derived.lineage)
        job = await start_from_interaction(self.bot, interaction, request)
        await answer_started(self.bot, interaction, job)

    async def _card_messages(self, job: Job) -> list[discord.Message]:
        """The job's status card and, for more than ten files, the reply that holds the rest."""
        if job.requester.channel_id is None or job.status_message_id is None:
            raise DerivationRefusedError(
                Text("Video #{id} has no request to take its files from.", id=str(job.id))
            )
        channel = self.bot.get_partial_messageable(job.requester.channel_id, guild_id=job.requester.guild_id)
        try:
            card = await channel.fetch_message(job.status_message_id)
            messages = [card]
            if len(card.attachments) < _file_count(job):
                async for later in channel.history(after=card, limit=_CARD_FOLLOW_UP_LOOKAHEAD):
                    if later.reference is not None and later.reference.message_id == card.id:
                        messages.append(later)
        except discord.NotFound:
            raise DerivationRefusedError(
                Text("The request of video #{id} was deleted, and its files with it.", id=str(job.id))
            ) from None
        return messages

    async def _last_frame(self, parent: Job, limit: int) -> bytes:
        """The parent video's last frame: the provider's image when it sent one, else taken from the MP4."""
        message = await self.bot.notifier.video_message(parent)
        if message is None:
            raise FetchError(
                Text("The post of video #{id} is gone, so there is nothing to extend.", id=str(parent.id))
            )
        by_name = {attachment.filename: attachment for attachment in message.attachments}
        frame = by_name.get(last_frame_filename(parent))
        if frame is not None:
            return await cdn_input(self.bot, FIRST_FRAME, frame.url, frame.size).fetch(limit)
        video = by_name.get(video_filename(parent))
        if video is None:
            raise FetchError(
                Text("Video #{id} was posted as a link, so I can't take its last frame.", id=str(parent.id))
            )
        downloaded = await download_video(
            self.bot.runtime.http,
            video.url,
            max_bytes=video.size + 1,
            policy=download_policy(self.bot.runtime.settings),
        )
        try:
            return await last_frame_png_async(downloaded.path)
        finally:
            downloaded.path.unlink(missing_ok=True)

    async def _delete(self, interaction: discord.Interaction, job: Job) -> None:
        if job.requester.user_id != interaction.user.id and not _is_moderator(interaction):
            raise DerivationRefusedError(
                Text(
                    "Only the member who asked for video #{id}, or a moderator, can delete it.",
                    id=str(job.id),
                )
            )
        if job.state is not JobState.DELIVERED:
            raise DerivationRefusedError(
                Text("Video #{id} has not been posted: there is nothing to delete.", id=str(job.id))
            )
        removed = await self.bot.notifier.remove_video(job)
        await self.bot.jobs.record_removal(job.id)
        sentence = Text("Deleted video #{id}.") if removed else Text("Video #{id} was already gone.")
        answer = Text(sentence.template, id=str(job.id))
        await reply_privately(interaction, for_locale(interaction.locale).text(answer))


def _file_count(job: Job) -> int:
    request = job.request
    frames = (job.first_frame is not None) + (job.last_frame is not None)
    return frames + request.reference_images + request.reference_videos + request.reference_audios


async def setup(bot: SeedanceBot) -> None:
    """Load the cog and register the buttons, so presses on old posts work after any restart."""
    bot.add_dynamic_items(ResultButton, VariationSelect)
    await bot.add_cog(ResultsCog(bot))
