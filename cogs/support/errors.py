"""The one error mapping: every failure of a slash command, context menu, modal, button or message handler
becomes the same kind of answer — the specific message of an expected error, or a short reference id (with the
traceback in the log) for an unexpected one.

discord.py routes only application-command errors to the tree's handler: a modal's `on_error` and a dynamic
item's callback only log. The handlers for those call `answer_failure` themselves, so the member always hears
what happened.

The answer is in the member's language (the interaction's locale): an expected error carries its sentence
as a `Text`, rendered here with the member's translator, numbers and all.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping

import discord
from discord import app_commands

from bot.domain.errors import DomainError
from bot.domain.text import Text
from bot.i18n import Language, Translator, for_locale
from bot.jobs.errors import JobError
from bot.jobs.explain import explain_submit_error
from bot.providers.errors import ProviderError
from cogs.embeds import reply_privately

log = logging.getLogger(__name__)

#: Permissions as Discord's own settings screens name them.
_PERMISSION_LABELS = {"manage_guild": "Manage Server", "manage_channels": "Manage Channels"}


def describe_failure(error: BaseException, *, action: str, translator: Translator | None = None) -> str:
    """The member-facing text for a failure of `action` ("/animate", "the Re-roll button"...), in the
    language of `translator` (English when None).

    Expected errors carry their own message; anything else is logged with a reference id the member can
    quote to the bot's owner.
    """
    text = failure_text(error, action=action)
    if translator is None or translator.language is Language.ENGLISH:
        # English is the sentence itself, exactly as `str` writes it (floats by `{:g}`, not by Babel).
        return str(text)
    return translator.text(text)


def failure_text(error: BaseException, *, action: str) -> Text:
    """What `describe_failure` says, as a sentence not yet in any language (logging an unexpected error)."""
    cause: BaseException = error.original if isinstance(error, app_commands.CommandInvokeError) else error
    match cause:
        case DomainError() | JobError():
            return cause.text
        case ProviderError():
            return explain_submit_error(cause).text
        case app_commands.NoPrivateMessage():
            return Text("This command works in servers only.")
        case app_commands.MissingPermissions():
            if len(cause.missing_permissions) == 1:
                return Text(
                    "Only members with the {permission} permission can use this command.",
                    permission=_permission_label(cause.missing_permissions[0]),
                )
            return Text(
                "Only members with {permissions} can use this command.",
                permissions=_permission_names(cause.missing_permissions),
            )
        case app_commands.BotMissingPermissions():
            if len(cause.missing_permissions) == 1:
                return Text(
                    "I need the {permission} permission in this channel to do that.",
                    permission=_permission_label(cause.missing_permissions[0]),
                )
            return Text(
                "I need {permissions} in this channel to do that.",
                permissions=_permission_names(cause.missing_permissions),
            )
        case app_commands.CommandOnCooldown():
            return Text(
                "Slow down a little: try again in {seconds} s.", seconds=int(f"{cause.retry_after:.0f}")
            )
        case app_commands.TransformerError():
            return Text("“{value}” is not a valid value for that option.", value=str(cause.value))
        case app_commands.CheckFailure():
            return Text("You can't use this command here.")
        case _:
            reference = secrets.token_hex(3).upper()
            log.error("[ref %s] %s failed unexpectedly", reference, action, exc_info=cause)
            return Text(
                "Something went wrong on the bot's side (reference `{reference}`). Nothing was charged "
                "unless you were told the job started. The bot's owner can find the details in its logs.",
                reference=reference,
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
    """Answer the member privately, in their language, with what went wrong (see `describe_failure`)."""
    text = describe_failure(
        error, action=interaction_action(interaction), translator=for_locale(interaction.locale)
    )
    await reply_privately(interaction, text)


def _permission_label(permission: str) -> str:
    # Discord's own name for it, which its settings screens show (in English here; Discord's words).
    return _PERMISSION_LABELS.get(permission, permission.replace("_", " ").title())


def _permission_names(permissions: list[str]) -> str:
    return " and ".join(f"the {_permission_label(name)} permission" for name in permissions)
