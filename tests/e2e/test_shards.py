"""Shards: the Discord double's sharded gateway, and bot processes that each run some of the shards.

The double's own rules come first (raw websocket clients, so nothing of discord.py hides a mistake); then
two real `run_bot` instances on shards 0 and 1 of one double, each with its own SQLite file.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import httpx
import pytest

from bot.app import ShardedSeedanceBot, StartupError, run_bot
from tests.doubles.discord_double import (
    DiscordDouble,
    GatewaySession,
    GuildSpec,
    Intents,
    snowflake_on_shard,
)
from tests.doubles.media import make_image
from tests.doubles.runcomfy import Lifecycle
from tests.e2e.conftest import BotHarness, eventually

INTENTS = Intents.GUILDS | Intents.GUILD_MESSAGES | Intents.DIRECT_MESSAGES


def guild_on(shard_id: int, name: str, shard_count: int = 2) -> GuildSpec:
    return GuildSpec(name=name, id=snowflake_on_shard(shard_id, shard_count))


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def connect(
    double: DiscordDouble, http: aiohttp.ClientSession, shard: Any = None
) -> aiohttp.ClientWebSocketResponse:
    """Open a gateway connection, take HELLO and send IDENTIFY (with `shard`, unless None)."""
    websocket = await http.ws_connect(f"{double.gateway_url}?v=10&encoding=json")
    hello = await websocket.receive_json()
    assert hello["op"] == 10
    identify: dict[str, Any] = {"token": double.token, "intents": INTENTS, "properties": {}}
    if shard is not None:
        identify["shard"] = shard
    await websocket.send_json({"op": 2, "d": identify})
    return websocket


async def session_on(double: DiscordDouble, shard_id: int) -> GatewaySession:
    """The double's side of the connection on `shard_id`, once it has sent every GUILD_CREATE."""
    session = await double.wait_until_connected(shard_id=shard_id)
    expected = sum(1 for guild in double.guilds if double.shard_of(guild) == shard_id)
    await double.wait_until(lambda: len(events(session, "GUILD_CREATE")) == expected)
    return session


def events(session: GatewaySession, name: str) -> list[dict[str, Any]]:
    return [data for event, data in session.dispatched if event == name]


async def closed_with(websocket: aiohttp.ClientWebSocketResponse) -> tuple[int | None, str]:
    message = await websocket.receive(timeout=5)
    assert message.type is aiohttp.WSMsgType.CLOSE, message
    return websocket.close_code, str(message.extra)


# ---------------------------------------------------------------------------------------- the double


async def test_gateway_bot_recommends_the_configured_shard_count():
    for configured in (1, 3):
        async with DiscordDouble(shard_count=configured) as double:
            async with httpx.AsyncClient() as client:
                response = await client.get(
                    f"{double.api_base}/gateway/bot", headers={"Authorization": f"Bot {double.token}"}
                )
            assert response.status_code == 200
            assert response.json()["shards"] == configured


async def test_each_shard_gets_only_its_own_guilds_events_and_dms_go_to_shard_zero(http):
    zero_a, zero_b, one = guild_on(0, "zero-a"), guild_on(0, "zero-b"), guild_on(1, "one")
    async with DiscordDouble(guilds=[zero_a, one, zero_b], shard_count=2, strict_commands=False) as double:
        websockets = [await connect(double, http, [0, 2]), await connect(double, http, [1, 2])]
        shard0, shard1 = await session_on(double, 0), await session_on(double, 1)

        def guild_ids(session: GatewaySession, name: str) -> set[int]:
            if name == "READY":
                return {int(guild["id"]) for guild in events(session, "READY")[0]["guilds"]}
            return {int(data["id"]) for data in events(session, name)}

        assert events(shard0, "READY")[0]["shard"] == [0, 2]
        assert guild_ids(shard0, "READY") == guild_ids(shard0, "GUILD_CREATE") == {zero_a.id, zero_b.id}
        assert guild_ids(shard1, "READY") == guild_ids(shard1, "GUILD_CREATE") == {one.id}

        in_one = await double.send_slash_command("animate", {"prompt": "x"}, guild=one)
        in_zero = await double.send_slash_command("animate", {"prompt": "y"}, guild=zero_b)
        in_dm = await double.send_slash_command("animate", {"prompt": "z"}, dm=True)
        await double.post_user_message(one.text_channel, "hello shard 1")
        await double.post_user_message(zero_a.text_channel, "hello shard 0")

        def interaction_ids(session: GatewaySession) -> set[int]:
            return {int(data["id"]) for data in events(session, "INTERACTION_CREATE")}

        assert interaction_ids(shard0) == {in_zero.id, in_dm.id}
        assert interaction_ids(shard1) == {in_one.id}
        # (Content is blanked without the Message Content intent: the channel tells them apart.)
        assert [int(m["channel_id"]) for m in events(shard0, "MESSAGE_CREATE")] == [zero_a.text_channel.id]
        assert [int(m["channel_id"]) for m in events(shard1, "MESSAGE_CREATE")] == [one.text_channel.id]
        for websocket in websockets:
            await websocket.close()


async def test_an_unsharded_session_still_gets_every_guild(http):
    guilds = [guild_on(0, "a"), guild_on(1, "b")]
    async with DiscordDouble(guilds=guilds) as double:
        websocket = await connect(double, http)
        session = await session_on(double, 0)
        assert {int(data["id"]) for data in events(session, "GUILD_CREATE")} == {g.id for g in guilds}
        await websocket.close()


@pytest.mark.parametrize("shard", [[2, 2], [0, 3], [0, 1], [-1, 2], ["0", "2"], [0], "0,2"])
async def test_an_invalid_shard_is_closed_with_4010(http, shard):
    async with DiscordDouble(shard_count=2) as double:
        websocket = await connect(double, http, shard)
        assert await closed_with(websocket) == (4010, "Invalid shard.")
        assert double.identifies == []


async def test_too_many_guilds_on_one_session_is_closed_with_4011_until_sharded(http):
    guilds = [guild_on(0, "a"), guild_on(1, "b")]
    async with DiscordDouble(guilds=guilds, shard_count=2, max_guilds_per_shard=1) as double:
        unsharded = await connect(double, http)
        assert await closed_with(unsharded) == (4011, "Sharding required.")
        sharded = await connect(double, http, [1, 2])
        session = await session_on(double, 1)
        assert [int(data["id"]) for data in events(session, "GUILD_CREATE")] == [guilds[1].id]
        await sharded.close()


# ---------------------------------------------------------------------------------------- the bot

SHARD_ZERO = guild_on(0, "Shard zero server")
SHARD_ONE = guild_on(1, "Shard one server")


@pytest.fixture
def guilds() -> list[GuildSpec]:
    return [SHARD_ZERO, SHARD_ONE]


@pytest.fixture
def discord_options() -> dict[str, object]:
    return {"shard_count": 2}


@pytest.fixture
async def second(discord, runcomfy, tmp_path) -> AsyncIterator[BotHarness]:
    """Another bot process on the same Discord and provider, with its own database."""
    harness = BotHarness(discord=discord, runcomfy=runcomfy, database=tmp_path / "second.sqlite3")
    yield harness
    await harness.stop()


def bot_messages(discord: DiscordDouble, channel_id: int) -> list[Any]:
    return [m for m in discord.messages(channel_id) if m.source == "bot"]


async def animate_in(harness: BotHarness, guild: GuildSpec, prompt: str) -> Any:
    image = harness.discord.add_attachment(make_image(640, 480), "frame.png", channel=guild.text_channel)
    interaction = await harness.discord.send_slash_command(
        "animate", {"image": image, "prompt": prompt, "duration": 4}, guild=guild
    )
    await interaction.wait_acknowledged()
    return interaction


async def test_two_processes_on_two_shards_each_serve_their_own_servers(
    harness, second, discord, runcomfy, caplog
):
    caplog.set_level(logging.INFO, logger="bot.app")
    runcomfy.script(Lifecycle.queued(1).running(1).completes(cost=0.2))
    harness.overrides |= {"discord_shard_count": 2, "discord_shard_ids": (0,)}
    second.overrides |= {"discord_shard_count": 2, "discord_shard_ids": (1,)}
    first_bot = await harness.start()
    second_bot = await second.start()

    assert isinstance(first_bot, ShardedSeedanceBot) and isinstance(second_bot, ShardedSeedanceBot)
    assert [g.id for g in first_bot.guilds] == [SHARD_ZERO.id]
    assert [g.id for g in second_bot.guilds] == [SHARD_ONE.id]
    assert [s.identify_payload["shard"] for s in discord.sessions_on_shard(1)] == [[1, 2]]

    # Commands are the application's: shard 0's process synced them once, the other left them alone.
    assert len(discord.command_sync_requests()) == 1
    assert first_bot.commands_synced is True and second_bot.commands_synced is None
    assert "leaving the sync to the process that runs shard 0" in caplog.text
    assert "shard(s) 1 of 2" in second_bot.ready_line()
    assert "commands left to shard 0" in second_bot.ready_line()
    assert "shard(s) 0 of 2" in first_bot.ready_line()

    on_zero = await animate_in(harness, SHARD_ZERO, "boats on shard zero")
    on_one = await animate_in(second, SHARD_ONE, "boats on shard one")
    for interaction in (on_zero, on_one):
        assert "Started video #1" in (await interaction.wait_original(timeout=20)).content

    # Each interaction reached only the process that runs its guild's shard, and that one answered it.
    (zero_session,), (one_session,) = discord.sessions_on_shard(0), discord.sessions_on_shard(1)
    assert [int(d["id"]) for d in events(zero_session, "INTERACTION_CREATE")] == [on_zero.id]
    assert [int(d["id"]) for d in events(one_session, "INTERACTION_CREATE")] == [on_one.id]
    first_job, second_job = await first_bot.runtime.store.get(1), await second_bot.runtime.store.get(1)
    assert first_job is not None and first_job.request.prompt == "boats on shard zero"
    assert second_job is not None and second_job.request.prompt == "boats on shard one"

    for guild in (SHARD_ZERO, SHARD_ONE):
        thread_id = next(m for m in bot_messages(discord, guild.text_channel.id) if m.embeds).thread_id
        assert thread_id is not None
        delivered = await discord.wait_until(
            lambda thread_id=thread_id: next(
                (m for m in bot_messages(discord, thread_id) if m.attachments), None
            ),
            timeout=20,
        )
        assert delivered.attachments[0].data == runcomfy.video

    # /healthz sees every shard's connection of a sharded bot.
    for bot in (first_bot, second_bot):
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{bot.listener.port}") as client:

            async def healthy(client: httpx.AsyncClient = client) -> bool:
                return (await client.get("/healthz")).status_code == 200

            await eventually(healthy)


async def test_a_shard_count_discord_does_not_expect_stops_the_bot_with_one_line(harness):
    harness.overrides |= {"discord_shard_count": 3, "discord_shard_ids": (0,)}
    with pytest.raises(StartupError) as caught:
        await asyncio.wait_for(run_bot(harness.settings(), handle_signals=False), 15)
    message = str(caught.value)
    assert message.startswith("Discord refused the gateway connection (4010: invalid shard")
    assert "DISCORD_SHARD_COUNT" in message and "\n" not in message
