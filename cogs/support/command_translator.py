"""Slash commands in the members' languages: discord.py's `app_commands.Translator` over the `commands`
catalogues.

discord.py asks the translator, when it syncs the commands, for every command, group, option and choice
name and description in every Discord locale; the answers become the `name_localizations` /
`description_localizations` Discord shows each member in their own language (None: Discord shows the
English default). Discord always sends the bot the English names back, so no handler changes.

The catalogue entries carry a context (`msgctxt`) naming the part of a command they belong to: the English
word "model" is an option name (`modèle`, lowercase, no spaces) in one place and a sentence's word in
another, and the `commands` catalogue must not answer for another domain's sentences (gettext's plain
lookup, `bot.i18n.Translator.text`, never sees entries with a context).

Moderator commands (those whose top-level command needs a permission, `/seedance-admin …`) keep their
English names, as Discord's own admin surfaces do; their descriptions are translated.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Any

import discord
from babel.messages.pofile import read_po
from discord import app_commands
from discord.app_commands import TranslationContextLocation as Location

from bot.i18n import LOCALES_DIR, Language, language_of

DOMAIN = "commands"

#: The placeholder description discord.py gives options nobody described.
_NO_DESCRIPTION = "…"

#: A run of two letters: what a string needs to say something that has a translation ("480p", "16:9"
#: and "…" read the same in every language, so Discord is left to show them as they are).
_WORDS = re.compile(r"[^\W\d_]{2,}")


class Part(StrEnum):
    """Which part of a command a catalogue entry names (its `msgctxt`)."""

    COMMAND_NAME = "command name"
    COMMAND_DESCRIPTION = "command description"
    OPTION_NAME = "option name"
    OPTION_DESCRIPTION = "option description"
    CHOICE = "choice"
    CONTEXT_MENU = "context menu"

    @property
    def is_name(self) -> bool:
        """Whether Discord holds this part to its name rules (lowercase, no spaces, 1 to 32 characters)."""
        return self in {Part.COMMAND_NAME, Part.OPTION_NAME}


def needs_translation(message: str) -> bool:
    """Whether `message` holds words (a resolution such as "480p" or a ratio such as "16:9" does not)."""
    return message != _NO_DESCRIPTION and _WORDS.search(message) is not None


#: One language's entries: (part, English) → translation.
Entries = Mapping[tuple[Part, str], str]


def read_catalogue(path: Path, language: Language) -> Entries:
    """The entries of one `commands.po` (entries without a known context are not command strings)."""
    with path.open("rb") as source:
        catalogue = read_po(source, locale=language.babel, domain=DOMAIN)
    entries: dict[tuple[Part, str], str] = {}
    for message in catalogue:
        if not message.id or not isinstance(message.id, str) or not isinstance(message.string, str):
            continue
        context = message.context or ""
        if context not in Part.__members__.values() or not message.string or message.fuzzy:
            continue
        entries[Part(context), message.id] = message.string
    return MappingProxyType(entries)


def read_catalogues(directory: Path = LOCALES_DIR) -> dict[Language, Entries]:
    """Every non-English language's `commands` entries (a language without a catalogue has none)."""
    catalogues: dict[Language, Entries] = {}
    for language in Language:
        path = directory / language.folder / "LC_MESSAGES" / f"{DOMAIN}.po"
        if language is not Language.ENGLISH and path.exists():
            catalogues[language] = read_catalogue(path, language)
    return catalogues


def part_of(context: app_commands.TranslationContextTypes) -> Part | None:
    """The part of a command discord.py asks about, or None for anything else."""
    location = context.location
    if location is Location.command_name:
        return Part.CONTEXT_MENU if isinstance(context.data, app_commands.ContextMenu) else Part.COMMAND_NAME
    parts = {
        Location.group_name: Part.COMMAND_NAME,
        Location.command_description: Part.COMMAND_DESCRIPTION,
        Location.group_description: Part.COMMAND_DESCRIPTION,
        Location.parameter_name: Part.OPTION_NAME,
        Location.parameter_description: Part.OPTION_DESCRIPTION,
        Location.choice_name: Part.CHOICE,
    }
    return parts.get(location)


def for_moderators(context: app_commands.TranslationContextTypes) -> bool:
    """Whether the string belongs to a moderator command (its top-level command needs a permission)."""
    data: Any = context.data
    if isinstance(data, app_commands.Parameter):
        data = data.command
    if isinstance(data, app_commands.Command | app_commands.Group):
        data = data.root_parent or data
    if isinstance(data, app_commands.Command | app_commands.Group | app_commands.ContextMenu):
        return data.default_permissions is not None
    return False


class CommandTranslator(app_commands.Translator):
    """Answers discord.py's questions about command strings from the `commands` catalogues."""

    def __init__(self, directory: Path = LOCALES_DIR) -> None:
        self._directory = directory
        self._catalogues: dict[Language, Entries] = {}

    async def load(self) -> None:
        """Read the catalogues (in a thread: the event loop is already running when the tree loads us)."""
        self._catalogues = await asyncio.to_thread(read_catalogues, self._directory)

    def localize(self, message: str, language: Language, part: Part) -> str | None:
        """`message` (the English string) as `part` in `language`, or None when Discord should show the
        English one (English itself, a string without words, or one the catalogue lacks)."""
        if language is Language.ENGLISH or not needs_translation(message):
            return None
        return self._catalogues.get(language, {}).get((part, message))

    async def translate(
        self,
        string: app_commands.locale_str,
        locale: discord.Locale,
        context: app_commands.TranslationContextTypes,
    ) -> str | None:
        """The translation discord.py syncs for `string` in `locale` (None: Discord shows the English)."""
        part = part_of(context)
        if part is None or (part.is_name and for_moderators(context)):
            return None
        # es-419 members read the Spanish catalogue, as for every other text (bot.i18n.language_of).
        return self.localize(string.message, language_of(locale), part)
