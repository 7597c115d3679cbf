"""The catalogue states each RunComfy model's options exactly as providers.md and the seeds do."""

from __future__ import annotations

import pytest

from bot.domain.catalogue import PROMPT_MAX_CHARS, RequestedOptions, default_catalogue
from bot.domain.errors import (
    InvalidPromptError,
    OptionValueError,
    UnknownModelError,
    UnsupportedOptionError,
)
from bot.domain.models import Ratio, Resolution

CATALOGUE = default_catalogue()


def opts(**kwargs: object) -> RequestedOptions:
    return RequestedOptions(prompt=str(kwargs.pop("prompt", "a cat turns its head")), **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("model", "provider_id", "resolution", "duration", "audio", "camera_fixed"),
    [
        ("seedance-1.0-pro", "bytedance/seedance-1-0/pro/image-to-video", "480p", 5, None, None),
        ("seedance-1.5-pro", "bytedance/seedance-v1.5-pro/image-to-video", "480p", 5, True, True),
        ("seedance-2.0-pro", "bytedance/seedance-2.0/pro", "720p", 5, True, None),
    ],
)
def test_defaults_match_the_documented_schemas(model, provider_id, resolution, duration, audio, camera_fixed):
    spec = CATALOGUE.get(model)
    request = CATALOGUE.validate(model, opts())
    assert spec.provider_model_id == provider_id
    assert request.resolution == Resolution(resolution)
    assert request.ratio is Ratio.ADAPTIVE
    assert request.duration_s == duration
    assert request.generate_audio is audio
    assert request.camera_fixed is camera_fixed
    assert request.seed is None


def test_the_default_model_is_seedance_15_pro():
    assert CATALOGUE.validate(None, opts()).model == "seedance-1.5-pro"


@pytest.mark.parametrize(
    ("model", "low", "high"),
    [("seedance-1.0-pro", 2, 12), ("seedance-1.5-pro", 4, 12), ("seedance-2.0-pro", 4, 15)],
)
def test_duration_range_is_inclusive_at_both_ends(model, low, high):
    assert CATALOGUE.validate(model, opts(duration_s=low)).duration_s == low
    assert CATALOGUE.validate(model, opts(duration_s=high)).duration_s == high
    for outside in (low - 1, high + 1):
        with pytest.raises(OptionValueError, match=rf"{low} to {high} seconds; {outside} s"):
            CATALOGUE.validate(model, opts(duration_s=outside))


def test_resolution_1080p_is_refused_for_20_with_the_allowed_list():
    with pytest.raises(OptionValueError) as caught:
        CATALOGUE.validate("seedance-2.0-pro", opts(resolution="1080p"))
    assert "Seedance 2.0 Pro" in caught.value.message
    assert "480p, 720p" in caught.value.message
    assert CATALOGUE.validate("seedance-1.0-pro", opts(resolution="1080P")).resolution is Resolution.P1080


@pytest.mark.parametrize(
    ("model", "option", "kwargs"),
    [
        ("seedance-1.0-pro", "audio", {"generate_audio": False}),
        ("seedance-1.0-pro", "camera_fixed", {"camera_fixed": True}),
        ("seedance-1.0-pro", "seed", {"seed": 7}),
        ("seedance-1.5-pro", "seed", {"seed": 7}),
        ("seedance-2.0-pro", "camera_fixed", {"camera_fixed": False}),
        ("seedance-1.5-pro", "last_frame", {"has_last_frame": True}),
    ],
)
def test_an_unsupported_option_names_the_model_and_what_it_supports(model, option, kwargs):
    with pytest.raises(UnsupportedOptionError) as caught:
        CATALOGUE.validate(model, opts(**kwargs))
    message = caught.value.message
    assert f"no `{option}` option" in message
    assert CATALOGUE.get(model).display_name in message
    assert "It supports: resolution (" in message


def test_options_the_model_has_are_passed_through():
    request = CATALOGUE.validate(
        "seedance-1.5-pro", opts(generate_audio=False, camera_fixed=False, ratio="9:16", duration_s=12)
    )
    assert (request.generate_audio, request.camera_fixed, request.ratio, request.duration_s) == (
        False,
        False,
        Ratio.R9_16,
        12,
    )
    assert CATALOGUE.validate("seedance-2.0-pro", opts(seed=4_294_967_295)).seed == 4_294_967_295


@pytest.mark.parametrize("seed", [-2, 4_294_967_296])
def test_seed_out_of_range(seed):
    with pytest.raises(OptionValueError, match="between -1 and 4294967295"):
        CATALOGUE.validate("seedance-2.0-pro", opts(seed=seed))


def test_unknown_ratio_lists_the_choices():
    with pytest.raises(OptionValueError, match=r"16:9, 4:3, 1:1, 3:4, 9:16, 21:9, adaptive"):
        CATALOGUE.validate(None, opts(ratio="2:1"))


def test_unknown_model_lists_the_models():
    with pytest.raises(UnknownModelError, match="seedance-1.0-pro, seedance-1.5-pro, seedance-2.0-pro"):
        CATALOGUE.get("sora")


@pytest.mark.parametrize("prompt", ["", "   \n"])
def test_empty_prompt_is_refused(prompt):
    with pytest.raises(InvalidPromptError, match="empty"):
        CATALOGUE.validate(None, opts(prompt=prompt))


def test_prompt_length_limit_is_inclusive_and_counts_after_trimming():
    assert (
        CATALOGUE.validate(None, opts(prompt=" " + "x" * PROMPT_MAX_CHARS + " ")).prompt
        == "x" * PROMPT_MAX_CHARS
    )
    with pytest.raises(InvalidPromptError, match=f"{PROMPT_MAX_CHARS + 1} characters"):
        CATALOGUE.validate(None, opts(prompt="x" * (PROMPT_MAX_CHARS + 1)))


# --- Several providers ---------------------------------------------------------------------------------

from bot.domain.catalogue import catalogue_for  # noqa: E402
from bot.domain.models import ProviderName, ServiceTier  # noqa: E402

NOVITA_FIRST = catalogue_for((ProviderName.NOVITA, ProviderName.RUNCOMFY))
ARK_ONLY = catalogue_for((ProviderName.ARK,))


def test_the_default_provider_serves_a_model_every_provider_offers():
    assert NOVITA_FIRST.get("seedance-1.5-pro").provider is ProviderName.NOVITA
    assert catalogue_for((ProviderName.RUNCOMFY, ProviderName.NOVITA)).get("seedance-1.5-pro").provider is (
        ProviderName.RUNCOMFY
    )


def test_other_providers_fill_in_models_the_default_one_lacks():
    # Novita has no 2.0: with RunComfy also configured, members still get it, from RunComfy.
    assert NOVITA_FIRST.keys == ("seedance-1.5-pro", "seedance-1.0-pro", "seedance-2.0-pro")
    assert NOVITA_FIRST.get("seedance-2.0-pro").provider is ProviderName.RUNCOMFY
    assert catalogue_for((ProviderName.NOVITA,)).keys == ("seedance-1.5-pro",)


def test_a_stored_job_finds_the_exact_spec_of_its_provider():
    # A job made on RunComfy keeps RunComfy's spec even when Novita now serves the same key by default.
    spec = NOVITA_FIRST.spec_for(ProviderName.RUNCOMFY, "seedance-1.5-pro")
    assert spec.provider_model_id == "bytedance/seedance-v1.5-pro/image-to-video"
    with pytest.raises(UnknownModelError, match="novita does not serve"):
        NOVITA_FIRST.spec_for(ProviderName.NOVITA, "seedance-2.0-pro")


def test_ark_offers_its_four_models():
    assert ARK_ONLY.keys == (
        "seedance-1.0-pro",
        "seedance-1.0-pro-fast",
        "seedance-1.5-pro",
        "seedance-2.0-pro",
    )
    assert {spec.provider_model_id for spec in ARK_ONLY} == {
        "seedance-1-0-pro-250528",
        "seedance-1-0-pro-fast-251015",
        "seedance-1-5-pro-251215",
        "dreamina-seedance-2-0-260128",
    }


def test_model_ids_can_be_replaced_per_provider():
    volcengine = ARK_ONLY.with_model_ids(
        ProviderName.ARK, {"seedance-1.5-pro": "doubao-seedance-1-5-pro-251215"}
    )
    assert volcengine.get("seedance-1.5-pro").provider_model_id == "doubao-seedance-1-5-pro-251215"
    assert volcengine.get("seedance-1.0-pro").provider_model_id == "seedance-1-0-pro-250528"
    with pytest.raises(UnknownModelError, match="ark does not serve “seedance-3”"):
        ARK_ONLY.with_model_ids(ProviderName.ARK, {"seedance-3": "x"})
    with pytest.raises(OptionValueError, match="empty"):
        ARK_ONLY.with_model_ids(ProviderName.ARK, {"seedance-1.5-pro": " "})


def test_novita_options_follow_seed_004():
    request = NOVITA_FIRST.validate(
        "seedance-1.5-pro",
        opts(watermark=True, service_tier="flex", expires_after_s=3600, seed=7, resolution="1080p"),
    )
    assert request.watermark is True
    assert request.service_tier is ServiceTier.FLEX
    assert request.expires_after_s == 3600
    assert request.options_summary()["tier"] == "flex (slower, cheaper)"
    defaults = NOVITA_FIRST.validate("seedance-1.5-pro", opts())
    assert (defaults.watermark, defaults.service_tier, defaults.camera_fixed) == (False, None, False)


@pytest.mark.parametrize(("seconds", "ok"), [(3599, False), (3600, True), (259_200, True), (259_201, False)])
def test_expiry_is_bounded_as_documented(seconds, ok):
    options = opts(expires_after_s=seconds)
    if ok:
        assert NOVITA_FIRST.validate("seedance-1.5-pro", options).expires_after_s == seconds
    else:
        with pytest.raises(OptionValueError, match=f"{seconds} s is outside"):
            NOVITA_FIRST.validate("seedance-1.5-pro", options)


@pytest.mark.parametrize(
    ("option", "value", "named"),
    [
        ("watermark", True, "watermark"),
        ("service_tier", "flex", "tier"),
        ("expires_after_s", 7200, "expires_after"),
        ("return_last_frame", True, "return_last_frame"),
    ],
)
def test_runcomfy_models_refuse_options_they_do_not_have(option, value, named):
    with pytest.raises(UnsupportedOptionError, match=f"`{named}`"):
        CATALOGUE.validate("seedance-1.5-pro", opts(**{option: value}))


def test_an_unknown_tier_names_the_choices():
    with pytest.raises(OptionValueError, match="Allowed: default, flex"):
        NOVITA_FIRST.validate("seedance-1.5-pro", opts(service_tier="turbo"))


def test_reference_media_is_counted_against_the_model():
    assert CATALOGUE.validate("seedance-2.0-pro", opts(reference_images=9, reference_videos=3)).has_references
    with pytest.raises(OptionValueError, match="at most 9 reference images; 10 were attached"):
        CATALOGUE.validate("seedance-2.0-pro", opts(reference_images=10))
    with pytest.raises(OptionValueError, match="at most 3 reference audio clips; 4"):
        CATALOGUE.validate("seedance-2.0-pro", opts(reference_audios=4))
    with pytest.raises(UnsupportedOptionError, match="takes no reference"):
        CATALOGUE.validate("seedance-1.5-pro", opts(reference_images=1))


def test_ark_reads_reference_audio_only_next_to_a_picture():
    with pytest.raises(OptionValueError, match="only together with a reference image or video"):
        ARK_ONLY.validate("seedance-2.0-pro", opts(reference_audios=1))
    assert ARK_ONLY.validate("seedance-2.0-pro", opts(reference_audios=1, reference_videos=1)).has_references
    # RunComfy documents no such rule.
    assert CATALOGUE.validate("seedance-2.0-pro", opts(reference_audios=1)).reference_audios == 1


def test_the_summary_names_the_references():
    request = CATALOGUE.validate("seedance-2.0-pro", opts(reference_images=2, reference_audios=1))
    assert request.options_summary()["references"] == "2 images, 1 audio clip"
