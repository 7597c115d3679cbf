"""Throughput with one and with two bot processes on one PostgreSQL, and the lease overhead per job poll.

Run `.venv/bin/python bench/bench_processes.py` (`--requests 50 --repeats 1` for a quick look; `--help` for
the knobs). Needs PostgreSQL: `SEEDANCE_TEST_POSTGRES_URL` (a superuser's URL), or Debian's `postgresql`
package, from which a throwaway cluster is started as in the tests (`tests/postgres.py`; as root, it runs as
the `postgres` user). Everything is on loopback.

Part 1, end to end. The bot runs as real `python -m bot.cli run` processes (as in `bench_load.py` and the
crash tests) against the Discord double (2 shards; `--guilds` guilds, half on each shard, `--channels`
text channels each, Discord's 5-per-5-s message bucket per channel enforced) and the RunComfy double, both
served by this process, each scenario on a fresh database of the same server:

- "1 process": one process running both shards (DISCORD_SHARD_COUNT=2, no DISCORD_SHARD_IDS);
- "2 processes": two processes, DISCORD_SHARD_IDS=0 and =1, each receiving only its shard's guilds'
  interactions; every job goes to whichever process claims it.

Each run sends `--requests` /animate commands (an image and a prompt), spread round robin over every
channel, at `--rate` a second (0: all at once). Every RunComfy job is queued for one status check, runs for
one, then completes. Production settings otherwise (POLL_INTERVAL_S, MAX_STATUS_CHECKS_PER_S, JOB_LEASE_S
are the bot's defaults unless given), except generous QUOTA_*.

- admitted/s: requests answered "Started video #…", divided by the time from the first command sent to the
  last such answer (the double's arrival time of the webhook edit that carried it);
- delivered/s: distinct jobs whose MP4 was posted, divided by the time from the first command to the last
  upload's arrival;
- latency p50: per request, from its dispatch to its answer, and to its video;
- checks: videos posted twice, paid submits beyond one per job, jobs not delivered (must all be 0).
  Runs alternate between the scenarios (A B A B …); the table shows medians over `--repeats`.

Part 2, directly against the stores (no bot process): with `--jobs` open jobs held by one owner, the
median (and p95) time of the statements the poller runs per job poll (`bot/jobs/poller.py`, `_lease`):
`get` (read the job, check its lease), `claim` (take a job's lease: issued when this process does not hold it
yet, e.g. after a take-over), and `renew_leases` (one statement renewing every lease the process holds,
every JOB_LEASE_S / 3), on PostgreSQL and on SQLite (a WAL file, as the bot opens it), `--samples` each.
"claim + renew" is one of each, the most a poll can cost in lease statements; "renew / job" spreads one
renewal over the jobs it covers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

import asyncpg  # noqa: E402

from bot.domain.models import (  # noqa: E402
    FINAL_STATES,
    JobOrigin,
    ProviderName,
    Ratio,
    Requester,
    Resolution,
    VideoRequest,
)
from bot.jobs.ports import NewJob  # noqa: E402
from bot.storage.database import SqliteDatabase  # noqa: E402
from bot.storage.jobs import SqliteJobStore  # noqa: E402
from bot.storage.postgres import PostgresDatabase  # noqa: E402
from bot.storage.postgres.jobs import PostgresJobStore  # noqa: E402
from tests.doubles.discord_double import (  # noqa: E402
    ChannelSpec,
    DiscordDouble,
    GuildSpec,
    UserSpec,
    snowflake_on_shard,
)
from tests.doubles.media import make_image  # noqa: E402
from tests.doubles.runcomfy import Lifecycle, RunComfyDouble  # noqa: E402
from tests.e2e.crash_harness import (  # noqa: E402
    RUNCOMFY_KEY,
    STARTED_RE,
    VIDEO_FILE_RE,
    BotDiedError,
    BotProcess,
    SentCommand,
    bot_environment,
    is_video_upload,
)
from tests.postgres import URL_VARIABLE, LocalCluster, PostgresServer, find_binaries, fresh_database  # noqa: E402

SHARD_COUNT = 2


@dataclass(frozen=True)
class Scenario:
    """How many processes, and the shards each runs (None: every shard of SHARD_COUNT)."""

    name: str
    processes: tuple[tuple[int, ...] | None, ...]


SCENARIOS = (
    Scenario("1 process (shards 0+1)", (None,)),
    Scenario("2 processes (1 shard each)", ((0,), (1,))),
)


@dataclass(frozen=True)
class RunResult:
    """What one end-to-end run measured."""

    sent: int
    admitted: int
    delivered: int
    admitted_per_s: float
    delivered_per_s: float
    admit_p50_s: float
    deliver_p50_s: float
    duplicate_videos: int
    extra_submits: int
    not_delivered: int
    states: dict[str, int]


# --- Part 1: the bot processes ----------------------------------------------------------------------------


def build_guilds(
    guild_count: int, channel_count: int, member_count: int
) -> tuple[list[GuildSpec], list[ChannelSpec], list[UserSpec]]:
    """`guild_count` guilds alternating between shard 0 and shard 1, each with `channel_count` channels;
    member n belongs to the guild of channel n mod channels (where they will run /animate)."""
    guilds: list[GuildSpec] = []
    channels: list[ChannelSpec] = []
    for g in range(guild_count):
        guild_channels = [ChannelSpec(f"bench-{g}-{c}") for c in range(channel_count)]
        guild = GuildSpec(
            name=f"Bench Guild {g}",
            id=snowflake_on_shard(g % SHARD_COUNT, SHARD_COUNT),
            channels=guild_channels,
            members=[UserSpec(f"owner-{g}")],
        )
        guilds.append(guild)
        channels.extend(guild_channels)
    by_id = {guild.id: guild for guild in guilds}
    members = []
    for n in range(member_count):
        member = UserSpec(f"member-{n:05d}")
        by_id[channels[n % len(channels)].guild_id or 0].members.append(member)
        members.append(member)
    return guilds, channels, members


async def wait_ready(
    discord: DiscordDouble, bot: BotProcess, shards: Sequence[int], seen: dict[int, int]
) -> None:
    """Until `bot`'s new sessions on `shards` are ready and have been sent every guild of their shard.

    `seen`: the sessions each shard had before this process started (older ones are another process's).
    """

    def ready() -> bool:
        for shard in shards:
            expected = sum(1 for guild in discord.guilds if discord.shard_of(guild) == shard)
            sessions = discord.sessions_on_shard(shard)[seen.get(shard, 0) :]
            if not any(
                s.ready and sum(1 for event, _ in s.dispatched if event == "GUILD_CREATE") >= expected
                for s in sessions
            ):
                return False
        return True

    await wait_while_alive(discord, ready, [bot], limit_s=90, what="the bot's shards to be ready")


async def wait_while_alive(
    discord: DiscordDouble,
    condition: Callable[[], object],
    bots: Sequence[BotProcess],
    *,
    limit_s: float,
    what: str,
) -> bool:
    """Wait (woken by the double's activity) until `condition()`; False after `limit_s`. A bot that dies
    meanwhile raises BotDiedError."""
    deadline = time.monotonic() + limit_s
    while True:
        for bot in bots:
            bot.check_alive()
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            print(f"  … timed out waiting for {what}", flush=True)
            return bool(condition())
        with contextlib.suppress(TimeoutError):
            # Bounded so that a dead process is noticed within a second.
            await discord.wait_until(condition, timeout=min(1.0, remaining))
            return True


def median(values: Sequence[float]) -> float:
    """The median, NaN when there is nothing."""
    return statistics.median(values) if values else float("nan")


class ProcessRun:
    """One end-to-end run of a scenario on a fresh database."""

    def __init__(
        self, args: argparse.Namespace, scenario: Scenario, database_url: str, directory: Path
    ) -> None:
        self.args = args
        self.scenario = scenario
        self.database_url = database_url
        self.directory = directory
        self.guilds, self.channels, self.members = build_guilds(args.guilds, args.channels, args.requests)
        self.discord = DiscordDouble(guilds=self.guilds, shard_count=SHARD_COUNT)
        self.runcomfy = RunComfyDouble(api_keys=(RUNCOMFY_KEY,))
        self.image = make_image(640, 480)
        self.sent: list[SentCommand] = []
        self.bots: list[BotProcess] = []

    def bot_process(self, number: int, shards: tuple[int, ...] | None) -> BotProcess:
        """`python -m bot.cli run` on the shared database, running `shards` (None: all of them)."""
        extra = {
            "DATABASE_URL": self.database_url,
            "DISCORD_SHARD_COUNT": str(SHARD_COUNT),
            "QUOTA_CONCURRENT_JOBS": "100000",
            "LOG_LEVEL": "INFO",
        }
        if shards is not None:
            extra["DISCORD_SHARD_IDS"] = ",".join(str(s) for s in shards)
        for option, name in (
            ("poll_interval", "POLL_INTERVAL_S"),
            ("max_checks", "MAX_STATUS_CHECKS_PER_S"),
            ("lease", "JOB_LEASE_S"),
        ):
            if getattr(self.args, option) is not None:
                extra[name] = str(getattr(self.args, option))
        environment = bot_environment(
            self.discord, self.runcomfy.base_url, self.directory / "unused.sqlite3", extra=extra
        )
        # The harness's test-speed settings are not the bench's: the bot's own defaults unless given above.
        for name in ("POLL_INTERVAL_S", "JOB_LEASE_S"):
            if name not in extra:
                environment.pop(name, None)
        log_dir = self.directory / f"process-{number}"
        log_dir.mkdir(parents=True, exist_ok=True)
        return BotProcess(environment, log_dir=log_dir, overrides={})

    async def run(self) -> RunResult:
        """Start the doubles and the processes, send the commands, wait for every video; stop everything."""
        await self.discord.start()
        await self.runcomfy.start()
        for _ in range(self.args.requests):
            self.runcomfy.script(Lifecycle.queued(1).running(1).completes())
        try:
            for number, shards in enumerate(self.scenario.processes):
                bot = self.bot_process(number, shards)
                self.bots.append(bot)
                seen = {s: len(self.discord.sessions_on_shard(s)) for s in range(SHARD_COUNT)}
                await bot.start(self.discord)
                await wait_ready(self.discord, bot, shards or range(SHARD_COUNT), seen)
            # The process running shard 0 syncs the commands; /animate must exist before members use it.
            await wait_while_alive(
                self.discord,
                lambda: any(c["name"] == "animate" for c in self.discord.commands()),
                self.bots,
                limit_s=30,
                what="the commands' sync",
            )
            return await self.drive()
        finally:
            for bot in self.bots:
                if bot.alive:
                    with contextlib.suppress(TimeoutError, ProcessLookupError):
                        await bot.terminate(timeout=30)
            await self.runcomfy.close()
            await self.discord.close()

    async def send(self, n: int) -> None:
        """Request `n`: a member runs /animate with an image in channel n mod channels."""
        channel, member = self.channels[n % len(self.channels)], self.members[n]
        hosted = self.discord.add_attachment(self.image, "frame.png", "image/png", channel=channel)
        prompt = f"load-{n:05d}: the cat slowly turns its head and blinks"
        command = SentCommand(tag=n, prompt=prompt, user_id=member.id, channel=channel, round=0)
        self.sent.append(command)
        try:
            command.handle = await self.discord.send_slash_command(
                "animate", {"image": hosted, "prompt": prompt}, user=member, channel=channel
            )
        except (TimeoutError, ConnectionError, RuntimeError) as error:
            command.error = repr(error)

    def answered(self) -> bool:
        """Every command acknowledged and answered (or past its acknowledgement deadline)."""
        now = time.monotonic()
        for command in self.sent:
            handle = command.handle
            if handle is None:
                continue
            if handle.acknowledged:
                if handle.original is None or handle.original.is_loading:
                    return False
            elif now - handle.dispatched_at < self.discord.ack_deadline_s + 1:
                return False
        return True

    def admitted(self) -> list[SentCommand]:
        """Commands answered "Started video #…"."""
        return [
            c
            for c in self.sent
            if c.handle is not None
            and c.handle.original is not None
            and STARTED_RE.search(c.handle.original.content or "")
        ]

    def delivered_ids(self) -> set[int]:
        """Job ids whose video was posted."""
        ids = set()
        for message in self.discord.all_messages():
            if message.source == "bot":
                ids |= {int(m[1]) for a in message.attachments if (m := VIDEO_FILE_RE.match(a.filename))}
        return ids

    async def drive(self) -> RunResult:
        """Send the commands, wait for the answers and the videos, and measure."""
        args = self.args
        started = time.monotonic()
        senders = []
        for n in range(args.requests):
            if args.rate > 0:
                delay = started + n / args.rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            senders.append(asyncio.create_task(self.send(n)))
        await asyncio.gather(*senders)
        await wait_while_alive(self.discord, self.answered, self.bots, limit_s=args.timeout, what="answers")
        admitted = len(self.admitted())
        await wait_while_alive(
            self.discord,
            lambda: len(self.delivered_ids()) >= admitted,
            self.bots,
            limit_s=args.timeout,
            what="the videos",
        )
        # The video is posted before its row says "delivered": wait for the rows, read from outside.
        final = {state.value for state in FINAL_STATES}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not set(await job_states(self.database_url)) <= final:
            for bot in self.bots:
                bot.check_alive()
            await asyncio.sleep(0.1)  # the database has no event to await from this process
        return await self.measure(started)

    async def measure(self, started: float) -> RunResult:
        """The figures of the run (see the module's docstring)."""
        started_answer: dict[int, float] = {}  # interaction id -> when "Started video" arrived
        video_at: dict[int, float] = {}  # job id -> when its upload arrived
        for record in self.discord.requests:
            if not record.ok:
                continue
            body = record.json if isinstance(record.json, dict) else {}
            if (
                record.interaction_id is not None
                and (record.route or "").startswith("/webhooks/")
                and STARTED_RE.search(str(body.get("content") or ""))
            ):
                started_answer.setdefault(record.interaction_id, record.at)
            if is_video_upload(record):
                for upload in record.files:
                    if m := VIDEO_FILE_RE.match(upload.filename or ""):
                        video_at.setdefault(int(m[1]), record.at)
        admitted = self.admitted()
        admit_latency = [
            started_answer[c.handle.id] - c.handle.dispatched_at
            for c in admitted
            if c.handle is not None and c.handle.id in started_answer
        ]
        job_of = {
            c.handle.id: int(m[1])
            for c in admitted
            if c.handle is not None and c.handle.original is not None
            if (m := STARTED_RE.search(c.handle.original.content or ""))
        }
        deliver_latency = [
            video_at[job] - c.handle.dispatched_at
            for c in admitted
            if c.handle is not None and (job := job_of.get(c.handle.id)) in video_at
        ]
        videos = Counter(
            int(m[1])
            for message in self.discord.all_messages()
            if message.source == "bot"
            for a in message.attachments
            if (m := VIDEO_FILE_RE.match(a.filename))
        )
        states = await job_states(self.database_url)
        jobs = sum(states.values())
        last_admit = max(started_answer.values(), default=started)
        last_video = max(video_at.values(), default=started)
        return RunResult(
            sent=len(self.sent),
            admitted=len(admitted),
            delivered=len(video_at),
            admitted_per_s=len(started_answer) / (last_admit - started) if last_admit > started else 0.0,
            delivered_per_s=len(video_at) / (last_video - started) if last_video > started else 0.0,
            admit_p50_s=median(admit_latency),
            deliver_p50_s=median(deliver_latency),
            duplicate_videos=sum(count - 1 for count in videos.values()),
            extra_submits=max(0, self.runcomfy.submit_count - jobs),
            not_delivered=jobs - states.get("delivered", 0),
            states=states,
        )


async def job_states(url: str) -> dict[str, int]:
    """Jobs by state in the database at `url`."""
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT state, count(*) AS n FROM jobs GROUP BY state")
    finally:
        await conn.close()
    return {row["state"]: int(row["n"]) for row in rows}


# --- Part 2: the stores' lease statements -----------------------------------------------------------------

REQUEST = VideoRequest(
    model="seedance-1.5-pro",
    prompt="waves roll in",
    resolution=Resolution.P720,
    ratio=Ratio.R16_9,
    duration_s=6,
    generate_audio=False,
    camera_fixed=True,
)


@dataclass(frozen=True)
class StatementTimes:
    """Medians and 95th percentiles of each statement, in milliseconds."""

    backend: str
    timings: dict[str, tuple[float, float]]


async def time_statement(samples: int, call: Callable[[int], Awaitable[Any]]) -> tuple[float, float]:
    """Run `call(i)` `samples` times one after another; (median, p95) in ms."""
    times = []
    for i in range(samples):
        begin = time.perf_counter()
        await call(i)
        times.append((time.perf_counter() - begin) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(0.95 * len(times)))]


async def lease_statements(backend: str, store: Any, jobs: int, samples: int) -> StatementTimes:
    """Time get / claim / renew_leases with `jobs` open jobs, all leased by one owner."""
    owner = "bench-process"
    ids = []
    for n in range(jobs):
        job = await store.create(
            NewJob(
                provider=ProviderName.RUNCOMFY,
                request=REQUEST,
                requester=Requester(origin=JobOrigin.DISCORD, user_id=n + 1, guild_id=1, channel_id=3),
                deadline_at=time.time() + 3600,
            )
        )
        ids.append(job.id)

    def until() -> float:
        return time.time() + 30

    assert len(await store.claim(ids, owner, until=until())) == jobs, "the owner could not lease every job"
    timings = {
        "get": await time_statement(samples, lambda i: store.get(ids[i % jobs])),
        "claim": await time_statement(samples, lambda i: store.claim([ids[i % jobs]], owner, until=until())),
        f"renew ({jobs} leases)": await time_statement(
            samples, lambda i: store.renew_leases(owner, until=until())
        ),
    }
    return StatementTimes(backend, timings)


async def store_overhead(
    args: argparse.Namespace, server: PostgresServer, directory: Path
) -> list[StatementTimes]:
    """Part 2 on PostgreSQL (a fresh database) and on SQLite (a fresh file)."""
    results = []
    async with fresh_database(server, migrated=False) as url:
        pg = await PostgresDatabase.open(url)
        try:
            results.append(
                await lease_statements("PostgreSQL", PostgresJobStore(pg), args.jobs, args.samples)
            )
        finally:
            await pg.close()
    lite = await SqliteDatabase.open(directory / "lease-bench.sqlite3")
    try:
        results.append(await lease_statements("SQLite", SqliteJobStore(lite), args.jobs, args.samples))
    finally:
        await lite.close()
    return results


# --- Running it -------------------------------------------------------------------------------------------


@contextlib.contextmanager
def postgres_server() -> Any:
    """`SEEDANCE_TEST_POSTGRES_URL`'s server, or a throwaway cluster (stopped and deleted afterwards)."""
    url = os.environ.get(URL_VARIABLE)
    if url:
        yield PostgresServer(admin_url=url, template="template0")
        return
    binaries = find_binaries()
    if binaries is None:
        raise SystemExit(f"bench_processes: no PostgreSQL: set {URL_VARIABLE} or install Debian's postgresql")
    cluster = LocalCluster(binaries)
    try:
        cluster.start()
        yield PostgresServer(admin_url=cluster.admin_url, template="template0")
    finally:
        cluster.stop()


@contextlib.asynccontextmanager
async def scenario_database(server: PostgresServer) -> AsyncIterator[str]:
    """An empty database for one run; the first bot process migrates it, as in production."""
    async with fresh_database(server, migrated=False) as url:
        yield url


def print_tables(
    results: dict[str, list[RunResult]], statements: list[StatementTimes], args: argparse.Namespace
) -> None:
    """The two tables, medians over the repeats."""
    pace = f"{args.rate:g}/s" if args.rate else "all sent at once"
    print(
        f"\nbench_processes: {args.requests} requests, {args.guilds} guilds x {args.channels} channels on "
        f"{SHARD_COUNT} shards, {pace}, medians of {args.repeats} run(s)"
    )
    header = (
        f"  {'scenario':<28} {'admitted/s':>10} {'delivered/s':>11} {'to answer p50':>13} "
        f"{'to video p50':>12} {'delivered':>10}  checks (dup videos / extra submits / undelivered)"
    )
    print(header)
    for name, runs in results.items():
        if not runs:
            print(f"  {name:<28} (no run completed)")
            continue
        print(
            f"  {name:<28} {median([r.admitted_per_s for r in runs]):>10.1f} "
            f"{median([r.delivered_per_s for r in runs]):>11.1f} "
            f"{median([r.admit_p50_s for r in runs]):>12.2f}s "
            f"{median([r.deliver_p50_s for r in runs]):>11.2f}s "
            f"{min(r.delivered for r in runs):>4}/{max(r.sent for r in runs):<5}  "
            f"{max(r.duplicate_videos for r in runs)} / {max(r.extra_submits for r in runs)} / "
            f"{max(r.not_delivered for r in runs)}"
        )
    print(
        f"\n  lease statements per job poll, {args.jobs} open jobs held by one process, "
        f"{args.samples} samples"
    )
    names = list(statements[0].timings) if statements else []
    print(
        f"  {'backend':<11} "
        + " ".join(f"{name + ' p50/p95 ms':>26}" for name in names)
        + f" {'claim+renew ms':>15} {'renew/job ms':>13}"
    )
    for result in statements:
        claim = result.timings["claim"][0]
        renew = next(value[0] for key, value in result.timings.items() if key.startswith("renew"))
        cells = " ".join(f"{p50:>17.3f} / {p95:<6.3f}" for p50, p95 in result.timings.values())
        print(f"  {result.backend:<11} {cells} {claim + renew:>15.3f} {renew / args.jobs:>13.4f}")


async def main_async(args: argparse.Namespace) -> int:
    """Every run, then the tables; non-zero when a run lost, duplicated or failed a job."""
    directory = Path(tempfile.mkdtemp(prefix="bench-processes-"))
    results: dict[str, list[RunResult]] = {s.name: [] for s in SCENARIOS}
    failed = False
    with postgres_server() as server:
        for repeat in range(args.repeats):
            for scenario in SCENARIOS:
                if args.only and args.only not in scenario.name:
                    continue
                run_dir = directory / f"{repeat}-{len(scenario.processes)}p"
                async with scenario_database(server) as url:
                    run = ProcessRun(args, scenario, url, run_dir)
                    try:
                        result = await run.run()
                    except BotDiedError as error:
                        print(f"  {scenario.name}: a bot process died: {error}", flush=True)
                        failed = True
                        continue
                results[scenario.name].append(result)
                bad = result.duplicate_videos or result.extra_submits or result.not_delivered
                failed = failed or bool(bad) or result.delivered < result.sent
                print(
                    f"  run {repeat + 1} {scenario.name}: admitted {result.admitted_per_s:.1f}/s, delivered "
                    f"{result.delivered_per_s:.1f}/s ({result.delivered}/{result.sent}); "
                    f"jobs {result.states}; "
                    f"logs in {run_dir}",
                    flush=True,
                )
        statements = await store_overhead(args, server, directory) if args.samples > 0 else []
    print_tables(results, statements, args)
    if not failed:
        shutil.rmtree(directory, ignore_errors=True)
    print(f"bench_processes: {'FAIL (logs kept in ' + str(directory) + ')' if failed else 'ok'}")
    return 1 if failed else 0


def main() -> int:
    """Parse the options and run."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=200, help="/animate commands per run (200)")
    parser.add_argument("--rate", type=float, default=0.0, help="commands per second (0: all at once)")
    parser.add_argument(
        "--guilds", type=int, default=10, help="guilds, alternating between the 2 shards (10)"
    )
    parser.add_argument("--channels", type=int, default=10, help="text channels per guild (10)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each scenario; medians shown (3)")
    parser.add_argument("--only", default="", help="run only the scenarios whose name contains this")
    parser.add_argument("--poll-interval", type=float, default=None, help="POLL_INTERVAL_S (bot default)")
    parser.add_argument(
        "--max-checks", type=float, default=None, help="MAX_STATUS_CHECKS_PER_S (bot default)"
    )
    parser.add_argument("--lease", type=float, default=None, help="JOB_LEASE_S (bot default)")
    parser.add_argument("--timeout", type=float, default=300.0, help="give up on a phase after this many s")
    parser.add_argument("--jobs", type=int, default=200, help="open jobs for the lease statements (200)")
    parser.add_argument("--samples", type=int, default=500, help="timings per statement (500; 0: skip)")
    args = parser.parse_args()
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
