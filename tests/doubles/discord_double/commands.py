"""Discord's rules for application commands as the double enforces them: names, descriptions, and the
`name_localizations` / `description_localizations` of commands, options and choices.

Discord refuses a command set that breaks one with 400 / 50035 "Invalid Form Body", the errors nested
under the path of the bad field (``{"0": {"options": {"1": {"name_localizations": {"fr": ...}}}}}``).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

import discord

from .model import field_error

#: The locale codes Discord knows (the keys a localization dictionary may use).
DISCORD_LOCALES = frozenset(locale.value for locale in discord.Locale)

CHAT_INPUT = 1
SUB_COMMAND = 1
SUB_COMMAND_GROUP = 2
NAME_MAX = 32
DESCRIPTION_MAX = 100
CHOICE_NAME_MAX = 100

# \p{sc=Deva} and \p{sc=Thai}: their combining marks are allowed in names, other scripts' are not.
_DEVANAGARI = (range(0x0900, 0x0980), range(0xA8E0, 0xA900))
_THAI = (range(0x0E00, 0x0E80),)


def _name_character(char: str) -> bool:
    if char in "-_" or unicodedata.category(char)[0] in "LN":
        return True
    return any(ord(char) in block for block in (*_DEVANAGARI, *_THAI))


def is_valid_name(name: object) -> bool:
    """Discord's `^[-_\\p{L}\\p{N}\\p{sc=Deva}\\p{sc=Thai}]{1,32}$`, lowercase where the script has case:
    the rule for slash command, subcommand and option names and their localizations."""
    return (
        isinstance(name, str)
        and 1 <= len(name) <= NAME_MAX
        and all(map(_name_character, name))
        and name == name.lower()
    )


def _length_error(limit: int) -> dict[str, Any]:
    return field_error("BASE_TYPE_BAD_LENGTH", f"Must be between 1 and {limit} in length.")


def localization_errors(
    localizations: object, *, valid: Any, invalid: dict[str, Any]
) -> dict[str, Any] | None:
    """The errors of one localization dictionary: unknown locale keys, values `valid` refuses."""
    if localizations is None:
        return None
    if not isinstance(localizations, Mapping):
        return field_error("DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
    errors: dict[str, Any] = {}
    for locale, value in localizations.items():
        if locale not in DISCORD_LOCALES:
            errors[str(locale)] = field_error("LOCALE_INVALID", f"Invalid locale: {locale}")
        elif not valid(value):
            errors[str(locale)] = invalid
    return errors or None


def _text_ok(limit: int) -> Any:
    return lambda value: isinstance(value, str) and 1 <= len(value) <= limit


_BAD_NAME = field_error("APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid")


def _localized_names(items: Iterable[Mapping[str, Any]]) -> dict[str, list[str]]:
    """Per locale, the names siblings show there (the default name where one has no localization)."""
    items = list(items)
    locales = {locale for item in items for locale in item.get("name_localizations") or {}}
    return {
        locale: [(item.get("name_localizations") or {}).get(locale, item.get("name")) for item in items]
        for locale in locales
    }


def _duplicate_localized_names(items: Iterable[Mapping[str, Any]]) -> dict[str, Any] | None:
    duplicated = {
        locale: field_error(
            "APPLICATION_COMMAND_OPTIONS_NAME_ALREADY_EXISTS", "Option names must be unique per locale"
        )
        for locale, names in _localized_names(items).items()
        if len(set(names)) != len(names)
    }
    return duplicated or None


def option_errors(option: Mapping[str, Any]) -> dict[str, Any]:
    """The errors of one option (subcommands and groups included, recursively)."""
    errors: dict[str, Any] = {}
    if not is_valid_name(option.get("name")):
        errors["name"] = _BAD_NAME
    for key, valid, invalid in (
        ("name_localizations", is_valid_name, _BAD_NAME),
        ("description_localizations", _text_ok(DESCRIPTION_MAX), _length_error(DESCRIPTION_MAX)),
    ):
        found = localization_errors(option.get(key), valid=valid, invalid=invalid)
        if found:
            errors[key] = found
    choices: dict[str, Any] = {}
    for index, choice in enumerate(option.get("choices") or []):
        found = localization_errors(
            choice.get("name_localizations"),
            valid=_text_ok(CHOICE_NAME_MAX),
            invalid=_length_error(CHOICE_NAME_MAX),
        )
        if found:
            choices[str(index)] = {"name_localizations": found}
    if choices:
        errors["choices"] = choices
    errors |= options_errors(option.get("options") or [])
    return errors


def options_errors(options: list[Mapping[str, Any]]) -> dict[str, Any]:
    """The errors of a list of sibling options, under ``options``."""
    nested: dict[str, Any] = {}
    for index, option in enumerate(options):
        found = option_errors(option)
        if found:
            nested[str(index)] = found
    duplicates = _duplicate_localized_names(options)
    if duplicates:
        nested["_errors"] = [
            {
                "code": "APPLICATION_COMMAND_OPTIONS_NAME_ALREADY_EXISTS",
                "message": f"Option names must be unique per locale ({', '.join(sorted(duplicates))})",
            }
        ]
    return {"options": nested} if nested else {}


def localization_errors_of_command(command: Mapping[str, Any]) -> dict[str, Any]:
    """The localization errors of one command, with those of its options and choices."""
    errors: dict[str, Any] = {}
    chat_input = command.get("type", CHAT_INPUT) == CHAT_INPUT
    # A context menu's name may hold spaces and capitals; so may its localizations.
    names_ok = is_valid_name if chat_input else _text_ok(NAME_MAX)
    found = localization_errors(command.get("name_localizations"), valid=names_ok, invalid=_BAD_NAME)
    if found:
        errors["name_localizations"] = found
    found = localization_errors(
        command.get("description_localizations"),
        valid=_text_ok(DESCRIPTION_MAX),
        invalid=_length_error(DESCRIPTION_MAX),
    )
    if found:
        errors["description_localizations"] = found
    return errors | options_errors(command.get("options") or [])


def duplicate_localized_command_names(commands: list[Mapping[str, Any]]) -> list[str]:
    """The locales in which two commands of the same type would show the same name."""
    clashes: set[str] = set()
    for kind in {command.get("type", CHAT_INPUT) for command in commands}:
        same_kind = [command for command in commands if command.get("type", CHAT_INPUT) == kind]
        for locale, names in _localized_names(same_kind).items():
            if len(set(names)) != len(names):
                clashes.add(locale)
    return sorted(clashes)
