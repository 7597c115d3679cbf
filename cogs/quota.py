"""/quota for members; /seedance-admin for moderators: limits, budget, channels, bans, words, usage, jobs."""

from __future__ import annotations

import csv
import dataclasses
import io
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

import discord
from discord import app_commands
from discord.ext import commands

from bot.domain.models import Resolution
from bot.domain.quota import (
    DEFAULT_RESOLUTION_WEIGHTS,
    MemberLimits,
    ServerRules,
    day_start,
    describe_limits,
    describe_rules,
    next_day_start,
)
from bot.jobs.errors import JobError
from bot.jobs.quota import Member, QuotaService
from bot.presentation import job_line, timestamp, truncate
from cogs.embeds import member_of, message_link, reply_privately

if TYPE_CHECKING:
    from bot.app import SeedanceBot

Scope = Literal["server", "role", "member"]


class ModeratorOnlyError(JobError):
    """A moderator command run by someone without Manage Server, or aimed outside their server."""


def _rules_embed(title: str, rules: ServerRules) -> discord.Embed:
    embed = discord.Embed(title=title, colour=0x3B82F6)
    for name, value in describe_rules(rules):
        embed.add_field(name=name, value=value)
    return embed


def _limits_embed(title: str, limits: MemberLimits, rules: ServerRules | None = None) -> discord.Embed:
    embed = discord.Embed(title=title, colour=0x3B82F6)
    for name, value in describe_limits(limits, rules):
        embed.add_field(name=name, value=value)
    return embed


def _require_moderator(interaction: discord.Interaction) -> None:
    # default_member_permissions only sets who sees the command by default; admins can change that.
    # A check failure must be an AppCommandError to reach the tree's error handler.
    permissions = interaction.permissions
    if not (permissions.manage_guild or permissions.administrator):
        raise app_commands.MissingPermissions(["manage_guild"])


class QuotaCog(commands.Cog):
    """/quota and the moderators' /seedance-admin group."""

    admin = app_commands.Group(
        name="seedance-admin",
        description="Moderators: limits, budgets and rules for Seedance videos",
        guild_only=True,
        default_permissions=discord.Permissions(manage_guild=True),
    )
    limits = app_commands.Group(name="limits", description="Credits and caps per member", parent=admin)
    words = app_commands.Group(name="words", description="Words not allowed in prompts", parent=admin)
    channels = app_commands.Group(name="channels", description="Where /animate may be used", parent=admin)

    def __init__(self, bot: SeedanceBot) -> None:
        self.bot = bot

    @property
    def quota(self) -> QuotaService:
        """The quota service (always present in the Discord bot)."""
        quota = self.bot.jobs.quota
        if quota is None:
            raise ModeratorOnlyError("Quotas are not enabled on this bot.")
        return quota

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        """Every /seedance-admin command is for moderators, whatever Discord showed to whom."""
        command = interaction.command
        if command is not None and command.qualified_name.startswith("seedance-admin"):
            _require_moderator(interaction)
        return True

    # --- members ----------------------------------------------------------------------------------------

    @app_commands.command(name="quota", description="What you have left today and this month")
    @app_commands.guild_only()
    async def quota_command(self, interaction: discord.Interaction) -> None:
        """What you have left today and this month."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        member = member_of(interaction)
        overview = await self.quota.overview(member)
        limits, usage = overview.limits, overview.usage
        embed = discord.Embed(title="Your Seedance quota here", colour=0x3B82F6)
        if limits.credits_per_day is not None:
            left = max(0, limits.credits_per_day - usage.member_credits_today)
            resets = timestamp(next_day_start(usage.now))
            embed.add_field(
                name="Today", value=f"{left} of {limits.credits_per_day} credits left · resets {resets}"
            )
        if limits.credits_per_30_days is not None:
            left = max(0, limits.credits_per_30_days - usage.member_credits_30_days)
            embed.add_field(name="Last 30 days", value=f"{left} of {limits.credits_per_30_days} credits left")
        running = f"{usage.member_active_jobs}"
        if limits.concurrent_jobs is not None:
            running += f" of {limits.concurrent_jobs} at a time"
        active = [
            job
            for job in await self.bot.jobs.recent_jobs(member.user_id, guild_id=member.guild_id, limit=25)
            if not job.state.is_final
        ]
        if active:
            running += "\n" + "\n".join(
                job_line(
                    job, message_link(job.requester.guild_id, job.requester.channel_id, job.status_message_id)
                )
                for job in active
            )
        embed.add_field(name="Videos in progress", value=truncate(running, 1024), inline=False)
        for name, value in describe_limits(limits):
            if name.startswith(("Allowed", "Max", "Cooldown")):
                embed.add_field(name=name, value=value)
        embed.set_footer(text="Credits per second of video:\n" + "\n".join(self._rates()))
        await reply_privately(interaction, embed=embed)

    # --- limits -----------------------------------------------------------------------------------------

    @limits.command(name="show", description="Show the limits set for the server, a role or a member")
    async def limits_show(
        self,
        interaction: discord.Interaction,
        role: discord.Role | None = None,
        member: discord.Member | None = None,
    ) -> None:
        """Show the limits set for the server, a role or a member."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        guild_id = member_of(interaction).guild_id
        if member is not None:
            target = Member(guild_id, member.id, tuple(r.id for r in member.roles))
            limits, rules = await self.quota.limits_for(target)
            embed = _limits_embed(f"Effective limits for {member.display_name}", limits, rules)
        else:
            config = await self.quota.store.config(guild_id)
            stored = config.roles.get(role.id) if role else config.server_default
            name = f"role {role.name}" if role else "the server default"
            embed = _limits_embed(
                f"Limits set for {name}", stored or MemberLimits(), None if role else config.rules
            )
            embed.set_footer(text="Not set: the next level applies (member → roles → server → bot defaults).")
        await reply_privately(interaction, embed=embed)

    @limits.command(name="set", description="Set limits for the server (default), a role or a member")
    @app_commands.describe(
        role="Set them for this role (members get the most generous of their roles)",
        member="Set them for this member (overrides roles)",
        credits_per_day="Credits per member per day (UTC)",
        credits_per_30_days="Credits per member over any 30 days",
        concurrent_jobs="Videos a member may have in progress at once",
        cooldown_s="Seconds a member must wait between requests",
        models="Comma-separated model keys allowed, e.g. seedance-1.0-pro,seedance-1.5-pro",
        max_resolution="Highest resolution allowed",
        max_duration_s="Longest video allowed, in seconds",
    )
    @app_commands.choices(
        max_resolution=[app_commands.Choice(name=r.value, value=r.value) for r in Resolution]
    )
    async def limits_set(  # noqa: PLR0917 - discord.py passes each command option as a parameter
        self,
        interaction: discord.Interaction,
        role: discord.Role | None = None,
        member: discord.Member | None = None,
        credits_per_day: app_commands.Range[int, 0, 1_000_000] | None = None,
        credits_per_30_days: app_commands.Range[int, 0, 10_000_000] | None = None,
        concurrent_jobs: app_commands.Range[int, 0, 100] | None = None,
        cooldown_s: app_commands.Range[int, 0, 86_400] | None = None,
        models: str | None = None,
        max_resolution: app_commands.Choice[str] | None = None,
        max_duration_s: app_commands.Range[int, 1, 60] | None = None,
    ) -> None:
        """Set limits for the server (default), a role or a member."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        guild_id = member_of(interaction).guild_id
        scope, target_id, label = self._target(role, member)
        allowed_models = None
        if models is not None:
            allowed_models = frozenset(key.strip() for key in models.split(",") if key.strip())
            for key in allowed_models:
                self.bot.runtime.catalogue.get(key)  # raises a clear error for a typo
        changes: dict[str, Any] = {
            "credits_per_day": credits_per_day,
            "credits_per_30_days": credits_per_30_days,
            "concurrent_jobs": concurrent_jobs,
            "cooldown_s": cooldown_s,
            "allowed_models": allowed_models,
            "max_resolution": Resolution(max_resolution.value) if max_resolution else None,
            "max_duration_s": max_duration_s,
        }
        given = {k: v for k, v in changes.items() if v is not None}
        # Read, change and write in one transaction: a moderator setting another field at the same moment
        # keeps theirs.
        updated = await self.quota.store.update_limits(
            guild_id,
            scope,
            target_id,
            lambda current: dataclasses.replace(current, **given),
            by=interaction.user.id,
        )
        await reply_privately(interaction, embed=_limits_embed(f"Limits for {label} saved", updated))

    @limits.command(name="reset", description="Remove the limits set for the server, a role or a member")
    async def limits_reset(
        self,
        interaction: discord.Interaction,
        role: discord.Role | None = None,
        member: discord.Member | None = None,
    ) -> None:
        """Remove the limits set for the server, a role or a member."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        guild_id = member_of(interaction).guild_id
        scope, target_id, label = self._target(role, member)
        await self.quota.store.set_limits(guild_id, scope, target_id, None, by=interaction.user.id)
        await reply_privately(interaction, f"Limits for {label} removed: the next level applies again.")

    @admin.command(name="budget", description="The whole server's credits per day and per month")
    async def budget(
        self,
        interaction: discord.Interaction,
        credits_per_day: app_commands.Range[int, 0, 10_000_000] | None = None,
        credits_per_month: app_commands.Range[int, 0, 100_000_000] | None = None,
    ) -> None:
        """The whole server's credits per day and per month."""
        await self._update_rules(
            interaction,
            lambda rules: dataclasses.replace(
                rules,
                credits_per_day=credits_per_day if credits_per_day is not None else rules.credits_per_day,
                credits_per_month=credits_per_month
                if credits_per_month is not None
                else rules.credits_per_month,
            ),
        )

    # --- channels, bans, words ------------------------------------------------------------------------------

    @channels.command(
        name="allow", description="Allow /animate in a channel (then only allowed channels work)"
    )
    async def channels_allow(self, interaction: discord.Interaction, channel: discord.TextChannel) -> None:
        """Allow /animate in a channel."""
        await self._update_rules(
            interaction,
            lambda rules: dataclasses.replace(
                rules, allowed_channel_ids=(rules.allowed_channel_ids or frozenset()) | {channel.id}
            ),
        )

    @channels.command(name="remove", description="Take a channel off the allow-list")
    async def channels_remove(self, interaction: discord.Interaction, channel: discord.TextChannel) -> None:
        """Take a channel off the allow-list."""
        await self._update_rules(
            interaction,
            lambda rules: dataclasses.replace(
                rules, allowed_channel_ids=(rules.allowed_channel_ids or frozenset()) - {channel.id} or None
            ),
        )

    @channels.command(name="clear", description="Allow /animate in every channel again")
    async def channels_clear(self, interaction: discord.Interaction) -> None:
        """Allow /animate in every channel again."""
        await self._update_rules(
            interaction, lambda rules: dataclasses.replace(rules, allowed_channel_ids=None)
        )

    @admin.command(name="ban", description="Stop a member from making videos here")
    async def ban(self, interaction: discord.Interaction, member: discord.Member) -> None:
        """Stop a member from making videos here."""
        await self._update_rules(
            interaction,
            lambda rules: dataclasses.replace(rules, banned_user_ids=rules.banned_user_ids | {member.id}),
        )

    @admin.command(name="unban", description="Let a banned member make videos again")
    async def unban(self, interaction: discord.Interaction, member: discord.Member) -> None:
        """Let a banned member make videos again."""
        await self._update_rules(
            interaction,
            lambda rules: dataclasses.replace(rules, banned_user_ids=rules.banned_user_ids - {member.id}),
        )

    @words.command(name="add", description="Refuse prompts containing these words (comma-separated)")
    async def words_add(self, interaction: discord.Interaction, words: str) -> None:
        """Refuse prompts containing these words."""
        added = [w.strip().lower() for w in words.split(",") if w.strip()]
        await self._update_rules(
            interaction,
            lambda rules: dataclasses.replace(
                rules, banned_words=tuple(dict.fromkeys([*rules.banned_words, *added]))
            ),
        )

    @words.command(name="remove", description="Allow these words again (comma-separated)")
    async def words_remove(self, interaction: discord.Interaction, words: str) -> None:
        """Allow these words again."""
        removed = {w.strip().lower() for w in words.split(",") if w.strip()}
        await self._update_rules(
            interaction,
            lambda rules: dataclasses.replace(
                rules, banned_words=tuple(w for w in rules.banned_words if w not in removed)
            ),
        )

    @words.command(name="list", description="The words and phrases refused in prompts")
    async def words_list(self, interaction: discord.Interaction) -> None:
        """The words and phrases refused in prompts."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        config = await self.quota.store.config(member_of(interaction).guild_id)
        words = config.rules.banned_words
        text = ", ".join(f"`{word}`" for word in words) if words else "No words are banned."
        await reply_privately(interaction, truncate(text, 2000))

    # --- usage and jobs ---------------------------------------------------------------------------------

    @admin.command(name="usage", description="Credits used per member and model, with a CSV file")
    @app_commands.describe(days="How many days back (default 30)")
    async def usage(
        self, interaction: discord.Interaction, days: app_commands.Range[int, 1, 366] = 30
    ) -> None:
        """Credits used per member and model, with a CSV file."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        guild_id = member_of(interaction).guild_id
        until = time.time()
        since = day_start(until) - (days - 1) * 86_400
        rows = await self.quota.store.usage_report(guild_id, since=since, until=until)
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(
            [
                "user_id",
                "model",
                "jobs",
                "credits_committed",
                "credits_reserved",
                "credits_released",
                "cost_usd",
            ]
        )
        for row in rows:
            writer.writerow(
                [
                    row.user_id,
                    row.model,
                    row.jobs,
                    row.credits_committed,
                    row.credits_reserved,
                    row.credits_released,
                    f"{row.cost_usd:.4f}" if row.cost_usd is not None else "",
                ]
            )
        lines = [
            f"<@{row.user_id}> · {self.bot.model_name(row.model)} · {row.jobs} videos · "
            f"{row.credits_committed + row.credits_reserved} credits"
            for row in sorted(rows, key=lambda r: -(r.credits_committed + r.credits_reserved))
        ]
        total = sum(row.credits_committed + row.credits_reserved for row in rows)
        embed = discord.Embed(
            title=f"Usage, last {days} days: {total} credits",
            description=truncate("\n".join(lines) or "No videos in this period.", 4096),
            colour=0x3B82F6,
        )
        embed.set_footer(
            text=f"Since {time.strftime('%Y-%m-%d', time.gmtime(since))} UTC · full table attached"
        )
        file = discord.File(io.BytesIO(buffer.getvalue().encode()), filename=f"seedance-usage-{days}d.csv")
        await interaction.followup.send(
            embed=embed, file=file, ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
        )

    @admin.command(name="jobs", description="Every video in progress in this server")
    async def active_jobs(self, interaction: discord.Interaction) -> None:
        """Every video in progress in this server."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        guild_id = member_of(interaction).guild_id
        jobs = [
            job for job in await self.bot.runtime.store.active_jobs() if job.requester.guild_id == guild_id
        ]
        lines = [
            f"<@{job.requester.user_id}> "
            + job_line(
                job, message_link(job.requester.guild_id, job.requester.channel_id, job.status_message_id)
            )
            for job in jobs
        ]
        embed = discord.Embed(
            title=f"{len(jobs)} video(s) in progress",
            description=truncate("\n".join(lines) or "Nothing in progress.", 4096),
            colour=0x3B82F6,
        )
        await reply_privately(interaction, embed=embed)

    @admin.command(name="cancel", description="Cancel any queued video in this server")
    @app_commands.rename(job_id="id")
    async def cancel_any(self, interaction: discord.Interaction, job_id: int) -> None:
        """Cancel any queued video in this server."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        guild_id = member_of(interaction).guild_id
        job = await self.bot.jobs.get_own(job_id, None)
        if job.requester.guild_id != guild_id:
            raise ModeratorOnlyError(f"There is no job #{job_id} in this server.")
        cancelled = await self.bot.jobs.cancel(job_id, None)
        await reply_privately(interaction, f"Cancelled video #{cancelled.id} of <@{job.requester.user_id}>.")

    # --- helpers ----------------------------------------------------------------------------------------

    def _rates(self) -> list[str]:
        """Each model's credits per second at each of its resolutions."""
        lines = []
        for spec in self.bot.runtime.catalogue:
            weights = {**DEFAULT_RESOLUTION_WEIGHTS, **(spec.credit_weights or {})}
            rates = ", ".join(f"{weights[r]} at {r.value}" for r in spec.resolutions)
            lines.append(f"{spec.display_name}: {rates}")
        return lines

    @staticmethod
    def _target(role: discord.Role | None, member: discord.Member | None) -> tuple[Scope, int, str]:
        if role is not None and member is not None:
            raise ModeratorOnlyError("Choose a role or a member, not both.")
        if role is not None:
            return "role", role.id, f"role {role.name}"
        if member is not None:
            return "member", member.id, member.display_name
        return "server", 0, "the server default"

    async def _update_rules(
        self, interaction: discord.Interaction, change: Callable[[ServerRules], ServerRules]
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        guild_id = member_of(interaction).guild_id
        updated = await self.quota.store.update_rules(guild_id, change, by=interaction.user.id)
        await reply_privately(interaction, embed=_rules_embed("Server rules saved", updated))


async def setup(bot: SeedanceBot) -> None:
    """Load the cog (discord.py extension entry point)."""
    await bot.add_cog(QuotaCog(bot))
