"""/animate and /video: turn a member's image (or prompt and reference media) into a video, shown in a
status message with a thread under it.

The cog only adapts: it acknowledges at once, hands the member's input to JobService, and renders what
comes back. Files handed to a provider are the copies re-posted with the status message, URLs that stay
valid for the provider to fetch (option attachments are ephemeral).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.aio import gather_in_order
from bot.domain.catalogue import PROMPT_MAX_CHARS, SEED_MAX, SEED_MIN, RequestedOptions, default_catalogue
from bot.domain.images import DEFAULT_IMAGE_LIMITS
from bot.domain.media import MediaKind, limits_for
from bot.domain.models import Job, JobOrigin, Ratio, Requester, Resolution, ServiceTier
from bot.jobs.download import download_bytes
from bot.jobs.errors import FetchError, JobError
from bot.jobs.quota import Member
from bot.jobs.service import DeliveryTarget, MediaUpload, PreparedRequest
from bot.presentation import human_size, request_card, thread_name
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
DURATION_MIN_S = min(spec.duration_range_s[0] for spec in _CATALOGUE.every_spec)
DURATION_MAX_S = max(spec.duration_range_s[1] for spec in _CATALOGUE.every_spec)
#: The model /video uses: the one with a multimodal reference mode.
REFERENCE_MODEL_KEY = "seedance-2.0-pro"
#: Discord takes at most this many files in one message; more go in a second message.
FILES_PER_MESSAGE = 10
#: What the bot downloads at most per kind of attachment before it has looked inside.
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


@dataclass(frozen=True)
class PostedRequest:
    """The status message (and, with many references, a second message) holding the re-posted files."""

    status: discord.Message
    extra: tuple[discord.Message, ...]
    urls: dict[str, str]  # MediaUpload label -> the re-posted file's URL

    @property
    def messages(self) -> tuple[discord.Message, ...]:
        """Every message the request posted, the status message first."""
        return (self.status, *self.extra)


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
        """The shared flow: check, download, validate, post the status message, submit, open the thread."""
        # Cheap checks first: a wrong option or an exhausted quota costs no download and posts nothing.
        request = self.bot.jobs.check_options(model_key, options)
        member = member_of(interaction)
        await self.bot.jobs.check_quota(request, member)
        channel = interaction.channel
        if channel is None or not isinstance(channel, discord.abc.Messageable):
            raise AnimateRefusedError("I can't post in this kind of channel.")
        self._check_permissions(interaction)
        downloaded = await self._download_all(inputs)
        first_bytes = downloaded.get("first_frame")
        last_bytes = downloaded.get("last_frame")
        images = [downloaded[f"image{n}"] for n in range(1, len(inputs.images) + 1)]
        videos = [downloaded[f"video{n}"] for n in range(1, len(inputs.videos) + 1)]
        audios = [downloaded[f"audio{n}"] for n in range(1, len(inputs.audios) + 1)]
        prepared = await self.bot.jobs.prepare(
            model_key,
            options,
            first_bytes,
            last_bytes,
            reference_images=images,
            reference_videos=videos,
            reference_audios=audios,
        )
        posted = await self._post_status(channel, interaction, prepared)
        try:
            job = await self._submit(prepared, interaction, posted=posted, member=member)
        except Exception:
            # Nothing was started: most often another request took the last credits since the early check
            # (QuotaExceededError). Take the messages back; the error handler answers the member.
            await self._withdraw(posted.messages)
            raise
        if job.state.is_final:
            await self.bot.notifier.show_status(job, final=True)
            await reply_privately(interaction, f"Video #{job.id} did not start. {job.error_message}")
            return
        # The thread comes only once the job is admitted: a bot may delete its own message, but deleting a
        # thread needs Manage Threads, which it is not given.
        thread = await self._open_thread(posted.status, interaction, options.prompt)
        if thread is not None:
            job = await self.bot.jobs.set_thread(job.id, thread.id) or job
        await self.bot.notifier.show_status(job, final=False)
        where = f"in {thread.mention}" if thread else "in this channel"
        await reply_privately(
            interaction,
            f"Started video #{job.id}. It will be posted {where} when it is ready: {posted.status.jump_url}",
        )

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

    async def _submit(
        self,
        prepared: PreparedRequest,
        interaction: discord.Interaction,
        *,
        posted: PostedRequest,
        member: Member,
    ) -> Job:
        return await self.bot.jobs.submit(
            prepared,
            Requester(
                origin=JobOrigin.DISCORD,
                user_id=interaction.user.id,
                guild_id=interaction.guild_id,
                channel_id=posted.status.channel.id,
            ),
            published=posted.urls,
            delivery=DeliveryTarget(
                status_message_id=posted.status.id, upload_limit_bytes=interaction.filesize_limit
            ),
            member=member,
        )

    @staticmethod
    async def _withdraw(messages: Sequence[discord.Message]) -> None:
        """Remove the messages of a request that did not go ahead."""
        for message in messages:
            try:
                await message.delete()
            except discord.HTTPException as error:
                log.info("could not remove message %s: %s", message.id, error)

    def _check_permissions(self, interaction: discord.Interaction) -> None:
        permissions = interaction.app_permissions
        missing = [name for name in REQUIRED_PERMISSIONS if not getattr(permissions, name)]
        if missing:
            names = ", ".join(name.replace("_", " ").title() for name in missing)
            raise AnimateRefusedError(f"I need the {names} permission in this channel to post your video.")

    async def _download_all(self, inputs: Inputs) -> dict[str, bytes]:
        """Every attachment's bytes by upload label, fetched together; the first bad one in order is named."""
        image_limit = DEFAULT_IMAGE_LIMITS.max_bytes
        video_limit = limits_for(MediaKind.VIDEO).max_bytes
        audio_limit = limits_for(MediaKind.AUDIO).max_bytes
        wanted: list[tuple[str, discord.Attachment, str, int]] = []
        for label, attachment, noun in (
            ("first_frame", inputs.first_frame, "image"),
            ("last_frame", inputs.last_frame, "last frame"),
        ):
            if attachment is not None:
                wanted.append((label, attachment, noun, image_limit))
        for kind, attachments, noun, limit in (
            ("image", inputs.images, "reference image", image_limit),
            ("video", inputs.videos, "reference video", video_limit),
            ("audio", inputs.audios, "reference audio clip", audio_limit),
        ):
            wanted += [(f"{kind}{n}", a, f"{noun} {n}", limit) for n, a in enumerate(attachments, 1)]
        results = await gather_in_order(
            self._download(attachment, noun, limit) for _, attachment, noun, limit in wanted
        )
        return {label: data for (label, *_), data in zip(wanted, results, strict=True)}

    async def _download(self, attachment: discord.Attachment, label: str, limit: int) -> bytes:
        if attachment.size >= limit:
            raise AnimateRefusedError(
                f"The {label} is {human_size(attachment.size)}; it must be under {human_size(limit)}."
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
        self, channel: discord.abc.Messageable, interaction: discord.Interaction, prepared: PreparedRequest
    ) -> PostedRequest:
        """Post the request card with every file re-posted, so providers get URLs that stay valid."""
        user = interaction.user
        uploads = prepared.uploads()
        limit = interaction.filesize_limit
        for upload in uploads:
            if len(upload.data) > limit:
                raise AnimateRefusedError(
                    f"{_label_text(upload.label)} is {human_size(len(upload.data))}; I can re-post files up "
                    f"to {human_size(limit)} in this server, and the video service fetches them from there."
                )
        names = [_upload_filename(upload) for upload in uploads]
        batches = [
            range(start, min(start + FILES_PER_MESSAGE, len(uploads)))
            for start in range(0, len(uploads), FILES_PER_MESSAGE)
        ] or [range(0)]
        card = request_card(prepared.request, prepared.spec.display_name, user.mention)
        thumbnail = (
            f"attachment://{names[0]}" if uploads and uploads[0].mime_type.startswith("image/") else None
        )
        messages: list[discord.Message] = []
        try:
            for number, batch in enumerate(batches):
                files = [discord.File(io.BytesIO(uploads[i].data), filename=names[i]) for i in batch]
                if number == 0:
                    message = await channel.send(
                        content=f"{user.mention} asked for a video",
                        embed=card_embed(card, thumbnail_url=thumbnail),
                        files=files,
                        allowed_mentions=NO_MENTIONS,
                    )
                else:
                    message = await messages[0].reply(
                        content="More reference files for this video",
                        files=files,
                        allowed_mentions=NO_MENTIONS,
                        mention_author=False,
                    )
                messages.append(message)
        except discord.Forbidden:
            await self._withdraw(messages)
            raise AnimateRefusedError(
                "I can't post in this channel. I need Send Messages, Attach Files and Embed Links here."
            ) from None
        except discord.HTTPException:
            await self._withdraw(messages)
            raise
        attachments = [attachment for message in messages for attachment in message.attachments]
        urls = {
            upload.label: attachment.url for upload, attachment in zip(uploads, attachments, strict=False)
        }
        return PostedRequest(status=messages[0], extra=tuple(messages[1:]), urls=urls)

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


def _present(*attachments: discord.Attachment | None) -> tuple[discord.Attachment, ...]:
    return tuple(attachment for attachment in attachments if attachment is not None)


def _label_text(label: str) -> str:
    """ "image2" → "Reference image 2", "first_frame" → "The first frame"."""
    if label in ("first_frame", "last_frame"):
        return f"The {label.replace('_', ' ')}"
    noun = label.rstrip("0123456789")
    number = label[len(noun) :]
    return f"Reference {'audio clip' if noun == 'audio' else noun} {number}"


def _upload_filename(upload: MediaUpload) -> str:
    # "first-frame.png": the name the status embed's thumbnail points at (see cogs.delivery.frame_filename).
    return f"{upload.label.replace('_', '-')}.{upload.extension}"


async def setup(bot: SeedanceBot) -> None:
    """Load the cog (discord.py extension entry point)."""
    await bot.add_cog(AnimateCog(bot))
