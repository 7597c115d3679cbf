"""Sentences that were stored in English, read back as `Text`s so that they can be said in any language.

Some member-facing sentences are kept as plain English strings where they were decided: an image's notes
(`ImageInfo.notes`) and a failed job's reason (`Job.error_message`) are stored with the job, and rows
written before translation existed hold nothing else. A sentence without values is translated by looking
it up in the catalogues as it is; a sentence with values ("animated GIF with 12 frames: the first frame is
used") is not a catalogue id, so `reread` matches it against the templates it may have been written from
and gives back the `Text` with its values, which the catalogues then translate like any other.
"""

from __future__ import annotations

import functools
import re
import string
from collections.abc import Sequence

from bot.domain.text import Text, Value

_NUMBER = re.compile(r"\d{1,4}|\d{1,3}(?:,\d{3})+")
_DECIMAL = re.compile(r"\d+\.\d+")
#: A number alone, to see how a `Text` writes it (not a sentence: no catalogue has it).
_ALONE = "{number}"


def read_back(sentence: str, templates: Sequence[str], *, parts: Sequence[str] = ()) -> Text:
    """`sentence` as a `Text` to say in any language: what `reread` finds, else the sentence itself as a
    catalogue id (a sentence without values is its own id; one the catalogues lack stays English)."""
    found = reread(sentence, templates, parts=parts)
    if found is not None:
        return found
    # Braces that are not a template's (a provider's own words) are said as they are.
    return Text.verbatim(sentence) if "{" in sentence or "}" in sentence else Text(sentence)


def reread(sentence: str, templates: Sequence[str], *, parts: Sequence[str] = ()) -> Text | None:
    """The `Text` of `templates` whose English is exactly `sentence`, or None when none is.

    Values come back as numbers when they read as one exactly as `Text` writes it (so the reader's
    language formats them), as a `Text` when they are one of `parts` (pieces said inside a sentence: a
    size, a reason inside a reason), and otherwise as the words they were (a model or format name, the
    provider's own words). `str()` of the result is `sentence` again, character for character.
    """
    for template in templates:
        if (text := _matched(sentence, template, parts)) is not None:
            return text
    return None


def _matched(sentence: str, template: str, parts: Sequence[str]) -> Text | None:
    pattern, names = _pattern(template)
    found = pattern.fullmatch(sentence)
    if found is None:
        return None
    text = Text(template, **{name: _value(found.group(name), parts) for name in names})
    # A value's words may match a template's words in more than one way: keep only the exact reading.
    return text if str(text) == sentence else None


def _value(words: str, parts: Sequence[str]) -> Value:
    if _NUMBER.fullmatch(words):
        number = int(words.replace(",", ""))
        if str(Text(_ALONE, number=number)) == words:  # not "0042", nor "12345" that Text groups
            return number
    if _DECIMAL.fullmatch(words) and str(Text(_ALONE, number=float(words))) == words:
        return float(words)
    inner = reread(words, parts)
    return inner if inner is not None else words


@functools.cache
def _pattern(template: str) -> tuple[re.Pattern[str], tuple[str, ...]]:
    """A regular expression matching what `template` writes, a named group for each value."""
    parts: list[str] = []
    names: list[str] = []
    for literal, name, _, _ in string.Formatter().parse(template):
        parts.append(re.escape(literal))
        if name is not None:
            # A value said twice must say the same words: the second is a backreference.
            if name in names:
                parts.append(f"(?P={name})")
            else:
                parts.append(f"(?P<{name}>.+?)")
                names.append(name)
    return re.compile("".join(parts), re.DOTALL), tuple(names)
