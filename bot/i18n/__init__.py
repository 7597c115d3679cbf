"""The bot in its members' languages: gettext message catalogues read with Babel, and Babel's formatting of
numbers for each language.

The catalogues are `bot/locales/<language>/LC_MESSAGES/<domain>.po`, one domain per part of the bot:
`commands` (slash command names, descriptions and choices), `refusals` (why a request was refused, with its
numbers), `cards` (status cards, results, buttons and other posts members read) and `admin` (quotas, budgets
and spend controls: the quota refusals members get, /quota, moderators' answers, audit lines and budget
alerts). The message id is the English sentence itself, placeholders in braces (`{width}`); English needs no
catalogue. They are compiled in memory when first used (`babel.messages.mofile`), so the repository holds
only the reviewable `.po` text.

A member's language is the one Discord reports for the interaction (`interaction.locale`), mapped to one of
`Language` by `language_of`: regional variants fall back to the language we have (en-GB to English, es-419
to Spanish), anything else to English.
"""

from __future__ import annotations

import functools
import gettext
import io
from collections.abc import Iterable
from enum import StrEnum
from pathlib import Path

from babel import Locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal

from bot.domain.text import Text, Value

LOCALES_DIR = Path(__file__).resolve().parent.parent / "locales"


class Language(StrEnum):
    """A language the bot speaks, by Discord's locale code."""

    ENGLISH = "en-US"
    FRENCH = "fr"
    GERMAN = "de"
    ITALIAN = "it"
    SPANISH = "es-ES"
    BRAZILIAN_PORTUGUESE = "pt-BR"
    JAPANESE = "ja"
    SIMPLIFIED_CHINESE = "zh-CN"

    @property
    def babel(self) -> Locale:
        """Babel's locale, for numbers, dates and plural rules."""
        return Locale.parse(self.value, sep="-")

    @property
    def folder(self) -> str:
        """The catalogue folder's name (gettext's spelling: `pt_BR`)."""
        return self.value.replace("-", "_")


#: Discord locales that are not one of ours but close enough to one.
_CLOSEST = {"en-GB": Language.ENGLISH, "es-419": Language.SPANISH}


def language_of(discord_locale: object, default: Language = Language.ENGLISH) -> Language:
    """Our language for a Discord locale (a `discord.Locale` or its code); `default` for any other."""
    code = str(getattr(discord_locale, "value", discord_locale) or "")
    try:
        return Language(code)
    except ValueError:
        return _CLOSEST.get(code, default)


_GROUPED_FROM = 10_000

DOMAINS = ("commands", "refusals", "cards", "admin")


class Translator:
    """Everything one language needs: its catalogues and its number formats."""

    def __init__(self, language: Language, catalogues: gettext.NullTranslations) -> None:
        self.language = language
        self._catalogues = catalogues

    def text(self, sentence: Text | str, /, **values: Value) -> str:
        """`sentence` (a `Text`, or a template with `values`) in this language, numbers formatted for it."""
        text = sentence if isinstance(sentence, Text) else Text(sentence, **values)
        template = self._catalogues.gettext(text.template)
        return template.format_map({name: self._value(value) for name, value in text.values.items()})

    def plural(self, singular: str, plural: str, count: int, /, **values: Value) -> str:
        """The form of the sentence for `count` (by the language's plural rules); `count` is a value too."""
        template = self._catalogues.ngettext(singular, plural, count)
        values = {"count": count, **values}
        return template.format_map({name: self._value(value) for name, value in values.items()})

    def number(self, value: float) -> str:
        """`value` written as this language writes numbers (12,345.5 / 12 345,5 / 12.345,5); below 10,000
        without grouping, as the English sentences write them (a 5999 px side)."""
        grouped = abs(value) >= _GROUPED_FROM
        return format_decimal(value, locale=self.language.babel, group_separator=grouped)

    def lookup(self, message_id: str) -> str | None:
        """The translation of `message_id` itself, or None when the catalogues have none."""
        translated = self._catalogues.gettext(message_id)
        return translated if translated != message_id or self.language is Language.ENGLISH else None

    def _value(self, value: Value) -> str:
        if isinstance(value, Text):
            return self.text(value)
        if isinstance(value, bool):
            return str(value)
        if isinstance(value, int | float):
            return self.number(value)
        return value


@functools.cache
def translator(language: Language) -> Translator:
    """The translator for `language` (catalogues compiled once per process)."""
    return Translator(language, _load(language, LOCALES_DIR, DOMAINS))


def for_locale(discord_locale: object, default: Language = Language.ENGLISH) -> Translator:
    """The translator for a Discord locale (see `language_of`)."""
    return translator(language_of(discord_locale, default))


def _load(language: Language, directory: Path, domains: Iterable[str]) -> gettext.NullTranslations:
    """Every domain's catalogue of `language`, chained: a message is looked up in each in turn."""
    chain: gettext.NullTranslations = gettext.NullTranslations()
    if language is Language.ENGLISH:
        return chain
    for domain in domains:
        path = directory / language.folder / "LC_MESSAGES" / f"{domain}.po"
        if not path.exists():
            continue
        with path.open("rb") as source:
            catalogue = read_po(source, locale=language.babel, domain=domain)
        compiled = io.BytesIO()
        write_mo(compiled, catalogue)
        compiled.seek(0)
        translations = gettext.GNUTranslations(compiled)
        translations.add_fallback(chain)
        chain = translations
    return chain
