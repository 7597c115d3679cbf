"""/animate and /video: turn a member's image (or prompt and reference media) into a video, shown in a
status message with a thread under it.

The cog only adapts: it acknowledges at once, turns the options and attachments into a `VideoOrder`, hands
it to `JobService.start` (which runs the whole flow, with `DiscordPublisher` for the Discord side), and tells
the member where their video will appear.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.domain.catalogue import PROMPT_MAX_CHARS, SEED_MAX, SEED_MIN, RequestedOptions, default_catalogue
from bot.domain.models import (
    FIRST_FRAME,
    LAST_FRAME,
    JobOrigin,
    MediaRole,
    MediaSlot,
    Ratio,
    Requester,
    Resolution,
    ServiceTier,
)
from bot.jobs.download import download_bytes
from bot.jobs.errors import FetchError, JobError
from bot.jobs.service import InputFile, VideoOrder
from cogs.embeds import member_of, reply_privately, started_text
from cogs.support.notifier import reply_handle
from cogs.support.publisher import DiscordPublisher

if TYPE_CHECKING:
    from bot.app import SeedanceBot

log = logging.getLogger(__name__)


class AnimateRefusedError(JobError):
    """The request cannot go ahead here (a command whose model no provider of this bot offers)."""


_CATALOGUE = default_catalogue()
#: The widest duration any model accepts; each model's own range is checked by the catalogue.
DURATION_MIN_S = min(spec.duration_range_s[0] for spec in _CATALOGUE.every_spec)
DURATION_MAX_S = max(spec.duration_range_s[1] for spec in _CATALOGUE.every_spec)
#: The model /video uses: the one with a multimodal reference mode.
REFERENCE_MODEL_KEY = "seedance-2.0-pro"
_TIER_CHOICES = [
    app_commands.Choice(name="default", value=ServiceTier.DEFAULT.value),
    app_commands.Choice(name="flex (slower, about half price at the provider)", value=ServiceTier.FLEX.value),
]


@dataclass(frozen=True)
class Inputs:
    """The member's attachments for one request, by role."""

    first_frame: discord.Attachment | None = None
    last_frame: discord.Attachment | None = None
    images: tuple[discord.Attachment, ...] = ()
    videos: tuple[discord.Attachment, ...] = ()
    audios: tuple[discord.Attachment, ...] = ()


class AnimateCog(commands.Cog):
    """The /animate and /video commands."""

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
        camera_fixed="Keep the camera still (1.5 Pro; 1.0 Pro on some providers)",
        seed="Same seed and request give a similar video",
        last_frame="The last frame, for models that support one",
        watermark="Add the provider's watermark (Novita, ModelArk)",
        tier="flex: offline, slower (up to hours), about half price at the provider (Novita, ModelArk)",
        return_last_frame="Also post the video's last frame as an image (ModelArk)",
    )
    @app_commands.choices(
        resolution=[app_commands.Choice(name=r.value, value=r.value) for r in Resolution],
        ratio=[app_commands.Choice(name=r.value, value=r.value) for r in Ratio],
        tier=_TIER_CHOICES,
    )
    async def animate(  # noqa: PLR0917 - discord.py passes each command option as a parameter
        self,
        interaction: discord.Interaction,
        image: discord.Attachment,
        prompt: app_commands.Range[str, 1, PROMPT_MAX_CHARS],
        model: str | None = None,
        resolution: app_commands.Choice[str] | None = None,
        ratio: app_commands.Choice[str] | None = None,
        duration: app_commands.Range[int, DURATION_MIN_S, DURATION_MAX_S] | None = None,
        audio: bool | None = None,
        camera_fixed: bool | None = None,
        seed: app_commands.Range[int, SEED_MIN, SEED_MAX] | None = None,
        last_frame: discord.Attachment | None = None,
        watermark: bool | None = None,
        tier: app_commands.Choice[str] | None = None,
        return_last_frame: bool | None = None,
    ) -> None:
        """Turn an image into a short video with Seedance."""
        # Acknowledge before any work: Discord drops interactions not answered within 3 seconds.
        await interaction.response.defer(ephemeral=True, thinking=True)
        options = RequestedOptions(
            prompt=prompt,
            resolution=resolution.value if resolution else None,
            ratio=ratio.value if ratio else None,
            duration_s=duration,
            generate_audio=audio,
            camera_fixed=camera_fixed,
            seed=seed,
            has_last_frame=last_frame is not None,
            watermark=watermark,
            service_tier=tier.value if tier else None,
            return_last_frame=return_last_frame,
        )
        await self._start(interaction, model, options, Inputs(first_frame=image, last_frame=last_frame))

    @animate.autocomplete("model")
    async def _model_autocomplete(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return await self._offered_models(interaction, current)

    @app_commands.command(
        name="video", description="Make a video with Seedance 2.0 from a prompt and reference media"
    )
    @app_commands.guild_only()
    @app_commands.describe(
        prompt="What the video shows; refer to references as image 1, video 1, audio 1…",
        image1="Reference image (JPEG, PNG, WebP, BMP, TIFF or GIF; up to 9)",
        video1="Reference video (MP4 or MOV, 2–15 s; up to 3)",
        audio1="Reference audio (WAV or MP3, 2–15 s, under 15 MB; up to 3)",
        resolution="Output resolution (480p or 720p)",
        ratio="Output aspect ratio",
        duration="Seconds of video (4–15)",
        audio="Generate sound (on by default)",
        seed="Same seed and request give a similar video",
        watermark="Add the provider's watermark (ModelArk)",
        return_last_frame="Also post the video's last frame as an image (ModelArk)",
    )
    @app_commands.choices(
        resolution=[app_commands.Choice(name=r.value, value=r.value) for r in Resolution],
        ratio=[app_commands.Choice(name=r.value, value=r.value) for r in Ratio],
    )
    async def video(  # noqa: PLR0917 - discord.py passes each command option as a parameter
        self,
        interaction: discord.Interaction,
        prompt: app_commands.Range[str, 1, PROMPT_MAX_CHARS],
        image1: discord.Attachment | None = None,
        image2: discord.Attachment | None = None,
        image3: discord.Attachment | None = None,
        image4: discord.Attachment | None = None,
        image5: discord.Attachment | None = None,
        image6: discord.Attachment | None = None,
        image7: discord.Attachment | None = None,
        image8: discord.Attachment | None = None,
        image9: discord.Attachment | None = None,
        video1: discord.Attachment | None = None,
        video2: discord.Attachment | None = None,
        video3: discord.Attachment | None = None,
        audio1: discord.Attachment | None = None,
        audio2: discord.Attachment | None = None,
        audio3: discord.Attachment | None = None,
        resolution: app_commands.Choice[str] | None = None,
        ratio: app_commands.Choice[str] | None = None,
        duration: app_commands.Range[int, DURATION_MIN_S, DURATION_MAX_S] | None = None,
        audio: bool | None = None,
        seed: app_commands.Range[int, SEED_MIN, SEED_MAX] | None = None,
        watermark: bool | None = None,
        return_last_frame: bool | None = None,
    ) -> None:
        """Make a Seedance 2.0 video from a prompt and up to 9 images, 3 videos and 3 audio clips."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        inputs = Inputs(
            images=_present(image1, image2, image3, image4, image5, image6, image7, image8, image9),
            videos=_present(video1, video2, video3),
            audios=_present(audio1, audio2, audio3),
        )
        options = RequestedOptions(
            prompt=prompt,
            resolution=resolution.value if resolution else None,
            ratio=ratio.value if ratio else None,
            duration_s=duration,
            generate_audio=audio,
            seed=seed,
            watermark=watermark,
            return_last_frame=return_last_frame,
            reference_images=len(inputs.images),
            reference_videos=len(inputs.videos),
            reference_audios=len(inputs.audios),
        )
        if REFERENCE_MODEL_KEY not in self.bot.runtime.catalogue.keys:
            raise AnimateRefusedError(
                "/video needs Seedance 2.0 Pro, which none of this bot's video services offers. "
                "The bot's owner can add RunComfy or ModelArk."
            )
        await self._start(interaction, REFERENCE_MODEL_KEY, options, inputs)

    async def _start(
        self,
        interaction: discord.Interaction,
        model_key: str | None,
        options: RequestedOptions,
        inputs: Inputs,
    ) -> None:
        """Hand the request to the service, which runs the whole flow; tell the member where it stands."""
        async with self.bot.intake.receiving(interaction):
            await self._run(interaction, model_key, options, inputs)

    async def _run(
        self,
        interaction: discord.Interaction,
        model_key: str | None,
        options: RequestedOptions,
        inputs: Inputs,
    ) -> None:
        member = member_of(interaction)
        publisher = DiscordPublisher(self.bot, interaction)
        order = VideoOrder(
            model=model_key,
            options=options,
            inputs=self._input_files(inputs),
            requester=Requester(
                origin=JobOrigin.DISCORD,
                user_id=interaction.user.id,
                guild_id=interaction.guild_id,
                channel_id=interaction.channel_id,
            ),
            member=member,
            upload_limit_bytes=interaction.filesize_limit,
            reply_handle=reply_handle(interaction),
        )
        job = await self.bot.jobs.start(order, publisher)
        if job.state.is_final:
            await reply_privately(interaction, f"Video #{job.id} did not start. {job.error_message}")
            return
        await reply_privately(interaction, started_text(job))

    async def _offered_models(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        """The models on offer here, less those the server's moderators do not allow."""
        allowed: frozenset[str] | None = None
        quota = self.bot.jobs.quota
        if quota is not None and interaction.guild_id is not None:
            limits, _ = await quota.limits_for(member_of(interaction))
            allowed = limits.allowed_models
        wanted = current.strip().lower()
        return [
            app_commands.Choice(name=spec.display_name, value=spec.key)
            for spec in self.bot.runtime.catalogue
            if (allowed is None or spec.key in allowed)
            and (wanted in spec.key or wanted in spec.display_name.lower())
        ][:25]

    def _input_files(self, inputs: Inputs) -> tuple[InputFile, ...]:
        """The member's attachments in their order, each fetched (from Discord's CDN only) when asked."""
        slots: list[tuple[MediaSlot, discord.Attachment]] = []
        if inputs.first_frame is not None:
            slots.append((FIRST_FRAME, inputs.first_frame))
        if inputs.last_frame is not None:
            slots.append((LAST_FRAME, inputs.last_frame))
        for role, attachments in (
            (MediaRole.IMAGE, inputs.images),
            (MediaRole.VIDEO, inputs.videos),
            (MediaRole.AUDIO, inputs.audios),
        ):
            slots += [(MediaSlot(role, n), attachment) for n, attachment in enumerate(attachments, 1)]
        return tuple(
            InputFile(slot, attachment.size, functools.partial(self._download, attachment, slot))
            for slot, attachment in slots
        )

    async def _download(self, attachment: discord.Attachment, slot: MediaSlot, limit: int) -> bytes:
        try:
            return await download_bytes(
                self.bot.runtime.http,
                attachment.url,
                max_bytes=limit,
                allowed_hosts=frozenset(self.bot.runtime.settings.discord_cdn_hosts),
            )
        except FetchError as error:
            raise FetchError(f"I could not download the {slot.noun}: {error.message}") from None


def _present(*attachments: discord.Attachment | None) -> tuple[discord.Attachment, ...]:
    return tuple(attachment for attachment in attachments if attachment is not None)


async def setup(bot: SeedanceBot) -> None:
    """Load the cog (discord.py extension entry point)."""
    await bot.add_cog(AnimateCog(bot))
