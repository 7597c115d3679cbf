"""Member defaults: the options a member wants when they do not say, per member and per server.

A member saves them with /settings; every way of starting a video fills the options the member left unset
from them (`apply_defaults`) before the options are validated and the quota is checked, so moderators'
limits still win. Stored in the bot's key-value state store under `defaults:{guild_id}:{user_id}` as JSON
with a `version` field.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Iterable
from dataclasses import dataclass, fields, replace
from enum import StrEnum
from typing import Any, TypeVar

from bot.domain.catalogue import Catalogue, ModelSpec, RequestedOptions, validate_options
from bot.domain.errors import InvalidRequestError
from bot.domain.models import Ratio, Resolution
from bot.jobs.errors import InvalidDefaultError
from bot.jobs.ports import StateStore

log = logging.getLogger(__name__)

KEY_PREFIX = "defaults:"
#: The stored JSON's format; a value of another version is ignored (read as "no defaults"), never guessed at.
FORMAT_VERSION = 1

_Choice = TypeVar("_Choice", Resolution, Ratio)


class DefaultField(StrEnum):
    """One default a member can set or reset, named as /settings names it."""

    MODEL = "model"
    RESOLUTION = "resolution"
    RATIO = "ratio"
    DURATION = "duration"
    AUDIO = "audio"
    DM_WHEN_DONE = "dm_when_done"

    @property
    def attribute(self) -> str:
        """The MemberDefaults attribute holding it."""
        return _ATTRIBUTES[self]


_ATTRIBUTES = {
    DefaultField.MODEL: "model",
    DefaultField.RESOLUTION: "resolution",
    DefaultField.RATIO: "ratio",
    DefaultField.DURATION: "duration_s",
    DefaultField.AUDIO: "generate_audio",
    DefaultField.DM_WHEN_DONE: "dm_when_done",
}
#: The defaults that are video options, checked against a model (dm_when_done is about delivery).
_OPTION_FIELDS = (DefaultField.RESOLUTION, DefaultField.RATIO, DefaultField.DURATION, DefaultField.AUDIO)


@dataclass(frozen=True)
class MemberDefaults:
    """A member's defaults in one server; None: not set (the model's own default applies)."""

    model: str | None = None  # a catalogue key
    resolution: Resolution | None = None
    ratio: Ratio | None = None
    duration_s: int | None = None
    generate_audio: bool | None = None
    dm_when_done: bool | None = None  # ping the member by DM when the video is ready

    @property
    def is_empty(self) -> bool:
        """Whether nothing is set."""
        return all(getattr(self, field.name) is None for field in fields(self))

    def value(self, field: DefaultField) -> Any:
        """The value of `field`, or None."""
        return getattr(self, field.attribute)


def defaults_key(guild_id: int, user_id: int) -> str:
    """The state-store key of a member's defaults in a server."""
    return f"{KEY_PREFIX}{guild_id}:{user_id}"


def duration_bounds(catalogue: Catalogue) -> tuple[int, int]:
    """The widest duration range of the models on offer: what a default duration may be at most."""
    ranges = [spec.duration_range_s for spec in catalogue]
    return min(low for low, _ in ranges), max(high for _, high in ranges)


def apply_defaults(
    defaults: MemberDefaults, model: str | None, options: RequestedOptions, catalogue: Catalogue
) -> tuple[str | None, RequestedOptions]:
    """The model and options to use: the member's explicit ones, with their defaults filling what is unset.

    Pure. Explicit values are never changed. A default the effective model cannot use (a resolution it
    lacks, a duration outside its range, audio on a model without sound) is left out, so the model's own
    default applies instead of the request failing. The default model is used only when no model was named
    and it takes every option the member did give; otherwise the bot's default model applies as before.
    """
    chosen = model if model is not None else _default_model(defaults, options, catalogue)
    if chosen is not None and chosen.strip().lower() not in catalogue.keys:
        return model, options  # an unknown model the member named: validation says so
    spec = catalogue.get(chosen)
    fill: dict[str, Any] = {}
    for field in _OPTION_FIELDS:
        attribute = field.attribute
        value = defaults.value(field)
        if getattr(options, attribute) is None and value is not None and _misfit(spec, field, value) is None:
            fill[attribute] = value.value if isinstance(value, StrEnum) else value
    return chosen, replace(options, **fill)


def _default_model(defaults: MemberDefaults, options: RequestedOptions, catalogue: Catalogue) -> str | None:
    """The member's default model, when it is on offer and takes every option they gave explicitly."""
    if defaults.model is None or defaults.model not in catalogue.keys:
        return None
    try:
        # The prompt is judged later, whatever the model: only the options decide here.
        validate_options(catalogue.get(defaults.model), replace(options, prompt="-"))
    except InvalidRequestError:
        return None
    return defaults.model


class DefaultsService:
    """Reads, checks and saves members' defaults in the bot's state store."""

    def __init__(self, state_store: StateStore, catalogue: Catalogue) -> None:
        self._store = state_store
        self._catalogue = catalogue

    async def get(self, guild_id: int, user_id: int) -> MemberDefaults:
        """The member's defaults in the server (nothing set when none were saved or they are unreadable)."""
        raw = await self._store.get(defaults_key(guild_id, user_id))
        return MemberDefaults() if raw is None else _decode(raw, defaults_key(guild_id, user_id))

    async def apply(
        self, guild_id: int | None, user_id: int | None, model: str | None, options: RequestedOptions
    ) -> tuple[str | None, RequestedOptions]:
        """`apply_defaults` with the member's saved defaults; unchanged outside a server."""
        if guild_id is None or user_id is None:
            return model, options
        return apply_defaults(await self.get(guild_id, user_id), model, options, self._catalogue)

    async def wants_dm(self, guild_id: int | None, user_id: int | None) -> bool:
        """Whether the member asked to be pinged by DM when a video of theirs in that server is done."""
        if guild_id is None or user_id is None:
            return False
        return bool((await self.get(guild_id, user_id)).dm_when_done)

    async def update(
        self,
        guild_id: int,
        user_id: int,
        *,
        model: str | None = None,
        resolution: str | None = None,
        ratio: str | None = None,
        duration_s: int | None = None,
        generate_audio: bool | None = None,
        dm_when_done: bool | None = None,
    ) -> MemberDefaults:
        """Save the given defaults (None: leave that one as it is) and return them all.

        Raises InvalidDefaultError naming the limits when no model here takes a value, or when the default
        model (saved, or given now) does not; nothing is saved then.
        """
        given: dict[DefaultField, Any] = {}
        if model is not None:
            given[DefaultField.MODEL] = self._model_key(model)
        if resolution is not None:
            given[DefaultField.RESOLUTION] = self._offered_choice(
                resolution, Resolution, [spec.resolutions for spec in self._catalogue], "makes {} videos"
            )
        if ratio is not None:
            given[DefaultField.RATIO] = self._offered_choice(
                ratio, Ratio, [spec.ratios for spec in self._catalogue], "makes videos in the {} ratio"
            )
        if duration_s is not None:
            low, high = duration_bounds(self._catalogue)
            if not low <= duration_s <= high:
                raise InvalidDefaultError(f"Videos here last {low}–{high} s; {duration_s} s is outside that.")
            given[DefaultField.DURATION] = duration_s
        if generate_audio is not None:
            if not any(spec.supports_audio for spec in self._catalogue):
                raise InvalidDefaultError("None of the models here can make sound, so audio cannot be set.")
            given[DefaultField.AUDIO] = generate_audio
        if dm_when_done is not None:
            given[DefaultField.DM_WHEN_DONE] = dm_when_done
        if not given:
            raise InvalidDefaultError("Nothing to change: give at least one option.")

        current = await self.get(guild_id, user_id)
        updated = replace(current, **{field.attribute: value for field, value in given.items()})
        self._check_against_model(updated, given)
        await self._save(guild_id, user_id, updated)
        return updated

    async def reset(
        self, guild_id: int, user_id: int, only: Collection[DefaultField] | None = None
    ) -> MemberDefaults:
        """Forget the member's defaults in the server (all, or `only` those); return what remains."""
        if only is None:
            await self._store.delete(defaults_key(guild_id, user_id))
            return MemberDefaults()
        current = await self.get(guild_id, user_id)
        remaining = replace(current, **{field.attribute: None for field in only})
        await self._save(guild_id, user_id, remaining)
        return remaining

    async def _save(self, guild_id: int, user_id: int, defaults: MemberDefaults) -> None:
        key = defaults_key(guild_id, user_id)
        if defaults.is_empty:
            await self._store.delete(key)
        else:
            await self._store.put(key, _encode(defaults))

    def _model_key(self, model: str) -> str:
        wanted = model.strip().lower()
        if wanted not in self._catalogue.keys:
            raise InvalidDefaultError(
                f"There is no model called “{model}” here. Choose one of: {', '.join(self._catalogue.keys)}."
            )
        return wanted

    @staticmethod
    def _offered_choice(
        given: str, kind: type[_Choice], offered: Iterable[tuple[_Choice, ...]], phrase: str
    ) -> _Choice:
        """`given` as a `kind`, when some model on offer has it."""
        available = {value for values in offered for value in values}
        wanted = given.strip().lower()
        for value in kind:
            if value.value == wanted and value in available:
                return value
        names = [value.value for value in kind if value in available]
        raise InvalidDefaultError(f"No model here {phrase.format(given)}. Choose one of: {', '.join(names)}.")

    def _check_against_model(self, updated: MemberDefaults, given: dict[DefaultField, Any]) -> None:
        """Refuse a default the default model cannot use.

        Checked: the values given now, and, when the model changes, the saved ones too.
        """
        if updated.model is None or updated.model not in self._catalogue.keys:
            return  # no default model (or one no longer offered): each value fits some model, as checked
        spec = self._catalogue.get(updated.model)
        model_changed = DefaultField.MODEL in given
        for field in _OPTION_FIELDS:
            value = updated.value(field)
            if value is None or not (field in given or model_changed):
                continue
            saved = field not in given
            reason = _misfit(spec, field, value, saved=saved)
            if reason is not None:
                hint = f" Set a new {field.value} with it, or reset that default." if saved else ""
                raise InvalidDefaultError(reason + hint)


def _misfit(spec: ModelSpec, field: DefaultField, value: Any, *, saved: bool = False) -> str | None:
    """Why `spec` cannot use `value` as the member's `field` default, or None when it can."""
    shown = "your saved " if saved else ""
    match field:
        case DefaultField.RESOLUTION if value not in spec.resolutions:
            allowed = _either(r.value for r in spec.resolutions)
            return f"{spec.display_name} makes {allowed} videos; {shown}{value.value} is not one of them."
        case DefaultField.RATIO if value not in spec.ratios:
            allowed = _either(r.value for r in spec.ratios)
            return f"{spec.display_name} offers ratios {allowed}; {shown}{value.value} is not one of them."
        case DefaultField.DURATION if not spec.duration_range_s[0] <= value <= spec.duration_range_s[1]:
            low, high = spec.duration_range_s
            return f"{spec.display_name} makes {low}–{high} s videos; {shown}{value} s is outside that."
        case DefaultField.AUDIO if not spec.supports_audio:
            state = "on" if value else "off"
            return f"{spec.display_name} has no audio option; {shown}audio {state} cannot apply to it."
    return None


def _either(names: Iterable[str]) -> str:
    """`480p or 720p`, `480p, 720p or 1080p`."""
    items = list(names)
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} or {items[-1]}"


def _encode(defaults: MemberDefaults) -> str:
    payload: dict[str, Any] = {"version": FORMAT_VERSION}
    for field in fields(defaults):
        value = getattr(defaults, field.name)
        if value is not None:
            payload[field.name] = value.value if isinstance(value, StrEnum) else value
    return json.dumps(payload, sort_keys=True)


def _decode(raw: str, key: str) -> MemberDefaults:
    """Stored defaults, leniently: an unreadable value or field is dropped (logged), never an error."""
    try:
        data = json.loads(raw)
    except json.JSONDecodeError:
        log.warning("%s: unreadable member defaults ignored", key)
        return MemberDefaults()
    if not isinstance(data, dict) or data.get("version") != FORMAT_VERSION:
        log.warning("%s: member defaults of an unknown format ignored", key)
        return MemberDefaults()
    model = data.get("model")
    duration = data.get("duration_s")
    return MemberDefaults(
        model=model if isinstance(model, str) else None,
        resolution=_enum(Resolution, data.get("resolution")),
        ratio=_enum(Ratio, data.get("ratio")),
        duration_s=duration if isinstance(duration, int) and not isinstance(duration, bool) else None,
        generate_audio=_bool(data.get("generate_audio")),
        dm_when_done=_bool(data.get("dm_when_done")),
    )


def _enum(kind: type[_Choice], value: object) -> _Choice | None:
    try:
        return kind(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _bool(value: object) -> bool | None:
    return value if isinstance(value, bool) else None
