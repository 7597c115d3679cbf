"""The catalogue states each RunComfy model's options exactly as providers.md and the seeds do."""

from __future__ import annotations

import pytest

from bot.domain.catalogue import (
    DEFAULT_PROMPT_MAX_CHARS,
    SEEDANCE_2_PROMPT_MAX_CHARS,
    RequestedOptions,
    default_catalogue,
)
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


@pytest.mark.parametrize(
    "prompt",
    [
        "",
        "   \n",
        "\u200b",  # zero-width space
        "\u200b\u200c\u200d\u2060\ufeff",  # zero-width non-joiner, joiner, word joiner, BOM
        " \u200e\u200f\u00ad \t",  # direction marks and a soft hyphen among whitespace
        "\u3164\u2800\u115f",  # Hangul filler and blank Braille: letters and symbols that draw nothing
    ],
    ids=["nothing", "whitespace", "zwsp", "joiners", "marks", "lookalikes"],
)
def test_a_prompt_with_nothing_visible_is_empty(prompt):
    with pytest.raises(InvalidPromptError, match="empty"):
        CATALOGUE.validate(None, opts(prompt=prompt))


def test_a_prompt_with_text_keeps_its_invisible_characters_as_typed():
    typed = "\u200ba cat\u200d turns"
    assert CATALOGUE.validate(None, opts(prompt=f"  {typed}\n")).prompt == typed


@pytest.mark.parametrize(
    ("model", "cap", "name"),
    [
        ("seedance-1.0-pro", DEFAULT_PROMPT_MAX_CHARS, "Seedance 1.0 Pro"),
        ("seedance-1.5-pro", DEFAULT_PROMPT_MAX_CHARS, "Seedance 1.5 Pro"),
        ("seedance-2.0-pro", SEEDANCE_2_PROMPT_MAX_CHARS, "Seedance 2.0 Pro"),
    ],
)
def test_each_model_has_its_own_prompt_cap_inclusive_after_trimming(model, cap, name):
    assert CATALOGUE.validate(model, opts(prompt=" " + "x" * cap + " ")).prompt == "x" * cap
    with pytest.raises(InvalidPromptError) as caught:
        CATALOGUE.validate(model, opts(prompt="x" * (cap + 1)))
    assert caught.value.message == (
        f"The prompt is {cap + 1:,} characters long; {name} takes at most {cap:,}."
    )


def test_the_same_model_has_the_same_prompt_cap_on_every_provider():
    for spec in CATALOGUE.every_spec + ARK_ONLY.every_spec + NOVITA_FIRST.every_spec:
        expected = SEEDANCE_2_PROMPT_MAX_CHARS if spec.key == "seedance-2.0-pro" else DEFAULT_PROMPT_MAX_CHARS
        assert spec.prompt_max_chars == expected, spec.ref


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


# --- Seedance 2.0's web search (seed 003's `tools`) -------------------------------------------------------


def test_web_search_is_passed_through_on_runcomfys_seedance_2_0_and_shown_in_the_summary():
    on = CATALOGUE.validate("seedance-2.0-pro", opts(web_search=True))
    assert on.web_search is True
    assert on.options_summary()["web search"] == "on"
    off = CATALOGUE.validate("seedance-2.0-pro", opts(web_search=False))
    assert off.web_search is False
    assert "web search" not in off.options_summary()
    assert CATALOGUE.validate("seedance-2.0-pro", opts()).web_search is None
    assert "web_search" in CATALOGUE.get("seedance-2.0-pro").describe_options()


@pytest.mark.parametrize(
    ("catalogue", "model"),
    [
        (CATALOGUE, "seedance-1.0-pro"),
        (CATALOGUE, "seedance-1.5-pro"),
        (NOVITA_FIRST, "seedance-1.5-pro"),  # Novita documents no web search
        (ARK_ONLY, "seedance-2.0-pro"),  # nor does ModelArk, in providers.md
    ],
    ids=["runcomfy-1.0", "runcomfy-1.5", "novita-1.5", "ark-2.0"],
)
@pytest.mark.parametrize("value", [True, False])
def test_web_search_is_refused_where_the_provider_documents_none(catalogue, model, value):
    with pytest.raises(UnsupportedOptionError) as caught:
        catalogue.validate(model, opts(web_search=value))
    assert caught.value.message.startswith(f"{catalogue.get(model).display_name} has no `web_search` option.")
    assert "web_search" not in catalogue.get(model).describe_options()


# --- Prompt advice -----------------------------------------------------------------------------------------

from bot.domain.catalogue import (  # noqa: E402
    AdvisedPromptLength,
    PromptLength,
    measure_prompt,
    prompt_advice,
)

# Seed 003's example prompt: 43 words, about 6.3 characters a word with its spaces and punctuation.
SEED_PROMPT = (
    "Golden hour on a quiet cafe terrace: a barista wipes the counter, then looks up and explains today's "
    "special in a friendly tone, natural lip-sync. Medium close-up, slow push-in; warm side light, soft "
    "bokeh through glass, gentle cafe ambience and subtle film grain."
)


def english_words(count: int) -> str:
    words = SEED_PROMPT.split()
    return " ".join(words[i % len(words)] for i in range(count))


def test_seedance_2_0_takes_a_thousand_word_english_prompt_without_advice():
    prompt = english_words(1000)
    assert len(prompt) > 6000  # more than a Discord string option can carry
    for catalogue in (CATALOGUE, ARK_ONLY):
        spec = catalogue.get("seedance-2.0-pro")
        assert catalogue.validate(spec.key, opts(prompt=prompt)).prompt == prompt
        assert prompt_advice(spec, prompt) is None


def test_seedance_2_0_advises_past_a_thousand_words():
    spec = CATALOGUE.get("seedance-2.0-pro")
    assert prompt_advice(spec, english_words(1001)) == (
        "Seedance 2.0 Pro works best with prompts under 1,000 words (or 500 Chinese characters); "
        "yours has 1,001 words. It was sent as is."
    )


def test_seedance_2_0_counts_chinese_by_the_character_and_not_its_punctuation():
    spec = CATALOGUE.get("seedance-2.0-pro")
    # 62 times 8 characters and a full-width comma, then 4 more: 500 characters, 62 commas, a full stop.
    chinese = "一只猫慢慢转过头，" * 62 + "看向窗外。"
    assert prompt_advice(spec, chinese) is None
    assert prompt_advice(spec, chinese + "猫") == (
        "Seedance 2.0 Pro works best with prompts under 500 Chinese characters (or 1,000 English words); "
        "yours has 501 Chinese characters. It was sent as is."
    )


def test_a_mixed_prompt_spends_both_budgets_in_proportion():
    spec = CATALOGUE.get("seedance-2.0-pro")
    # 500 of 1,000 words and 250 of 500 characters: exactly the advised length.
    assert prompt_advice(spec, english_words(500) + " " + "猫" * 250) is None
    assert prompt_advice(spec, english_words(600) + " " + "猫" * 250) == (
        "Seedance 2.0 Pro works best with prompts under 1,000 words or 500 Chinese characters; "
        "yours has 600 words and 250 Chinese characters, about 110% of that. It was sent as is."
    )


def test_seedance_1_5_advises_past_500_characters_in_any_script():
    spec = NOVITA_FIRST.get("seedance-1.5-pro")
    assert prompt_advice(spec, " " + "x" * 500 + " ") is None
    assert prompt_advice(spec, "x" * 812) == (
        "Seedance 1.5 Pro works best with prompts under 500 characters; yours has 812. It was sent as is."
    )
    assert prompt_advice(spec, "猫" * 501) is not None


def test_a_model_without_advice_gives_none():
    assert prompt_advice(CATALOGUE.get("seedance-1.0-pro"), "x" * DEFAULT_PROMPT_MAX_CHARS) is None


@pytest.mark.parametrize(
    ("prompt", "words", "cjk"),
    [
        ("a cat turns its head", 5, 0),
        ("don't stop — the well-lit room , ok", 6, 0),  # a lone dash or comma is not a word
        ("一只猫 turns 转过头", 1, 6),
        ("ねこがゆっくり振り向く", 0, 11),  # kana and kanji: no spaces, counted by the character
        ("고양이가 천천히 고개를 돌린다", 4, 0),  # Korean separates words with spaces
        ("𠀀𠀁 x", 1, 2),  # Han extension B, outside the basic plane
        ("", 0, 0),
    ],
)
def test_measure_prompt_counts_words_and_cjk_characters_apart(prompt, words, cjk):
    assert measure_prompt(prompt) == PromptLength(words=words, cjk_chars=cjk)


def test_advised_lengths_must_be_positive():
    with pytest.raises(ValueError, match="positive"):
        AdvisedPromptLength(words=0, cjk_chars=500)
