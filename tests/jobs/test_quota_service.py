"""QuotaService: the limits a member gets from the server, their roles and their own override."""

from __future__ import annotations

import pytest

from bot.domain.models import Resolution
from bot.domain.quota import MemberLimits, ServerRules
from bot.jobs.quota import Member, QuotaService
from bot.storage.database import open_database
from bot.storage.quota import QuotaStore

GUILD, HELPERS, PATRONS, ALICE = 1, 10, 11, 100


@pytest.fixture
async def quota(tmp_path):
    path = tmp_path / "bot.sqlite3"
    await (await open_database(path)).close()
    store = await QuotaStore.open(path)
    yield QuotaService(
        store,
        member_defaults=MemberLimits(credits_per_day=20, concurrent_jobs=3),
        server_defaults=ServerRules(credits_per_day=200),
    )
    await store.close()


async def test_bot_defaults_apply_until_moderators_set_anything(quota):
    limits, rules = await quota.limits_for(Member(GUILD, ALICE))
    assert (limits.credits_per_day, limits.concurrent_jobs, limits.cooldown_s) == (20, 3, None)
    assert rules.credits_per_day == 200


async def test_a_member_gets_the_most_generous_of_their_roles_and_their_override_wins(quota):
    store = quota.store
    await store.set_limits(
        GUILD, "server", 0, MemberLimits(credits_per_day=10, max_resolution=Resolution.P480), by=1
    )
    await store.set_limits(GUILD, "role", HELPERS, MemberLimits(credits_per_day=30, concurrent_jobs=1), by=1)
    await store.set_limits(
        GUILD, "role", PATRONS, MemberLimits(credits_per_day=50, max_resolution=Resolution.P1080), by=1
    )
    both = Member(GUILD, ALICE, role_ids=(HELPERS, PATRONS))

    limits, _ = await quota.limits_for(both)
    assert (limits.credits_per_day, limits.concurrent_jobs, limits.max_resolution) == (
        50,
        1,
        Resolution.P1080,
    )

    await store.set_limits(GUILD, "member", ALICE, MemberLimits(credits_per_day=5), by=1)
    limits, _ = await quota.limits_for(both)
    assert limits.credits_per_day == 5
    assert limits.max_resolution is Resolution.P1080  # the override sets only what it names

    limits, _ = await quota.limits_for(Member(GUILD, 200))  # no roles: the server default, then the bot's
    assert (limits.credits_per_day, limits.concurrent_jobs, limits.max_resolution) == (10, 3, Resolution.P480)


async def test_a_server_budget_the_moderators_never_set_falls_back_to_the_bot_default(quota):
    await quota.store.set_rules(GUILD, ServerRules(banned_words=("gore",)), by=1)
    _, rules = await quota.limits_for(Member(GUILD, ALICE))
    assert rules.credits_per_day == 200
    assert rules.banned_words == ("gore",)
