"""/history: a member's past videos in this server, privately, five a page, each with its first frame, prompt,
options and a link to the video; paged with buttons that keep working after a restart.
"""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.domain.models import Job
from bot.domain.text import Text
from bot.i18n import for_locale
from bot.presentation import history_card
from cogs.embeds import card_embed, member_of, reply_privately, video_link
from cogs.support.errors import answer_failure

if TYPE_CHECKING:
    from bot.app import SeedanceBot

PER_PAGE = 5


class HistoryPage(
    discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"seedance:history:(?P<page>[0-9]+)"
):
    """A button to another page of the presser's history (the message is theirs alone: ephemeral)."""

    def __init__(self, page: int, label: str, *, disabled: bool = False) -> None:
        super().__init__(
            discord.ui.Button(
                label=label,
                custom_id=f"seedance:history:{page}",
                disabled=disabled,
                style=discord.ButtonStyle.secondary,
            )
        )
        self.page = page

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> HistoryPage:
        """Rebuild the button from its custom id (after a restart too)."""
        return cls(int(match["page"]), "")

    async def callback(self, interaction: discord.Interaction) -> None:
        """Show the page in place of the current one."""
        interaction.client.dispatch("history_page", interaction, self.page)


class HistoryCog(commands.Cog):
    """The /history command."""

    def __init__(self, bot: SeedanceBot) -> None:
        self.bot = bot

    @app_commands.command(name="history", description="Your past videos in this server, with links")
    @app_commands.guild_only()
    async def history(self, interaction: discord.Interaction) -> None:
        """Your past videos in this server, with links."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        embeds, view = await self._page(interaction, 0)
        if not embeds:
            sentence = Text("You have no finished videos here yet. Start one with /animate.")
            await reply_privately(interaction, for_locale(interaction.locale).text(sentence))
            return
        await interaction.followup.send(embeds=embeds, view=view, ephemeral=True)

    @commands.Cog.listener()
    async def on_history_page(self, interaction: discord.Interaction, page: int) -> None:
        """A press on Older or Newer."""
        try:
            await interaction.response.defer()
            embeds, view = await self._page(interaction, page)
            await interaction.edit_original_response(embeds=embeds, view=view)
        except Exception as error:  # noqa: BLE001 - every failure is answered through the one mapping
            await answer_failure(interaction, error)

    async def _page(
        self, interaction: discord.Interaction, page: int
    ) -> tuple[list[discord.Embed], discord.ui.View]:
        member = member_of(interaction)
        tr = for_locale(interaction.locale)
        jobs, more = await self.bot.jobs.past_videos(
            member.user_id, member.guild_id, page=page, per_page=PER_PAGE
        )
        thumbnails = await asyncio.gather(*(self._first_frame_url(job) for job in jobs))
        embeds = []
        for job, thumbnail in zip(jobs, thumbnails, strict=True):
            card = history_card(job, self.bot.model_name(job.model), tr)
            embed = card_embed(card, thumbnail_url=thumbnail)
            embed.url = video_link(job)
            embeds.append(embed)
        view = discord.ui.View(timeout=None)
        newer, older = tr.text(Text("Newer")), tr.text(Text("Older"))
        view.add_item(HistoryPage(max(page - 1, 0), f"◀ {newer}", disabled=page == 0))
        view.add_item(HistoryPage(page + 1, f"{older} ▶", disabled=not more))
        return embeds, view

    async def _first_frame_url(self, job: Job) -> str | None:
        """A fresh link to the image re-posted on the job's card (Discord's links to files expire)."""
        if job.requester.channel_id is None or job.status_message_id is None:
            return None
        channel = self.bot.get_partial_messageable(job.requester.channel_id, guild_id=job.requester.guild_id)
        try:
            card = await channel.fetch_message(job.status_message_id)
        except discord.HTTPException:
            return None
        images = [a for a in card.attachments if (a.content_type or "").startswith("image/")]
        return images[0].url if images else None


async def setup(bot: SeedanceBot) -> None:
    """Load the cog and register its page buttons."""
    bot.add_dynamic_items(HistoryPage)
    await bot.add_cog(HistoryCog(bot))
