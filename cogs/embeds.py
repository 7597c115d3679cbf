"""Rendering plain presentation data as Discord embeds, and answering privately.

The words themselves — cards, posts, private answers, in the reader's language — are written once, in
`bot.presentation`; this module only turns them into Discord objects.
"""

from __future__ import annotations

import logging

import discord

from bot.domain.models import Job
from bot.domain.text import Text
from bot.jobs.errors import JobError
from bot.jobs.quota import Member
from bot.presentation import Card
from bot.presentation import message_link as message_link  # noqa: PLC0414 - the cogs take it from here

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


def video_link(job: Job) -> str | None:
    """The jump link of a delivered job's video post (in its thread, or its channel when it had none)."""
    ref = job.delivery_ref
    if ref is None or not ref.isdigit():
        return None
    return message_link(job.requester.guild_id, job.thread_id or job.requester.channel_id, int(ref))


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
        raise GuildOnlyError(Text("This command works in servers only."))
    roles = interaction.user.roles if isinstance(interaction.user, discord.Member) else []
    return Member(
        guild_id=interaction.guild_id,
        user_id=interaction.user.id,
        role_ids=tuple(role.id for role in roles),
        channel_id=interaction.channel_id,
    )
