"""The model catalogue: per model, which options exist, their allowed values, ranges and defaults.

Everything that validates or offers options (the CLI, slash-command choices, the providers) reads this table,
so that a model's real limits are written down exactly once. Values follow `shared/docs/providers.md`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from bot.domain.errors import (
    InvalidPromptError,
    OptionValueError,
    UnknownModelError,
    UnsupportedOptionError,
)
from bot.domain.models import ProviderName, Ratio, Resolution, ServiceTier, VideoRequest
from bot.domain.text import Text

_Choice = TypeVar("_Choice", Resolution, Ratio, ServiceTier)

SEED_MIN = -1  # -1 asks the provider for a random seed
SEED_MAX = 4_294_967_295
#: The hard prompt cap of a model that documents none of its own (Seedance 1.0 and 1.5: four times 1.5's
#: advised 500 characters, and what every model was held to before caps were per model).
DEFAULT_PROMPT_MAX_CHARS = 2000
#: Seedance 2.0's hard cap. Its documented advice is ~1,000 English words (seed 003); English prose runs at
#: about 6 characters a word with spaces and punctuation, so such a prompt is ~6,000 characters, and 8,000
#: leaves room for long words and markup-heavy prompts. No provider documents a hard maximum; the cap only
#: keeps a pasted novel out of the job store and the provider's request body.
SEEDANCE_2_PROMPT_MAX_CHARS = 8000
#: Novita's and ModelArk's documented range for `execution_expires_after` (default 172,800 s: 48 hours).
EXPIRES_AFTER_RANGE_S = (3600, 259_200)
DEFAULT_EXPIRES_AFTER_S = 172_800

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
class ReferenceLimits:
    """How much reference media a model's multimodal reference mode takes (Seedance 2.0)."""

    max_images: int = 9
    max_videos: int = 3
    max_audios: int = 3
    #: ModelArk reads audio only alongside an image or a video (a guess kept as a rule: it costs nothing).
    audio_needs_visual: bool = False

    def describe(self) -> str:
        """`up to 9 images, 3 videos and 3 audio clips`."""
        return str(self.describe_text())

    def describe_text(self) -> Text:
        """`describe` as a sentence piece to say in any language."""
        return Text(
            "up to {images} images, {videos} videos and {audios} audio clips",
            images=self.max_images,
            videos=self.max_videos,
            audios=self.max_audios,
        )


@dataclass(frozen=True)
class AdvisedPromptLength:
    """A model's advised prompt length in words for spaced scripts and in characters for CJK text.

    Seedance 2.0 advises "Chinese ~≤500 characters, English ~≤1000 words" (seed 003): two measures of about
    the same amount of content, so a prompt mixing both scripts spends each budget in proportion.
    """

    words: int
    cjk_chars: int

    def __post_init__(self) -> None:
        if self.words < 1 or self.cjk_chars < 1:
            raise ValueError(f"advised prompt lengths must be positive; got {self}")


@dataclass(frozen=True)
class ModelSpec:
    """One model as one provider offers it; the same `key` may be offered by several providers."""

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
    #: The longest prompt validation lets through, in characters (after trimming surrounding whitespace).
    prompt_max_chars: int = DEFAULT_PROMPT_MAX_CHARS
    #: Advice, not a limit: `prompt_advice` notes a prompt longer than this many characters (any script).
    advised_prompt_chars: int | None = None
    #: Advice in words and CJK characters (Seedance 2.0), for `prompt_advice`; None: no such advice.
    advised_prompt_length: AdvisedPromptLength | None = None
    default_watermark: bool | None = None  # None: no watermark option
    service_tiers: tuple[ServiceTier, ...] = ()  # empty: no tier option
    supports_expiry: bool = False  # takes `execution_expires_after`
    supports_return_last_frame: bool = False
    references: ReferenceLimits | None = None  # None: no multimodal reference mode
    #: Takes a web search switch (RunComfy's Seedance 2.0 `tools`): the model may look facts up online.
    supports_web_search: bool = False
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

    @property
    def supports_watermark(self) -> bool:
        """Whether members may switch the provider's watermark on or off."""
        return self.default_watermark is not None

    @property
    def ref(self) -> tuple[ProviderName, str]:
        """The (provider, key) pair that names this exact offer."""
        return (self.provider, self.key)

    def describe_options(self) -> str:
        """A one-line description of what this model accepts, for error messages and help."""
        return str(self.options_text())

    def options_text(self) -> Text:
        """`describe_options` as a sentence piece to say in any language: the option names are the ones
        members type, said as they are; the limits are said in the reader's language."""
        low, high = self.duration_range_s
        parts = [
            _option("resolution", ", ".join(r.value for r in self.resolutions)),
            _option("ratio", ", ".join(r.value for r in self.ratios)),
            _option("duration", Text("{low}–{high} s", low=low, high=high)),
        ]
        if self.supports_audio:
            parts.append(Text.verbatim("audio"))
        if self.supports_camera_fixed:
            parts.append(Text.verbatim("camera_fixed"))
        if self.supports_seed:
            # Ungrouped, as members type a seed.
            parts.append(_option("seed", f"{SEED_MIN}–{SEED_MAX}"))
        if self.supports_last_frame:
            parts.append(Text.verbatim("last_frame"))
        if self.supports_watermark:
            parts.append(Text.verbatim("watermark"))
        if self.service_tiers:
            parts.append(_option("tier", ", ".join(t.value for t in self.service_tiers)))
        if self.supports_return_last_frame:
            parts.append(Text.verbatim("return_last_frame"))
        if self.references is not None:
            parts.append(_option("references", self.references.describe_text()))
        if self.supports_web_search:
            parts.append(Text.verbatim("web_search"))
        summary = parts[0]
        for part in parts[1:]:
            summary = Text("{options}, {option}", options=summary, option=part)
        return summary


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
    watermark: bool | None = None
    service_tier: str | None = None
    expires_after_s: int | None = None
    return_last_frame: bool | None = None
    reference_images: int = 0
    reference_videos: int = 0
    reference_audios: int = 0
    web_search: bool | None = None


#: Seed 003: "Chinese ~≤500 characters, English ~≤1000 words recommended" (the same model on every provider).
_SEEDANCE_2_ADVICE = AdvisedPromptLength(words=1000, cjk_chars=500)

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
        references=ReferenceLimits(),
        prompt_max_chars=SEEDANCE_2_PROMPT_MAX_CHARS,
        advised_prompt_length=_SEEDANCE_2_ADVICE,
        supports_web_search=True,  # seed 003's `tools` (boolean)
    ),
)

#: Novita's Seedance 1.5 Pro i2v (seed 004). The model id is the path after `/v3/async/`.
NOVITA_MODELS: tuple[ModelSpec, ...] = (
    ModelSpec(
        key="seedance-1.5-pro",
        display_name="Seedance 1.5 Pro",
        provider=ProviderName.NOVITA,
        provider_model_id="seedance-v1.5-pro-i2v",
        resolutions=(Resolution.P480, Resolution.P720, Resolution.P1080),
        default_resolution=Resolution.P720,
        ratios=_ALL_RATIOS,
        default_ratio=Ratio.ADAPTIVE,
        duration_range_s=(4, 12),
        default_duration_s=5,
        default_audio=True,
        default_camera_fixed=False,
        supports_seed=True,
        supports_last_frame=True,
        advised_prompt_chars=500,
        default_watermark=False,
        service_tiers=(ServiceTier.DEFAULT, ServiceTier.FLEX),
        supports_expiry=True,
    ),
)


def _ark_model(**fields: Any) -> ModelSpec:
    """A ModelArk spec: every Seedance model there takes these options alike."""
    common: dict[str, Any] = {
        "provider": ProviderName.ARK,
        "ratios": _ALL_RATIOS,
        "default_ratio": Ratio.ADAPTIVE,
        "supports_seed": True,
        "default_watermark": False,
        "supports_expiry": True,
        "supports_return_last_frame": True,
    }
    return ModelSpec(**common, **fields)


#: BytePlus ModelArk (Volcengine Ark by base URL, with `doubao-` ids: see ARK_MODEL_IDS). Which model takes a
#: last frame or the flex tier follows ModelArk's model pages as summarised in providers.md; where they are
#: silent (flex on 2.0) the option is left out rather than guessed.
ARK_MODELS: tuple[ModelSpec, ...] = (
    _ark_model(
        key="seedance-1.0-pro",
        display_name="Seedance 1.0 Pro",
        provider_model_id="seedance-1-0-pro-250528",
        resolutions=(Resolution.P480, Resolution.P720, Resolution.P1080),
        default_resolution=Resolution.P720,
        duration_range_s=(2, 12),
        default_duration_s=5,
        default_camera_fixed=False,
        supports_last_frame=True,
        service_tiers=(ServiceTier.DEFAULT, ServiceTier.FLEX),
    ),
    _ark_model(
        key="seedance-1.0-pro-fast",
        display_name="Seedance 1.0 Pro Fast",
        provider_model_id="seedance-1-0-pro-fast-251015",
        resolutions=(Resolution.P480, Resolution.P720, Resolution.P1080),
        default_resolution=Resolution.P720,
        duration_range_s=(2, 12),
        default_duration_s=5,
        default_camera_fixed=False,
        service_tiers=(ServiceTier.DEFAULT, ServiceTier.FLEX),
    ),
    _ark_model(
        key="seedance-1.5-pro",
        display_name="Seedance 1.5 Pro",
        provider_model_id="seedance-1-5-pro-251215",
        resolutions=(Resolution.P480, Resolution.P720, Resolution.P1080),
        default_resolution=Resolution.P720,
        duration_range_s=(4, 12),
        default_duration_s=5,
        default_audio=True,
        default_camera_fixed=False,
        supports_last_frame=True,
        advised_prompt_chars=500,
        service_tiers=(ServiceTier.DEFAULT, ServiceTier.FLEX),
    ),
    _ark_model(
        key="seedance-2.0-pro",
        display_name="Seedance 2.0 Pro",
        provider_model_id="dreamina-seedance-2-0-260128",
        resolutions=(Resolution.P480, Resolution.P720),
        default_resolution=Resolution.P720,
        duration_range_s=(4, 15),
        default_duration_s=5,
        default_audio=True,
        supports_last_frame=True,
        requires_first_frame=False,
        references=ReferenceLimits(audio_needs_visual=True),
        prompt_max_chars=SEEDANCE_2_PROMPT_MAX_CHARS,
        advised_prompt_length=_SEEDANCE_2_ADVICE,
        # No web search: providers.md lists no `tools` among ModelArk's create-task fields (the official
        # SDK carries one, undocumented), so the option is refused rather than guessed.
    ),
)

ALL_MODELS: tuple[ModelSpec, ...] = RUNCOMFY_MODELS + NOVITA_MODELS + ARK_MODELS

DEFAULT_MODEL_KEY = "seedance-1.5-pro"


class Catalogue:
    """The models on offer, looked up by key, and every known (provider, model) pair for stored jobs.

    The same model key may be served by several providers. Members name only the key: the catalogue offers
    the first spec of each key in its order, which `catalogue_for` sets so the default provider comes first.
    Jobs remember their provider, so `spec_for(provider, key)` finds the exact spec a job was made with.
    """

    def __init__(self, models: Iterable[ModelSpec], default_key: str) -> None:
        everything: dict[tuple[ProviderName, str], ModelSpec] = {}
        offered: dict[str, ModelSpec] = {}
        for spec in models:
            everything.setdefault(spec.ref, spec)
            offered.setdefault(spec.key, spec)
        if default_key not in offered:
            raise ValueError(f"default model {default_key!r} is not in the catalogue")
        self._all: Mapping[tuple[ProviderName, str], ModelSpec] = everything
        self._models: Mapping[str, ModelSpec] = offered
        self.default_key = default_key

    def __iter__(self) -> Iterator[ModelSpec]:
        """The offered models (one per key), in catalogue order."""
        return iter(self._models.values())

    @property
    def keys(self) -> tuple[str, ...]:
        """Model keys in catalogue order."""
        return tuple(self._models)

    @property
    def every_spec(self) -> tuple[ModelSpec, ...]:
        """Every (provider, model) offer, including those shadowed by a preferred provider."""
        return tuple(self._all.values())

    def get(self, key: str | None) -> ModelSpec:
        """The model named `key` (the default when None), or UnknownModelError naming the choices."""
        chosen = self.default_key if key is None else key.strip().lower()
        try:
            return self._models[chosen]
        except KeyError:
            raise UnknownModelError(
                Text(
                    "There is no model called “{model}”. Choose one of: {models}.",
                    model=str(key),
                    models=", ".join(self._models),
                )
            ) from None

    def spec_for(self, provider: ProviderName, key: str) -> ModelSpec:
        """The spec `provider` serves `key` with, for a stored job; UnknownModelError when there is none."""
        try:
            return self._all[(provider, key)]
        except KeyError:
            raise UnknownModelError(
                Text(
                    "{provider} does not serve a model called “{model}”.", provider=provider.value, model=key
                )
            ) from None

    def with_credit_weights(self, weights: Mapping[str, Mapping[Resolution, int]]) -> Catalogue:
        """A copy whose models cost what `weights` says per second and resolution (others keep theirs)."""
        known = {spec.key for spec in self._all.values()}
        unknown = sorted(set(weights) - known)
        if unknown:  # a configuration mistake: say so
            raise UnknownModelError(
                f"There is no model called “{unknown[0]}”. Choose one of: {', '.join(sorted(known))}."
            )
        return self._replaced(
            lambda spec: (
                replace(spec, credit_weights={**(spec.credit_weights or {}), **weights[spec.key]})
                if spec.key in weights
                else spec
            )
        )

    def with_model_ids(self, provider: ProviderName, model_ids: Mapping[str, str]) -> Catalogue:
        """A copy in which `provider` serves the named models under other ids (Volcengine, a new version)."""
        served = {spec.key for spec in self._all.values() if spec.provider is provider}
        for key, model_id in model_ids.items():
            if key not in served:
                raise UnknownModelError(
                    f"{provider.value} does not serve “{key}”. It serves: {', '.join(sorted(served))}."
                )
            if not model_id.strip():
                raise OptionValueError(f"the {provider.value} model id for “{key}” is empty")
        return self._replaced(
            lambda spec: (
                replace(spec, provider_model_id=model_ids[spec.key].strip())
                if spec.provider is provider and spec.key in model_ids
                else spec
            )
        )

    def restricted_to(self, providers: Sequence[ProviderName]) -> Catalogue:
        """Only the models of `providers`; where several serve a key, the earlier provider's is offered."""
        rank = {provider: index for index, provider in enumerate(providers)}
        kept = sorted(
            (spec for spec in self._all.values() if spec.provider in rank), key=lambda s: rank[s.provider]
        )
        return Catalogue(kept, self.default_key)

    def validate(self, model_key: str | None, options: RequestedOptions) -> VideoRequest:
        """Check `options` against the chosen model and fill in its defaults."""
        spec = self.get(model_key)
        return validate_options(spec, options)

    def _replaced(self, change: Callable[[ModelSpec], ModelSpec]) -> Catalogue:
        offered_first = [*self._models.values()]
        offered_refs = {spec.ref for spec in offered_first}
        rest = [spec for spec in self._all.values() if spec.ref not in offered_refs]
        return Catalogue([change(spec) for spec in (*offered_first, *rest)], self.default_key)


def default_catalogue() -> Catalogue:
    """The catalogue of every model the bot knows, RunComfy's offered first."""
    return Catalogue(ALL_MODELS, DEFAULT_MODEL_KEY)


def catalogue_for(providers: Sequence[ProviderName]) -> Catalogue:
    """The models of the configured `providers`, the first (the default provider) preferred."""
    return default_catalogue().restricted_to(providers)


def _unsupported(spec: ModelSpec, option: str) -> UnsupportedOptionError:
    return UnsupportedOptionError(
        Text(
            "{model} has no `{option}` option. It supports: {options}.",
            model=spec.display_name,
            option=option,
            options=spec.describe_options(),
        )
    )


def validate_options(spec: ModelSpec, options: RequestedOptions) -> VideoRequest:
    """Return the request with defaults applied, or raise an InvalidRequestError that names the limits.

    The prompt keeps what the member typed, less surrounding whitespace; one with nothing visible in it
    (only whitespace and invisible characters) is empty.
    """
    prompt = options.prompt.strip()
    if is_blank_prompt(prompt):
        raise InvalidPromptError(Text("The prompt is empty: describe the motion you want to see."))
    if len(prompt) > spec.prompt_max_chars:
        raise InvalidPromptError(
            Text(
                "The prompt is {length} characters long; {model} takes at most {most}.",
                length=_grouped(len(prompt)),
                model=spec.display_name,
                most=_grouped(spec.prompt_max_chars),
            )
        )

    resolution = _choice(spec, "resolution", options.resolution, spec.resolutions, spec.default_resolution)
    ratio = _choice(spec, "ratio", options.ratio, spec.ratios, spec.default_ratio)

    low, high = spec.duration_range_s
    duration = spec.default_duration_s if options.duration_s is None else options.duration_s
    if not low <= duration <= high:
        raise OptionValueError(
            Text(
                "{model} makes videos of {low} to {high} seconds; {duration} s is outside that.",
                model=spec.display_name,
                low=low,
                high=high,
                duration=duration,
            )
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
        # Seeds are identifiers more than quantities: written ungrouped in every language.
        raise OptionValueError(
            Text(
                "The seed must be between {low} and {high}; got {seed}.",
                low=str(SEED_MIN),
                high=str(SEED_MAX),
                seed=str(options.seed),
            )
        )
    if options.watermark is not None and not spec.supports_watermark:
        raise _unsupported(spec, "watermark")
    if options.return_last_frame is not None and not spec.supports_return_last_frame:
        raise _unsupported(spec, "return_last_frame")
    if options.web_search is not None and not spec.supports_web_search:
        raise _unsupported(spec, "web_search")
    tier = _service_tier(spec, options.service_tier)
    if options.expires_after_s is not None:
        if not spec.supports_expiry:
            raise _unsupported(spec, "expires_after")
        low_s, high_s = EXPIRES_AFTER_RANGE_S
        if not low_s <= options.expires_after_s <= high_s:
            raise OptionValueError(
                Text(
                    "A job may be given {low} to {high} seconds (1 to 72 hours) before the provider gives up "
                    "on it; {given} s is outside that.",
                    low=str(low_s),  # ungrouped, as the English sentence has always written them
                    high=str(high_s),
                    given=str(options.expires_after_s),
                )
            )
    _check_references(spec, options)

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
        watermark=options.watermark if options.watermark is not None else spec.default_watermark,
        service_tier=tier,
        expires_after_s=options.expires_after_s,
        return_last_frame=options.return_last_frame,
        reference_images=options.reference_images,
        reference_videos=options.reference_videos,
        reference_audios=options.reference_audios,
        web_search=options.web_search,
    )


# Format characters (Cf: zero-width spaces and joiners, direction marks, soft hyphens, the BOM) and
# control characters (Cc) draw nothing.
_INVISIBLE_CATEGORIES = frozenset({"Cf", "Cc"})
# Characters that draw nothing but are letters or symbols: the Hangul fillers and the blank Braille
# pattern, which people paste as "invisible text" to get past a required field.
_BLANK_LOOKALIKES = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def is_blank_prompt(prompt: str) -> bool:
    """Whether `prompt` shows nothing: only whitespace, format and control characters, blank look-alikes."""
    return all(
        char.isspace() or char in _BLANK_LOOKALIKES or unicodedata.category(char) in _INVISIBLE_CATEGORIES
        for char in prompt
    )


# Scripts written without spaces between words, where a character is the unit of length: Han ideographs
# (with extensions A-G and the compatibility block) and Japanese kana (with half-width katakana). Hangul is
# left out: Korean separates its words with spaces, so its words are counted as words.
_CJK_CHAR = re.compile(
    "[\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f\U00020000-\U0003134f]"
)
# A word is a whitespace-separated run holding at least one letter or digit (a lone dash is not a word).
_WORDISH = re.compile(r"[^\W_]")


@dataclass(frozen=True)
class PromptLength:
    """How long a prompt is, the way Seedance's advice counts: words, and CJK characters apart."""

    words: int
    cjk_chars: int


def measure_prompt(prompt: str) -> PromptLength:
    """Count `prompt`'s CJK characters, and its words once those are set aside."""
    cjk_chars = len(_CJK_CHAR.findall(prompt))
    spaced = _CJK_CHAR.sub(" ", prompt)
    words = sum(1 for token in spaced.split() if _WORDISH.search(token))
    return PromptLength(words=words, cjk_chars=cjk_chars)


def prompt_advice_text(spec: ModelSpec, prompt: str) -> Text | None:
    """A gentle note for the member when `prompt` runs past `spec`'s advised length, else None.

    Pure, and advice only: the prompt is sent as it is (validation alone refuses, at `prompt_max_chars`).
    Character advice (Seedance 1.5 Pro: under 500) counts every character; word advice (Seedance 2.0:
    1,000 English words or 500 Chinese characters) lets a mixed prompt spend both budgets in proportion.
    """
    text = prompt.strip()
    name = spec.display_name
    advised_chars = spec.advised_prompt_chars
    if advised_chars is not None and len(text) > advised_chars:
        return Text(
            "{model} works best with prompts under {advised} characters; yours has {length}. "
            "It was sent as is.",
            model=name,
            advised=_grouped(advised_chars),
            length=_grouped(len(text)),
        )
    advised = spec.advised_prompt_length
    if advised is None:
        return None
    length = measure_prompt(text)
    share = length.words / advised.words + length.cjk_chars / advised.cjk_chars
    if share <= 1:
        return None
    values: dict[str, str | int | Text] = {
        "model": name,
        "words": _grouped(advised.words),
        "cjk": _grouped(advised.cjk_chars),
        "have_words": _grouped(length.words),
        "have_cjk": _grouped(length.cjk_chars),
    }
    if not length.cjk_chars:
        return Text(
            "{model} works best with prompts under {words} words (or {cjk} Chinese characters); "
            "yours has {have_words} words. It was sent as is.",
            **values,
        )
    if not length.words:
        return Text(
            "{model} works best with prompts under {cjk} Chinese characters (or {words} English words); "
            "yours has {have_cjk} Chinese characters. It was sent as is.",
            **values,
        )
    return Text(
        "{model} works best with prompts under {words} words or {cjk} Chinese characters; yours has "
        "{have_words} words and {have_cjk} Chinese characters, about {percent}% of that. It was sent as is.",
        percent=int(f"{share:.0%}".removesuffix("%")),
        **values,
    )


def _option(name: str, values: str | Text) -> Text:
    """An option and what it takes, in an options summary: "ratio (16:9, 1:1)"."""
    return Text("{option} ({values})", option=name, values=values)


def _grouped(count: int) -> int | Text:
    """`count` as `{:,}` writes it in English ("1,000"), and grouped in the reader's language's way.

    A `Text` groups numbers of five digits or more itself; four-digit ones it writes without a separator, so
    they get a template of their own, which each language writes with its separator ("1 000", "1.000").
    """
    if 1000 <= count < 10_000:
        return Text("{thousands},{units}", thousands=count // 1000, units=str(count % 1000).zfill(3))
    return count


def prompt_advice(spec: ModelSpec, prompt: str) -> str | None:
    """`prompt_advice_text` in English."""
    advice = prompt_advice_text(spec, prompt)
    return None if advice is None else str(advice)


def _service_tier(spec: ModelSpec, given: str | None) -> ServiceTier | None:
    if given is None:
        return None
    if not spec.service_tiers:
        raise _unsupported(spec, "tier")
    return _choice(spec, "tier", given, spec.service_tiers, spec.service_tiers[0])


def _check_references(spec: ModelSpec, options: RequestedOptions) -> None:
    images, videos, audios = options.reference_images, options.reference_videos, options.reference_audios
    if not (images or videos or audios):
        return
    limits = spec.references
    if limits is None:
        raise UnsupportedOptionError(
            Text(
                "{model} takes no reference images, videos or audio. "
                "Use a model with a multimodal reference mode (Seedance 2.0 Pro).",
                model=spec.display_name,
            )
        )
    model = spec.display_name
    if images > limits.max_images:
        raise OptionValueError(
            Text(
                "{model} takes at most {allowed} reference images; {count} were attached.",
                model=model,
                allowed=limits.max_images,
                count=images,
            )
        )
    if videos > limits.max_videos:
        raise OptionValueError(
            Text(
                "{model} takes at most {allowed} reference videos; {count} were attached.",
                model=model,
                allowed=limits.max_videos,
                count=videos,
            )
        )
    if audios > limits.max_audios:
        raise OptionValueError(
            Text(
                "{model} takes at most {allowed} reference audio clips; {count} were attached.",
                model=model,
                allowed=limits.max_audios,
                count=audios,
            )
        )
    if limits.audio_needs_visual and audios and not (images or videos):
        raise OptionValueError(
            Text(
                "{model} uses reference audio only together with a reference image or video.",
                model=model,
            )
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
        Text(
            "{model} does not offer {option} “{given}”. Allowed: {allowed}.",
            model=spec.display_name,
            option=option,
            given=given,
            allowed=", ".join(v.value for v in allowed),
        )
    )
