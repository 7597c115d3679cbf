"""Member-facing sentences that any layer can write and the presentation layer can say in any language.

A `Text` is an English template with named values: `Text("The image is {width} px wide.", width=200)`.
`str()` renders it in English (the CLI, logs, tests); `bot.i18n` renders it in a member's language from the
message catalogues, formatting numbers for that language and translating values that are
themselves `Text`s (a subject such as "the first frame"). The template is the catalogue's message id, so a
sentence is written once, where it is decided, and never assembled from translated pieces in code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Union

#: What a value may be: a number (formatted for the reader's language), a string said as it is (a file
#: name, a model name, a prompt), or another sentence (translated in turn).
Value = Union[int, float, str, "Text"]


@dataclass(frozen=True)
class Text:
    """An English template and its values; see the module's docstring."""

    template: str
    values: Mapping[str, Value] = field(default_factory=lambda: MappingProxyType({}))

    def __init__(self, template: str, /, **values: Value) -> None:
        object.__setattr__(self, "template", template)
        object.__setattr__(self, "values", MappingProxyType(dict(values)))

    @classmethod
    def verbatim(cls, sentence: str) -> Text:
        """A sentence with no values and no translation id of its own (braces kept as they are)."""
        return cls("{sentence}", sentence=sentence)

    def __str__(self) -> str:
        return self.template.format_map({name: _english(value) for name, value in self.values.items()})


def _english(value: Value) -> str:
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}" if abs(value) >= 10_000 else str(value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
