"""The buttons on a video's post and on a status card, as discord.py `DynamicItem`s: the job id and the action
live in the custom id (`seedance:reroll:42`), so a press after a restart — or on a post months old — is
rebuilt from the id alone. Nothing is held in memory per message.

A press is dispatched as the bot event `result_press` (or `variation_chosen`), which cogs/results.py handles.

Everyone who sees a post shares its buttons, so they are labelled in the post's language (the requester's),
not each reader's; the custom ids are the same in every language.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any

import discord

from bot.domain.catalogue import Catalogue
from bot.domain.errors import DomainError
from bot.domain.models import Job, JobState
from bot.domain.text import Text
from bot.i18n import Language, Translator, translator
from bot.jobs.derive import Variation, VariationKind, variation_choices


class ResultAction(StrEnum):
    """What a button does."""

    REROLL = "reroll"
    EXTEND = "extend"
    DELETE = "delete"
    CANCEL = "cancel"


_BUTTON_LOOK: dict[ResultAction, tuple[str, str, discord.ButtonStyle]] = {
    ResultAction.REROLL: ("Re-roll", "🎲", discord.ButtonStyle.primary),
    ResultAction.EXTEND: ("Extend", "⏩", discord.ButtonStyle.secondary),
    ResultAction.DELETE: ("Delete", "🗑️", discord.ButtonStyle.danger),
    ResultAction.CANCEL: ("Cancel", "✖️", discord.ButtonStyle.secondary),
}
#: Which states a status card offers Cancel in: before the provider started generating.
CANCELLABLE_STATES = frozenset({JobState.PENDING, JobState.QUEUED})


class ResultButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=r"seedance:(?P<action>reroll|extend|delete|cancel):(?P<job_id>[0-9]+)",
):
    """Re-roll, Extend, Delete or Cancel, for one job."""

    def __init__(self, action: ResultAction, job_id: int, tr: Translator | None = None) -> None:
        label, emoji, style = _BUTTON_LOOK[action]
        label = (tr or translator(Language.ENGLISH)).text(Text(label))
        super().__init__(
            discord.ui.Button(label=label, emoji=emoji, style=style, custom_id=f"seedance:{action}:{job_id}")
        )
        self.action = action
        self.job_id = job_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> ResultButton:
        """Rebuild the button from its custom id (after a restart too)."""
        return cls(ResultAction(match["action"]), int(match["job_id"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        """Hand the press to the results cog (which answers within 3 s and maps every error)."""
        interaction.client.dispatch("result_press", interaction, self.action, self.job_id)


class VariationSelect(
    discord.ui.DynamicItem[discord.ui.Select[Any]], template=r"seedance:vary:(?P<job_id>[0-9]+)"
):
    """The Variations menu: a new video from the same inputs with one option changed."""

    def __init__(
        self, job_id: int, options: list[discord.SelectOption] | None = None, tr: Translator | None = None
    ) -> None:
        super().__init__(
            discord.ui.Select(
                custom_id=f"seedance:vary:{job_id}",
                placeholder=(tr or translator(Language.ENGLISH)).text(Text("Variations…")),
                options=options or [discord.SelectOption(label="…", value="none")],
            )
        )
        self.job_id = job_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> VariationSelect:
        """Rebuild the menu from its custom id; the chosen value arrives with the interaction."""
        return cls(int(match["job_id"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        """Hand the choice to the results cog."""
        data: dict[str, Any] = dict(interaction.data or {})
        choice = str(next(iter(data.get("values") or []), ""))
        interaction.client.dispatch("variation_chosen", interaction, self.job_id, choice)


def variation_label(tr: Translator, choice: Variation, english: str, catalogue: Catalogue) -> str:
    """A Variations menu entry in `tr`'s language ("8 seconds long", "8 秒の長さ"); `english` as it was."""
    match choice.kind:
        case VariationKind.DURATION if choice.value.isdigit():
            return tr.text(Text("{seconds} seconds long", seconds=int(choice.value)))
        case VariationKind.RESOLUTION:
            return tr.text(Text("In {resolution}", resolution=choice.value))
        case VariationKind.MODEL:
            try:
                name = catalogue.get(choice.value).display_name
            except DomainError:
                return english
            return tr.text(Text("With {model}", model=name))
        case _:
            return english


def result_view(
    job: Job, catalogue: Catalogue, *, with_file: bool = True, tr: Translator | None = None
) -> discord.ui.View:
    """The buttons under a finished video: Re-roll, Extend (when the video was posted as a file), Delete,
    and the Variations menu; labelled in `tr`'s language (English without)."""
    tr = tr or translator(Language.ENGLISH)
    view = discord.ui.View(timeout=None)
    actions = [ResultAction.REROLL, *([ResultAction.EXTEND] if with_file else []), ResultAction.DELETE]
    for action in actions:
        view.add_item(ResultButton(action, job.id, tr))
    choices = variation_choices(job, catalogue)
    if choices:
        options = [
            discord.SelectOption(label=variation_label(tr, choice, label, catalogue), value=choice.token)
            for choice, label in choices
        ]
        view.add_item(VariationSelect(job.id, options, tr))
    return view


def card_view(job: Job, *, tr: Translator | None = None) -> discord.ui.View | None:
    """The status card's buttons: Cancel while the job waits for the provider; none afterwards."""
    if job.state not in CANCELLABLE_STATES:
        return None
    view = discord.ui.View(timeout=None)
    view.add_item(ResultButton(ResultAction.CANCEL, job.id, tr))
    return view
