"""Starting a video from any Discord front end — a slash command, the "Animate image" form, a mention, a
button — through the one flow of `JobService.start`, and the member's answer once it started.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import discord

from bot.domain.catalogue import RequestedOptions, prompt_advice_text
from bot.domain.errors import DomainError
from bot.domain.models import Job, JobOrigin, Lineage, Requester
from bot.domain.text import Text
from bot.i18n import Language, Translator, for_locale
from bot.jobs.quota import Member
from bot.jobs.service import InputFile, VideoOrder
from bot.presentation import localized_started_text, not_started_text
from cogs.embeds import member_of, reply_privately
from cogs.support.notifier import reply_handle
from cogs.support.publisher import DiscordPublisher, RequestPlace

if TYPE_CHECKING:
    from bot.app import SeedanceBot


@dataclass(frozen=True)
class MemberRequest:
    """What a member asked for, in any front end: the model, the options, the files, and its origin."""

    model: str | None
    options: RequestedOptions
    inputs: tuple[InputFile, ...]
    lineage: Lineage | None = None


async def start_from_interaction(
    bot: SeedanceBot, interaction: discord.Interaction, request: MemberRequest
) -> Job:
    """Run the request of an acknowledged interaction (remembered by the intake until it is stored)."""
    member = member_of(interaction)
    publisher = DiscordPublisher.for_interaction(bot, interaction)
    order = _order(request, member, interaction.filesize_limit, reply_handle(interaction))
    async with bot.intake.receiving(interaction):
        return await bot.jobs.start(order, publisher)


async def start_from_message(
    bot: SeedanceBot, message: discord.Message, request: MemberRequest, *, reply_handle: str | None = None
) -> Job:
    """Run the request of a member's message that mentioned the bot (`reply_handle`: its intake handle)."""
    place = RequestPlace.of_message(message)
    order = _order(request, message_member(message), place.upload_limit_bytes, reply_handle)
    return await bot.jobs.start(order, DiscordPublisher(bot, place))


def message_member(message: discord.Message) -> Member:
    """The member behind a server message, with their roles (which quotas and rules look at)."""
    assert message.guild is not None  # RequestPlace.of_message refuses other messages first
    roles = message.author.roles if isinstance(message.author, discord.Member) else []
    return Member(
        guild_id=message.guild.id,
        user_id=message.author.id,
        role_ids=tuple(role.id for role in roles),
        channel_id=message.channel.id,
    )


def _order(request: MemberRequest, member: Member, upload_limit: int, handle: str | None) -> VideoOrder:
    requester = Requester(
        origin=JobOrigin.DISCORD,
        user_id=member.user_id,
        guild_id=member.guild_id,
        channel_id=member.channel_id,
    )
    return VideoOrder(
        model=request.model,
        options=request.options,
        inputs=request.inputs,
        requester=requester,
        member=member,
        upload_limit_bytes=upload_limit,
        reply_handle=handle,
        lineage=request.lineage,
    )


async def answer_started(
    bot: SeedanceBot, interaction: discord.Interaction, job: Job, *notes: Text | None
) -> None:
    """Tell the member privately where their video will appear (or why it did not start), with any notes
    — such as a prompt longer than its model's advised length."""
    tr = for_locale(interaction.locale)
    await reply_privately(interaction, outcome_text(tr, job, prompt_note(bot, job), *notes))


def prompt_note(bot: SeedanceBot, job: Job) -> Text | None:
    """A gentle note when the prompt passes its model's advised length (it was sent as is)."""
    try:
        spec = bot.runtime.catalogue.get(job.model)
    except DomainError:
        return None
    return None if job.state.is_final else prompt_advice_text(spec, job.request.prompt)


def outcome_text(tr: Translator, job: Job, *notes: Text | None) -> str:
    """The member's private answer in `tr`'s language: where the video will appear, or why it did not
    start; and any notes."""
    lines = [not_started_text(tr, job) if job.state.is_final else localized_started_text(tr, job)]
    # English notes exactly as the English sentences write them (`str`), others through the catalogues.
    lines += [str(note) if tr.language is Language.ENGLISH else tr.text(note) for note in notes if note]
    return "\n".join(lines)
