"""Intake: every acknowledged request is remembered until the job layer has stored it (or the member has been
answered), so that a crash between Discord's 3-second acknowledgement and the job's row — while attachments
are downloaded and checked — still ends with an answer instead of "thinking…" for good.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import discord

from bot.domain.text import Text
from bot.i18n import Translator, language_of, translator
from bot.presentation import localized_started_text
from cogs.support.notifier import (
    MESSAGE_HANDLE_PREFIX,
    REPLY_WINDOW_S,
    answer_privately,
    message_handle,
    reply_handle,
)

if TYPE_CHECKING:
    from bot.app import SeedanceBot

log = logging.getLogger(__name__)

PREFIX = "intake:"
#: How long a public refusal or interruption notice stays under a member's message before removing itself.
REFUSAL_LIFETIME_S = 60.0
INTERRUPTED = Text(
    "The bot restarted while it was preparing your request, before anything was stored or sent. Nothing was "
    "charged: please ask again."
)


def serves_guild(bot: discord.Client, guild_id: int | None) -> bool:
    """Whether this process receives that server's events (it runs the server's shard; direct messages are
    shard 0's), so that a request from there was this process's own. Unsharded, every server is."""
    count = bot.shard_count
    if not count or count == 1:
        return True
    shard = 0 if guild_id is None else (guild_id >> 22) % count
    shard_ids = getattr(bot, "shard_ids", None)  # AutoShardedBot's; None: every shard
    return shard_ids is None or shard in shard_ids


class Intake:
    """Requests between their acknowledgement and their job row, kept in the bot's state store."""

    def __init__(self, bot: SeedanceBot) -> None:
        self._bot = bot

    @contextlib.asynccontextmanager
    async def receiving(self, interaction: discord.Interaction) -> AsyncIterator[None]:
        """Remember the request while the block runs (the block stores it as a job, or raises)."""
        state = self._bot.runtime.state_store
        key = f"{PREFIX}{interaction.id}"
        record = {
            "handle": reply_handle(interaction),
            "at": time.time(),
            "guild": interaction.guild_id,
            "locale": str(interaction.locale.value),  # to answer in the member's language after a crash
        }
        await state.put(key, json.dumps(record))
        try:
            yield
        finally:
            await state.delete(key)

    @contextlib.asynccontextmanager
    async def receiving_message(self, message: discord.Message) -> AsyncIterator[str]:
        """Remember a mention's request while the block runs; yields the handle its job must carry."""
        state = self._bot.runtime.state_store
        handle = message_handle(message)
        key = f"{PREFIX}{handle}"
        guild_id = message.guild.id if message.guild is not None else None
        record = {"handle": handle, "at": time.time(), "guild": guild_id, "user": message.author.id}
        await state.put(key, json.dumps(record))
        try:
            yield handle
        finally:
            await state.delete(key)

    async def answer_interrupted(self) -> int:
        """Answer the members whose request a crash cut short before it was stored; return how many.

        Run it before the poller starts: a request that was stored is the job's to answer.
        """
        state = self._bot.runtime.state_store
        answered = 0
        for key, value in await state.items(PREFIX):
            record = json.loads(value)
            if not serves_guild(self._bot, record.get("guild")):
                continue  # another process's request (another shard), perhaps still under way there
            if time.time() - float(record["at"]) < REPLY_WINDOW_S:
                job = await self._bot.runtime.store.find_by_reply_handle(record["handle"])
                # A stored job goes on (its ending will replace this answer); an unstored one cost nothing.
                if record["handle"].startswith(MESSAGE_HANDLE_PREFIX):
                    # A mention: a stored job shows its own card; an unstored one gets a reply.
                    if job is None:
                        language = await self._bot.post_language(record.get("user"), record.get("guild"))
                        answered += await self._reply_to_message(record["handle"], translator(language))
                else:
                    if job is None:
                        answer = translator(language_of(record.get("locale"))).text(INTERRUPTED)
                    else:  # no interaction to ask: the member's last known language
                        language = await self._bot.post_language(
                            job.requester.user_id, job.requester.guild_id
                        )
                        answer = localized_started_text(translator(language), job)
                    answered += await answer_privately(self._bot, record["handle"], answer)
            await state.delete(key)
        return answered

    async def _reply_to_message(self, handle: str, tr: Translator) -> bool:
        channel_id, _, message_id = handle.removeprefix(MESSAGE_HANDLE_PREFIX).partition(":")
        channel = self._bot.get_partial_messageable(int(channel_id))
        try:
            await channel.get_partial_message(int(message_id)).reply(
                tr.text(INTERRUPTED), mention_author=True, delete_after=REFUSAL_LIFETIME_S
            )
        except discord.HTTPException as error:
            log.info("could not answer an interrupted mention: %s", error)
            return False
        return True
