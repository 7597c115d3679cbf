"""Every domain's catalogues (commands, refusals, cards, admin), whoever writes them: each parses, holds no
fuzzy or empty entry, says every placeholder of the English and no other, and every language of a domain
has the same entries. The checks run on each .po file in bot/locales, and on broken examples to show
they fail."""

from __future__ import annotations

import string
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.pofile import PoFileError, read_po

from bot.i18n import DOMAINS, LOCALES_DIR, Language

TRANSLATED = [language for language in Language if language is not Language.ENGLISH]
FILES = sorted(LOCALES_DIR.glob("*/LC_MESSAGES/*.po"))
#: An entry's identity: its context and its English.
Key = tuple[str | None, str]


def placeholders(template: str) -> set[str]:
    """The named values of a brace template ("{width}", "{size:,}" -> width, size); raises on bad braces."""
    return {field for _, field, _, _ in string.Formatter().parse(template) if field is not None}


def read(path: Path, language: Language) -> Catalog:
    with path.open("rb") as source:
        return read_po(source, locale=language.babel, abort_invalid=True)


def language_of_folder(path: Path) -> Language:
    folder = path.parent.parent.name
    return next(language for language in Language if language.folder == folder)


def problems_of(catalogue: Catalog) -> list[str]:
    """What is wrong with the entries of one catalogue (empty when nothing is)."""
    problems: list[str] = []
    for message in catalogue:
        if not message.id:
            continue  # the header
        problems.extend(f"{_label(message)}: {problem}" for problem in _entry_problems(message))
    return problems


def _label(message: Message) -> str:
    english = message.id[0] if isinstance(message.id, tuple | list) else message.id
    return f"{message.context + ' | ' if message.context else ''}{english!r}"


def _entry_problems(message: Message) -> list[str]:
    if message.fuzzy:
        return ["fuzzy"]
    ids = list(message.id) if isinstance(message.id, tuple | list) else [message.id]
    forms = list(message.string) if isinstance(message.string, tuple | list) else [message.string]
    if any(not form for form in forms):
        return ["empty translation"]
    try:
        english = [placeholders(text) for text in ids]
        said = [placeholders(form) for form in forms]
    except ValueError as error:
        return [f"broken braces ({error})"]
    problems: list[str] = []
    if len(ids) == 1:
        if said[0] != english[0]:
            problems.append(f"placeholders {sorted(said[0])}, the English has {sorted(english[0])}")
        return problems
    # A plural: the forms may write "one" for {count} where their language does (English "one video"),
    # but every other value is in every form, and the last (many) form says the count as the English does.
    values = english[-1] - {"count"}
    if english[0] - {"count"} != values:
        problems.append(f"singular and plural English differ: {sorted(english[0])} / {sorted(english[-1])}")
    for index, form in enumerate(said):
        if form - {"count"} != values or not form <= english[0] | english[-1]:
            problems.append(f"plural form {index} has {sorted(form)}, the English {sorted(english[-1])}")
    if ("count" in said[-1]) != ("count" in english[-1]):
        problems.append("the last plural form and the English plural disagree on {count}")
    return problems


def keys(catalogue: Catalog) -> set[Key]:
    return {
        (message.context, message.id[0] if isinstance(message.id, tuple | list) else message.id)
        for message in catalogue
        if message.id
    }


def test_there_are_catalogues_to_check():
    assert any(path.stem == "commands" for path in FILES)
    assert {path.stem for path in FILES} <= set(DOMAINS), "a catalogue of a domain bot.i18n never loads"


@pytest.mark.parametrize("path", FILES, ids=lambda path: f"{path.parent.parent.name}/{path.name}")
def test_each_catalogue_parses_and_every_entry_says_what_the_english_says(path):
    language = language_of_folder(path)
    catalogue = read(path, language)
    assert catalogue.locale is not None and str(catalogue.locale) == str(language.babel), "Language header"
    assert problems_of(catalogue) == []


@pytest.mark.parametrize("domain", sorted({path.stem for path in FILES}))
def test_every_language_of_a_domain_has_the_same_entries(domain):
    entries: dict[Language, set[Key]] = {}
    for language in TRANSLATED:
        path = LOCALES_DIR / language.folder / "LC_MESSAGES" / f"{domain}.po"
        assert path.exists(), f"{language.folder} has no {domain}.po"
        entries[language] = keys(read(path, language))
    every = set().union(*entries.values())
    missing = {language.folder: sorted(map(str, every - found)) for language, found in entries.items()}
    assert {folder: keys_ for folder, keys_ in missing.items() if keys_} == {}


# ------------------------------------------------------------------ the checks fail where they should


HEADER = 'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n"Language: {language}\\n"\n\n'


def catalogue_of(body: str, language: str = "fr") -> Catalog:
    from io import BytesIO

    return read_po(BytesIO((HEADER.format(language=language) + body).encode()), abort_invalid=True)


GOOD = (
    '#, python-brace-format\nmsgid "The image is {width} px wide."\n'
    'msgstr "L\'image fait {width} px de large."\n'
)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (GOOD, None),
        (GOOD.replace("{width} px de", "px de"), "placeholders []"),
        (GOOD.replace("{width} px de", "{width} {height} px de"), "placeholders ['height', 'width']"),
        (GOOD.replace("{width} px de", "{largeur} px de"), "placeholders ['largeur']"),
        (GOOD.replace("{width} px de", "{width px de"), "broken braces"),
        (GOOD.replace("#, python-brace-format", "#, fuzzy, python-brace-format"), "fuzzy"),
        ('msgid "Cancel"\nmsgstr ""\n', "empty translation"),
        (
            '#, python-brace-format\nmsgid "one video of {model}"\nmsgid_plural "{count} videos of {model}"\n'
            'msgstr[0] "{count} vidéo de {model}"\nmsgstr[1] "{count} de vidéos de {model}"\n'
            'msgstr[2] "{count} vidéos de {model}"\n',
            None,
        ),
        (
            '#, python-brace-format\nmsgid "one video of {model}"\nmsgid_plural "{count} videos of {model}"\n'
            'msgstr[0] "{count} vidéo de {model}"\nmsgstr[1] "{count} de vidéos de {model}"\n'
            'msgstr[2] "{count} vidéos"\n',
            "plural form 2",
        ),
        (
            '#, python-brace-format\nmsgid "one video"\nmsgid_plural "{count} videos"\n'
            'msgstr[0] "une vidéo"\nmsgstr[1] "{count} de vidéos"\nmsgstr[2] "des vidéos"\n',
            "disagree on {count}",
        ),
        (
            '#, python-brace-format\nmsgid "one video"\nmsgid_plural "{count} videos"\n'
            'msgstr[0] "{count} vidéo"\nmsgstr[1] "{count} de vidéos"\n',
            "empty translation",  # French has three forms (one, many: a million, other): Babel pads with ""
        ),
    ],
)
def test_the_entry_checks_catch_what_they_should(body, problem):
    found = problems_of(catalogue_of(body))
    if problem is None:
        assert found == []
    else:
        assert len(found) == 1 and problem in found[0], found


def test_a_language_missing_an_entry_is_caught():
    french = catalogue_of(GOOD + '\nmsgctxt "choice"\nmsgid "Audio"\nmsgstr "Son"\n')
    german = catalogue_of(
        GOOD.replace("L'image fait {width} px de large.", "Das Bild ist {width} px breit."), "de"
    )
    assert keys(french) - keys(german) == {("choice", "Audio")}


@pytest.mark.parametrize(
    "body",
    [
        'msgid "Cancel"\nmsgtsr "Annuler"\n',
        # More forms than the language has (too few are padded with "": an empty translation, above).
        'msgid "one video"\nmsgid_plural "{count} videos"\nmsgstr[0] "a"\nmsgstr[1] "b"\nmsgstr[2] "c"\n'
        'msgstr[3] "d"\n',
    ],
)
def test_a_catalogue_that_does_not_parse_is_caught(body):
    with pytest.raises(PoFileError):
        catalogue_of(body)
