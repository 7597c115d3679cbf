"""New requests made from a finished job with a button on its result: re-roll, extend, variations.

Pure functions over the stored request: which model and options the new job asks for. The inputs (the
re-posted files, the last frame) are the front end's to fetch; the new job then runs the same flow as any
request (quota, validation, card, thread, delivery), charged to whoever pressed the button.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace
from enum import StrEnum

from bot.domain.catalogue import SEED_MAX, Catalogue, ModelSpec, RequestedOptions
from bot.domain.errors import DomainError, UnknownModelError
from bot.domain.models import Derivation, Job, Lineage, VideoRequest
from bot.jobs.errors import JobError

#: Discord shows at most 25 options in a select.
MAX_VARIATIONS = 25
#: The durations a variation offers, within the model's range.
_DURATION_STEPS = (4, 5, 8, 10, 12, 15)


class DerivationRefusedError(JobError):
    """A button's new job cannot be made from this result."""


class VariationKind(StrEnum):
    """Which option a variation changes."""

    DURATION = "duration"
    RESOLUTION = "resolution"
    MODEL = "model"


@dataclass(frozen=True)
class Variation:
    """One choice in a result's Variations menu: the option it changes and the new value."""

    kind: VariationKind
    value: str

    @property
    def token(self) -> str:
        """How the choice travels in a component: `duration=10`, `model=seedance-2.0-pro`."""
        return f"{self.kind.value}={self.value}"

    @classmethod
    def from_token(cls, token: str) -> Variation:
        """The choice a component sent back (DerivationRefusedError for one no menu offers)."""
        kind, _, value = token.partition("=")
        try:
            return cls(VariationKind(kind), value)
        except ValueError:
            raise DerivationRefusedError("That choice is not one this menu offers.") from None


@dataclass(frozen=True)
class DerivedRequest:
    """What a button's new job asks for."""

    model: str
    options: RequestedOptions
    lineage: Lineage
    #: Whether the new job takes the parent's re-posted files (not Extend, which starts from its last frame).
    reuses_inputs: bool = True


def options_of(request: VideoRequest) -> RequestedOptions:
    """The options that give `request` again, every one spelled out (a model default may change later)."""
    return RequestedOptions(
        prompt=request.prompt,
        resolution=request.resolution.value,
        ratio=request.ratio.value,
        duration_s=request.duration_s,
        generate_audio=request.generate_audio,
        camera_fixed=request.camera_fixed,
        seed=request.seed,
        watermark=request.watermark,
        service_tier=request.service_tier.value if request.service_tier else None,
        expires_after_s=request.expires_after_s,
        return_last_frame=request.return_last_frame,
        web_search=request.web_search,
        reference_images=request.reference_images,
        reference_videos=request.reference_videos,
        reference_audios=request.reference_audios,
    )


def _spec(job: Job, catalogue: Catalogue) -> ModelSpec:
    try:
        return catalogue.get(job.model)
    except UnknownModelError:
        raise DerivationRefusedError(
            f"Video #{job.id} was made with {job.model}, which this bot no longer offers."
        ) from None


def _new_seed(spec: ModelSpec) -> int | None:
    # A model without a seed option draws a new one itself on every request.
    return secrets.randbelow(SEED_MAX + 1) if spec.supports_seed else None


def reroll(job: Job, catalogue: Catalogue) -> DerivedRequest:
    """The same inputs and options with a new seed."""
    spec = _spec(job, catalogue)
    options = replace(
        options_of(job.request), seed=_new_seed(spec), has_last_frame=job.last_frame is not None
    )
    return DerivedRequest(spec.key, options, Lineage(job.id, Derivation.REROLL))


def extend(job: Job, catalogue: Catalogue) -> DerivedRequest:
    """A continuation: the same prompt and options, from the video's last frame (which the caller gives)."""
    spec = _spec(job, catalogue)
    options = replace(
        options_of(job.request),
        seed=_new_seed(spec),
        has_last_frame=False,
        return_last_frame=None,
        reference_images=0,
        reference_videos=0,
        reference_audios=0,
    )
    return DerivedRequest(spec.key, options, Lineage(job.id, Derivation.EXTEND), reuses_inputs=False)


def variation_choices(job: Job, catalogue: Catalogue) -> list[tuple[Variation, str]]:
    """The Variations menu of a result: each choice with its label, at most 25."""
    try:
        spec = catalogue.get(job.model)
    except UnknownModelError:
        return []
    request = job.request
    choices: list[tuple[Variation, str]] = []
    low, high = spec.duration_range_s
    for seconds in sorted({low, high, *_DURATION_STEPS}):
        if low <= seconds <= high and seconds != request.duration_s:
            choices.append((Variation(VariationKind.DURATION, str(seconds)), f"{seconds} seconds long"))
    for resolution in spec.resolutions:
        if resolution is not request.resolution:
            choices.append((Variation(VariationKind.RESOLUTION, resolution.value), f"In {resolution.value}"))
    for other in catalogue:
        if other.key == spec.key or (request.has_references and other.references is None):
            continue
        choices.append((Variation(VariationKind.MODEL, other.key), f"With {other.display_name}"))
    return choices[:MAX_VARIATIONS]


def vary(job: Job, variation: Variation, catalogue: Catalogue) -> DerivedRequest:
    """The same inputs with one option changed; options the new model lacks fall back to its defaults."""
    spec = _spec(job, catalogue)
    options = replace(options_of(job.request), has_last_frame=job.last_frame is not None)
    match variation.kind:
        case VariationKind.DURATION:
            if not variation.value.isdigit():
                raise DerivationRefusedError("That duration is not one this menu offers.")
            options = replace(options, duration_s=int(variation.value))
        case VariationKind.RESOLUTION:
            options = replace(options, resolution=variation.value)
        case VariationKind.MODEL:
            try:
                spec = catalogue.get(variation.value)
            except DomainError:
                raise DerivationRefusedError(
                    "That model is no longer offered here; pick another variation."
                ) from None
            options = _fitted_to(spec, options)
    return DerivedRequest(spec.key, options, Lineage(job.id, Derivation.VARIATION))


def _fitted_to(spec: ModelSpec, options: RequestedOptions) -> RequestedOptions:
    """`options` less what `spec` does not take: a model change is not refused for an old model's option."""
    low, high = spec.duration_range_s
    duration = options.duration_s
    resolutions = {resolution.value for resolution in spec.resolutions}
    ratios = {ratio.value for ratio in spec.ratios}
    return replace(
        options,
        duration_s=min(max(duration, low), high) if duration is not None else None,
        resolution=options.resolution if options.resolution in resolutions else None,
        ratio=options.ratio if options.ratio in ratios else None,
        generate_audio=options.generate_audio if spec.supports_audio else None,
        camera_fixed=options.camera_fixed if spec.supports_camera_fixed else None,
        seed=options.seed if spec.supports_seed else None,
        watermark=options.watermark if spec.supports_watermark else None,
        service_tier=options.service_tier if spec.service_tiers else None,
        expires_after_s=options.expires_after_s if spec.supports_expiry else None,
        return_last_frame=options.return_last_frame if spec.supports_return_last_frame else None,
        web_search=options.web_search if spec.supports_web_search else None,
        has_last_frame=options.has_last_frame and spec.supports_last_frame,
    )
