"""/animate: turn a member's image into a video, shown in a status message with a thread under it.

The cog only adapts: it acknowledges at once, hands the member's input to JobService, and renders what
comes back. The image handed to the provider is the copy re-posted in the status message, a URL that stays
valid for the provider to fetch (option attachments are ephemeral).
"""

from __future__ import annotations

import io
import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.domain.catalogue import PROMPT_MAX_CHARS, SEED_MAX, SEED_MIN, RequestedOptions, default_catalogue
from bot.domain.images import DEFAULT_IMAGE_LIMITS
from bot.domain.models import Job, JobOrigin, Ratio, Requester, Resolution
from bot.jobs.download import download_bytes
from bot.jobs.errors import FetchError, JobError
from bot.jobs.quota import Member
from bot.jobs.service import DeliveryTarget, PreparedRequest
from bot.presentation import human_size, request_card, thread_name
from cogs.delivery import frame_filename
from cogs.embeds import NO_MENTIONS, card_embed, member_of, reply_privately

if TYPE_CHECKING:
    from bot.app import SeedanceBot

log = logging.getLogger(__name__)

#: What the bot needs in a channel to post the status message with the image.
REQUIRED_PERMISSIONS = ("send_messages", "attach_files", "embed_links")


class AnimateRefusedError(JobError):
    """The request cannot go ahead here: an unusable attachment, a channel the bot cannot post in."""


_CATALOGUE = default_catalogue()
#: The widest duration any model accepts; each model's own range is checked by the catalogue.
DURATION_MIN_S = min(spec.duration_range_s[0] for spec in _CATALOGUE)
DURATION_MAX_S = max(spec.duration_range_s[1] for spec in _CATALOGUE)


def _model_choices() -> list[app_commands.Choice[str]]:
    return [app_commands.Choice(name=spec.display_name, value=spec.key) for spec in _CATALOGUE]


class AnimateCog(commands.Cog):
    """The /animate command."""

    def __init__(self, bot: SeedanceBot) -> None:
        self.bot = bot

    @app_commands.command(name="animate", description="Turn an image into a short video with Seedance")
    @app_commands.guild_only()
    @app_commands.describe(
        image="The first frame: JPEG, PNG, WebP, BMP, TIFF or GIF, 300–6000 px a side, under 30 MB",
        prompt="What should happen in the video",
        model="Which Seedance model (default: Seedance 1.5 Pro)",
        resolution="Output resolution (Seedance 2.0: up to 720p)",
        ratio="Output aspect ratio (adaptive follows the image)",
        duration="Seconds of video (1.0 Pro: 2–12, 1.5 Pro: 4–12, 2.0 Pro: 4–15)",
        audio="Generate sound (1.5 Pro and 2.0 Pro)",
        camera_fixed="Keep the camera still (1.5 Pro)",
        seed="Same seed and request give a similar video (2.0 Pro)",
        last_frame="The last frame, for models that support one",
    )
    @app_commands.choices(
        model=_model_choices(),
        resolution=[app_commands.Choice(name=r.value, value=r.value) for r in Resolution],
        ratio=[app_commands.Choice(name=r.value, value=r.value) for r in Ratio],
    )
    async def animate(  # noqa: PLR0917 - discord.py passes each command option as a parameter
        self,
        interaction: discord.Interaction,
        image: discord.Attachment,
        prompt: app_commands.Range[str, 1, PROMPT_MAX_CHARS],
        model: app_commands.Choice[str] | None = None,
        resolution: app_commands.Choice[str] | None = None,
        ratio: app_commands.Choice[str] | None = None,
        duration: app_commands.Range[int, DURATION_MIN_S, DURATION_MAX_S] | None = None,
        audio: bool | None = None,
        camera_fixed: bool | None = None,
        seed: app_commands.Range[int, SEED_MIN, SEED_MAX] | None = None,
        last_frame: discord.Attachment | None = None,
    ) -> None:
        """Turn an image into a short video with Seedance."""
        # Acknowledge before any work: Discord drops interactions not answered within 3 seconds.
        await interaction.response.defer(ephemeral=True, thinking=True)
        model_key = model.value if model else None
        options = RequestedOptions(
            prompt=prompt,
            resolution=resolution.value if resolution else None,
            ratio=ratio.value if ratio else None,
            duration_s=duration,
            generate_audio=audio,
            camera_fixed=camera_fixed,
            seed=seed,
            has_last_frame=last_frame is not None,
        )
        # Cheap checks first: a wrong option or an exhausted quota costs no download and posts nothing.
        request = self.bot.jobs.check_options(model_key, options)
        member = member_of(interaction)
        await self.bot.jobs.check_quota(request, member)
        channel = interaction.channel
        if channel is None or not isinstance(channel, discord.abc.Messageable):
            raise AnimateRefusedError("I can't post in this kind of channel.")
        self._check_permissions(interaction)
        first_bytes = await self._download(image, "image")
        last_bytes = await self._download(last_frame, "last frame") if last_frame else None
        prepared = await self.bot.jobs.prepare(model_key, options, first_bytes, last_bytes)

        status = await self._post_status(channel, interaction.user, prepared)
        try:
            job = await self._submit(prepared, interaction, status=status, member=member)
        except Exception:
            # Nothing was started: most often another request took the last credits since the early check
            # (QuotaExceededError). Take the status message back; the error handler answers the member.
            await self._withdraw(status)
            raise
        if job.state.is_final:
            await self.bot.notifier.show_status(job, final=True)
            await reply_privately(interaction, f"Video #{job.id} did not start. {job.error_message}")
            return
        # The thread comes only once the job is admitted: a bot may delete its own message, but deleting a
        # thread needs Manage Threads, which it is not given.
        thread = await self._open_thread(status, interaction, prompt)
        if thread is not None:
            job = await self.bot.jobs.set_thread(job.id, thread.id) or job
        await self.bot.notifier.show_status(job, final=False)
        where = f"in {thread.mention}" if thread else "in this channel"
        await reply_privately(
            interaction,
            f"Started video #{job.id}. It will be posted {where} when it is ready: {status.jump_url}",
        )

    async def _submit(
        self,
        prepared: PreparedRequest,
        interaction: discord.Interaction,
        *,
        status: discord.Message,
        member: Member,
    ) -> Job:
        urls = [attachment.url for attachment in status.attachments]
        return await self.bot.jobs.submit(
            prepared,
            Requester(
                origin=JobOrigin.DISCORD,
                user_id=interaction.user.id,
                guild_id=interaction.guild_id,
                channel_id=status.channel.id,
            ),
            first_frame_url=urls[0] if urls else None,
            last_frame_url=urls[1] if len(urls) > 1 else None,
            delivery=DeliveryTarget(
                status_message_id=status.id, upload_limit_bytes=interaction.filesize_limit
            ),
            member=member,
        )

    @staticmethod
    async def _withdraw(status: discord.Message) -> None:
        """Remove the status message of a request that did not go ahead."""
        try:
            await status.delete()
        except discord.HTTPException as error:
            log.info("could not remove status message %s: %s", status.id, error)

    def _check_permissions(self, interaction: discord.Interaction) -> None:
        permissions = interaction.app_permissions
        missing = [name for name in REQUIRED_PERMISSIONS if not getattr(permissions, name)]
        if missing:
            names = ", ".join(name.replace("_", " ").title() for name in missing)
            raise AnimateRefusedError(f"I need the {names} permission in this channel to post your video.")

    async def _download(self, attachment: discord.Attachment, label: str) -> bytes:
        limit = DEFAULT_IMAGE_LIMITS.max_bytes
        if attachment.size >= limit:
            raise AnimateRefusedError(
                f"The {label} is {human_size(attachment.size)}; images must be under {human_size(limit)}."
            )
        try:
            return await download_bytes(
                self.bot.runtime.http,
                attachment.url,
                max_bytes=limit,
                allowed_hosts=frozenset(self.bot.runtime.settings.discord_cdn_hosts),
            )
        except FetchError as error:
            raise AnimateRefusedError(f"I could not download the {label}: {error.message}") from None

    async def _post_status(
        self, channel: discord.abc.Messageable, user: discord.User | discord.Member, prepared: PreparedRequest
    ) -> discord.Message:
        files = [
            discord.File(io.BytesIO(frame.data), filename=frame_filename(frame.info.format, stem))
            for frame, stem in ((prepared.first_frame, "first-frame"), (prepared.last_frame, "last-frame"))
            if frame is not None
        ]
        card = request_card(prepared.request, prepared.spec.display_name, user.mention)
        thumbnail = f"attachment://{files[0].filename}" if files else None
        try:
            return await channel.send(
                content=f"{user.mention} asked for a video",
                embed=card_embed(card, thumbnail_url=thumbnail),
                files=files,
                allowed_mentions=NO_MENTIONS,
            )
        except discord.Forbidden:
            raise AnimateRefusedError(
                "I can't post in this channel. I need Send Messages, Attach Files and Embed Links here."
            ) from None

    async def _open_thread(
        self, status: discord.Message, interaction: discord.Interaction, prompt: str
    ) -> discord.Thread | None:
        """A thread under the status message, or None where Discord has no threads (then: the channel)."""
        if not isinstance(status.channel, discord.TextChannel):
            return None
        permissions = interaction.app_permissions
        if not (permissions.create_public_threads and permissions.send_messages_in_threads):
            return None
        try:
            return await status.create_thread(name=thread_name(None, prompt), auto_archive_duration=1440)
        except discord.HTTPException as error:
            log.info("no thread for message %s: %s", status.id, error)
            return None


async def setup(bot: SeedanceBot) -> None:
    """Load the cog (discord.py extension entry point)."""
    await bot.add_cog(AnimateCog(bot))
