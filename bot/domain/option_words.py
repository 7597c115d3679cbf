"""Options typed as words after a prompt: `a boat at dawn duration:8 ratio:9:16 audio:off`.

Members who start a video by mentioning the bot, or in the "Animate image" form's options field, have no
slash-command options to pick from, so they type them. Only the words at the END of the text are read as
options, so a prompt that happens to contain "time:dawn" in its middle is left alone; an option word that is
not known is named in the refusal rather than silently sent to a paid model as part of the prompt.

Values are checked here only for their form (a number, on/off); whether the chosen model takes them is the
catalogue's job, like for every other front end.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from bot.domain.catalogue import Catalogue, RequestedOptions
from bot.domain.errors import OptionValueError
from bot.domain.text import Text

#: `name:value`, where the value itself may hold a colon (`ratio:9:16`).
_OPTION_WORD = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z_-]*):(?P<value>\S+)$")
_ON = frozenset({"on", "yes", "true", "1", "y"})
_OFF = frozenset({"off", "no", "false", "0", "n"})


class UnknownOptionWordError(OptionValueError):
    """Option words the bot does not know."""


@dataclass(frozen=True)
class WordRequest:
    """A prompt with the options typed after it."""

    prompt: str
    model: str | None
    options: RequestedOptions


def _switch(name: str, value: str) -> bool:
    lowered = value.lower()
    if lowered in _ON:
        return True
    if lowered in _OFF:
        return False
    raise OptionValueError(Text("`{name}:{value}`: use `{name}:on` or `{name}:off`.", name=name, value=value))


def _seconds(name: str, value: str) -> int:
    digits = value.lower().removesuffix("s").removesuffix("sec")
    if not digits.isdigit():
        raise OptionValueError(
            Text("`{name}:{value}`: give a whole number of seconds, like `{name}:8`.", name=name, value=value)
        )
    return int(digits)


def _integer(name: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise OptionValueError(
            Text("`{name}:{value}`: give a whole number, like `{name}:42`.", name=name, value=value)
        ) from None


def _resolution(_: str, value: str) -> str:
    lowered = value.lower()
    return lowered if lowered.endswith("p") else f"{lowered}p"


def _text(_: str, value: str) -> str:
    return value.lower()


@dataclass(frozen=True)
class _Word:
    field: str  # a RequestedOptions field, or "model"
    parse: Callable[[str, str], Any]


#: Every option word and its aliases. The canonical names come first, for the refusal's list.
_WORDS: Mapping[str, _Word] = {
    "model": _Word("model", _text),
    "duration": _Word("duration_s", _seconds),
    "ratio": _Word("ratio", _text),
    "resolution": _Word("resolution", _resolution),
    "audio": _Word("generate_audio", _switch),
    "seed": _Word("seed", _integer),
    "camera": _Word("camera_fixed", lambda name, value: _switch(name, "on" if value == "fixed" else value)),
    "tier": _Word("service_tier", _text),
    "watermark": _Word("watermark", _switch),
    "search": _Word("web_search", _switch),
    # aliases
    "dur": _Word("duration_s", _seconds),
    "ar": _Word("ratio", _text),
    "aspect": _Word("ratio", _text),
    "res": _Word("resolution", _resolution),
    "sound": _Word("generate_audio", _switch),
    "camera_fixed": _Word("camera_fixed", _switch),
    "web_search": _Word("web_search", _switch),
}
KNOWN_WORDS: tuple[str, ...] = (
    "model",
    "duration",
    "ratio",
    "resolution",
    "audio",
    "seed",
    "camera",
    "tier",
    "watermark",
    "search",
)


def _known_list() -> str:
    return ", ".join(f"`{word}:`" for word in KNOWN_WORDS)


def resolve_model(text: str, catalogue: Catalogue) -> str:
    """A model key from what a member typed: the key, the display name, or its version ("2.0", "1.0-fast")."""
    wanted = text.strip().lower().replace(" ", "-")
    for spec in catalogue:
        names = {spec.key, spec.display_name.lower().replace(" ", "-"), spec.key.removeprefix("seedance-")}
        short = spec.key.removeprefix("seedance-").removesuffix("-pro")
        names |= {short, short.replace("-pro", "")}
        if wanted in names:
            return spec.key
    offered = ", ".join(f"`{spec.key}`" for spec in catalogue)
    raise OptionValueError(
        Text("`model:{text}`: there is no such model here. Models: {models}.", text=text, models=offered)
    )


def split_option_words(text: str) -> tuple[str, list[tuple[str, str]]]:
    """The prompt (as typed, line breaks kept), and the `name:value` words that end the text, in order."""
    tokens = list(re.finditer(r"\S+", text))
    cut = len(text)
    trailing: list[tuple[str, str]] = []
    while tokens and (match := _OPTION_WORD.match(tokens[-1].group())):
        trailing.insert(0, (match["name"].lower(), match["value"]))
        cut = tokens.pop().start()
    return text[:cut].strip(), trailing


def parse_option_words(
    text: str, catalogue: Catalogue, *, base: RequestedOptions | None = None
) -> WordRequest:
    """Read the options at the end of `text`; raise OptionValueError naming unknown or malformed words.

    `base` holds options already chosen elsewhere (a form's duration field); typed words override them.
    """
    prompt, words = split_option_words(text)
    unknown = [f"`{name}:{value}`" for name, value in words if name not in _WORDS]
    if unknown:
        listed = ", ".join(unknown)
        raise UnknownOptionWordError(
            Text(
                "I don't know the options {listed}. Options go after the prompt as words like "
                "`duration:8 ratio:9:16`; I know {known}.",
                listed=listed,
                known=_known_list(),
            )
            if len(unknown) > 1
            else Text(
                "I don't know the option {listed}. Options go after the prompt as words like "
                "`duration:8 ratio:9:16`; I know {known}.",
                listed=listed,
                known=_known_list(),
            )
        )
    model: str | None = None
    changes: dict[str, Any] = {}
    for name, value in words:
        word = _WORDS[name]
        parsed = word.parse(name, value)
        if word.field == "model":
            model = resolve_model(parsed, catalogue)
        else:
            changes[word.field] = parsed
    options = replace(base or RequestedOptions(prompt=prompt), prompt=prompt, **changes)
    return WordRequest(prompt=prompt, model=model, options=options)
