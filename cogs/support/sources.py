"""Where a request's files come from on Discord: an image in a message (its attachments or image embeds),
the files re-posted on an earlier job's status card, and fetching any of them from Discord's CDN only.

The image of a message is judged first by what Discord says about it (type, size, width and height), so a
member hears at once — before any form opens or any download starts — that a message holds no usable image;
the full check of the file itself still runs in the job service like for every request.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import discord

from bot.domain.images import DEFAULT_IMAGE_LIMITS, ImageLimits, format_bytes
from bot.domain.models import MediaSlot
from bot.domain.text import Text
from bot.jobs.download import download_bytes
from bot.jobs.errors import FetchError, JobError
from bot.jobs.service import InputFile

if TYPE_CHECKING:
    from bot.app import SeedanceBot

_IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif")


class NoUsableImageError(JobError):
    """A message holds no image the bot can animate."""


@dataclass(frozen=True)
class MessageImage:
    """One image in a message, as Discord describes it (nothing downloaded yet)."""

    url: str
    name: str
    size_bytes: int | None  # None for an embed's image: Discord does not say
    width: int | None
    height: int | None

    def problem(self, limits: ImageLimits = DEFAULT_IMAGE_LIMITS) -> str | None:
        """Why this image cannot be a first frame, judged from its description alone; None if it may."""
        if self.size_bytes is not None and self.size_bytes >= limits.max_bytes:
            size, most = format_bytes(self.size_bytes), format_bytes(limits.max_bytes)
            return f"it is {size}; images must be under {most}"
        if self.width is None or self.height is None:
            return None
        short, long = sorted((self.width, self.height))
        if short <= limits.min_side_px:
            return f"it is {self.width}×{self.height} px; each side must be over {limits.min_side_px} px"
        if long >= limits.max_side_px:
            return f"it is {self.width}×{self.height} px; each side must be under {limits.max_side_px} px"
        aspect = self.width / self.height
        if not limits.min_aspect < aspect < limits.max_aspect:
            return (
                f"it is {self.width}×{self.height} px; the width must be between {limits.min_aspect} and "
                f"{limits.max_aspect} times the height"
            )
        return None


@dataclass(frozen=True)
class ChosenImage:
    """The image a request made from a message uses, and how to tell the member which one it was."""

    image: MessageImage
    position: int  # 1-based, among the message's images
    count: int

    @property
    def note(self) -> Text | None:
        """Which image was used, when the message had several (see `which_image`)."""
        return which_image(self.position, self.count, self.image.name)


def which_image(position: int, count: int, name: str) -> Text | None:
    """ "Used image 2 of 3 (cat.png)." when a message had several images, else None."""
    return (
        Text("Used image {position} of {count} ({name}).", position=position, count=count, name=name)
        if count > 1
        else None
    )


def images_in(message: discord.Message) -> list[MessageImage]:
    """The message's images in order: attachments first, then image embeds (through Discord's proxy)."""
    found: list[MessageImage] = []
    for attachment in message.attachments:
        content_type = (attachment.content_type or "").split(";")[0]
        if content_type.startswith("image/") or attachment.filename.lower().endswith(_IMAGE_EXTENSIONS):
            found.append(
                MessageImage(
                    attachment.url, attachment.filename, attachment.size, attachment.width, attachment.height
                )
            )
    for embed in message.embeds:
        # An image link or a rich embed's picture: fetched through Discord's media proxy, never the
        # third-party site itself (the bot downloads from Discord's CDN hosts only).
        for media in (embed.image, embed.thumbnail):
            proxy = getattr(media, "proxy_url", None)
            if proxy:
                name = (getattr(media, "url", None) or proxy).rsplit("/", 1)[-1].split("?")[0] or "image"
                found.append(MessageImage(proxy, name, None, media.width, media.height))
                break
    return found


def choose_image(message: discord.Message, limits: ImageLimits = DEFAULT_IMAGE_LIMITS) -> ChosenImage:
    """The first usable image of `message`; NoUsableImageError says why there is none."""
    images = images_in(message)
    if not images:
        raise NoUsableImageError(
            "That message has no image I can use: attach a JPEG, PNG, WebP, BMP, TIFF or GIF, or pick a "
            "message that shows one."
        )
    problems: list[str] = []
    for position, image in enumerate(images, 1):
        problem = image.problem(limits)
        if problem is None:
            return ChosenImage(image, position, len(images))
        problems.append(f"{image.name}: {problem}")
    if len(images) == 1:
        raise NoUsableImageError(f"I can't animate that image: {problems[0]}.")
    raise NoUsableImageError("None of that message's images can be animated: " + "; ".join(problems) + ".")


def cdn_input(bot: SeedanceBot, slot: MediaSlot, url: str, size_bytes: int | None) -> InputFile:
    """A file on Discord's CDN, fetched when the service asks (and only from Discord's CDN hosts)."""
    return InputFile(slot, size_bytes or 0, functools.partial(_download, bot, url, slot))


async def _download(bot: SeedanceBot, url: str, slot: MediaSlot, limit: int) -> bytes:
    try:
        return await download_bytes(
            bot.runtime.http,
            url,
            max_bytes=limit,
            allowed_hosts=frozenset(bot.runtime.settings.discord_cdn_hosts),
        )
    except FetchError as error:
        raise FetchError(f"I could not download the {slot.noun}: {error.message}") from None


def reposted_inputs(
    bot: SeedanceBot, messages: Sequence[discord.Message], *, skip: frozenset[MediaSlot] = frozenset()
) -> tuple[InputFile, ...]:
    """The files an earlier job's card re-posted (by their slot file names), in slot order."""
    found: dict[MediaSlot, InputFile] = {}
    for message in messages:
        for attachment in message.attachments:
            slot = MediaSlot.from_filename(attachment.filename)
            if slot is not None and slot not in skip and slot not in found:
                found[slot] = cdn_input(bot, slot, attachment.url, attachment.size)
    return tuple(found[slot] for slot in sorted(found))
