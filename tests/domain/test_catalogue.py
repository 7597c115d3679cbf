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
