"""The commands Discord shows in eight languages: the bot syncs name and description localizations for
every non-English language, a changed translation syncs again, and the double refuses a localization
Discord would refuse."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

import cogs.support.command_translator as command_i18n
from bot.i18n import Language
from cogs.support.command_translator import Part

NON_ENGLISH = {language.value for language in Language if language is not Language.ENGLISH}


def named(commands: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(command for command in commands if command["name"] == name)


async def test_synced_commands_carry_name_and_description_localizations_for_seven_languages(bot, discord):
    commands = discord.commands(None)
    assert bot.commands_synced is True and commands
    for command in commands:
        if command["type"] == 1:
            assert set(command["description_localizations"]) >= NON_ENGLISH, command["name"]
        if command["name"] != "seedance-admin":  # moderators' command names stay English
            assert set(command["name_localizations"]) >= NON_ENGLISH, command["name"]
    animate = named(commands, "animate")
    assert animate["name_localizations"]["ja"] == "動画化"
    assert animate["description_localizations"]["fr"] == "Transformer une image en courte vidéo avec Seedance"
    prompt = named(animate["options"], "prompt")
    assert prompt["name_localizations"]["zh-CN"] == "提示词"
    assert set(prompt["description_localizations"]) >= NON_ENGLISH
    menu = named(commands, "Animate image")
    assert menu["name_localizations"]["de"] == "Bild animieren"
    admin = named(commands, "seedance-admin")
    assert not admin.get("name_localizations")
    assert admin["description_localizations"]["pt-BR"].startswith("Moderadores")


async def test_a_changed_translation_syncs_the_commands_again(harness, discord, monkeypatch):
    await harness.start()
    await harness.stop()
    second = await harness.start()
    assert second.commands_synced is False  # nothing changed: no sync, no daily create budget spent
    await harness.stop()
    reviewed = "Transformer une image en une courte vidéo avec Seedance"
    read_catalogues = command_i18n.read_catalogues

    def with_a_reviewed_sentence(*args: Any) -> dict[Language, Any]:
        catalogues = dict(read_catalogues(*args))
        english = "Turn an image into a short video with Seedance"
        catalogues[Language.FRENCH] = {
            **catalogues[Language.FRENCH],
            (Part.COMMAND_DESCRIPTION, english): reviewed,
        }
        return catalogues

    monkeypatch.setattr(command_i18n, "read_catalogues", with_a_reviewed_sentence)
    third = await harness.start()
    assert third.commands_synced is True
    assert named(discord.commands(None), "animate")["description_localizations"]["fr"] == reviewed


GOOD_COMMAND: dict[str, Any] = {
    "name": "animate",
    "type": 1,
    "description": "Turn an image into a short video",
    "name_localizations": {"fr": "animer"},
    "description_localizations": {"fr": "Transformer une image en courte vidéo"},
    "options": [
        {
            "type": 3,
            "name": "ratio",
            "description": "Output aspect ratio",
            "name_localizations": {"fr": "format"},
            "choices": [{"name": "adaptive", "value": "adaptive", "name_localizations": {"fr": "adaptatif"}}],
        },
        {
            "type": 3,
            "name": "prompt",
            "description": "What happens",
            "name_localizations": {"ja": "プロンプト"},
        },
    ],
}


def spoiled(path: list[Any], value: Any) -> dict[str, Any]:
    import copy

    command = copy.deepcopy(GOOD_COMMAND)
    target: Any = command
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return command


@pytest.mark.parametrize(
    ("command", "error_path"),
    [
        (GOOD_COMMAND, None),
        (spoiled(["name_localizations", "fr"], "Animer"), ["0", "name_localizations", "fr"]),
        (spoiled(["name_localizations", "fr"], "animer une image"), ["0", "name_localizations", "fr"]),
        (spoiled(["name_localizations", "fr"], "a" * 33), ["0", "name_localizations", "fr"]),
        (spoiled(["name_localizations"], {"fr-FR": "animer"}), ["0", "name_localizations", "fr-FR"]),
        (spoiled(["description_localizations", "fr"], "x" * 101), ["0", "description_localizations", "fr"]),
        (spoiled(["description_localizations", "fr"], ""), ["0", "description_localizations", "fr"]),
        (
            spoiled(["options", 0, "name_localizations", "fr"], "le format"),
            ["0", "options", "0", "name_localizations", "fr"],
        ),
        (
            spoiled(["options", 0, "choices", 0, "name_localizations", "fr"], "y" * 101),
            ["0", "options", "0", "choices", "0", "name_localizations", "fr"],
        ),
        # Two options showing the same name in French.
        (spoiled(["options", 1, "name_localizations"], {"fr": "format"}), ["0", "options", "_errors"]),
    ],
)
async def test_the_double_refuses_localizations_discord_refuses(discord, command, error_path):
    url = f"{discord.api_base}/applications/{discord.application_id}/commands"
    headers = {"Authorization": f"Bot {discord.token}"}
    async with aiohttp.ClientSession() as session, session.put(url, json=[command], headers=headers) as reply:
        body = await reply.json()
    if error_path is None:
        assert reply.status == 200, body
        assert body[0]["name_localizations"] == {"fr": "animer"}
        return
    assert (reply.status, body["code"], body["message"]) == (400, 50035, "Invalid Form Body")
    errors = body["errors"]
    for step in error_path:
        errors = errors[step]
    assert errors
