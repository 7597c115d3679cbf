"""The model catalogue: per model, which options exist, their allowed values, ranges and defaults.

Everything that validates or offers options (the CLI, slash-command choices, the providers) reads this table,
so that a model's real limits are written down exactly once. Values follow `shared/docs/providers.md`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import TypeVar

from bot.domain.errors import (
    InvalidPromptError,
    OptionValueError,
    UnknownModelError,
    UnsupportedOptionError,
)
from bot.domain.models import ProviderName, Ratio, Resolution, VideoRequest

_Choice = TypeVar("_Choice", Resolution, Ratio)

SEED_MIN = -1  # -1 asks the provider for a random seed
SEED_MAX = 4_294_967_295
PROMPT_MAX_CHARS = 2000

_ALL_RATIOS = (
    Ratio.R16_9,
    Ratio.R4_3,
    Ratio.R1_1,
    Ratio.R3_4,
    Ratio.R9_16,
    Ratio.R21_9,
    Ratio.ADAPTIVE,
)


@dataclass(frozen=True)
class ModelSpec:
    """One model as a provider offers it."""

    key: str  # the stable name members type: "seedance-1.5-pro"
    display_name: str
    provider: ProviderName
    provider_model_id: str
    resolutions: tuple[Resolution, ...]
    default_resolution: Resolution
    ratios: tuple[Ratio, ...]
    default_ratio: Ratio
    duration_range_s: tuple[int, int]
    default_duration_s: int
    default_audio: bool | None = None  # None: the model has no audio option
    default_camera_fixed: bool | None = None  # None: no fixed-camera option
    supports_seed: bool = False
    supports_last_frame: bool = False
    requires_first_frame: bool = True
    advised_prompt_chars: int | None = None
    #: Credits per second of video by resolution; None (or a missing resolution) uses the quota defaults.
    #: Left out of the hash because a mapping is unhashable, so a spec stays usable as a set member.
    credit_weights: Mapping[Resolution, int] | None = field(default=None, hash=False)

    @property
    def supports_audio(self) -> bool:
        """Whether members may switch generated audio on or off."""
        return self.default_audio is not None

    @property
    def supports_camera_fixed(self) -> bool:
        """Whether members may ask for a fixed camera."""
        return self.default_camera_fixed is not None

    def describe_options(self) -> str:
        """A one-line description of what this model accepts, for error messages and help."""
        low, high = self.duration_range_s
        parts = [
            f"resolution ({', '.join(r.value for r in self.resolutions)})",
            f"ratio ({', '.join(r.value for r in self.ratios)})",
            f"duration ({low}–{high} s)",
        ]
        if self.supports_audio:
            parts.append("audio")
        if self.supports_camera_fixed:
            parts.append("camera_fixed")
        if self.supports_seed:
            parts.append(f"seed ({SEED_MIN}–{SEED_MAX})")
        if self.supports_last_frame:
            parts.append("last_frame")
        return ", ".join(parts)


@dataclass(frozen=True)
class RequestedOptions:
    """Options as a member typed them: None means "use the model's default"."""

    prompt: str
    resolution: str | None = None
    ratio: str | None = None
    duration_s: int | None = None
    generate_audio: bool | None = None
    camera_fixed: bool | None = None
    seed: int | None = None
    has_last_frame: bool = False


RUNCOMFY_MODELS: tuple[ModelSpec, ...] = (
    ModelSpec(
        key="seedance-1.0-pro",
        display_name="Seedance 1.0 Pro",
        provider=ProviderName.RUNCOMFY,
        provider_model_id="bytedance/seedance-1-0/pro/image-to-video",
        resolutions=(Resolution.P480, Resolution.P720, Resolution.P1080),
        default_resolution=Resolution.P480,
        ratios=_ALL_RATIOS,
        default_ratio=Ratio.ADAPTIVE,
        duration_range_s=(2, 12),
        default_duration_s=5,
    ),
    ModelSpec(
        key="seedance-1.5-pro",
        display_name="Seedance 1.5 Pro",
        provider=ProviderName.RUNCOMFY,
        provider_model_id="bytedance/seedance-v1.5-pro/image-to-video",
        resolutions=(Resolution.P480, Resolution.P720, Resolution.P1080),
        default_resolution=Resolution.P480,
        ratios=_ALL_RATIOS,
        default_ratio=Ratio.ADAPTIVE,
        duration_range_s=(4, 12),
        default_duration_s=5,
        default_audio=True,
        default_camera_fixed=True,
        advised_prompt_chars=500,
    ),
    ModelSpec(
        key="seedance-2.0-pro",
        display_name="Seedance 2.0 Pro",
        provider=ProviderName.RUNCOMFY,
        provider_model_id="bytedance/seedance-2.0/pro",
        resolutions=(Resolution.P480, Resolution.P720),
        default_resolution=Resolution.P720,
        ratios=_ALL_RATIOS,
        default_ratio=Ratio.ADAPTIVE,
        duration_range_s=(4, 15),
        default_duration_s=5,
        default_audio=True,
        supports_seed=True,
        requires_first_frame=False,
    ),
)

DEFAULT_MODEL_KEY = "seedance-1.5-pro"


class Catalogue:
    """The models on offer, looked up by key."""

    def __init__(self, models: tuple[ModelSpec, ...], default_key: str) -> None:
        self._models: Mapping[str, ModelSpec] = {spec.key: spec for spec in models}
        if default_key not in self._models:
            raise ValueError(f"default model {default_key!r} is not in the catalogue")
        self.default_key = default_key

    def __iter__(self) -> Iterator[ModelSpec]:
        return iter(self._models.values())

    @property
    def keys(self) -> tuple[str, ...]:
        """Model keys in catalogue order."""
        return tuple(self._models)

    def get(self, key: str | None) -> ModelSpec:
        """The model named `key` (the default when None), or UnknownModelError naming the choices."""
        chosen = self.default_key if key is None else key.strip().lower()
        try:
            return self._models[chosen]
        except KeyError:
            raise UnknownModelError(
                f"There is no model called “{key}”. Choose one of: {', '.join(self._models)}."
            ) from None

    def with_credit_weights(self, weights: Mapping[str, Mapping[Resolution, int]]) -> Catalogue:
        """A copy whose models cost what `weights` says per second and resolution (others keep theirs)."""
        for key in weights:
            self.get(key)  # an unknown model is a configuration mistake: say so
        models = tuple(
            replace(spec, credit_weights={**(spec.credit_weights or {}), **weights[spec.key]})
            if spec.key in weights
            else spec
            for spec in self
        )
        return Catalogue(models, self.default_key)

    def validate(self, model_key: str | None, options: RequestedOptions) -> VideoRequest:
        """Check `options` against the chosen model and fill in its defaults."""
        spec = self.get(model_key)
        return validate_options(spec, options)


def default_catalogue() -> Catalogue:
    """The catalogue of every model the bot knows."""
    return Catalogue(RUNCOMFY_MODELS, DEFAULT_MODEL_KEY)


def _unsupported(spec: ModelSpec, option: str) -> UnsupportedOptionError:
    return UnsupportedOptionError(
        f"{spec.display_name} has no `{option}` option. It supports: {spec.describe_options()}."
    )


def validate_options(spec: ModelSpec, options: RequestedOptions) -> VideoRequest:
    """Return the request with defaults applied, or raise an InvalidRequestError that names the limits."""
    prompt = options.prompt.strip()
    if not prompt:
        raise InvalidPromptError("The prompt is empty: describe the motion you want to see.")
    if len(prompt) > PROMPT_MAX_CHARS:
        raise InvalidPromptError(
            f"The prompt is {len(prompt)} characters long; the limit is {PROMPT_MAX_CHARS}."
        )

    resolution = _choice(spec, "resolution", options.resolution, spec.resolutions, spec.default_resolution)
    ratio = _choice(spec, "ratio", options.ratio, spec.ratios, spec.default_ratio)

    low, high = spec.duration_range_s
    duration = spec.default_duration_s if options.duration_s is None else options.duration_s
    if not low <= duration <= high:
        raise OptionValueError(
            f"{spec.display_name} makes videos of {low} to {high} seconds; {duration} s is outside that."
        )

    if options.generate_audio is not None and not spec.supports_audio:
        raise _unsupported(spec, "audio")
    if options.camera_fixed is not None and not spec.supports_camera_fixed:
        raise _unsupported(spec, "camera_fixed")
    if options.seed is not None and not spec.supports_seed:
        raise _unsupported(spec, "seed")
    if options.has_last_frame and not spec.supports_last_frame:
        raise _unsupported(spec, "last_frame")
    if options.seed is not None and not SEED_MIN <= options.seed <= SEED_MAX:
        raise OptionValueError(f"The seed must be between {SEED_MIN} and {SEED_MAX}; got {options.seed}.")

    return VideoRequest(
        model=spec.key,
        prompt=prompt,
        resolution=resolution,
        ratio=ratio,
        duration_s=duration,
        generate_audio=(options.generate_audio if options.generate_audio is not None else spec.default_audio),
        camera_fixed=(
            options.camera_fixed if options.camera_fixed is not None else spec.default_camera_fixed
        ),
        seed=options.seed,
    )


def _choice(
    spec: ModelSpec, option: str, given: str | None, allowed: tuple[_Choice, ...], default: _Choice
) -> _Choice:
    if given is None:
        return default
    wanted = given.strip().lower()
    for value in allowed:
        if value.value == wanted:
            return value
    raise OptionValueError(
        f"{spec.display_name} does not offer {option} “{given}”. "
        f"Allowed: {', '.join(v.value for v in allowed)}."
    )
