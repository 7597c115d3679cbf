"""Member defaults: what fills a member's unset options, what can be saved, and where it is kept."""

from __future__ import annotations

import json

import pytest

from bot.domain.catalogue import RequestedOptions, catalogue_for, default_catalogue
from bot.domain.errors import UnknownModelError
from bot.domain.models import ProviderName, Ratio, Resolution
from bot.jobs.defaults import (
    DefaultField,
    DefaultsService,
    MemberDefaults,
    apply_defaults,
    defaults_key,
)
from bot.jobs.errors import InvalidDefaultError
from bot.storage import open_stores

GUILD, OTHER_GUILD, ALICE, BOB = 1, 2, 100, 200
CATALOGUE = default_catalogue()  # RunComfy's models: 1.0 Pro (2-12 s, no audio), 1.5 Pro, 2.0 Pro (≤ 720p)
PROMPT = RequestedOptions(prompt="waves roll in")


def request_for(defaults, model=None, options=PROMPT, catalogue=CATALOGUE):
    """What the member would get: the defaults applied, then the catalogue's validation."""
    chosen, filled = apply_defaults(defaults, model, options, catalogue)
    return catalogue.validate(chosen, filled)


# --- apply_defaults -----------------------------------------------------------------------------------------


def test_every_unset_option_comes_from_the_members_defaults():
    defaults = MemberDefaults(
        model="seedance-2.0-pro",
        resolution=Resolution.P480,
        ratio=Ratio.R9_16,
        duration_s=10,
        generate_audio=False,
    )
    request = request_for(defaults)
    assert request.model == "seedance-2.0-pro"
    assert (request.resolution, request.ratio, request.duration_s) == (Resolution.P480, Ratio.R9_16, 10)
    assert request.generate_audio is False


def test_what_the_member_gives_is_never_changed():
    defaults = MemberDefaults(
        model="seedance-2.0-pro", resolution=Resolution.P480, duration_s=10, generate_audio=False
    )
    given = RequestedOptions(prompt="x", resolution="720p", duration_s=6, generate_audio=True)
    model, options = apply_defaults(defaults, "seedance-1.5-pro", given, CATALOGUE)
    assert model == "seedance-1.5-pro"
    assert options == given


def test_no_defaults_leave_the_request_as_it_was():
    assert apply_defaults(MemberDefaults(), None, PROMPT, CATALOGUE) == (None, PROMPT)
    assert request_for(MemberDefaults()) == CATALOGUE.validate(None, PROMPT)


@pytest.mark.parametrize(
    ("defaults", "model", "expected"),
    [
        # 1.0 Pro has no audio option: a default "audio off" must not make the request fail.
        (MemberDefaults(generate_audio=False), "seedance-1.0-pro", ("generate_audio", None)),
        # 15 s is beyond 1.5 Pro's 4-12 s: the model's own 5 s applies.
        (MemberDefaults(duration_s=15), "seedance-1.5-pro", ("duration_s", 5)),
        # 2.0 Pro stops at 720p: its own default (720p) applies.
        (MemberDefaults(resolution=Resolution.P1080), "seedance-2.0-pro", ("resolution", Resolution.P720)),
    ],
)
def test_a_default_the_model_cannot_use_is_skipped_not_refused(defaults, model, expected):
    attribute, value = expected
    request = request_for(defaults, model)
    assert getattr(request, attribute) == value


def test_the_other_defaults_still_apply_when_one_is_skipped():
    defaults = MemberDefaults(duration_s=15, resolution=Resolution.P1080, generate_audio=False)
    request = request_for(defaults, "seedance-1.0-pro")
    assert (request.duration_s, request.resolution) == (5, Resolution.P1080)


def test_a_named_model_wins_over_the_default_model_whose_other_defaults_still_apply():
    defaults = MemberDefaults(model="seedance-2.0-pro", duration_s=8)
    request = request_for(defaults, "seedance-1.0-pro")
    assert (request.model, request.duration_s) == ("seedance-1.0-pro", 8)


def test_the_default_model_gives_way_when_it_cannot_take_what_the_member_asked_for():
    # 2.0 Pro has no 1080p: rather than refuse the member's explicit 1080p, the bot's default model is used.
    defaults = MemberDefaults(model="seedance-2.0-pro")
    request = request_for(defaults, options=RequestedOptions(prompt="x", resolution="1080p"))
    assert (request.model, request.resolution) == (CATALOGUE.default_key, Resolution.P1080)


def test_a_default_model_no_longer_offered_here_is_ignored():
    novita_only = catalogue_for([ProviderName.NOVITA])  # serves only Seedance 1.5 Pro
    defaults = MemberDefaults(model="seedance-2.0-pro", duration_s=8)
    request = request_for(defaults, catalogue=novita_only)
    assert (request.model, request.duration_s) == ("seedance-1.5-pro", 8)


def test_an_unknown_model_the_member_named_is_still_refused_by_name():
    model, options = apply_defaults(MemberDefaults(duration_s=8), "seedance-9", PROMPT, CATALOGUE)
    assert (model, options) == ("seedance-9", PROMPT)
    with pytest.raises(UnknownModelError, match="seedance-9"):
        CATALOGUE.validate(model, options)


# --- the service ------------------------------------------------------------------------------------------


@pytest.fixture
async def stores(tmp_path):
    opened = await open_stores(tmp_path / "bot.sqlite3")
    yield opened
    await opened.close()


@pytest.fixture
def service(stores):
    return DefaultsService(stores.state, CATALOGUE)


async def test_saved_defaults_survive_a_restart_in_a_versioned_record(tmp_path, stores, service):
    saved = await service.update(
        GUILD, ALICE, model="Seedance-2.0-Pro ", resolution="480p", ratio="9:16", duration_s=15
    )
    await service.update(GUILD, ALICE, generate_audio=False, dm_when_done=True)
    await stores.close()

    reopened = await open_stores(tmp_path / "bot.sqlite3")
    try:
        defaults = await DefaultsService(reopened.state, CATALOGUE).get(GUILD, ALICE)
        raw = await reopened.state.get(f"defaults:{GUILD}:{ALICE}")
    finally:
        await reopened.close()
    assert saved.model == "seedance-2.0-pro"
    assert defaults == MemberDefaults(
        model="seedance-2.0-pro",
        resolution=Resolution.P480,
        ratio=Ratio.R9_16,
        duration_s=15,
        generate_audio=False,
        dm_when_done=True,
    )
    assert json.loads(raw)["version"] == 1


async def test_defaults_are_per_member_and_per_server(service):
    await service.update(GUILD, ALICE, duration_s=8)
    await service.update(OTHER_GUILD, ALICE, duration_s=10)
    await service.update(GUILD, BOB, resolution="1080p")

    assert (await service.get(GUILD, ALICE)) == MemberDefaults(duration_s=8)
    assert (await service.get(OTHER_GUILD, ALICE)) == MemberDefaults(duration_s=10)
    assert (await service.get(GUILD, BOB)) == MemberDefaults(resolution=Resolution.P1080)
    assert (await service.get(OTHER_GUILD, BOB)).is_empty
    _, options = await service.apply(OTHER_GUILD, ALICE, None, PROMPT)
    assert options.duration_s == 10


@pytest.mark.parametrize(
    ("saved", "change", "message"),
    [
        (
            {},
            {"model": "seedance-9"},
            "There is no model called “seedance-9” here. Choose one of: seedance-1.0-pro",
        ),
        ({}, {"duration_s": 20}, "Videos here last 2–15 s; 20 s is outside that."),
        ({}, {"resolution": "4k"}, "No model here makes 4k videos. Choose one of: 480p, 720p, 1080p."),
        ({}, {"ratio": "5:4"}, "No model here makes videos in the 5:4 ratio."),
        (
            {"model": "seedance-1.0-pro"},
            {"duration_s": 15},
            "Seedance 1.0 Pro makes 2–12 s videos; 15 s is outside that.",
        ),
        (
            {"model": "seedance-2.0-pro"},
            {"resolution": "1080p"},
            "Seedance 2.0 Pro makes 480p or 720p videos; 1080p is not one of them.",
        ),
        (
            {"model": "seedance-1.0-pro"},
            {"generate_audio": True},
            "Seedance 1.0 Pro has no audio option; audio on cannot apply to it.",
        ),
        (
            {"duration_s": 15},
            {"model": "seedance-1.0-pro"},
            "Seedance 1.0 Pro makes 2–12 s videos; your saved 15 s is outside that. Set a new duration with "
            "it, or reset that default.",
        ),
        ({"duration_s": 8}, {}, "Nothing to change: give at least one option."),
    ],
)
async def test_a_default_that_cannot_be_used_is_refused_by_name_and_nothing_changes(
    service, saved, change, message
):
    if saved:
        await service.update(GUILD, ALICE, **saved)
    before = await service.get(GUILD, ALICE)
    with pytest.raises(InvalidDefaultError) as refused:
        await service.update(GUILD, ALICE, **change)
    assert refused.value.message.startswith(message)
    assert (await service.get(GUILD, ALICE)) == before


async def test_a_new_model_and_a_value_that_fits_it_can_be_set_together(service):
    await service.update(GUILD, ALICE, duration_s=15)
    updated = await service.update(GUILD, ALICE, model="seedance-1.0-pro", duration_s=12)
    assert (updated.model, updated.duration_s) == ("seedance-1.0-pro", 12)


async def test_other_defaults_can_still_change_when_the_default_model_is_no_longer_offered(stores):
    await DefaultsService(stores.state, CATALOGUE).update(GUILD, ALICE, model="seedance-2.0-pro")
    novita_only = DefaultsService(stores.state, catalogue_for([ProviderName.NOVITA]))
    updated = await novita_only.update(GUILD, ALICE, duration_s=8)
    assert (updated.model, updated.duration_s) == ("seedance-2.0-pro", 8)


async def test_reset_forgets_one_default_or_all_of_them(stores, service):
    await service.update(GUILD, ALICE, duration_s=8, dm_when_done=True)
    await service.update(OTHER_GUILD, ALICE, duration_s=10)

    remaining = await service.reset(GUILD, ALICE, [DefaultField.DURATION])
    assert remaining == MemberDefaults(dm_when_done=True)
    assert (await service.get(GUILD, ALICE)) == remaining
    assert await service.wants_dm(GUILD, ALICE)

    assert (await service.reset(GUILD, ALICE)).is_empty
    assert await stores.state.get(defaults_key(GUILD, ALICE)) is None
    assert not await service.wants_dm(GUILD, ALICE)
    assert (await service.get(OTHER_GUILD, ALICE)).duration_s == 10


async def test_resetting_the_last_default_leaves_no_record(stores, service):
    await service.update(GUILD, ALICE, ratio="1:1")
    await service.reset(GUILD, ALICE, [DefaultField.RATIO])
    assert await stores.state.items("defaults:") == []


@pytest.mark.parametrize(
    "raw",
    ["{not json", json.dumps({"version": 99, "duration_s": 8}), json.dumps([1, 2])],
)
async def test_an_unreadable_record_reads_as_no_defaults_rather_than_breaking_requests(stores, service, raw):
    await stores.state.put(defaults_key(GUILD, ALICE), raw)
    assert (await service.get(GUILD, ALICE)).is_empty
    assert await service.apply(GUILD, ALICE, None, PROMPT) == (None, PROMPT)


async def test_an_unreadable_field_is_dropped_and_the_rest_kept(stores, service):
    raw = {"version": 1, "resolution": "8k", "duration_s": "long", "generate_audio": "yes", "ratio": "1:1"}
    await stores.state.put(defaults_key(GUILD, ALICE), json.dumps(raw))
    assert (await service.get(GUILD, ALICE)) == MemberDefaults(ratio=Ratio.R1_1)


async def test_outside_a_server_nothing_applies(service):
    await service.update(GUILD, ALICE, duration_s=8, dm_when_done=True)
    assert await service.apply(None, ALICE, None, PROMPT) == (None, PROMPT)
    assert not await service.wants_dm(None, ALICE)
