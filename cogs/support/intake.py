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

from cogs.embeds import started_text
from cogs.support.notifier import REPLY_WINDOW_S, answer_privately, reply_handle

if TYPE_CHECKING:
    from bot.app import SeedanceBot

log = logging.getLogger(__name__)

PREFIX = "intake:"
INTERRUPTED = (
    "The bot restarted while it was preparing your request, before anything was stored or sent. Nothing was "
    "charged: please ask again."
)


class Intake:
    """Requests between their acknowledgement and their job row, kept in the bot's state store."""

    def __init__(self, bot: SeedanceBot) -> None:
        self._bot = bot

    @contextlib.asynccontextmanager
    async def receiving(self, interaction: discord.Interaction) -> AsyncIterator[None]:
        """Remember the request while the block runs (the block stores it as a job, or raises)."""
        state = self._bot.runtime.state_store
        key = f"{PREFIX}{interaction.id}"
        record = {"handle": reply_handle(interaction), "at": time.time()}
        await state.put(key, json.dumps(record))
        try:
            yield
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
            if time.time() - float(record["at"]) < REPLY_WINDOW_S:
                job = await self._bot.runtime.store.find_by_reply_handle(record["handle"])
                # A stored job goes on (its ending will replace this answer); an unstored one cost nothing.
                answer = INTERRUPTED if job is None else started_text(job)
                answered += await answer_privately(self._bot, record["handle"], answer)
            await state.delete(key)
        return answered
