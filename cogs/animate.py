"""/animate and /video: turn a member's image (or prompt and reference media) into a video, shown in a
status message with a thread under it.

The cog only adapts: it acknowledges at once, turns the options and attachments into a `VideoOrder`, hands
it to `JobService.start` (which runs the whole flow, with `DiscordPublisher` for the Discord side), and tells
the member where their video will appear.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.domain.catalogue import SEED_MAX, SEED_MIN, RequestedOptions
from bot.domain.models import (
    FIRST_FRAME,
    LAST_FRAME,
    MediaRole,
    MediaSlot,
    ServiceTier,
)
from bot.domain.text import Text
from bot.jobs.errors import JobError
from bot.jobs.service import InputFile
from cogs.embeds import member_of
from cogs.support.choices import (
    DURATION_MAX_S,
    DURATION_MIN_S,
    PROMPT_OPTION_MAX_CHARS,
    RATIO_CHOICES,
    RESOLUTION_CHOICES,
)
from cogs.support.requests import MemberRequest, answer_started, start_from_interaction
from cogs.support.sources import cdn_input

if TYPE_CHECKING:
    from bot.app import SeedanceBot

log = logging.getLogger(__name__)


class AnimateRefusedError(JobError):
    """The request cannot go ahead here (a command whose model no provider of this bot offers)."""


_WEB_SEARCH_HELP = "Let Seedance 2.0 search the web for facts in your prompt (slower; RunComfy)"
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
        web_search=_WEB_SEARCH_HELP,
    )
    @app_commands.choices(
        resolution=RESOLUTION_CHOICES,
        ratio=RATIO_CHOICES,
        tier=_TIER_CHOICES,
    )
    async def animate(  # noqa: PLR0917 - discord.py passes each command option as a parameter
        self,
        interaction: discord.Interaction,
        image: discord.Attachment,
        prompt: app_commands.Range[str, 1, PROMPT_OPTION_MAX_CHARS],
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
        web_search: bool | None = None,
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
            web_search=web_search,
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
        web_search=_WEB_SEARCH_HELP,
    )
    @app_commands.choices(
        resolution=RESOLUTION_CHOICES,
        ratio=RATIO_CHOICES,
    )
    async def video(  # noqa: PLR0917 - discord.py passes each command option as a parameter
        self,
        interaction: discord.Interaction,
        prompt: app_commands.Range[str, 1, PROMPT_OPTION_MAX_CHARS],
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
        web_search: bool | None = None,
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
            web_search=web_search,
            reference_images=len(inputs.images),
            reference_videos=len(inputs.videos),
            reference_audios=len(inputs.audios),
        )
        if REFERENCE_MODEL_KEY not in self.bot.runtime.catalogue.keys:
            raise AnimateRefusedError(
                Text(
                    "/video needs Seedance 2.0 Pro, which none of this bot's video services offers. "
                    "The bot's owner can add RunComfy or ModelArk."
                )
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
        request = MemberRequest(model_key, options, self._input_files(inputs))
        job = await start_from_interaction(self.bot, interaction, request)
        await answer_started(self.bot, interaction, job)

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
        return tuple(cdn_input(self.bot, slot, item.url, item.size) for slot, item in slots)


def _present(*attachments: discord.Attachment | None) -> tuple[discord.Attachment, ...]:
    return tuple(attachment for attachment in attachments if attachment is not None)


async def setup(bot: SeedanceBot) -> None:
    """Load the cog (discord.py extension entry point)."""
    await bot.add_cog(AnimateCog(bot))
