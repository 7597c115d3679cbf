"""The one error mapping: every failure of a slash command, context menu, modal, button or message handler
becomes the same kind of answer — the specific message of an expected error, or a short reference id (with the
traceback in the log) for an unexpected one.

discord.py routes only application-command errors to the tree's handler: a modal's `on_error` and a dynamic
item's callback only log. The handlers for those call `answer_failure` themselves, so the member always hears
what happened.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping

import discord
from discord import app_commands

from bot.domain.errors import DomainError
from bot.jobs.errors import JobError
from bot.jobs.explain import explain_submit_error
from bot.providers.errors import ProviderError
from cogs.embeds import reply_privately

log = logging.getLogger(__name__)

#: Permissions as Discord's own settings screens name them.
_PERMISSION_LABELS = {"manage_guild": "Manage Server", "manage_channels": "Manage Channels"}


def describe_failure(error: BaseException, *, action: str) -> str:
    """The member-facing text for a failure of `action` ("/animate", "the Re-roll button"...).

    Expected errors carry their own message; anything else is logged with a reference id the member can
    quote to the bot's owner.
    """
    cause: BaseException = error.original if isinstance(error, app_commands.CommandInvokeError) else error
    match cause:
        case DomainError() | JobError():
            return cause.message
        case ProviderError():
            return explain_submit_error(cause).message
        case app_commands.NoPrivateMessage():
            return "This command works in servers only."
        case app_commands.MissingPermissions():
            return f"Only members with {_permission_names(cause.missing_permissions)} can use this command."
        case app_commands.BotMissingPermissions():
            return f"I need {_permission_names(cause.missing_permissions)} in this channel to do that."
        case app_commands.CommandOnCooldown():
            return f"Slow down a little: try again in {cause.retry_after:.0f} s."
        case app_commands.TransformerError():
            return f"“{cause.value}” is not a valid value for that option."
        case app_commands.CheckFailure():
            return "You can't use this command here."
        case _:
            reference = secrets.token_hex(3).upper()
            log.error("[ref %s] %s failed unexpectedly", reference, action, exc_info=cause)
            return (
                f"Something went wrong on the bot's side (reference `{reference}`). Nothing was charged "
                "unless you were told the job started. The bot's owner can find the details in its logs."
            )


def interaction_action(interaction: discord.Interaction) -> str:
    """How the logs name what the member did: "/animate", "Animate image", "a button (seedance:reroll:4)"."""
    if interaction.command is not None:
        if isinstance(interaction.command, app_commands.ContextMenu):
            return interaction.command.name
        return f"/{interaction.command.qualified_name}"
    data: Mapping[str, object] = interaction.data or {}
    custom_id = data.get("custom_id", "?")
    kind = "a form" if interaction.type is discord.InteractionType.modal_submit else "a button"
    return f"{kind} ({custom_id})"


async def answer_failure(interaction: discord.Interaction, error: BaseException) -> None:
    """Answer the member privately with what went wrong (see `describe_failure`)."""
    await reply_privately(interaction, describe_failure(error, action=interaction_action(interaction)))


def _permission_names(permissions: list[str]) -> str:
    labels = [_PERMISSION_LABELS.get(name, name.replace("_", " ").title()) for name in permissions]
    return " and ".join(f"the {label} permission" for label in labels)
