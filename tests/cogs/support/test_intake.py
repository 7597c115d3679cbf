"""Several processes share one state store: a process starting answers only its own shards' interrupted
requests, never one another process may still be working on."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace

from cogs.support import intake as intake_module
from cogs.support.intake import PREFIX, Intake, serves_guild
from tests.doubles.discord_double import snowflake_on_shard


class MemoryState:
    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    async def put(self, key: str, value: str) -> None:
        self.values[key] = value

    async def delete(self, key: str) -> None:
        self.values.pop(key, None)

    async def items(self, prefix: str) -> list[tuple[str, str]]:
        return [(key, value) for key, value in self.values.items() if key.startswith(prefix)]


class NoJobs:
    async def find_by_reply_handle(self, handle: str) -> None:
        return None


def bot_on(shards: tuple[int, ...] | None, count: int | None) -> SimpleNamespace:
    runtime = SimpleNamespace(state_store=MemoryState(), store=NoJobs())
    return SimpleNamespace(shard_count=count, shard_ids=shards, runtime=runtime)


def test_an_unsharded_bot_serves_every_server() -> None:
    assert serves_guild(bot_on(None, None), snowflake_on_shard(1, 2))  # type: ignore[arg-type]


def test_a_sharded_process_serves_its_shards_and_dms_belong_to_shard_zero() -> None:
    first, second = bot_on((0,), 2), bot_on((1,), 2)
    guild_on_one = snowflake_on_shard(1, 2)
    assert serves_guild(second, guild_on_one) and not serves_guild(first, guild_on_one)  # type: ignore[arg-type]
    assert serves_guild(first, None) and not serves_guild(second, None)  # type: ignore[arg-type]


async def test_only_this_process_s_interrupted_requests_are_answered_and_forgotten(monkeypatch) -> None:
    answered: list[str] = []

    async def answer_privately(bot, handle: str, text: str) -> bool:
        answered.append(handle)
        return True

    monkeypatch.setattr(intake_module, "answer_privately", answer_privately)
    bot = bot_on((0,), 2)
    state = bot.runtime.state_store
    mine, theirs = snowflake_on_shard(0, 2), snowflake_on_shard(1, 2)
    for name, guild in (("mine", mine), ("theirs", theirs)):
        record = {"handle": f"app:{name}", "at": time.time(), "guild": guild}
        await state.put(f"{PREFIX}{name}", json.dumps(record))
    assert await Intake(bot).answer_interrupted() == 1  # type: ignore[arg-type]
    assert answered == ["app:mine"]
    assert list(state.values) == [f"{PREFIX}theirs"]  # still the other process's to finish or answer


async def test_an_interrupted_member_is_answered_in_the_language_of_their_request(monkeypatch) -> None:
    answered: dict[str, str] = {}

    async def answer_privately(bot, handle: str, text: str) -> bool:
        answered[handle] = text
        return True

    monkeypatch.setattr(intake_module, "answer_privately", answer_privately)
    bot = bot_on(None, None)
    state = bot.runtime.state_store
    for name, locale in (("french", "fr"), ("english", "en-US"), ("korean", "ko")):
        record = {"handle": f"app:{name}", "at": time.time(), "guild": 1, "locale": locale}
        await state.put(f"{PREFIX}{name}", json.dumps(record))
    assert await Intake(bot).answer_interrupted() == 3  # type: ignore[arg-type]
    assert (
        answered["app:french"].startswith("Le bot a redémarré")
        and "Rien n'a été facturé" in answered["app:french"]
    )
    assert answered["app:english"] == str(intake_module.INTERRUPTED)
    assert answered["app:korean"] == answered["app:english"]  # a language the bot lacks: English
