"""/quota for members; /seedance-admin for moderators: limits, budget, channels, bans, words, usage, jobs, and
the language of the server's public posts.

Every answer is in the language of the one who asked (`interaction.locale`): /quota in the member's,
/seedance-admin in the moderator's. The moderators' command and option names stay English, as Discord's own
server settings are where moderators work; their descriptions are translated (catalogue `commands`).
"""

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
    limit_fields,
    next_day_start,
    rule_fields,
)
from bot.domain.text import Text, Value
from bot.i18n import Language, Translator, for_locale
from bot.jobs.errors import JobError
from bot.jobs.ports import UsageRow
from bot.jobs.quota import Member, QuotaService
from bot.presentation import job_line, timestamp, truncate
from cogs.embeds import member_of, message_link, reply_privately

if TYPE_CHECKING:
    from bot.app import SeedanceBot

Scope = Literal["server", "role", "member"]


class ModeratorOnlyError(JobError):
    """A moderator command run by someone without Manage Server, or aimed outside their server."""


#: The languages a moderator can choose for public posts, each named in itself (as Discord's own language
#: menu names them), and "automatic": none set.
LANGUAGE_CHOICES: tuple[tuple[str, str], ...] = (
    ("English", Language.ENGLISH.value),
    ("Français", Language.FRENCH.value),
    ("Deutsch", Language.GERMAN.value),
    ("Italiano", Language.ITALIAN.value),
    ("Español", Language.SPANISH.value),
    ("Português do Brasil", Language.BRAZILIAN_PORTUGUESE.value),
    ("日本語", Language.JAPANESE.value),
    ("简体中文", Language.SIMPLIFIED_CHINESE.value),
    ("Automatic", "automatic"),
)


def _rules_embed(tr: Translator, title: Text, rules: ServerRules) -> discord.Embed:
    embed = discord.Embed(title=tr.text(title), colour=0x3B82F6)
    for name, value in rule_fields(rules):
        embed.add_field(name=tr.text(name), value=tr.text(value))
    return embed


def _limits_embed(
    tr: Translator, title: Text, limits: MemberLimits, rules: ServerRules | None = None
) -> discord.Embed:
    embed = discord.Embed(title=tr.text(title), colour=0x3B82F6)
    for name, value in limit_fields(limits, rules):
        embed.add_field(name=tr.text(name), value=tr.text(value))
    return embed


def language_name(language: Language, tr: Translator) -> str:
    """`language` as the reader's language names it ("allemand" to a French reader), by Babel."""
    return language.babel.get_display_name(tr.language.babel) or language.value


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
            raise ModeratorOnlyError(Text("Quotas are not enabled on this bot."))
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
        tr = for_locale(interaction.locale)
        member = member_of(interaction)
        overview = await self.quota.overview(member)
        limits, usage = overview.limits, overview.usage
        embed = discord.Embed(title=tr.text(Text("Your Seedance quota here")), colour=0x3B82F6)
        if limits.credits_per_day is not None:
            left = max(0, limits.credits_per_day - usage.member_credits_today)
            embed.add_field(
                name=tr.text(Text("Today")),
                value=tr.text(
                    Text(
                        "{left} of {limit} credits left · resets {when}",
                        left=left,
                        limit=limits.credits_per_day,
                        when=timestamp(next_day_start(usage.now)),
                    )
                ),
            )
        if limits.credits_per_30_days is not None:
            left = max(0, limits.credits_per_30_days - usage.member_credits_30_days)
            embed.add_field(
                name=tr.text(Text("Last 30 days")),
                value=tr.text(
                    Text("{left} of {limit} credits left", left=left, limit=limits.credits_per_30_days)
                ),
            )
        running = (
            tr.number(usage.member_active_jobs)
            if limits.concurrent_jobs is None
            else tr.text(
                Text(
                    "{active} of {limit} at a time",
                    active=usage.member_active_jobs,
                    limit=limits.concurrent_jobs,
                )
            )
        )
        active = [
            job
            for job in await self.bot.jobs.recent_jobs(member.user_id, guild_id=member.guild_id, limit=25)
            if not job.state.is_final
        ]
        if active:
            running += "\n" + "\n".join(
                job_line(
                    job,
                    message_link(job.requester.guild_id, job.requester.channel_id, job.status_message_id),
                    tr,
                )
                for job in active
            )
        embed.add_field(name=tr.text(Text("Videos in progress")), value=truncate(running, 1024), inline=False)
        # The caps on one video, where set (credits and videos at once are shown above).
        caps = {
            "Wait between videos": limits.cooldown_s,
            "Models": limits.allowed_models,
            "Highest resolution": limits.max_resolution,
            "Longest video": limits.max_duration_s,
            "Videos per hour": limits.videos_per_hour,
        }
        for name, value in limit_fields(limits):
            if caps.get(name.template) is not None:
                embed.add_field(name=tr.text(name), value=tr.text(value))
        rates = "\n".join(self._rates(tr))
        embed.set_footer(text=tr.text(Text("Credits per second of video:\n{rates}", rates=rates)))
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
        tr = for_locale(interaction.locale)
        guild_id = member_of(interaction).guild_id
        if member is not None:
            target = Member(guild_id, member.id, tuple(r.id for r in member.roles))
            limits, rules = await self.quota.limits_for(target)
            title = Text("Effective limits for {member}", member=member.display_name)
            embed = _limits_embed(tr, title, limits, rules)
        else:
            config = await self.quota.store.config(guild_id)
            stored = config.roles.get(role.id) if role else config.server_default
            title = (
                Text("Limits set for role {role}", role=role.name)
                if role
                else Text("Limits set for the server default")
            )
            embed = _limits_embed(tr, title, stored or MemberLimits(), None if role else config.rules)
            embed.set_footer(
                text=tr.text(
                    Text("Not set: the next level applies (member → roles → server → bot defaults).")
                )
            )
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
        videos_per_hour="Videos a member may start in any hour",
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
        videos_per_hour: app_commands.Range[int, 0, 1_000] | None = None,
    ) -> None:
        """Set limits for the server (default), a role or a member."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        guild_id = member_of(interaction).guild_id
        scope, target_id = self._target(role, member)
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
            "videos_per_hour": videos_per_hour,
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
        title = (
            Text("Limits for role {role} saved", role=role.name)
            if role is not None
            else Text("Limits for {member} saved", member=member.display_name)
            if member is not None
            else Text("Limits for the server default saved")
        )
        embed = _limits_embed(for_locale(interaction.locale), title, updated)
        await reply_privately(interaction, embed=embed)

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
        scope, target_id = self._target(role, member)
        await self.quota.store.set_limits(guild_id, scope, target_id, None, by=interaction.user.id)
        answer = (
            Text("Limits for role {role} removed: the next level applies again.", role=role.name)
            if role is not None
            else Text(
                "Limits for {member} removed: the next level applies again.", member=member.display_name
            )
            if member is not None
            else Text("Limits for the server default removed: the next level applies again.")
        )
        await reply_privately(interaction, for_locale(interaction.locale).text(answer))

    @admin.command(name="budget", description="The whole server's credits per day and per month")
    @app_commands.describe(max_credits_per_job="The most credits one video may cost (0: no cap)")
    async def budget(
        self,
        interaction: discord.Interaction,
        credits_per_day: app_commands.Range[int, 0, 10_000_000] | None = None,
        credits_per_month: app_commands.Range[int, 0, 100_000_000] | None = None,
        max_credits_per_job: app_commands.Range[int, 0, 1_000_000] | None = None,
    ) -> None:
        """The whole server's credits per day and per month, and the most one video may cost."""
        await self._update_rules(
            interaction,
            lambda rules: dataclasses.replace(
                rules,
                credits_per_day=credits_per_day if credits_per_day is not None else rules.credits_per_day,
                credits_per_month=credits_per_month
                if credits_per_month is not None
                else rules.credits_per_month,
                # A cap of 0 would refuse every video; a moderator who means that has /seedance-admin ban.
                max_credits_per_job=rules.max_credits_per_job
                if max_credits_per_job is None
                else max_credits_per_job or None,
            ),
        )

    @admin.command(name="audit", description="Post a line per video and the budget alerts in a channel")
    @app_commands.describe(
        channel="Where the lines and alerts go", alert_role="The role budget alerts mention (optional)"
    )
    async def audit(
        self,
        interaction: discord.Interaction,
        channel: discord.TextChannel,
        alert_role: discord.Role | None = None,
    ) -> None:
        """Post a line per video started and ended, and the budget alerts, in `channel`."""
        await self._update_rules(
            interaction,
            lambda rules: dataclasses.replace(
                rules,
                audit_channel_id=channel.id,
                alert_role_id=alert_role.id if alert_role is not None else None,
            ),
        )

    @admin.command(name="audit-off", description="Stop posting video lines and budget alerts")
    async def audit_off(self, interaction: discord.Interaction) -> None:
        """Stop posting audit lines and budget alerts."""
        await self._update_rules(
            interaction,
            lambda rules: dataclasses.replace(rules, audit_channel_id=None, alert_role_id=None),
        )

    @admin.command(
        name="language", description="The language of public posts where a member's own is unknown"
    )
    @app_commands.describe(
        language="Leave out to see the current setting; Automatic: Discord's server language"
    )
    @app_commands.choices(
        language=[app_commands.Choice(name=name, value=value) for name, value in LANGUAGE_CHOICES]
    )
    async def language(
        self, interaction: discord.Interaction, language: app_commands.Choice[str] | None = None
    ) -> None:
        """Set (or show) the language of the server's public posts where a member's own is unknown."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        tr = for_locale(interaction.locale)
        guild_id = member_of(interaction).guild_id
        languages = self.bot.languages
        if language is not None:
            chosen = None if language.value == "automatic" else Language(language.value)
            await languages.set_server(guild_id, chosen)
        chosen = await languages.of_server(guild_id)
        if chosen is not None:
            answer = Text(
                "Public posts in this server are in {language} where the member's own language is not known "
                "(mention replies from new members, audit lines, budget alerts). Members who have used a "
                "command keep their own language on their cards and threads.",
                language=language_name(chosen, tr),
            )
        else:
            guild = interaction.guild
            preferred = await languages.for_post(None, guild.preferred_locale if guild is not None else None)
            answer = Text(
                "No language is set for this server: public posts use Discord's server language "
                "({language}) where the member's own language is not known.",
                language=language_name(preferred, tr),
            )
        await reply_privately(interaction, tr.text(answer))

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
        text = (
            ", ".join(f"`{word}`" for word in words)
            if words
            else for_locale(interaction.locale).text(Text("No words are banned."))
        )
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
        tr = for_locale(interaction.locale)
        lines = [
            tr.text(self._usage_line(row))
            for row in sorted(rows, key=lambda r: -(r.credits_committed + r.credits_reserved))
        ]
        total = sum(row.credits_committed + row.credits_reserved for row in rows)
        reported = [row.cost_usd for row in rows if row.cost_usd is not None]
        # The provider's own figure where it reports one; credits are the bot's, dollars the provider's.
        title = (
            Text(
                "Usage, last {days} days: {total} credits · {cost} reported by the provider",
                days=days,
                total=total,
                cost=f"${sum(reported):.4f}",
            )
            if reported
            else Text("Usage, last {days} days: {total} credits", days=days, total=total)
        )
        embed = discord.Embed(
            title=tr.text(title),
            description=truncate("\n".join(lines) or tr.text(Text("No videos in this period.")), 4096),
            colour=0x3B82F6,
        )
        embed.set_footer(
            text=tr.text(
                Text(
                    "Since {date} UTC · full table attached",
                    date=time.strftime("%Y-%m-%d", time.gmtime(since)),
                )
            )
        )
        file = discord.File(io.BytesIO(buffer.getvalue().encode()), filename=f"seedance-usage-{days}d.csv")
        await interaction.followup.send(
            embed=embed, file=file, ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
        )

    @admin.command(name="jobs", description="Every video in progress in this server")
    async def active_jobs(self, interaction: discord.Interaction) -> None:
        """Every video in progress in this server."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        tr = for_locale(interaction.locale)
        guild_id = member_of(interaction).guild_id
        jobs = [
            job for job in await self.bot.runtime.store.active_jobs() if job.requester.guild_id == guild_id
        ]
        lines = [
            f"<@{job.requester.user_id}> "
            + job_line(
                job,
                message_link(job.requester.guild_id, job.requester.channel_id, job.status_message_id),
                tr,
            )
            for job in jobs
        ]
        embed = discord.Embed(
            title=tr.text(Text("{count} video(s) in progress", count=len(jobs))),
            description=truncate("\n".join(lines) or tr.text(Text("Nothing in progress.")), 4096),
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
            # A job id is an id, not a number to group ("#12345", never "#12,345"): said as a string.
            raise ModeratorOnlyError(Text("There is no job #{id} in this server.", id=str(job_id)))
        cancelled = await self.bot.jobs.cancel(job_id, None)
        answer = Text(
            "Cancelled video #{id} of {member}.", id=str(cancelled.id), member=f"<@{job.requester.user_id}>"
        )
        await reply_privately(interaction, for_locale(interaction.locale).text(answer))

    # --- helpers ----------------------------------------------------------------------------------------

    def _rates(self, tr: Translator) -> list[str]:
        """Each model's credits per second at each of its resolutions."""
        lines = []
        for spec in self.bot.runtime.catalogue:
            weights = {**DEFAULT_RESOLUTION_WEIGHTS, **(spec.credit_weights or {})}
            rates = ", ".join(
                tr.text(Text("{credits} at {resolution}", credits=weights[r], resolution=r.value))
                for r in spec.resolutions
            )
            lines.append(f"{spec.display_name}: {rates}")
        return lines

    def _usage_line(self, row: UsageRow) -> Text:
        """One member's use of one model, for the usage embed."""
        values: dict[str, Value] = {
            "member": f"<@{row.user_id}>",
            "model": self.bot.model_name(row.model),
            "jobs": row.jobs,
            "credits": row.credits_committed + row.credits_reserved,
        }
        if row.cost_usd is None:
            return Text("{member} · {model} · {jobs} videos · {credits} credits", **values)
        return Text(
            "{member} · {model} · {jobs} videos · {credits} credits · {cost} reported",
            cost=f"${row.cost_usd:.4f}",
            **values,
        )

    @staticmethod
    def _target(role: discord.Role | None, member: discord.Member | None) -> tuple[Scope, int]:
        if role is not None and member is not None:
            raise ModeratorOnlyError(Text("Choose a role or a member, not both."))
        if role is not None:
            return "role", role.id
        if member is not None:
            return "member", member.id
        return "server", 0

    async def _update_rules(
        self, interaction: discord.Interaction, change: Callable[[ServerRules], ServerRules]
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        guild_id = member_of(interaction).guild_id
        updated = await self.quota.store.update_rules(guild_id, change, by=interaction.user.id)
        embed = _rules_embed(for_locale(interaction.locale), Text("Server rules saved"), updated)
        await reply_privately(interaction, embed=embed)


async def setup(bot: SeedanceBot) -> None:
    """Load the cog (discord.py extension entry point)."""
    await bot.add_cog(QuotaCog(bot))
