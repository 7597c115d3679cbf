"""DiscordPublisher: the Discord side of starting a job — the status card with the files re-posted, and the
thread under it. JobService calls it once the job row exists, so a crash at any point leaves a job that a
restart finishes or ends, never a card nobody owns.

Files handed to a provider are the copies re-posted with the status card: URLs that stay valid for the
provider to fetch (option attachments are ephemeral).
"""

from __future__ import annotations

import functools
import io
import logging
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import discord

from bot.domain.media import file_subject
from bot.domain.models import Job, MediaRole
from bot.domain.text import Text
from bot.i18n import Language, language_of, translator
from bot.jobs.errors import PublishError
from bot.jobs.service import MediaUpload, PostedRequest, PreparedRequest
from bot.presentation import asked_for_a_video, human_size, localized_status_card, thread_name
from cogs.embeds import NO_MENTIONS, card_embed
from cogs.support.notifier import outcome_nonce
from cogs.support.result_buttons import card_view
from cogs.support.retry import DiscordUnavailableError, call_with_retries

if TYPE_CHECKING:
    from bot.app import SeedanceBot

log = logging.getLogger(__name__)

#: What the bot needs in a channel to post the status message with the image.
REQUIRED_PERMISSIONS = ("send_messages", "attach_files", "embed_links")
#: Discord takes at most this many files in one message; more go in a second message.
FILES_PER_MESSAGE = 10
#: Discord's code for "a thread has already been created for this message".
THREAD_ALREADY_CREATED = 160004


@dataclass(frozen=True)
class RequestPlace:
    """Where a request was made: the channel its card goes to, who asked, and what the bot may do there."""

    channel: discord.abc.Messageable
    channel_id: int
    requester_mention: str
    permissions: discord.Permissions
    upload_limit_bytes: int
    #: The member's own message, for a request made by mentioning the bot: the card answers it.
    reply_to: discord.Message | None = None
    #: The language of the interaction that made the request; None for a mention (then the member's last
    #: known language, else the server's).
    language: Language | None = None

    @classmethod
    def of_interaction(cls, interaction: discord.Interaction) -> RequestPlace:
        """The channel of a command, menu, form or button (refuses one the bot cannot post in)."""
        channel = interaction.channel
        if channel is None or not isinstance(channel, discord.abc.Messageable):
            raise PublishError(Text("I can't post in this kind of channel."))
        return cls(
            channel=channel,
            channel_id=channel.id,
            requester_mention=interaction.user.mention,
            permissions=interaction.app_permissions,
            upload_limit_bytes=interaction.filesize_limit,
            language=language_of(interaction.locale),
        )

    @classmethod
    def of_message(cls, message: discord.Message) -> RequestPlace:
        """The channel of a member's message that mentioned the bot."""
        channel = message.channel
        guild = message.guild
        if guild is None or not isinstance(channel, discord.abc.GuildChannel | discord.Thread):
            raise PublishError(Text("Mention me in a server channel to make a video."))
        return cls(
            channel=channel,
            channel_id=channel.id,
            requester_mention=message.author.mention,
            permissions=channel.permissions_for(guild.me),
            upload_limit_bytes=guild.filesize_limit,
            reply_to=message,
        )


class DiscordPublisher:
    """Shows one request in the channel it was made in."""

    def __init__(self, bot: SeedanceBot, place: RequestPlace) -> None:
        """Refuse at once (PublishError) where the bot cannot post the request."""
        missing = [name for name in REQUIRED_PERMISSIONS if not getattr(place.permissions, name)]
        if missing:
            # Discord's own names for its permissions, as its settings screens show them.
            names = ", ".join(name.replace("_", " ").title() for name in missing)
            raise PublishError(
                Text("I need the {names} permission in this channel to post your video.", names=names)
            )
        self._bot = bot
        self._retry_deadline_s = bot.runtime.settings.discord_retry_s
        self._place = place
        self._channel = place.channel
        self._status: discord.Message | None = None

    @classmethod
    def for_interaction(cls, bot: SeedanceBot, interaction: discord.Interaction) -> DiscordPublisher:
        """The publisher for a request made with a command, menu, form or button."""
        return cls(bot, RequestPlace.of_interaction(interaction))

    @property
    def upload_limit_bytes(self) -> int:
        """The most the bot may upload in one file here (the server's upload limit)."""
        return self._place.upload_limit_bytes

    def check_uploads(self, uploads: Sequence[MediaUpload]) -> None:
        """Every file must fit the server's upload limit: the provider fetches the re-posted copy."""
        limit = self._place.upload_limit_bytes
        for upload in uploads:
            if len(upload.data) > limit:
                raise PublishError(
                    Text(
                        "{subject} is {size}; I can re-post files up to {limit} in this server, and the "
                        "video service fetches them from there.",
                        subject=_label_text(upload),
                        size=human_size(len(upload.data)),
                        limit=human_size(limit),
                    )
                )

    async def post_request(self, job: Job, prepared: PreparedRequest) -> PostedRequest:
        """Post the status card with every file, retrying Discord's hiccups without ever posting it twice."""
        uploads = prepared.uploads()
        channel_id = self._place.channel_id
        batches = [
            uploads[start : start + FILES_PER_MESSAGE] for start in range(0, len(uploads), FILES_PER_MESSAGE)
        ] or [[]]
        language = self._place.language or await self._bot.post_language(
            job.requester.user_id, job.requester.guild_id
        )
        tr = translator(language)
        card = localized_status_card(tr, job, prepared.spec.display_name, await self._bot.eta.progress(job))
        thumbnail = (
            f"attachment://{uploads[0].filename}" if uploads and uploads[0].slot.role.is_image else None
        )
        messages: list[discord.Message] = []
        mention = self._place.requester_mention
        reply_to = self._place.reply_to

        def post(number: int, batch: Sequence[MediaUpload]) -> Awaitable[discord.Message]:
            # A fresh File each try (an upload consumes its stream); the nonce makes a retry harmless.
            files = _files(batch)
            nonce = outcome_nonce(job, channel_id, f"card{number}")
            if number == 0:
                embed = card_embed(card, thumbnail_url=thumbnail)
                view = card_view(job, tr=tr)
                content = asked_for_a_video(tr, mention)
                reference = reply_to.to_reference(fail_if_not_exists=False) if reply_to else None
                return self._channel.send(
                    content=content,
                    embed=embed,
                    files=files,
                    allowed_mentions=NO_MENTIONS,
                    nonce=nonce,
                    # A mention's answer: a reply under the member's message (which may since be gone). The
                    # stubs type `reference` without None, but send() takes None for "no reply" (its default).
                    reference=reference,  # type: ignore[arg-type]
                    view=view or discord.utils.MISSING,
                )
            return messages[0].reply(
                content=tr.text(Text("More reference files for this video")),
                files=files,
                allowed_mentions=NO_MENTIONS,
                mention_author=False,
                nonce=nonce,
            )

        try:
            for number, batch in enumerate(batches):
                message = await call_with_retries(
                    functools.partial(post, number, batch),
                    what=f"posting the request of job {job.id}",
                    deadline_s=self._retry_deadline_s,
                )
                messages.append(message)
        except discord.Forbidden:
            await _withdraw(messages)
            raise PublishError(
                Text("I can't post in this channel. I need Send Messages, Attach Files and Embed Links here.")
            ) from None
        except BaseException:
            await _withdraw(messages)
            raise
        self._status = messages[0]
        attachments = [attachment for message in messages for attachment in message.attachments]
        urls = {
            upload.label: attachment.url for upload, attachment in zip(uploads, attachments, strict=False)
        }
        return PostedRequest(status_message_id=messages[0].id, urls=urls)

    async def open_thread(self, job: Job) -> int | None:
        """A thread under the status card, or None where Discord has no threads (then: the channel)."""
        status = self._status
        if status is None or not isinstance(status.channel, discord.TextChannel):
            return None
        language = self._place.language or await self._bot.post_language(
            job.requester.user_id, job.requester.guild_id
        )
        name = thread_name(job.id, job.request.prompt, translator(language))
        permissions = self._place.permissions
        if not (permissions.create_public_threads and permissions.send_messages_in_threads):
            return None
        try:
            thread = await call_with_retries(
                lambda: status.create_thread(name=name, auto_archive_duration=1440),
                what=f"opening the thread of job {job.id}",
                deadline_s=self._retry_deadline_s,
            )
        except discord.HTTPException as error:
            if error.code == THREAD_ALREADY_CREATED:
                return (
                    status.id
                )  # an earlier try made it (its answer was lost): a thread has its message's id
            log.info("no thread for message %s: %s", status.id, error)
            return None
        except DiscordUnavailableError as error:  # no thread is no failure: the video goes to the channel
            log.info("no thread for message %s: %s", status.id, error)
            return None
        return thread.id


def _files(batch: Sequence[MediaUpload]) -> list[discord.File]:
    # A fresh File each try: a File's stream is consumed by the upload.
    return [discord.File(io.BytesIO(upload.data), filename=upload.filename) for upload in batch]


def _label_text(upload: MediaUpload) -> Text:
    """ "The first frame", "The last frame", "Reference image 2" (each a sentence of its own)."""
    slot = upload.slot
    if slot.number == 0:
        return file_subject(slot.key.replace("_", " "))
    if slot.role is MediaRole.IMAGE:
        return Text("Reference image {number}", number=slot.number)
    return file_subject(slot.noun)


async def _withdraw(messages: Sequence[discord.Message]) -> None:
    """Remove the messages of a request that did not go ahead."""
    for message in messages:
        try:
            await message.delete()
        except discord.HTTPException as error:
            log.info("could not remove message %s: %s", message.id, error)
