"""Several bot processes on one PostgreSQL database, each running one Discord shard (issue 12).

Two real `seedance-bot run` processes (`crash_harness.BotProcess`) share one PostgreSQL database and one
Discord double with two shards and one server on each; each process has its own RunComfy API key, so the
RunComfy double's request log tells which process made every status call. The tests check what the design
promises across processes:

- 20 jobs across the two servers: each submitted once, posted once, and each job's status calls come from
  one process only (its lease holder) while both run;
- one process SIGKILLed while its jobs wait in the provider's queue, and never restarted: the other takes
  every one of them over once their leases expire (JOB_LEASE_S=3) and posts each once;
- 50 simultaneous /animate across both processes never overspend a server's daily credit budget.

They need PostgreSQL (tests/postgres.py: skipped without one, a failure under `.ci/run`).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import pytest
from aiohttp import web

from bot.domain.catalogue import RequestedOptions, default_catalogue
from bot.domain.models import ProviderName
from bot.domain.quota import credits_for
from tests.doubles.discord_double import (
    ChannelSpec,
    DiscordDouble,
    GuildSpec,
    InteractionHandle,
    UserSpec,
    snowflake_on_shard,
)
from tests.doubles.media import make_image
from tests.doubles.runcomfy import (
    UNKNOWN_REQUEST_ERROR_CODE,
    Lifecycle,
    RunComfyDouble,
    RunComfyJob,
    _Refusal,
)
from tests.e2e.crash_harness import VIDEO_FILE_RE, BotProcess, bot_environment, is_video_message
from tests.postgres import PostgresServer, fresh_database, postgres_server  # noqa: F401 (a fixture)

SHARDS = 2
#: One key per process: two keys of one RunComfy account.
KEYS = ("process-0-key", "process-1-key")
POLL_INTERVAL_S = 0.1
STATUS_ROUTES = frozenset({"status", "result"})
_REQUEST_PATH_RE = re.compile(r"/v1/requests/([^/]+)/")


@pytest.fixture
def database_server(request: pytest.FixtureRequest) -> PostgresServer:
    """The session's PostgreSQL server (skips the test without one, as tests/postgres.py says)."""
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server


class AccountRunComfyDouble(RunComfyDouble):
    """RunComfy where every key is one account's: any of them reads every request (the stock double keeps
    each request to the key that made it). The request log still names the key of each call."""

    def _owned_job(self, request: web.Request) -> RunComfyJob:
        self._authenticate(request)
        job = self.jobs.get(request.match_info["request_id"])
        if job is None:
            raise _Refusal(404, UNKNOWN_REQUEST_ERROR_CODE, "Request not found or expired.")
        return job


@dataclass
class Cluster:
    """The doubles, the database and one bot process per shard."""

    directory: Path
    discord: DiscordDouble
    runcomfy: AccountRunComfyDouble
    database_url: str
    guilds: list[GuildSpec]
    bots: list[BotProcess] = field(default_factory=list)
    image: bytes = field(default_factory=lambda: make_image(640, 480))

    async def start(self, extra: Mapping[str, str]) -> None:
        """Start the process of each shard, one after the other (each ready before the next starts)."""
        for shard in range(SHARDS):
            environment = bot_environment(
                self.discord,
                self.runcomfy.base_url,
                self.directory / f"unused-{shard}.sqlite3",  # DATABASE_URL wins
                poll_interval_s=POLL_INTERVAL_S,
                extra={
                    "DATABASE_URL": self.database_url,
                    "DISCORD_SHARD_COUNT": str(SHARDS),
                    "DISCORD_SHARD_IDS": str(shard),
                    "RUNCOMFY_API_KEY": KEYS[shard],
                    **extra,
                },
            )
            log_dir = self.directory / f"process-{shard}"
            log_dir.mkdir()
            bot = BotProcess(environment, log_dir=log_dir)
            self.bots.append(bot)
            await bot.start(self.discord)
            await bot.wait_ready(self.discord, timeout=60)

    async def animate(self, guild: GuildSpec, member: UserSpec, tag: str) -> InteractionHandle:
        """`member` runs /animate in `guild` with an image; the prompt names `tag`."""
        channel = guild.channels[0]
        hosted = self.discord.add_attachment(self.image, "frame.png", "image/png", channel=channel)
        return await self.discord.send_slash_command(
            "animate",
            {"image": hosted, "prompt": f"{tag}: the cat turns its head"},
            user=member,
            channel=channel,
        )

    def video_posts(self) -> Counter[int]:
        """Job id → how many video messages were posted for it."""
        posts: Counter[int] = Counter()
        for message in self.discord.all_messages():
            if message.deleted or not is_video_message(message):
                continue
            for attachment in message.attachments:
                match = VIDEO_FILE_RE.match(attachment.filename)
                if match:
                    posts[int(match.group(1))] += 1
        return posts

    def status_calls(self, start: int = 0, end: int | None = None) -> dict[str, list[str]]:
        """RunComfy request id → the keys of its status and result calls in requests[start:end], in order."""
        calls: dict[str, list[str]] = defaultdict(list)
        for record in self.runcomfy.requests[start:end]:
            match = _REQUEST_PATH_RE.match(record.path)
            if record.route in STATUS_ROUTES and match and record.bearer is not None:
                calls[match.group(1)].append(record.bearer)
        return calls

    def logs(self) -> str:
        return "\n".join(bot.log_text() for bot in self.bots)

    def check_alive(self) -> None:
        for bot in self.bots:
            bot.check_alive()


@contextlib.asynccontextmanager
async def cluster(
    directory: Path, server: PostgresServer, *, members: int, lifecycle: Lifecycle | None = None
) -> AsyncIterator[Cluster]:
    guilds = [
        GuildSpec(
            name=f"Shard {shard} Guild",
            id=snowflake_on_shard(shard, SHARDS),
            channels=[ChannelSpec("videos")],
            members=[UserSpec("owner"), *(UserSpec(f"member-{shard}-{n:02d}") for n in range(members))],
        )
        for shard in range(SHARDS)
    ]
    async with (
        fresh_database(server) as url,
        DiscordDouble(guilds=guilds, shard_count=SHARDS) as discord,
        AccountRunComfyDouble(api_keys=KEYS, default_lifecycle=lifecycle) as runcomfy,
    ):
        rig = Cluster(directory, discord, runcomfy, url, guilds)
        try:
            yield rig
        finally:
            for bot in rig.bots:
                if bot.alive:
                    bot.kill("teardown")
                    with contextlib.suppress(TimeoutError):
                        await bot.wait_exit(10)


async def wait_for(rig: Cluster, predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    """Wait until `predicate()` holds (re-checked on every change the Discord double sees: the bots touch
    it at least every status-card edit), failing with `what` and the bots' logs."""
    try:
        await rig.discord.wait_until(lambda: predicate() or None, timeout=timeout)
    except TimeoutError:
        rig.check_alive()
        raise AssertionError(f"timed out waiting for {what}\n{tail(rig)}") from None


def tail(rig: Cluster) -> str:
    return "\n".join(f"--- process {n}:\n{bot.tail(30)}" for n, bot in enumerate(rig.bots))


def members_of(guild: GuildSpec) -> list[UserSpec]:
    return [member for member in guild.members if member.username.startswith("member-")]


def submitted_prompts(rig: Cluster) -> Counter[str]:
    return Counter(str(job.body.get("prompt", "")).split(":")[0] for job in rig.runcomfy.jobs.values())


async def test_two_processes_deliver_twenty_jobs_each_once_each_polled_by_one_process(
    tmp_path, database_server
):
    async with cluster(tmp_path, database_server, members=10) as rig:
        await rig.start({})
        tags = []
        for shard, guild in enumerate(rig.guilds):
            for n, member in enumerate(members_of(guild)):
                tags.append(f"job-{shard}-{n}")
                await rig.animate(guild, member, tags[-1])
        await wait_for(rig, lambda: len(rig.video_posts()) == 20, 60, "20 videos posted")
        for bot in rig.bots:  # stopped, neither can post again: the counts below are final
            assert await bot.terminate() == 0

        assert submitted_prompts(rig) == Counter(dict.fromkeys(tags, 1))  # each submitted once
        posts = rig.video_posts()
        assert len(posts) == 20 and set(posts.values()) == {1}, posts  # each posted once
        calls = rig.status_calls()
        for job in rig.runcomfy.jobs.values():
            # The process that submitted a job (its server's shard) is the only one that ever asked about it.
            assert set(calls[job.id]) == {job.api_key}, (job.body["prompt"], calls[job.id])
        assert {job.api_key for job in rig.runcomfy.jobs.values()} == set(KEYS)  # both processes worked
        assert "Traceback" not in rig.logs()


async def test_a_killed_process_s_queued_jobs_are_taken_over_and_delivered_once(tmp_path, database_server):
    held = Lifecycle.queued(1, hold=True).running(1).completes()
    async with cluster(tmp_path, database_server, members=10, lifecycle=held) as rig:
        await rig.start({})
        for shard, guild in enumerate(rig.guilds):
            for n, member in enumerate(members_of(guild)):
                await rig.animate(guild, member, f"job-{shard}-{n}")
        # Every job is at the provider, in its queue, and has been looked at by its process.
        rig.runcomfy.wait_timeout_s = 60
        await rig.runcomfy.wait_for(
            lambda: len(rig.runcomfy.jobs) == 20 and all(job.polls >= 1 for job in rig.runcomfy.jobs.values())
        )
        victim, survivor = rig.bots[1], rig.bots[0]
        orphans = {job.id for job in rig.runcomfy.jobs.values() if job.api_key == KEYS[1]}
        assert len(orphans) == 10
        victim.kill("the test")
        await victim.wait_exit()
        killed_at = len(rig.runcomfy.requests)
        before = rig.status_calls(0, killed_at)
        for request_id in rig.runcomfy.jobs:
            rig.runcomfy.release(request_id)

        await wait_for(rig, lambda: len(rig.video_posts()) == 20, 60, "20 videos posted after the kill")
        assert await survivor.terminate() == 0  # it can post nothing more: the counts below are final

        posts = rig.video_posts()
        assert len(posts) == 20 and set(posts.values()) == {1}, posts
        assert sum(1 for _ in rig.runcomfy.jobs) == 20  # nothing submitted again
        after = rig.status_calls(killed_at)
        for job in rig.runcomfy.jobs.values():
            # While both lived, only the submitting process asked; after the kill, only the survivor.
            assert set(before[job.id]) == {job.api_key}, (job.id, before[job.id])
            assert set(after[job.id]) <= {KEYS[0]}, (job.id, after[job.id])
        assert all(after[request_id] for request_id in orphans)  # every orphan was taken over
        assert "took over" in survivor.log_text()


async def test_fifty_simultaneous_requests_never_overspend_a_server_budget(tmp_path, database_server):
    catalogue = default_catalogue()
    request = catalogue.validate(None, RequestedOptions(prompt="x"))
    price = credits_for(catalogue.spec_for(ProviderName.RUNCOMFY, request.model), request)
    budget = 6 * price  # six videos per server a day
    async with cluster(tmp_path, database_server, members=25) as rig:
        await rig.start({"QUOTA_SERVER_CREDITS_PER_DAY": str(budget)})
        handles = await asyncio.gather(
            *(
                rig.animate(guild, member, f"rush-{shard}-{n}")
                for shard, guild in enumerate(rig.guilds)
                for n, member in enumerate(members_of(guild))
            )
        )
        answers = await asyncio.gather(*(handle.wait_original(timeout=60) for handle in handles))
        assert len(answers) == 50
        conn = await asyncpg.connect(rig.database_url)
        try:
            rows = await conn.fetch(
                "SELECT guild_id, count(*), sum(credits) FROM reservations GROUP BY guild_id"
            )
        finally:
            await conn.close()
        spent = {int(row[0]): (int(row[1]), int(row[2])) for row in rows}
        for guild in rig.guilds:
            jobs, credits = spent.get(guild.id, (0, 0))
            assert credits <= budget, (guild.name, spent)
            assert jobs == budget // price, (guild.name, spent)  # exact: the budget is used, not overspent
        assert len(rig.runcomfy.jobs) == 2 * (budget // price)
        for bot in rig.bots:
            assert await bot.terminate() == 0
