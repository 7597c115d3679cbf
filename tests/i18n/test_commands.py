"""The `commands` catalogues against the commands the bot registers: every name, description, choice and
context-menu string discord.py will ask about has a translation in every language, valid for Discord."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import discord
import pytest
from discord import app_commands

from bot.app import EXTENSIONS, SeedanceBot
from bot.i18n import Language
from bot.runtime import open_runtime
from bot.settings import Settings
from cogs.support.command_translator import (
    CommandTranslator,
    Part,
    for_moderators,
    needs_translation,
    part_of,
    read_catalogues,
)
from tests.doubles.discord_double.commands import (
    CHOICE_NAME_MAX,
    DESCRIPTION_MAX,
    NAME_MAX,
    duplicate_localized_command_names,
    is_valid_name,
    localization_errors_of_command,
)

TRANSLATED = [language for language in Language if language is not Language.ENGLISH]


@pytest.fixture
async def tree(tmp_path: Path) -> AsyncIterator[app_commands.CommandTree[SeedanceBot]]:
    """The command tree with every cog loaded, as setup_hook builds it (nothing connects to Discord)."""
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, runcomfy_api_key="key", database_path=tmp_path / "bot.sqlite3", http_listen_port=0
    )
    async with open_runtime(settings) as runtime:
        bot = SeedanceBot(runtime)
        for extension in EXTENSIONS:
            await bot.load_extension(extension)
        yield bot.tree
        await bot.close()


class Recorder(app_commands.Translator):
    """Writes down every string discord.py asks to translate, with where it sits."""

    def __init__(self) -> None:
        self.asked: dict[tuple[str, Part, bool], None] = {}

    async def translate(
        self, string: app_commands.locale_str, locale: discord.Locale, context: Any
    ) -> str | None:
        part = part_of(context)
        assert part is not None, f"unexpected translation context {context.location}"
        self.asked[string.message, part, for_moderators(context)] = None
        return None


async def asked_strings(tree: app_commands.CommandTree[SeedanceBot]) -> list[tuple[str, Part, bool]]:
    recorder = Recorder()
    for command in tree.get_commands():
        await command.get_translated_payload(tree, recorder)
    return list(recorder.asked)


async def translated_payload(
    tree: app_commands.CommandTree[SeedanceBot], translator: app_commands.Translator
) -> list[dict[str, Any]]:
    return [await command.get_translated_payload(tree, translator) for command in tree.get_commands()]


@pytest.fixture
async def translator() -> CommandTranslator:
    loaded = CommandTranslator()
    await loaded.load()
    return loaded


def valid_for(part: Part, value: str) -> bool:
    if part.is_name:
        return is_valid_name(value)
    limit = {Part.CONTEXT_MENU: NAME_MAX, Part.CHOICE: CHOICE_NAME_MAX}.get(part, DESCRIPTION_MAX)
    return 1 <= len(value) <= limit and value == value.strip()


async def test_every_string_the_bot_registers_has_a_valid_translation_in_every_language(tree, translator):
    asked = await asked_strings(tree)
    # The walk sees the whole tree: slash commands, a context menu, options, choices, moderators' groups.
    assert {part for _, part, _ in asked} == set(Part)
    assert ("animate", Part.COMMAND_NAME, False) in asked
    assert ("Animate image", Part.CONTEXT_MENU, False) in asked
    assert ("adaptive", Part.CHOICE, False) in asked
    problems = []
    for message, part, moderators in asked:
        if not needs_translation(message) or (part.is_name and moderators):
            continue
        for language in TRANSLATED:
            translation = translator.localize(message, language, part)
            if translation is None or not valid_for(part, translation):
                problems.append(f"{language.value} {part.value} {message!r}: {translation!r}")
    assert problems == []


async def test_the_catalogues_hold_nothing_the_bot_does_not_register(tree):
    asked = {(part, message) for message, part, _ in await asked_strings(tree)}
    for language, entries in read_catalogues().items():
        assert set(entries) - asked == set(), f"stale entries in {language.folder}/commands.po"


async def test_the_synced_payload_carries_every_language_and_passes_discords_rules(tree, translator):
    payload = await translated_payload(tree, translator)
    assert duplicate_localized_command_names(payload) == []
    expected = {language.value for language in TRANSLATED} | {"es-419"}
    for command in payload:
        assert localization_errors_of_command(command) == {}, command["name"]
        if command["name"] != "seedance-admin":
            assert set(command["name_localizations"]) == expected, command["name"]
        if command.get("type", 1) == 1:
            assert set(command["description_localizations"]) == expected, command["name"]
    animate = next(command for command in payload if command["name"] == "animate")
    assert animate["name_localizations"]["fr"] == "animer"
    assert animate["name_localizations"]["es-419"] == animate["name_localizations"]["es-ES"]
    ratio = next(option for option in animate["options"] if option["name"] == "ratio")
    assert ratio["name_localizations"]["de"] == "seitenverhältnis"
    adaptive = next(choice for choice in ratio["choices"] if choice["name"] == "adaptive")
    assert adaptive["name_localizations"]["zh-CN"] == "自适应"
    # A resolution reads the same everywhere: Discord shows "720p" as it is.
    assert all("name_localizations" not in choice for choice in ratio["choices"] if choice["name"] == "16:9")


async def test_moderator_commands_keep_english_names_and_translate_descriptions(tree, translator):
    payload = await translated_payload(tree, translator)
    admin = next(command for command in payload if command["name"] == "seedance-admin")
    assert admin["name_localizations"] == {}
    assert admin["description_localizations"]["fr"].startswith("Modération")

    def walk(option: dict[str, Any]) -> None:
        assert not option.get("name_localizations"), option["name"]
        for child in option.get("options") or []:
            walk(child)

    for option in admin["options"]:
        walk(option)
    limits = next(option for option in admin["options"] if option["name"] == "limits")
    assert limits["description_localizations"]["ja"] == "メンバーごとのクレジットと上限"


async def test_a_missing_translation_leaves_discord_to_show_the_english(tmp_path):
    folder = tmp_path / "fr" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    (folder / "commands.po").write_text(
        'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n"Language: fr\\n"\n\n'
        'msgctxt "command name"\nmsgid "animate"\nmsgstr "animer"\n',
        encoding="utf-8",
    )
    translator = CommandTranslator(tmp_path)
    await translator.load()
    assert translator.localize("animate", Language.FRENCH, Part.COMMAND_NAME) == "animer"
    # The same English word in another part, or another language, is not translated by accident.
    assert translator.localize("animate", Language.FRENCH, Part.CHOICE) is None
    assert translator.localize("animate", Language.GERMAN, Part.COMMAND_NAME) is None
    assert translator.localize("video", Language.FRENCH, Part.COMMAND_NAME) is None
    assert translator.localize("animate", Language.ENGLISH, Part.COMMAND_NAME) is None


@pytest.mark.parametrize("message", ["480p", "16:9", "…", "21:9"])
def test_strings_without_words_need_no_translation(message):
    assert not needs_translation(message)


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("animer", True),
        ("seitenverhältnis", True),
        ("アスペクト比", True),
        ("marca_de_agua", True),
        ("Animer", False),
        ("two words", False),
        ("a" * 33, False),
        ("", False),
        ("画像・動画", False),  # the middle dot is punctuation, not a letter
        ("l'image", False),
    ],
)
def test_discords_name_rule(name, valid):
    assert is_valid_name(name) is valid
