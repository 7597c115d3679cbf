"""Rendering plain presentation data as Discord embeds, and answering privately."""

from __future__ import annotations

import logging

import discord

from bot.domain.models import Job
from bot.jobs.errors import JobError
from bot.jobs.quota import Member
from bot.presentation import Card

log = logging.getLogger(__name__)

NO_MENTIONS = discord.AllowedMentions.none()


def card_embed(card: Card, *, thumbnail_url: str | None = None) -> discord.Embed:
    """An embed showing `card`."""
    embed = discord.Embed(title=card.title, description=card.description, colour=card.colour)
    for field in card.fields:
        embed.add_field(name=field.name, value=field.value, inline=field.inline)
    embed.set_footer(text=card.footer)
    if thumbnail_url is not None:
        embed.set_thumbnail(url=thumbnail_url)
    return embed


def message_link(guild_id: int | None, channel_id: int | None, message_id: int | None) -> str | None:
    """The jump link of a message, when all its ids are known."""
    if channel_id is None or message_id is None:
        return None
    return f"https://discord.com/channels/{guild_id or '@me'}/{channel_id}/{message_id}"


def video_link(job: Job) -> str | None:
    """The jump link of a delivered job's video post (in its thread, or its channel when it had none)."""
    ref = job.delivery_ref
    if ref is None or not ref.isdigit():
        return None
    return message_link(job.requester.guild_id, job.thread_id or job.requester.channel_id, int(ref))


def started_text(job: Job) -> str:
    """The member's private answer once their job started: where the video will appear."""
    where = f"in <#{job.thread_id}>" if job.thread_id else "in this channel"
    link = message_link(job.requester.guild_id, job.requester.channel_id, job.status_message_id)
    return f"Started video #{job.id}. It will be posted {where} when it is ready: {link}"


async def reply_privately(
    interaction: discord.Interaction,
    content: str | None = None,
    *,
    embed: discord.Embed | None = None,
    view: discord.ui.View | None = None,
) -> None:
    """Answer only the member who ran the command, whether or not the interaction was acknowledged yet."""
    try:
        if interaction.response.is_done():
            await interaction.followup.send(
                content=content or discord.utils.MISSING,
                embed=embed or discord.utils.MISSING,
                view=view or discord.utils.MISSING,
                ephemeral=True,
                allowed_mentions=NO_MENTIONS,
            )
        else:
            await interaction.response.send_message(
                content=content,
                embed=embed or discord.utils.MISSING,
                view=view or discord.utils.MISSING,
                ephemeral=True,
                allowed_mentions=NO_MENTIONS,
            )
    except discord.HTTPException as error:
        # The token may have expired (15 min) or the interaction timed out: nothing else to tell them on.
        log.warning("could not answer interaction %s: %s", interaction.id, error)


class GuildOnlyError(JobError):
    """A server command used somewhere else (a DM)."""


def member_of(interaction: discord.Interaction) -> Member:
    """The member behind an interaction: their roles and the channel, in the interaction's server."""
    if interaction.guild_id is None:
        raise GuildOnlyError("This command works in servers only.")
    roles = interaction.user.roles if isinstance(interaction.user, discord.Member) else []
    return Member(
        guild_id=interaction.guild_id,
        user_id=interaction.user.id,
        role_ids=tuple(role.id for role in roles),
        channel_id=interaction.channel_id,
    )
