"""/settings: a member's own defaults in this server: model, resolution, ratio, duration, audio, DM."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.domain.catalogue import Catalogue
from bot.domain.text import Text
from bot.i18n import Translator, for_locale
from bot.jobs.defaults import DefaultField, MemberDefaults
from bot.presentation import ENGLISH
from cogs.embeds import member_of, reply_privately
from cogs.support.choices import DURATION_MAX_S, DURATION_MIN_S, RATIO_CHOICES, RESOLUTION_CHOICES

if TYPE_CHECKING:
    from bot.app import SeedanceBot

#: Discord needs the bounds when the command is declared; the service checks the configured models' own.
_FIELD_NAMES = {
    DefaultField.MODEL: "Model",
    DefaultField.RESOLUTION: "Resolution",
    DefaultField.RATIO: "Ratio",
    DefaultField.DURATION: "Duration",
    DefaultField.AUDIO: "Audio",
    DefaultField.DM_WHEN_DONE: "DM me when done",
}


def _shown(field: DefaultField, value: object, catalogue: Catalogue) -> Text:
    if value is None:
        if field is DefaultField.MODEL:
            return Text("not set ({model})", model=catalogue.get(None).display_name)
        return Text("not set") if field is DefaultField.DM_WHEN_DONE else Text("not set (the model's own)")
    match field:
        case DefaultField.MODEL:
            name = str(value)
            if name in catalogue.keys:
                return Text.verbatim(catalogue.get(name).display_name)
            return Text("{model} (not offered now)", model=name)
        case DefaultField.DURATION:
            return Text("{seconds} s", seconds=value if isinstance(value, int) else str(value))
        case DefaultField.AUDIO:
            return Text("on" if value else "off")
        case DefaultField.DM_WHEN_DONE:
            return Text("yes" if value else "no")
    return Text.verbatim(str(getattr(value, "value", value)))


#: The footer under the defaults: how they are used.
_FOOTER = Text(
    "Used for what you leave out; what you give a command always wins. A default a model cannot use is "
    "skipped for that model. /settings set to change, /settings reset to clear."
)


def defaults_embed(
    title: Text, defaults: MemberDefaults, catalogue: Catalogue, tr: Translator | None = None
) -> discord.Embed:
    """The member's defaults, one field each, in `tr`'s language (English when None)."""
    tr = tr or ENGLISH
    embed = discord.Embed(title=tr.text(title), colour=0x3B82F6)
    for field, name in _FIELD_NAMES.items():
        shown = _shown(field, defaults.value(field), catalogue)
        embed.add_field(name=tr.text(Text(name)), value=tr.text(shown))
    embed.set_footer(text=tr.text(_FOOTER))
    return embed


class SettingsCog(commands.Cog):
    """The /settings group."""

    settings = app_commands.Group(
        name="settings", description="Your default options for videos in this server", guild_only=True
    )

    def __init__(self, bot: SeedanceBot) -> None:
        self.bot = bot

    @settings.command(name="show", description="Show your default options in this server")
    async def show(self, interaction: discord.Interaction) -> None:
        """Show your default options in this server."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        member = member_of(interaction)
        defaults = await self.bot.member_defaults.get(member.guild_id, member.user_id)
        await self._answer(interaction, Text("Your defaults here"), defaults)

    @settings.command(name="set", description="Set default options for your videos in this server")
    @app_commands.describe(
        model="The model to use when you name none",
        resolution="Output resolution",
        ratio="Output aspect ratio",
        duration="Seconds of video",
        audio="Generate sound (models that can)",
        dm_when_done="Also ping you by DM when a video is ready",
    )
    @app_commands.choices(
        resolution=RESOLUTION_CHOICES,
        ratio=RATIO_CHOICES,
    )
    async def set_defaults(  # noqa: PLR0917 - discord.py passes each command option as a parameter
        self,
        interaction: discord.Interaction,
        model: str | None = None,
        resolution: app_commands.Choice[str] | None = None,
        ratio: app_commands.Choice[str] | None = None,
        duration: app_commands.Range[int, DURATION_MIN_S, DURATION_MAX_S] | None = None,
        audio: bool | None = None,
        dm_when_done: bool | None = None,
    ) -> None:
        """Set default options for your videos in this server."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        member = member_of(interaction)
        defaults = await self.bot.member_defaults.update(
            member.guild_id,
            member.user_id,
            model=model,
            resolution=resolution.value if resolution else None,
            ratio=ratio.value if ratio else None,
            duration_s=duration,
            generate_audio=audio,
            dm_when_done=dm_when_done,
        )
        await self._answer(interaction, Text("Saved: your defaults here"), defaults)

    @set_defaults.autocomplete("model")
    async def _model_autocomplete(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        # Like /animate's: only what the server's moderators allow (a default they refuse would fail).
        allowed: frozenset[str] | None = None
        if self.bot.jobs.quota is not None and interaction.guild_id is not None:
            allowed = (await self.bot.jobs.quota.limits_for(member_of(interaction)))[0].allowed_models
        wanted = current.strip().lower()
        return [
            app_commands.Choice(name=spec.display_name, value=spec.key)
            for spec in self.bot.runtime.catalogue
            if (allowed is None or spec.key in allowed)
            and (wanted in spec.key or wanted in spec.display_name.lower())
        ][:25]

    @settings.command(name="reset", description="Forget your defaults here (all, or one)")
    @app_commands.describe(option="Only this one (default: all)")
    @app_commands.choices(
        option=[app_commands.Choice(name=name, value=field.value) for field, name in _FIELD_NAMES.items()]
    )
    async def reset(
        self, interaction: discord.Interaction, option: app_commands.Choice[str] | None = None
    ) -> None:
        """Forget your defaults here (all, or one)."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        member = member_of(interaction)
        only = None if option is None else [DefaultField(option.value)]
        defaults = await self.bot.member_defaults.reset(member.guild_id, member.user_id, only)
        await self._answer(interaction, Text("Reset: your defaults here"), defaults)

    async def _answer(self, interaction: discord.Interaction, title: Text, defaults: MemberDefaults) -> None:
        tr = for_locale(interaction.locale)
        embed = defaults_embed(title, defaults, self.bot.runtime.catalogue, tr)
        await reply_privately(interaction, embed=embed)


async def setup(bot: SeedanceBot) -> None:
    """Load the cog (discord.py extension entry point)."""
    await bot.add_cog(SettingsCog(bot))
