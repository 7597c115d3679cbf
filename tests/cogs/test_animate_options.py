"""The options /animate and /video declare to Discord: the prompt's length bound and the web search switch."""

from __future__ import annotations

from typing import Any

import pytest
from discord import AppCommandOptionType, app_commands

from bot.domain.catalogue import SEEDANCE_2_PROMPT_MAX_CHARS, default_catalogue
from cogs.animate import AnimateCog
from cogs.support.choices import DISCORD_STRING_OPTION_MAX, PROMPT_OPTION_MAX_CHARS

COMMANDS: dict[str, app_commands.Command[Any, Any, Any]] = {
    "animate": AnimateCog.animate,
    "video": AnimateCog.video,
}


def parameter(command: app_commands.Command[Any, Any, Any], name: str) -> app_commands.Parameter:
    return next(p for p in command.parameters if p.name == name)


def test_the_prompt_option_takes_the_longest_prompt_any_model_takes_within_discords_ceiling() -> None:
    longest = max(spec.prompt_max_chars for spec in default_catalogue().every_spec)
    assert longest == SEEDANCE_2_PROMPT_MAX_CHARS > DISCORD_STRING_OPTION_MAX
    assert PROMPT_OPTION_MAX_CHARS == DISCORD_STRING_OPTION_MAX == 6000


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_command_bounds_its_prompt_at_the_option_maximum(name: str) -> None:
    prompt = parameter(COMMANDS[name], "prompt")
    assert prompt.type is AppCommandOptionType.string
    assert (prompt.min_value, prompt.max_value) == (1, PROMPT_OPTION_MAX_CHARS)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_command_offers_an_optional_web_search_switch_within_discords_limits(name: str) -> None:
    command = COMMANDS[name]
    web_search = parameter(command, "web_search")
    assert web_search.type is AppCommandOptionType.boolean
    assert not web_search.required
    assert "search the web" in web_search.description
    assert len(web_search.description) <= 100  # Discord's limit for an option description
    assert len(command.parameters) <= 25  # Discord's limit of options per command
