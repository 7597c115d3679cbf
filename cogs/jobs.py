"""/jobs, /job and /cancel: a member's own jobs, privately."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.domain.models import Job, JobState
from bot.domain.text import Text
from bot.i18n import Translator, for_locale
from bot.presentation import job_line, localized_progress_text, localized_status_card, truncate
from cogs.embeds import card_embed, message_link, reply_privately, video_link
from cogs.support.result_buttons import card_view, result_view

if TYPE_CHECKING:
    from bot.app import SeedanceBot

RECENT_JOBS = 10
AUTOCOMPLETE_LIMIT = 25  # Discord shows at most 25 choices


def _link(job: Job) -> str | None:
    return message_link(job.requester.guild_id, job.requester.channel_id, job.status_message_id)


def _choice(tr: Translator, job: Job) -> app_commands.Choice[int]:
    prompt = " ".join(job.request.prompt.split())
    return app_commands.Choice(
        name=truncate(f"#{job.id} · {localized_progress_text(tr, job)} · {prompt}", 100), value=job.id
    )


class JobsCog(commands.Cog):
    """Commands about a member's own jobs."""

    def __init__(self, bot: SeedanceBot) -> None:
        self.bot = bot

    @app_commands.command(name="jobs", description="Your recent videos and where they stand")
    async def jobs(self, interaction: discord.Interaction) -> None:
        """Your recent videos and where they stand."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        tr = for_locale(interaction.locale)
        jobs = await self.bot.jobs.recent_jobs(
            interaction.user.id, guild_id=interaction.guild_id, limit=RECENT_JOBS
        )
        if not jobs:
            await reply_privately(
                interaction, tr.text(Text("You have no videos here yet. Start one with /animate."))
            )
            return
        lines = "\n".join(job_line(job, _link(job), tr) for job in jobs)
        embed = discord.Embed(
            title=tr.text(Text("Your recent videos")), description=truncate(lines, 4096), colour=0x3B82F6
        )
        embed.set_footer(text=tr.text(Text("/job <id> for details · /cancel <id> while queued")))
        await reply_privately(interaction, embed=embed)

    @app_commands.command(name="job", description="Details of one of your videos")
    @app_commands.rename(job_id="id")
    @app_commands.describe(job_id="The video's number, as in #12")
    async def job(self, interaction: discord.Interaction, job_id: int) -> None:
        """Details of one of your videos."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        tr = for_locale(interaction.locale)
        job = await self.bot.jobs.get_own(job_id, interaction.user.id)
        embed = card_embed(localized_status_card(tr, job, self.bot.model_name(job.model)))
        embed.url = video_link(job) or _link(job)
        # The same buttons as on the job's result or card, so a member can act on it from here.
        view = (
            result_view(job, self.bot.runtime.catalogue, tr=tr)
            if job.state is JobState.DELIVERED
            else card_view(job, tr=tr)
        )
        await reply_privately(interaction, embed=embed, view=view)

    @app_commands.command(name="cancel", description="Cancel one of your videos while it is still queued")
    @app_commands.rename(job_id="id")
    @app_commands.describe(job_id="The video's number, as in #12")
    async def cancel(self, interaction: discord.Interaction, job_id: int) -> None:
        """Cancel one of your videos while it is still queued."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        cancelled = await self.bot.jobs.cancel(job_id, interaction.user.id)
        sentence = Text("Cancelled video #{id}. Nothing more will be made for it.", id=str(cancelled.id))
        await reply_privately(interaction, for_locale(interaction.locale).text(sentence))

    @job.autocomplete("job_id")
    async def _any_own_job(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[int]]:
        return await self._own_choices(interaction, current, active_only=False)

    @cancel.autocomplete("job_id")
    async def _own_active_job(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[int]]:
        return await self._own_choices(interaction, current, active_only=True)

    async def _own_choices(
        self, interaction: discord.Interaction, current: str, *, active_only: bool
    ) -> list[app_commands.Choice[int]]:
        jobs = await self.bot.jobs.recent_jobs(
            interaction.user.id, guild_id=interaction.guild_id, limit=AUTOCOMPLETE_LIMIT * 2
        )
        typed = current.strip().lstrip("#").lower()
        matching = [
            job
            for job in jobs
            if (not active_only or not job.state.is_final)
            and (not typed or typed in str(job.id) or typed in job.request.prompt.lower())
        ]
        tr = for_locale(interaction.locale)
        return [_choice(tr, job) for job in matching[:AUTOCOMPLETE_LIMIT]]


async def setup(bot: SeedanceBot) -> None:
    """Load the cog (discord.py extension entry point)."""
    await bot.add_cog(JobsCog(bot))
