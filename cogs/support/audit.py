"""The Discord side of the audit channel: posts the lines and alerts `bot.jobs.audit.Auditor` writes, in the
language of the server's public posts (see `bot.jobs.languages`: the one a moderator set, else Discord's
preferred locale of the server, else English)."""

from __future__ import annotations

import logging
from typing import Protocol, runtime_checkable

import discord

from bot.i18n import Language, translator
from bot.jobs.audit import AuditPost

log = logging.getLogger(__name__)


@runtime_checkable
class _SpeaksPublicly(Protocol):
    """A client that knows the language of a server's public posts (the Seedance bot)."""

    async def post_language(self, user_id: int | None, guild_id: int | None) -> Language:
        """The language of a public post about `user_id`'s request in `guild_id`."""
        ...


class DiscordAuditSink:
    """Posts audit messages with the bot token; nobody is pinged but the alert role, when one is named."""

    def __init__(self, client: discord.Client) -> None:
        """Post through `client` (the bot; any shard can post to any channel over REST)."""
        self._client = client

    async def language(self, guild_id: int | None) -> Language:
        """The language of the audit channel's posts: the server's public one (no member's: the channel is
        the moderators', and one server's lines read alike whoever asked for the video)."""
        if guild_id is None or not isinstance(self._client, _SpeaksPublicly):
            return Language.ENGLISH
        try:
            return await self._client.post_language(None, guild_id)
        except Exception:  # a courtesy: the line still goes out, in English
            log.exception("could not look up the language of server %s", guild_id)
            return Language.ENGLISH

    async def post(self, post: AuditPost) -> None:
        """Post `post.sentence` in its channel (raises discord.HTTPException when Discord refuses)."""
        language = await self.language(post.guild_id)
        # English is the sentence itself, exactly as `str` writes it.
        text = post.text if language is Language.ENGLISH else translator(language).text(post.sentence)
        # A partial channel: no cache lookup, so the channel may sit on another shard's guild.
        channel = self._client.get_partial_messageable(post.channel_id)
        # Member mentions in a line name who asked without pinging them; only an alert may ping its role.
        mentions = (
            discord.AllowedMentions.none()
            if post.mention_role_id is None
            else discord.AllowedMentions(
                everyone=False, users=False, roles=[discord.Object(post.mention_role_id)], replied_user=False
            )
        )
        await channel.send(text, allowed_mentions=mentions)
