"""Starting a video by mentioning the bot: `@bot the boats rock gently duration:8`, in a message with an image
or in a reply to one. The same flow as /animate; the status card answers the member's message.

The bot reacts at once so the member knows it was seen. A refusal is a short reply to the member that removes
itself after a minute (Discord has no private answers outside interactions; a DM would need the member to
accept DMs from server members, which many turn off).

Without the privileged Message Content intent, Discord still shows the bot a message that mentions it —
content, attachments and reply reference — but blanks the message it replies to when someone else wrote it.
So the reply-to-an-image form needs `DISCORD_MESSAGE_CONTENT_INTENT=true` (and the intent switched on in the
developer portal); without it the member is told to use "Animate image" on that message or attach the image.

A mention is no interaction, so Discord does not say the member's language: the replies use the one they last
used with the bot (a slash command, a button), else the server's preferred language.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING

import discord
from discord.ext import commands

from bot.domain.models import FIRST_FRAME
from bot.domain.option_words import parse_option_words
from bot.domain.text import Text
from bot.i18n import Language, Translator, translator
from bot.presentation import not_started_text
from cogs.support.errors import describe_failure
from cogs.support.intake import REFUSAL_LIFETIME_S
from cogs.support.requests import MemberRequest, start_from_message
from cogs.support.sources import ChosenImage, NoUsableImageError, cdn_input, choose_image, images_in

if TYPE_CHECKING:
    from bot.app import SeedanceBot

log = logging.getLogger(__name__)

#: The reaction that tells a member their mention was seen.
SEEN = "👀"
HOW_TO = (
    "Mention me with a prompt in a message with an image, or in a reply to one: "
    "`@{name} the boats rock gently duration:8`. Options go after the prompt as words like "
    "`duration:8 ratio:9:16 model:2.0 audio:off`."
)
NO_IMAGE = Text("Attach an image to your message, or reply to a message with an image, when you mention me.")
REPLY_UNREADABLE = Text("I can't open the message you replied to. Attach the image to your mention instead.")
REPLY_IMAGE_HIDDEN = Text(
    "I can't see images in messages you reply to on this server. Use Apps → Animate image on "
    "that message instead, or attach the image to your mention."
)


class NoImageSeenError(NoUsableImageError):
    """A reply to a message whose image the bot is not allowed to see."""


class MentionsCog(commands.Cog):
    """Requests made by mentioning the bot."""

    def __init__(self, bot: SeedanceBot) -> None:
        self.bot = bot

    def _mention_pattern(self) -> re.Pattern[str] | None:
        me = self.bot.user
        return re.compile(rf"<@!?{me.id}>") if me is not None else None

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        """A member's message that names the bot with <@bot> (a reply's automatic ping does not count)."""
        pattern = self._mention_pattern()
        if message.author.bot or message.guild is None or pattern is None:
            return
        if not pattern.search(message.content):
            return
        text = pattern.sub(" ", message.content).strip()
        try:
            await message.add_reaction(SEEN)
        except discord.HTTPException as error:
            log.info("could not react to message %s: %s", message.id, error)
        tr = await self._reader(message)
        try:
            await self._start(message, text, tr)
        except Exception as error:  # noqa: BLE001 - every failure is answered through the one mapping
            await self._refuse(message, describe_failure(error, action="a mention", translator=tr))

    async def _reader(self, message: discord.Message) -> Translator:
        """The member's last known language, else the server's preferred one (a mention has no locale)."""
        try:
            guild_id = message.guild.id if message.guild else None
            language = await self.bot.post_language(message.author.id, guild_id)
        except Exception:  # a courtesy: a database hiccup must not cost the member their answer
            log.exception("could not look up the language of member %s", message.author.id)
            return translator(Language.ENGLISH)
        return translator(language)

    async def _start(self, message: discord.Message, text: str, tr: Translator) -> None:
        if not text:
            name = self.bot.user.display_name if self.bot.user else "bot"
            await self._refuse(message, tr.text(Text(HOW_TO, name=name)))
            return
        chosen = await self._image_for(message)
        parsed = parse_option_words(text, self.bot.runtime.catalogue)
        request = MemberRequest(
            parsed.model,
            parsed.options,
            (cdn_input(self.bot, FIRST_FRAME, chosen.image.url, chosen.image.size_bytes),),
        )
        async with self.bot.intake.receiving_message(message) as handle:
            job = await start_from_message(self.bot, message, request, reply_handle=handle)
        if job.state.is_final:
            await self._refuse(message, not_started_text(tr, job))
        elif chosen.note:
            await self._refuse(message, tr.text(chosen.note))

    async def _image_for(self, message: discord.Message) -> ChosenImage:
        """The image of the member's own message, else of the message it replies to."""
        if images_in(message):
            return choose_image(message)
        reference = message.reference
        if reference is None or reference.message_id is None:
            raise NoUsableImageError(NO_IMAGE)
        replied = reference.resolved
        if not isinstance(replied, discord.Message):
            try:
                replied = await message.channel.fetch_message(reference.message_id)
            except discord.HTTPException:
                raise NoUsableImageError(REPLY_UNREADABLE) from None
        if not images_in(replied) and not self._sees_content_of(replied):
            raise NoImageSeenError(REPLY_IMAGE_HIDDEN)
        return choose_image(replied)

    def _sees_content_of(self, message: discord.Message) -> bool:
        """Whether Discord shows this bot the message's attachments (its own, or with Message Content)."""
        me = self.bot.user
        return self.bot.intents.message_content or (me is not None and message.author.id == me.id)

    async def _refuse(self, message: discord.Message, text: str) -> None:
        """A short reply only the member is pinged by; it removes itself after a minute."""
        allowed = discord.AllowedMentions(
            everyone=False, roles=False, users=[message.author], replied_user=True
        )
        try:
            await message.reply(text, allowed_mentions=allowed, delete_after=REFUSAL_LIFETIME_S)
        except discord.HTTPException as error:
            log.info("could not answer message %s: %s", message.id, error)


async def setup(bot: SeedanceBot) -> None:
    """Load the cog (discord.py extension entry point)."""
    await bot.add_cog(MentionsCog(bot))
