"""Load: 2,000 members each start a video within about a minute; run `.venv/bin/python bench/bench_load.py`
(`--members 200` for a quick look; `--help` for the knobs). Exits non-zero when a target is missed.

The bot runs as `python -m bot.cli run` in a subprocess (its RSS and CPU read from /proc/<pid>), against the
loopback Discord and RunComfy doubles served by this process. Production settings, except the quota
defaults, which would refuse most members (QUOTA_* are set generously) and the log level (INFO, so that
"database is locked" would show).

Shape of the load (what real servers would see):

- Members are spread over 20 guilds x 10 text channels (`--guilds`, `--channels`): Discord allows about
  5 message creates+edits per 5 s per channel, so 2,000 status cards cannot go into one channel within a
  minute. 2,000 members = 100 per guild, 10 per channel. Each member runs /animate once, with an image,
  at `--rate` commands a second overall (default 40: 2,000 in 50 s), round robin over the channels.
- Every RunComfy job waits in the queue at positions `--queue-positions` .. 1 (one position per status
  check), held at 1 until every member's job has been submitted; then all are released and run for two
  checks, then complete with a video (no failures are scripted: any failed job is the bot's doing).
- The Discord double enforces its per-channel bucket (5 per 5 s) when it has one (`channel_rate_limit`).

Figures and how they are computed:

- "database is locked": occurrences in the bot's captured stdout+stderr.
- jobs failed by the bot: job rows in a final state other than delivered whose error_code is not a
  provider's (here every code is the bot's: the provider is scripted to succeed), plus rows not final at
  the end; members told their video failed: "did not work out" messages plus private answers that are not
  "Started video" or "Video #… is ready".
- cards with their thread: every job's status message has a thread in the double.
- ack latency: from the double dispatching the interaction to the arrival of the bot's first callback
  (the deferred response), per interaction; one never answered counts as infinite.
- bot RSS: VmRSS sampled every 0.5 s; the figure judged is the peak while every member's job was in
  flight (from the last submit until the release); VmHWM (the process's peak) is printed too.
- CPU per status check: the bot's utime+stime (/proc/<pid>/stat) at the end, divided by the status GETs
  RunComfy received (everything the bot did is charged to the checks).
- poller punctuality: for each request id, consecutive status GETs t[i-1], t[i] (the RunComfy double
  below stamps each on arrival); the check is on time when t[i] - t[i-1] <= 1.2 x the interval the bot
  schedules, `plan_next_check(POLL_INTERVAL_S, age, in_flight, MAX_STATUS_CHECKS_PER_S)` with the age at
  t[i-1] since the submit and the jobs in flight then (submitted, and not past their last status check).
- status edits per channel: the most message creates+edits+deletes accepted in one 5 s bucket window of a
  channel (the double's `rate_limit_stats()` when it has it, else the same fixed windows computed from its
  request log), and the 429s served. Within the limit = peak <= 5 and no 429.
- wall time (first command to the last job final and told) and jobs delivered.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import inspect
import itertools
import math
import os
import re
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from aiohttp import web  # noqa: E402

from bot.jobs.schedule import plan_next_check  # noqa: E402
from tests.doubles.discord_double import ChannelSpec, DiscordDouble, GuildSpec, UserSpec  # noqa: E402
from tests.doubles.media import make_image  # noqa: E402
from tests.doubles.runcomfy import Lifecycle, RunComfyDouble, RunComfyJob  # noqa: E402
from tests.e2e.crash_harness import (  # noqa: E402
    RUNCOMFY_KEY,
    STARTED_RE,
    BotProcess,
    SentCommand,
    bot_environment,
    final_states,
    plug_native_faults,
    read_database,
    settle_gaps,
)

MESSAGE_BUCKET_ROUTES = {
    ("POST", "/channels/{channel_id}/messages"),
    ("PATCH", "/channels/{channel_id}/messages/{message_id}"),
    ("DELETE", "/channels/{channel_id}/messages/{message_id}"),
}
#: Codes the poller gives provider-side endings (bot/jobs/poller.py); any other code is the bot's.
PROVIDER_CODES = frozenset({"provider_failed", "expired", "cancelled", "content_flagged"})


class TimedRunComfyDouble(RunComfyDouble):
    """The RunComfy double, stamping each submit and status GET on arrival (time.monotonic)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.submitted_at: dict[str, float] = {}
        self.status_times: defaultdict[str, list[float]] = defaultdict(list)

    def _register(self, job: RunComfyJob) -> RunComfyJob:
        self.submitted_at[job.id] = time.monotonic()
        return super()._register(job)

    async def _status(self, request: web.Request) -> web.Response:
        self.status_times[request.match_info["request_id"]].append(time.monotonic())
        return await super()._status(request)

    @property
    def status_checks(self) -> int:
        """Status GETs received."""
        return sum(len(times) for times in self.status_times.values())


def proc_status_kib(pid: int, name: str) -> int:
    """A memory figure (VmRSS, VmHWM) of process `pid` from /proc/<pid>/status, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{name}:"):
            return int(line.split()[1])
    raise LookupError(name)


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of process `pid` in seconds (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], fraction: float) -> float:
    """The `fraction` percentile (nearest rank) of `values`; inf when empty."""
    if not values:
        return math.inf
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))]


def fixed_window_peaks(times: list[float], period_s: float) -> int:
    """The most requests in one bucket window (a window opens at the first request after the last reset)."""
    peak, count, reset_at = 0, 0, -math.inf
    for moment in sorted(times):
        if moment >= reset_at:
            reset_at, count = moment + period_s, 0
        count += 1
        peak = max(peak, count)
    return peak


@dataclass
class Check:
    """One figure with its target."""

    name: str
    value: str
    target: str
    ok: bool | None  # None: informative only

    def line(self) -> str:
        verdict = "INFO" if self.ok is None else ("PASS" if self.ok else "FAIL")
        return f"  {verdict:4}  {self.name:<44} {self.value:<28} target {self.target}"


@dataclass
class Samples:
    """Bot RSS samples (monotonic time, KiB)."""

    rss: list[tuple[float, int]] = field(default_factory=list)


async def sample_rss(pid: int, samples: Samples, stop: asyncio.Event) -> None:
    """Read the bot's VmRSS every 0.5 s until `stop`."""
    while not stop.is_set():
        try:
            samples.rss.append((time.monotonic(), proc_status_kib(pid, "VmRSS")))
        except (OSError, LookupError):
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.5)


def make_discord(guilds: list[GuildSpec], limit: int, period_s: float) -> DiscordDouble:
    """The Discord double with Discord's per-channel bucket, if this version of the double has one."""
    if "channel_rate_limit" in inspect.signature(DiscordDouble.__init__).parameters:
        return DiscordDouble(guilds=guilds, channel_rate_limit=(limit, period_s))  # type: ignore[call-arg]
    return DiscordDouble(guilds=guilds)


async def wait_for(
    missing: Callable[[], list[str]],
    *,
    limit_s: float,
    stall_s: float,
    what: str,
    bot: BotProcess,
    every: float,
) -> tuple[list[str], float]:
    """Re-check `missing()` every `every` s until it is empty; give up after `limit_s`, or when what is
    missing has not changed for `stall_s` (it will not come: a stuck job). Returns what is still missing and
    when it last changed (time.monotonic)."""
    deadline = time.monotonic() + limit_s
    last: list[str] | None = None
    since = time.monotonic()
    while True:
        bot.check_alive()
        gaps = missing()
        now = time.monotonic()
        if not gaps:
            return [], now
        if gaps != last:
            last, since = gaps, now
        if now > deadline or now - since > stall_s:
            reason = "stalled" if now <= deadline else "timed out"
            print(f"  … {reason} waiting for {what}: {len(gaps)} missing, e.g. {gaps[:5]}", flush=True)
            return gaps, since
        await asyncio.sleep(every)


@dataclass
class Setup:
    """Guilds, channels and members (each with the channel it runs /animate in)."""

    guilds: list[GuildSpec]
    channels: list[ChannelSpec]
    members: list[tuple[UserSpec, ChannelSpec]]


def build_guilds(args: argparse.Namespace) -> Setup:
    """`--guilds` guilds of `--channels` text channels; members round robin over every channel."""
    guilds: list[GuildSpec] = []
    channels: list[ChannelSpec] = []
    for g in range(args.guilds):
        guild_channels = [ChannelSpec(f"load-{g}-{c}") for c in range(args.channels)]
        guilds.append(
            GuildSpec(name=f"Load Guild {g}", channels=guild_channels, members=[UserSpec(f"owner-{g}")])
        )
        channels.extend(guild_channels)
    by_id = {guild.id: guild for guild in guilds}
    members = []
    for n in range(args.members):
        channel = channels[n % len(channels)]
        member = UserSpec(f"member-{n:05d}")
        by_id[channel.guild_id or 0].members.append(member)
        members.append((member, channel))
    return Setup(guilds, channels, members)


@dataclass
class Measured:
    """What the run measured besides what the doubles and the database hold."""

    in_flight_rss_kib: list[int] = field(default_factory=list)
    peak_kib: int = 0
    cpu_s: float = 0.0
    wall_s: float = 0.0
    gaps: list[str] = field(default_factory=list)
    stop_code: int = 0


class LoadRun:
    """One benchmark run: the doubles, the bot process, the members' commands."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.directory = Path(tempfile.mkdtemp(prefix="bench-load-"))
        self.setup = build_guilds(args)
        self.discord = make_discord(self.setup.guilds, args.channel_limit, args.channel_period)
        self.runcomfy = TimedRunComfyDouble(api_keys=(RUNCOMFY_KEY,))
        self.database = self.directory / "bot.sqlite3"
        self.sent: list[SentCommand] = []
        self.samples = Samples()
        self.image = make_image(640, 480)
        self.bot: BotProcess | None = None

    def bot_process(self) -> BotProcess:
        """`python -m bot.cli run` with production settings but generous quotas."""
        environment = bot_environment(
            self.discord,
            self.runcomfy.base_url,
            self.database,
            poll_interval_s=self.args.poll_interval,
            extra={
                "QUOTA_CONCURRENT_JOBS": "100",
                "LOG_LEVEL": "INFO",
                "MAX_STATUS_CHECKS_PER_S": str(self.args.max_checks),
            },
        )
        environment.pop("JOB_LEASE_S", None)  # the bot's own default: the bench runs production settings
        bot = BotProcess(environment, log_dir=self.directory, overrides={})
        if self.args.bot_src is not None:
            environment["PYTHONPATH"] = str(self.args.bot_src)
            bot.cwd = self.args.bot_src
        return bot

    async def send(self, n: int) -> None:
        """Member `n` runs /animate in their channel."""
        member, channel = self.setup.members[n]
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

    def unanswered(self) -> list[str]:
        """Commands the bot has neither answered nor let expire (3 s without an ack)."""
        now = time.monotonic()
        missing = []
        for command in self.sent:
            handle = command.handle
            if handle is None:
                continue
            if handle.acknowledged:
                if handle.original is None or handle.original.is_loading:
                    missing.append(f"load-{command.tag:05d} thinking")
            elif now - handle.dispatched_at < self.discord.ack_deadline_s + 1:
                missing.append(f"load-{command.tag:05d} not acknowledged yet")
        return missing

    async def run(self) -> int:
        """The whole benchmark; returns the exit code."""
        args = self.args
        await self.discord.start()
        await self.runcomfy.start()
        for _ in range(args.members):
            self.runcomfy.script(Lifecycle.queued(args.queue_positions, hold=True).running(2).completes())
        bot = self.bot = self.bot_process()
        print(
            f"bench_load: {args.members} members, {args.guilds} guilds x {args.channels} channels "
            f"({len(self.setup.channels)} channels, {args.members / len(self.setup.channels):.0f} members "
            f"each), {args.rate}/s, POLL_INTERVAL_S={args.poll_interval}, queue positions "
            f"{args.queue_positions}..1 held; double features {plug_native_faults(self.discord)}; "
            f"bot from {bot.cwd}; files in {self.directory}",
            flush=True,
        )
        stop_sampling = asyncio.Event()
        try:
            await bot.start(self.discord)
            await bot.wait_ready(self.discord, timeout=60)
            assert bot.pid is not None
            sampler = asyncio.create_task(sample_rss(bot.pid, self.samples, stop_sampling))
            measured = await self.drive(bot)
            stop_sampling.set()
            await sampler
            measured.stop_code = await bot.terminate(timeout=60)
            return report(self, measured)
        finally:
            stop_sampling.set()
            if bot.alive:
                bot.kill("bench teardown")
                await bot.wait_exit()
            await self.runcomfy.close()
            await self.discord.close()

    async def drive(self, bot: BotProcess) -> Measured:
        """Send every command at the rate, hold the queue, release it, wait for every job to end."""
        args = self.args
        assert bot.pid is not None
        measured = Measured()
        started = time.monotonic()
        senders = []
        for n in range(args.members):
            delay = started + n / args.rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            senders.append(asyncio.create_task(self.send(n)))
        await asyncio.gather(*senders)
        print(f"  sent {len(self.sent)} commands in {time.monotonic() - started:.1f} s", flush=True)
        await wait_for(
            self.unanswered, limit_s=args.timeout, stall_s=args.stall, what="answers", bot=bot, every=0.5
        )
        all_in_flight_at = time.monotonic()
        print(
            f"  every member answered after {all_in_flight_at - started:.1f} s; "
            f"{self.runcomfy.submit_count} jobs at the provider; holding the queue {args.hold:.0f} s",
            flush=True,
        )
        while time.monotonic() < all_in_flight_at + args.hold:
            bot.check_alive()
            await asyncio.sleep(0.5)
        released_at = time.monotonic()
        for job_id in list(self.runcomfy.jobs):
            self.runcomfy.release(job_id)
        measured.in_flight_rss_kib = [
            kib for moment, kib in self.samples.rss if all_in_flight_at <= moment <= released_at
        ]
        measured.gaps, last_progress = await wait_for(
            lambda: settle_gaps(discord=self.discord, database=self.database, sent=self.sent),
            limit_s=args.timeout,
            stall_s=args.stall,
            what="every job to end and be told",
            bot=bot,
            every=1.0,
        )
        measured.wall_s = last_progress - started  # a stalled wait is not counted
        measured.peak_kib = proc_status_kib(bot.pid, "VmHWM")
        measured.cpu_s = proc_cpu_seconds(bot.pid)
        print(f"  done after {measured.wall_s:.1f} s", flush=True)
        return measured


# --- The figures ---------------------------------------------------------------------------------------


def outcome_checks(run: LoadRun) -> tuple[list[Check], list[str]]:
    """Database locks, failures, cards with threads, deliveries; and detail lines."""
    assert run.bot is not None
    rows, _ = read_database(run.database)
    final = final_states()
    delivered = sum(1 for row in rows if row.state == "delivered")
    bot_failed = [
        row
        for row in rows
        if row.state not in final or (row.state != "delivered" and row.error_code not in PROVIDER_CODES)
    ]
    told_failed = sum(
        1
        for message in run.discord.all_messages()
        if message.source == "bot" and not message.ephemeral and "did not work out" in message.content
    )
    private_failures: list[str] = []
    for command in run.sent:
        for message in command.private_messages():
            # "Started video #…", or, once it is done, "Video #… is ready": both are good news.
            good = STARTED_RE.search(message.content) or READY_RE.search(message.content)
            if not message.is_loading and message.content and not good:
                told_failed += 1
                private_failures.append(f"load-{command.tag:05d}: {message.content[:100]!r}")
    without_thread = []
    for row in rows:
        try:
            card = run.discord.message(row.status_message_id or 0)
        except KeyError:
            card = None
        if card is None or card.thread_id is None:
            without_thread.append(row.id)
    locked = run.bot.log_text().lower().count("database is locked")
    members = run.args.members
    checks = [
        Check('"database is locked" in the bot log', str(locked), "0", locked == 0),
        Check("jobs failed by the bot (or not final)", str(len(bot_failed)), "0", not bot_failed),
        Check("members told their video failed", str(told_failed), "0", told_failed == 0),
        Check(
            "status cards with their thread",
            f"{len(rows) - len(without_thread)}/{len(rows)} jobs",
            f"all {members}",
            not without_thread and len(rows) == members,
        ),
        Check("jobs delivered", f"{delivered}/{members}", "all", delivered == members),
    ]
    details = []
    if bot_failed:
        codes: defaultdict[str, int] = defaultdict(int)
        for row in bot_failed:
            codes[f"{row.state}/{row.error_code}"] += 1
        details.append(f"bot-failed rows by state/code: {dict(codes)}")
    if without_thread:
        details.append(f"jobs without a thread under their card: {without_thread[:20]}")
    if private_failures:
        details.append(f"private failure answers ({len(private_failures)}), e.g. {private_failures[:3]}")
    return checks, details


def ack_checks(run: LoadRun) -> tuple[list[Check], list[str]]:
    """Ack latency from dispatch to the bot's first callback; interactions never acknowledged."""
    first_callback: dict[int, float] = {}
    for request in run.discord.requests:
        if request.interaction_id is not None and request.route and request.route.endswith("/callback"):
            first_callback.setdefault(request.interaction_id, request.at)
    latencies: list[float] = []
    for command in run.sent:
        handle = command.handle
        if handle is None or handle.id not in first_callback:
            latencies.append(math.inf)
        else:
            latencies.append(first_callback[handle.id] - handle.dispatched_at)
    never = sum(1 for value in latencies if math.isinf(value))
    not_acked = sum(1 for command in run.sent if not command.acknowledged)
    p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
    finite = [value for value in latencies if math.isfinite(value)]
    details = [f"ack latency mean {statistics.mean(finite):.3f} s, max {max(finite):.3f} s"] if finite else []
    # The member's first real answer ("Started video #…" or why not): the first webhook call after the ack.
    first_answer: dict[int, float] = {}
    for request in run.discord.requests:
        if request.interaction_id is not None and request.route and request.route.startswith("/webhooks/"):
            first_answer.setdefault(request.interaction_id, request.at)
    answers = [
        first_answer[command.handle.id] - command.handle.dispatched_at
        for command in run.sent
        if command.handle is not None and command.handle.id in first_answer
    ]
    answer_text = f"{percentile(answers, 0.5):.2f} / {percentile(answers, 0.99):.2f} s" if answers else "none"
    return [
        Check("ack latency p50 / p99", f"{p50:.3f} / {p99:.3f} s", "p99 < 3 s", p99 < 3.0),
        Check("interactions not acknowledged", f"{not_acked} ({never} never answered)", "0", not_acked == 0),
        Check("time to the member's answer p50 / p99", answer_text, "(info)", None),
    ], details


READY_RE = re.compile(r"\bVideo #\d+ is ready\b")


def process_checks(run: LoadRun, measured: Measured) -> list[Check]:
    """RSS, CPU per status check, poller punctuality."""
    args, runcomfy = run.args, run.runcomfy
    checked = on_time = 0
    worst = 0.0
    starts = sorted(runcomfy.submitted_at.values())
    ends = sorted(times[-1] for times in runcomfy.status_times.values() if times)

    def in_flight(moment: float) -> int:
        return bisect.bisect_right(starts, moment) - bisect.bisect_left(ends, moment)

    for request_id, times in runcomfy.status_times.items():
        submitted = runcomfy.submitted_at.get(request_id, times[0])
        for previous, current in itertools.pairwise(times):
            planned = plan_next_check(
                args.poll_interval, previous - submitted, in_flight(previous), args.max_checks
            )
            ratio = (current - previous) / planned
            checked += 1
            worst = max(worst, ratio)
            on_time += ratio <= 1.2
    punctual = on_time / checked if checked else 0.0
    checks = runcomfy.status_checks
    rss_mb = max(measured.in_flight_rss_kib, default=0) / 1024
    cpu = (
        f"{measured.cpu_s / checks * 1000:.2f} ms ({measured.cpu_s:.1f} s / {checks})"
        if checks
        else "no checks"
    )
    return [
        Check(
            f"bot RSS, all {args.members} in flight (peak)",
            f"{rss_mb:.1f} MB",
            "<= 150 MB",
            0 < rss_mb <= 150,
        ),
        Check(
            "bot peak RSS over the whole run (VmHWM)", f"{measured.peak_kib / 1024:.1f} MB", "(info)", None
        ),
        Check("bot CPU per status check", cpu, "(info)", None),
        Check(
            "status checks within 1.2x of schedule",
            f"{punctual * 100:.2f} % of {checked} (worst {worst:.1f}x)",
            ">= 99 %",
            checked > 0 and punctual >= 0.99,
        ),
    ]


def channel_checks(run: LoadRun) -> list[Check]:
    """Message creates+edits per channel bucket window, and the 429s."""
    args, discord = run.args, run.discord
    accepted: defaultdict[str, list[float]] = defaultdict(list)
    for request in discord.requests:
        if (request.method, request.route) in MESSAGE_BUCKET_ROUTES and request.ok:
            accepted[request.params.get("channel_id", "?")].append(request.at)
    own_peak = max((fixed_window_peaks(times, args.channel_period) for times in accepted.values()), default=0)
    stats = discord.rate_limit_stats() if callable(getattr(discord, "rate_limit_stats", None)) else None
    if stats is not None:
        peak, sliding, limited = stats.peak_per_window, stats.peak_per_period, stats.rate_limited
        source = "the double's buckets"
    else:
        peak, sliding, limited = own_peak, own_peak, 0
        source = "computed; this double enforces no bucket"
    return [
        Check(
            "channel creates+edits per 5 s window (peak)",
            f"{peak} (sliding {sliding}; {source})",
            f"<= {args.channel_limit}",
            peak <= args.channel_limit and limited == 0,
        ),
        Check("429s served by the channel buckets", str(limited), "0", limited == 0),
    ]


def report(run: LoadRun, measured: Measured) -> int:
    """Print every figure against its target; 0 when every target is met."""
    outcome, outcome_details = outcome_checks(run)
    acks, ack_details = ack_checks(run)
    checks = [
        *outcome,
        *acks,
        *process_checks(run, measured),
        *channel_checks(run),
        Check("total wall time", f"{measured.wall_s:.1f} s", "(info)", None),
        Check("bot exit code on SIGTERM", str(measured.stop_code), "0", measured.stop_code == 0),
    ]
    print("\nbench_load results")
    for check in checks:
        print(check.line())
    for line in [*outcome_details, *ack_details]:
        print(f"  {line}")
    if measured.gaps:
        print(f"  still missing at the end ({len(measured.gaps)}): {measured.gaps[:10]}")
    assert run.bot is not None
    print(f"  bot log: {run.bot.log_paths[-1] if run.bot.log_paths else '-'}")
    failed = [check.name for check in checks if check.ok is False]
    print(f"bench_load: {'PASS' if not failed else 'FAIL: ' + ', '.join(failed)}")
    return 0 if not failed else 1


def main() -> int:
    """Parse the options and run once."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--members", type=int, default=2000, help="members, one /animate each (2000)")
    parser.add_argument("--rate", type=float, default=40.0, help="commands per second overall (40)")
    parser.add_argument("--guilds", type=int, default=20, help="guilds (20)")
    parser.add_argument("--channels", type=int, default=10, help="text channels per guild (10)")
    parser.add_argument("--poll-interval", type=float, default=3.0, help="POLL_INTERVAL_S (production: 3)")
    parser.add_argument(
        "--max-checks", type=float, default=50.0, help="MAX_STATUS_CHECKS_PER_S (production default: 50)"
    )
    parser.add_argument("--queue-positions", type=int, default=8, help="queue positions before the hold (8)")
    parser.add_argument(
        "--hold", type=float, default=10.0, help="s to keep the queue held once all are in (10)"
    )
    parser.add_argument("--channel-limit", type=int, default=5, help="message creates+edits per window (5)")
    parser.add_argument("--channel-period", type=float, default=5.0, help="the window, s (5)")
    parser.add_argument("--timeout", type=float, default=900.0, help="give up on a phase after this many s")
    parser.add_argument(
        "--stall",
        type=float,
        default=60.0,
        help="give up waiting once nothing progressed for this many s (60)",
    )
    parser.add_argument(
        "--bot-src",
        type=lambda value: Path(value).resolve(),
        default=None,
        help="run the bot of another checkout (e.g. a `git archive` of a commit); default: this one",
    )
    args = parser.parse_args()
    return asyncio.run(LoadRun(args).run())


if __name__ == "__main__":
    sys.exit(main())
