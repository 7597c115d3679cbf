"""The translation core: a sentence written once in English, said in the member's language with numbers
written their way, regional variants falling back to the language the bot has."""

from __future__ import annotations

import gettext

import pytest

from bot.domain.errors import InvalidImageError
from bot.domain.text import Text
from bot.i18n import Language, Translator, language_of, translator
from bot.i18n import _load as load_catalogues


def test_a_text_reads_in_english_as_the_sentence_it_replaces() -> None:
    text = Text(
        "The {subject} is {width}×{height} px; {more}.",
        subject=Text("first frame"),
        width=200,
        height=200,
        more="ok",
    )
    assert str(text) == "The first frame is 200×200 px; ok."
    assert str(Text("{n} jobs, {share} of them", n=12_500, share=0.5)) == "12,500 jobs, 0.5 of them"
    assert str(Text.verbatim("braces {stay} as they are")) == "braces {stay} as they are"


def test_errors_keep_their_text_and_their_english_message() -> None:
    error = InvalidImageError(Text("The image is {width} px wide.", width=250), code="too_small")
    assert error.message == str(error) == "The image is 250 px wide."
    assert error.text.values["width"] == 250
    assert InvalidImageError("plain", code="x").text.template == "{sentence}"


@pytest.mark.parametrize(
    ("discord_locale", "language"),
    [
        ("fr", Language.FRENCH),
        ("en-GB", Language.ENGLISH),
        ("es-419", Language.SPANISH),
        ("pt-BR", Language.BRAZILIAN_PORTUGUESE),
        ("zh-CN", Language.SIMPLIFIED_CHINESE),
        ("zh-TW", Language.ENGLISH),  # Traditional Chinese is not Simplified: English rather than a guess
        ("ko", Language.ENGLISH),
        (None, Language.ENGLISH),
    ],
)
def test_discord_locales_map_to_the_languages_the_bot_speaks(discord_locale, language) -> None:
    assert language_of(discord_locale) is language


def test_numbers_are_written_the_reader_s_way() -> None:
    assert translator(Language.GERMAN).number(12345.5) == "12.345,5"
    assert translator(Language.FRENCH).number(2.5) == "2,5"
    assert translator(Language.ENGLISH).number(5999) == "5999"  # as the English sentences write sides


def test_a_catalogue_translates_templates_values_and_plurals(tmp_path) -> None:
    folder = tmp_path / "fr" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    (folder / "cards.po").write_text(
        "\n".join(
            [
                'msgid ""',
                'msgstr ""',
                '"Content-Type: text/plain; charset=UTF-8\\n"',
                '"Language: fr\\n"',
                '"Plural-Forms: nplurals=2; plural=(n > 1);\\n"',
                "",
                "#, python-brace-format",
                'msgid "The {subject} is {width} px wide."',
                'msgstr "{subject} fait {width} px de large."',
                "",
                'msgid "first frame"',
                'msgstr "L\'image de départ"',
                "",
                'msgid "{count} video"',
                'msgid_plural "{count} videos"',
                'msgstr[0] "{count} vidéo"',
                'msgstr[1] "{count} vidéos"',
            ]
        ),
        encoding="utf-8",
    )
    french = Translator(Language.FRENCH, load_catalogues(Language.FRENCH, tmp_path, ["cards", "absent"]))
    sentence = Text("The {subject} is {width} px wide.", subject=Text("first frame"), width=12000)
    assert french.text(sentence) == "L'image de départ fait 12\u202f000 px de large."
    assert french.plural("{count} video", "{count} videos", 1) == "1 vidéo"
    assert french.plural("{count} video", "{count} videos", 2) == "2 vidéos"
    assert french.text("Not translated yet") == "Not translated yet"  # English rather than nothing
    assert french.lookup("Not translated yet") is None and french.lookup("first frame") == "L'image de départ"


def test_english_needs_no_catalogue() -> None:
    english = Translator(Language.ENGLISH, gettext.NullTranslations())
    assert english.text(Text("{count} of {total}", count=3, total=10)) == "3 of 10"
    assert english.lookup("anything") == "anything"
