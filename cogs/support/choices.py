"""What slash-command options offer, from the model catalogue: written once for every command that asks."""

from __future__ import annotations

from discord import app_commands

from bot.domain.catalogue import default_catalogue
from bot.domain.models import Ratio, Resolution

_CATALOGUE = default_catalogue()

#: The widest duration any model accepts; each model's own range is checked by the catalogue.
DURATION_MIN_S = min(spec.duration_range_s[0] for spec in _CATALOGUE.every_spec)
DURATION_MAX_S = max(spec.duration_range_s[1] for spec in _CATALOGUE.every_spec)
#: The longest prompt any model takes, within what Discord lets a string option carry.
DISCORD_STRING_OPTION_MAX = 6000
PROMPT_OPTION_MAX_CHARS = min(
    DISCORD_STRING_OPTION_MAX, max(spec.prompt_max_chars for spec in _CATALOGUE.every_spec)
)
RESOLUTION_CHOICES = [app_commands.Choice(name=r.value, value=r.value) for r in Resolution]
RATIO_CHOICES = [app_commands.Choice(name=r.value, value=r.value) for r in Ratio]
