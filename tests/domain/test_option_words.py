"""Options typed as words after a prompt (mentions and the "Animate image" form)."""

from __future__ import annotations

import pytest

from bot.domain.catalogue import RequestedOptions, default_catalogue
from bot.domain.errors import OptionValueError
from bot.domain.option_words import UnknownOptionWordError, parse_option_words, resolve_model

CATALOGUE = default_catalogue()


def test_trailing_words_become_options_and_the_prompt_keeps_its_colons_and_line_breaks():
    parsed = parse_option_words(
        "a harbour at time:dawn\nboats rock duration:8 ratio:9:16 res:720 audio:off model:2.0", CATALOGUE
    )

    assert parsed.prompt == "a harbour at time:dawn\nboats rock"
    assert parsed.model == "seedance-2.0-pro"
    options = parsed.options
    assert (options.duration_s, options.ratio, options.resolution, options.generate_audio) == (
        8,
        "9:16",
        "720p",
        False,
    )
    assert options.prompt == parsed.prompt


def test_unknown_words_are_named_in_the_refusal():
    with pytest.raises(UnknownOptionWordError) as refused:
        parse_option_words("a cat style:anime duration:5 mood:happy", CATALOGUE)

    assert "`style:anime`" in refused.value.message
    assert "`mood:happy`" in refused.value.message
    assert "`duration:`" in refused.value.message  # and what it does know


@pytest.mark.parametrize(
    ("words", "complaint"),
    [
        ("x duration:long", "whole number of seconds"),
        ("x audio:maybe", "`audio:on` or `audio:off`"),
        ("x seed:abc", "whole number"),
        ("x model:seedance-9", "no such model"),
    ],
)
def test_malformed_values_say_how_to_write_them(words, complaint):
    with pytest.raises(OptionValueError) as refused:
        parse_option_words(words, CATALOGUE)
    assert complaint in refused.value.message


def test_typed_words_override_a_base_and_keep_the_rest():
    base = RequestedOptions(prompt="", duration_s=6, ratio="1:1")
    parsed = parse_option_words("a cat ratio:16:9 search:on", CATALOGUE, base=base)
    assert (parsed.options.duration_s, parsed.options.ratio, parsed.options.web_search) == (6, "16:9", True)


@pytest.mark.parametrize(
    ("typed", "key"),
    [
        ("2.0", "seedance-2.0-pro"),
        ("Seedance 1.5 Pro", "seedance-1.5-pro"),
        ("seedance-1.0-pro", "seedance-1.0-pro"),
        ("1.0-pro-fast", "seedance-1.0-pro-fast"),
    ],
)
def test_models_are_found_by_key_name_or_version(typed, key):
    assert resolve_model(typed, CATALOGUE) == key
