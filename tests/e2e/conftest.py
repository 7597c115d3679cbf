"""End-to-end harness: the real bot (through `run_bot`, the entry point of `seedance-bot run`) against the
loopback Discord, RunComfy, Novita and ModelArk doubles."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bot.app import SeedanceBot, run_bot
from bot.domain.models import ProviderName
from bot.settings import Settings
from tests.doubles.ark import ArkDouble
from tests.doubles.discord_double import (
    DiscordDouble,
    GuildSpec,
    HostedFile,
    InteractionHandle,
    shard_of,
)
from tests.doubles.media import make_image
from tests.doubles.novita import NovitaDouble
from tests.doubles.runcomfy import RunComfyDouble

RUNCOMFY_KEY = "e2e-runcomfy-key"
NOVITA_KEY = "e2e-novita-key"
ARK_KEY = "e2e-ark-key"


async def eventually(probe, timeout: float = 10.0):
    """Re-run the async `probe` until it returns something truthy (store state has no event to await)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = await probe()
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(0.02)


async def job_in_state(bot: SeedanceBot, job_id: int, *states):
    """Wait until job `job_id` is in one of `states`; return it."""

    async def probe():
        job = await bot.runtime.store.get(job_id)
        return job if job is not None and job.state in states else None

    return await eventually(probe)


@dataclass
class BotHarness:
    """Starts and stops the bot; the same database survives restarts."""

    discord: DiscordDouble
    runcomfy: RunComfyDouble
    database: Path
    novita: NovitaDouble | None = None
    ark: ArkDouble | None = None
    overrides: dict[str, object] = field(default_factory=dict)
    bot: SeedanceBot | None = None
    task: asyncio.Task[None] | None = None

    def settings(self) -> Settings:
        values: dict[str, object] = {
            "discord_token": self.discord.token,
            "discord_api_base_url": self.discord.api_base,
            "discord_gateway_url": self.discord.gateway_url,
            "discord_cdn_hosts": ("127.0.0.1",),
            "runcomfy_api_key": RUNCOMFY_KEY,
            "runcomfy_base_url": self.runcomfy.base_url,
            "database_path": self.database,
            # The doubles serve the finished videos from 127.0.0.1 over http (production: public https only).
            "download_allow_loopback": True,
            "poll_interval_s": 0.05,
            "log_level": "DEBUG",
            # Tests that are not about quotas send requests back to back; the bot's other defaults stay on.
            "quota_cooldown_s": 0,
            # /healthz and /metrics on a free port: tests never compete for 8080 (tests set their own).
            "http_listen_port": 0,
        }
        if self.novita is not None:
            values |= {"novita_api_key": NOVITA_KEY, "novita_base_url": self.novita.base_url}
        if self.ark is not None:
            values |= {"ark_api_key": ARK_KEY, "ark_base_url": self.ark.base_url}
        values.update(self.overrides)
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]

    def use(self, provider: ProviderName, *, only: bool = False) -> None:
        """Make `provider` the default one; with `only`, the bot has no other provider's key."""
        self.overrides["seedance_provider"] = provider.value
        if only and provider is not ProviderName.RUNCOMFY:
            self.overrides["runcomfy_api_key"] = None

    async def start(self) -> SeedanceBot:
        built: asyncio.Future[SeedanceBot] = asyncio.get_running_loop().create_future()
        self.task = asyncio.create_task(
            run_bot(self.settings(), on_bot=built.set_result, handle_signals=False), name="bot"
        )
        self.bot = await asyncio.wait_for(built, 10)
        settings = self.bot.runtime.settings
        shards, count = settings.discord_shards, settings.discord_shard_count
        # A sharded bot only ever learns the guilds of its own shards.
        guild_ids = [
            guild.id
            for guild in self.discord.guilds
            if shards is None or count is None or shard_of(guild.id, count) in shards
        ]
        bot, task = self.bot, self.task

        async def guilds_known() -> bool:
            if task.done():
                task.result()  # raises what stopped the bot
            # Interactions need the guilds in the cache; on_ready comes 2 s later (guild_ready_timeout).
            return all(bot.get_guild(guild_id) is not None for guild_id in guild_ids)

        await eventually(guilds_known, timeout=15)
        return bot

    async def stop(self) -> None:
        if self.bot is not None and self.task is not None:
            await self.bot.close()
            await asyncio.wait_for(self.task, 15)
        self.bot = None
        self.task = None

    def image(
        self, width: int = 640, height: int = 480, *, fmt: str = "PNG", name: str = "frame.png"
    ) -> HostedFile:
        """A member's attachment on the Discord CDN."""
        return self.discord.add_attachment(make_image(width, height, fmt=fmt), name)

    async def animate(self, **options: object) -> InteractionHandle:
        """A member runs /animate; returns once the bot acknowledged it."""
        interaction = await self.discord.send_slash_command("animate", options)
        await interaction.wait_acknowledged()
        return interaction


@pytest.fixture
def guilds() -> list[GuildSpec]:
    return [GuildSpec()]


@pytest.fixture
def discord_options() -> dict[str, object]:
    return {}


@pytest.fixture
async def discord(guilds, discord_options) -> AsyncIterator[DiscordDouble]:
    async with DiscordDouble(guilds=guilds, **discord_options) as server:
        yield server
        assert server.internal_errors == []
        assert server.unknown_requests == [], "the bot called a route the double does not know"


@pytest.fixture
async def runcomfy() -> AsyncIterator[RunComfyDouble]:
    async with RunComfyDouble(api_keys=(RUNCOMFY_KEY,)) as server:
        yield server


@pytest.fixture
async def novita() -> AsyncIterator[NovitaDouble]:
    async with NovitaDouble(api_keys=(NOVITA_KEY,)) as server:
        yield server


@pytest.fixture
async def ark() -> AsyncIterator[ArkDouble]:
    async with ArkDouble(api_keys=(ARK_KEY,)) as server:
        yield server


@pytest.fixture
async def harness(discord, runcomfy, tmp_path) -> AsyncIterator[BotHarness]:
    harness = BotHarness(discord=discord, runcomfy=runcomfy, database=tmp_path / "bot.sqlite3")
    yield harness
    await harness.stop()


@pytest.fixture
async def every_provider(harness, novita, ark) -> BotHarness:
    """The harness with Novita and ModelArk keys too (RunComfy stays the default until `use`)."""
    harness.novita = novita
    harness.ark = ark
    return harness


@pytest.fixture
async def bot(harness) -> SeedanceBot:
    return await harness.start()
