"""The "Animate image" menu (Apps → Animate image on a message): a form for the prompt, then /animate's flow.

The menu answers within Discord's 3 seconds with either the form or, for a message without a usable image, a
private answer saying why — judged from what Discord says of the image, before anything is downloaded. The
form's submit is handled by its custom id, so it works even after a restart (see cogs/support/forms.py).
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.domain.errors import OptionValueError
from bot.domain.models import FIRST_FRAME
from bot.domain.option_words import parse_option_words, split_option_words
from bot.domain.text import Text
from bot.i18n import Translator, for_locale
from bot.presentation import ENGLISH
from cogs.support.errors import answer_failure
from cogs.support.forms import ImageForm, ImageForms
from cogs.support.requests import MemberRequest, answer_started, start_from_interaction
from cogs.support.sources import cdn_input, choose_image, which_image

if TYPE_CHECKING:
    from bot.app import SeedanceBot

FORM_ID = re.compile(r"seedance:animate-image:(?P<token>[\w-]+)")
#: A modal's text input holds at most 4,000 characters.
PROMPT_FIELD_MAX = 4000


class AnimateImageForm(discord.ui.Modal, title="Animate image"):
    """The form: prompt, duration, and any other option as words, labelled in the member's language."""

    def __init__(self, *, custom_id: str, tr: Translator = ENGLISH) -> None:
        super().__init__(title=tr.text(Text("Animate image")), custom_id=custom_id)
        # Made per form, not once on the class: each member's form carries their language's words.
        self.prompt: discord.ui.TextInput[AnimateImageForm] = discord.ui.TextInput(
            label=tr.text(Text("What should happen in the video?")),
            custom_id="prompt",
            style=discord.TextStyle.paragraph,
            max_length=PROMPT_FIELD_MAX,
            placeholder=tr.text(Text("The boats rock gently as the sun rises")),
        )
        self.duration: discord.ui.TextInput[AnimateImageForm] = discord.ui.TextInput(
            label=tr.text(Text("Seconds (optional)")),
            custom_id="duration",
            required=False,
            max_length=3,
            placeholder="5",
        )
        # The options' own words (`ratio:9:16`) are what the member types in any language: kept as they are.
        self.more: discord.ui.TextInput[AnimateImageForm] = discord.ui.TextInput(
            label=tr.text(Text("More options (optional)")),
            custom_id="more",
            required=False,
            max_length=200,
            placeholder="model:2.0 ratio:9:16 resolution:720p audio:off",
        )
        for field in (self.prompt, self.duration, self.more):
            self.add_item(field)


def _field(interaction: discord.Interaction, name: str) -> str:
    """A submitted text field by custom id (classic rows or label components alike)."""
    data: dict[str, Any] = dict(interaction.data or {})
    for row in data.get("components") or []:
        # Classic forms: action rows of text inputs; newer ones: label components wrapping one input each.
        for component in row.get("components") or [row.get("component") or row]:
            if component.get("custom_id") == name:
                return str(component.get("value") or "")
    return ""


class AnimateImageCog(commands.Cog):
    """The "Animate image" message command and its form."""

    def __init__(self, bot: SeedanceBot) -> None:
        self.bot = bot
        self.forms = ImageForms(bot.runtime.state_store)
        self.menu = app_commands.ContextMenu(name="Animate image", callback=self.animate_image)
        self.menu.guild_only = True
        bot.tree.add_command(self.menu)

    async def cog_load(self) -> None:
        """Drop forms opened a day ago and never sent (a closed form leaves its image's record behind)."""
        await self.forms.forget_stale()

    async def cog_unload(self) -> None:
        """Take the menu out of the command tree with the cog."""
        self.bot.tree.remove_command(self.menu.name, type=self.menu.type)

    async def animate_image(self, interaction: discord.Interaction, message: discord.Message) -> None:
        """Open the form for the message's first usable image (or say why there is none)."""
        chosen = choose_image(message)  # NoUsableImageError: the tree's handler answers privately
        form = ImageForm(
            url=chosen.image.url,
            name=chosen.image.name,
            size_bytes=chosen.image.size_bytes,
            position=chosen.position,
            count=chosen.count,
            user_id=interaction.user.id,
            opened_at=time.time(),
        )
        modal = AnimateImageForm(
            custom_id=f"seedance:animate-image:{await self.forms.remember(form)}",
            tr=for_locale(interaction.locale),
        )
        await interaction.response.send_modal(modal)
        modal.stop()  # the submit is handled by custom id below, restart or not: no form held in memory

    @commands.Cog.listener()
    async def on_interaction(self, interaction: discord.Interaction) -> None:
        """A submitted "Animate image" form: start the video."""
        if interaction.type is not discord.InteractionType.modal_submit:
            return
        data: dict[str, Any] = dict(interaction.data or {})
        match = FORM_ID.fullmatch(str(data.get("custom_id", "")))
        if match is None:
            return
        try:
            await interaction.response.defer(ephemeral=True, thinking=True)
            await self._submit(interaction, match["token"])
        except Exception as error:  # noqa: BLE001 - every failure is answered through the one mapping
            await answer_failure(interaction, error)

    async def _submit(self, interaction: discord.Interaction, token: str) -> None:
        form = await self.forms.take(token, interaction.user.id)
        prompt, duration, more = (_field(interaction, name) for name in ("prompt", "duration", "more"))
        leftover, _ = split_option_words(more)
        if leftover:
            raise OptionValueError(
                Text(
                    "I couldn't read “{words}” in More options: write options as words like "
                    "`ratio:9:16 audio:off`.",
                    words=leftover,
                )
            )
        seconds = duration.strip().lower().removesuffix("s").strip()
        if seconds and not seconds.isdigit():
            raise OptionValueError(
                Text("“{words}” is not a number of seconds: write it like `8`.", words=duration.strip())
            )
        words = f"{prompt}\n{more}".strip() + (f" duration:{seconds}" if seconds else "")
        parsed = parse_option_words(words, self.bot.runtime.catalogue)
        request = MemberRequest(
            parsed.model, parsed.options, (cdn_input(self.bot, FIRST_FRAME, form.url, form.size_bytes),)
        )
        job = await start_from_interaction(self.bot, interaction, request)
        await answer_started(self.bot, interaction, job, which_image(form.position, form.count, form.name))


async def setup(bot: SeedanceBot) -> None:
    """Load the cog (discord.py extension entry point)."""
    await bot.add_cog(AnimateImageCog(bot))
