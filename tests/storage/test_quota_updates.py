"""Two moderators changing rules or limits at the same moment: neither change is lost."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from bot.domain.models import Resolution
from bot.domain.quota import MemberLimits, ServerRules

GUILD = 1
MEMBER = 7


@pytest.fixture
async def two_processes(backend):
    """Two stores on one database, each with its own connections, as two bot processes would have."""
    return (await backend.open()).quota, (await backend.open()).quota


def add_word(word: str):
    return lambda rules: dataclasses.replace(rules, banned_words=(*rules.banned_words, word))


def ban(user_id: int):
    return lambda rules: dataclasses.replace(rules, banned_user_ids=rules.banned_user_ids | {user_id})


def allow_channel(channel_id: int):
    return lambda rules: dataclasses.replace(
        rules, allowed_channel_ids=(rules.allowed_channel_ids or frozenset()) | {channel_id}
    )


def set_field(name: str, value: object):
    return lambda limits: dataclasses.replace(limits, **{name: value})


async def test_concurrent_rule_changes_from_two_processes_all_survive(two_processes):
    first, second = two_processes
    changes = [
        *(add_word(f"word{i}") for i in range(15)),
        *(ban(1000 + i) for i in range(15)),
        *(allow_channel(2000 + i) for i in range(15)),
        lambda rules: dataclasses.replace(rules, credits_per_day=70),
        lambda rules: dataclasses.replace(rules, credits_per_month=900),
    ]

    await asyncio.gather(
        *((first if i % 2 else second).update_rules(GUILD, change, by=i) for i, change in enumerate(changes))
    )

    rules = (await first.config(GUILD)).rules
    assert set(rules.banned_words) == {f"word{i}" for i in range(15)}
    assert rules.banned_user_ids == frozenset(1000 + i for i in range(15))
    assert rules.allowed_channel_ids == frozenset(2000 + i for i in range(15))
    assert (rules.credits_per_day, rules.credits_per_month) == (70, 900)


async def test_concurrent_limit_changes_of_different_fields_all_survive(two_processes):
    first, second = two_processes
    fields = {
        "credits_per_day": 11,
        "credits_per_30_days": 222,
        "concurrent_jobs": 2,
        "cooldown_s": 30,
        "allowed_models": frozenset({"seedance-1.5-pro"}),
        "max_resolution": Resolution.P720,
        "max_duration_s": 8,
    }
    changes = [set_field(name, value) for name, value in fields.items()]

    for _round in range(3):  # several rounds: each interleaves the writers differently
        await asyncio.gather(
            *(
                (first if i % 2 else second).update_limits(GUILD, "member", MEMBER, change, by=i)
                for i, change in enumerate(changes)
            )
        )

    assert (await second.config(GUILD)).members[MEMBER] == MemberLimits(**fields)


async def test_update_returns_what_it_stored_and_starts_from_nothing_set(two_processes):
    first, _ = two_processes
    saved = await first.update_rules(GUILD, add_word("gore"), by=5)
    assert saved == ServerRules(banned_words=("gore",))
    assert (await first.config(GUILD)).rules == saved
    limits = await first.update_limits(
        GUILD, "server", 0, lambda limits: dataclasses.replace(limits, cooldown_s=5), by=5
    )
    assert limits == MemberLimits(cooldown_s=5)
    assert (await first.config(GUILD)).server_default == limits
    with pytest.raises(ValueError, match="target_id"):
        await first.update_limits(GUILD, "server", 3, lambda limits: limits, by=5)
