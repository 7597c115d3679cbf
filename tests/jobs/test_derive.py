"""Re-roll, extend and variations: which model and options a button's new job asks for."""

from __future__ import annotations

import pytest

from bot.domain.catalogue import catalogue_for, default_catalogue
from bot.domain.models import (
    Derivation,
    Job,
    JobState,
    ProviderName,
    Ratio,
    Resolution,
    ServiceTier,
    VideoRequest,
)
from bot.jobs.derive import (
    DerivationRefusedError,
    Variation,
    VariationKind,
    extend,
    options_of,
    reroll,
    variation_choices,
    vary,
)
from tests.factories import make_job

CATALOGUE = default_catalogue()
REQUEST = VideoRequest(
    model="seedance-1.5-pro",
    prompt="a fox blinks",
    resolution=Resolution.P720,
    ratio=Ratio.R9_16,
    duration_s=6,
    generate_audio=False,
    camera_fixed=True,
)


def job(**changes) -> Job:
    return make_job(REQUEST, **{"state": JobState.DELIVERED, **changes})


def test_options_of_gives_the_same_request_back():
    assert CATALOGUE.validate(REQUEST.model, options_of(REQUEST)) == REQUEST


def test_a_reroll_keeps_everything_but_the_seed():
    two = VideoRequest(
        model="seedance-2.0-pro",
        prompt="x",
        resolution=Resolution.P480,
        ratio=Ratio.R1_1,
        duration_s=8,
        generate_audio=True,
        seed=7,
    )
    derived = reroll(job(request=two), CATALOGUE)

    assert derived.lineage.parent_job_id == 7 and derived.lineage.derivation is Derivation.REROLL
    again = CATALOGUE.validate(derived.model, derived.options)
    assert again.seed != 7
    assert again == VideoRequest(**{**two.__dict__, "seed": again.seed})
    assert derived.reuses_inputs


def test_an_extension_starts_fresh_from_a_frame_and_drops_the_last_frame_and_references():
    flex = VideoRequest(**{**REQUEST.__dict__, "service_tier": ServiceTier.FLEX, "return_last_frame": True})
    derived = extend(job(request=flex, provider=ProviderName.NOVITA), catalogue_for([ProviderName.NOVITA]))

    assert not derived.reuses_inputs
    assert derived.options.has_last_frame is False and derived.options.return_last_frame is None
    assert derived.options.service_tier == "flex"  # the member's choice of tier carries over
    assert derived.options.duration_s == 6


def test_variations_offer_other_durations_resolutions_and_models_within_25():
    choices = variation_choices(job(), CATALOGUE)
    tokens = [choice.token for choice, _ in choices]

    assert "duration=6" not in tokens and "duration=12" in tokens and "duration=15" not in tokens
    assert "resolution=720p" not in tokens and "resolution=1080p" in tokens
    assert "model=seedance-2.0-pro" in tokens and "model=seedance-1.5-pro" not in tokens
    assert len(choices) <= 25
    assert all(len(label) <= 100 for _, label in choices)


def test_a_model_variation_drops_what_the_new_model_lacks_instead_of_failing():
    derived = vary(job(), Variation(VariationKind.MODEL, "seedance-1.0-pro"), CATALOGUE)

    request = CATALOGUE.validate(derived.model, derived.options)  # no "has no audio option" refusal
    assert request.model == "seedance-1.0-pro"
    assert (request.duration_s, request.resolution, request.ratio) == (6, Resolution.P720, Ratio.R9_16)
    assert request.generate_audio is None and request.camera_fixed is None


def test_a_duration_variation_is_clamped_by_validation_not_by_the_menu():
    derived = vary(job(), Variation.from_token("duration=12"), CATALOGUE)
    assert CATALOGUE.validate(derived.model, derived.options).duration_s == 12


@pytest.mark.parametrize("token", ["colour=red", "duration=ten", "model=seedance-9"])
def test_a_choice_no_menu_offers_is_refused(token):
    with pytest.raises(DerivationRefusedError):
        vary(job(), Variation.from_token(token), CATALOGUE)


def test_a_job_of_a_model_no_longer_offered_cannot_be_rerolled():
    with pytest.raises(DerivationRefusedError, match="no longer offers"):
        reroll(job(request=VideoRequest(**{**REQUEST.__dict__, "model": "seedance-0.1"})), CATALOGUE)
