"""What the job poller costs as the jobs in flight grow: run `python bench/bench_poller.py` (about 20 s).

Every case runs the real JobPoller and JobStore against a SQLite file in a temporary directory, with an
in-memory provider that records its calls, a notifier that only records, and videos served by an
httpx.MockTransport. Jobs are written straight into the table beforehand (copies of one job made through
JobStore.create), so only the poller's own work is timed.

1. resume:     `JobPoller.start()` over N active QUEUED jobs due over the next hour (each N in a fresh
               process): median time, and memory growth (peak and retained resident size; Python heap as
               tracemalloc sees it, which misses SQLite's own allocations).
2. tick:       N jobs in flight, all due in an hour or more except K = 10 due now. From the moment start()
               returns until the K due jobs have each been polled once and their new state stored: wall time,
               provider status() calls, store reads and writes, SQL statements, SQLite VM instructions. Then
               the K jobs are polled every 20 ms for a while: process CPU time per poll.
3. throughput: 1,000 jobs all due; the provider answers SUCCEEDED at once; time from start() until every job
               is DELIVERED in the store, at max_concurrency 8 and 32.
4. poll_now:   a job is asked to be polled again (`poll_now`) while its step is still running, and another job
               becomes due: what the scheduling loop does meanwhile.

Figures are medians of several repeats; ratios are computed within the same run, since the machine is shared.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from collections.abc import Collection
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

import httpx  # noqa: E402
from proc_memory import proc_status_kib, reset_peak_rss_kib  # noqa: E402

from bot.domain.catalogue import ModelSpec, RequestedOptions, default_catalogue  # noqa: E402
from bot.domain.models import Job, JobOrigin, JobState, ProviderName, Requester  # noqa: E402
from bot.jobs.download import AddressPolicy  # noqa: E402
from bot.jobs.notifier import DownloadedVideo  # noqa: E402
from bot.jobs.poller import JobPoller  # noqa: E402
from bot.providers.base import (  # noqa: E402
    CancelOutcome,
    ProviderState,
    ProviderStatus,
    Submission,
    SubmitReceipt,
)
from bot.storage.database import open_database  # noqa: E402
from bot.storage.jobs import JobStore, NewJob  # noqa: E402

SIZES = (100, 1_000, 10_000)
HISTORY_CASE = (1_000, 50_000)  # resume 1,000 active jobs from a table that also holds 50,000 finished ones
DUE = 10
RESUME_REPEATS = 5
TICK_REPEATS = 7
STEADY_REPEATS = 3
STEADY_WINDOW_S = 0.6
STEADY_INTERVAL_S = 0.02
THROUGHPUT_JOBS = 1_000
CONCURRENCIES = (8, 32)
THROUGHPUT_REPEATS = 3
STEP_S = 0.2  # how long the slow step lasts in case 4
VIDEO_URL = "https://files.test/out/video.mp4"
VIDEO_BYTES = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 64  # 16 KiB
WAIT_LIMIT_S = 60.0
MIB = 1024 * 1024


# --- collaborators -------------------------------------------------------------------------------------


class RecordingProvider:
    """Answers every status() with one fixed status; records the calls; can hold one job's calls."""

    name = ProviderName.RUNCOMFY
    accepts_inline_images = False

    def __init__(self, answer: ProviderStatus) -> None:
        self.answer = answer
        self.calls: Counter[str] = Counter()
        self.call_times: dict[str, list[float]] = {}
        self.slow: dict[str, float] = {}  # provider job id -> seconds its status() takes
        self.entered: dict[str, asyncio.Event] = {}

    async def submit(self, submission: Submission) -> SubmitReceipt:
        raise NotImplementedError("the benchmark never submits")

    async def status(self, provider_job_id: str, spec: ModelSpec) -> ProviderStatus:
        self.calls[provider_job_id] += 1
        self.call_times.setdefault(provider_job_id, []).append(time.perf_counter())
        if provider_job_id in self.entered:
            self.entered[provider_job_id].set()
        if provider_job_id in self.slow:
            await asyncio.sleep(self.slow[provider_job_id])
        return self.answer

    async def cancel(self, provider_job_id: str, spec: ModelSpec) -> CancelOutcome:
        return CancelOutcome.CANCELLED


class RecordingNotifier:
    """Only records what it is told."""

    def __init__(self) -> None:
        self.progressed = 0
        self.ended = 0
        self.delivered: dict[int, int] = {}

    async def job_progressed(self, job: Job) -> None:
        self.progressed += 1

    async def deliver_video(self, job: Job, video: DownloadedVideo) -> str:
        self.delivered[job.id] = video.size_bytes
        return f"message-{job.id}"

    async def job_ended(self, job: Job) -> None:
        self.ended += 1

    async def find_delivery(self, job: Job) -> str | None:
        return None

    async def video_delivered(self, job: Job) -> None:
        pass


class CountingStore(JobStore):
    """A JobStore that counts its reads and writes and signals when `target` jobs reached `target_state`."""

    def __init__(self, conn: Any) -> None:
        super().__init__(conn)
        self.reads = 0
        self.writes = 0
        self.reached = 0
        self.target_state = JobState.QUEUED
        self.target = 0
        self.done = asyncio.Event()

    def expect(self, state: JobState, count: int) -> None:
        self.reads = self.writes = self.reached = 0
        self.target_state, self.target = state, count
        self.done = asyncio.Event()

    async def get(self, job_id: int) -> Job | None:
        self.reads += 1
        return await super().get(job_id)

    async def open_jobs(self, origin: JobOrigin | None = None) -> list[Job]:
        self.reads += 1
        return await super().open_jobs(origin)

    async def transition(
        self, job_id: int, to: JobState, *, expected: Collection[JobState] | None = None, **fields: Any
    ) -> Job | None:
        self.writes += 1
        job = await super().transition(job_id, to, expected=expected, **fields)
        if job is not None and to is self.target_state:
            self.reached += 1
            if self.reached >= self.target:
                self.done.set()
        return job

    async def annotate(self, job_id: int, **fields: Any) -> Job | None:
        self.writes += 1
        return await super().annotate(job_id, **fields)


def video_transport() -> tuple[httpx.MockTransport, list[str]]:
    downloads: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        downloads.append(str(request.url))
        return httpx.Response(200, content=VIDEO_BYTES, headers={"content-type": "video/mp4"})

    return httpx.MockTransport(handle), downloads


def make_poller(
    store: JobStore,
    provider: RecordingProvider,
    notifier: RecordingNotifier,
    http: httpx.AsyncClient,
    **options: Any,
) -> JobPoller:
    # The videos come from an in-memory transport at a name that does not resolve: no address check.
    options.setdefault("download_policy", AddressPolicy.UNCHECKED)
    return JobPoller(store, {ProviderName.RUNCOMFY: provider}, default_catalogue(), notifier, http, **options)


# --- building the databases ----------------------------------------------------------------------------


async def build_database(
    path: Path, *, active: int, due: int = 0, final: int = 0, spread_from_s: float = 60.0
) -> None:
    """Write `active` QUEUED jobs (the first `due` of them due now, the rest spread over an hour starting
    `spread_from_s` from now) and `final` DELIVERED ones. Provider job ids: due-i, later-i, done-i."""
    conn = await open_database(path)
    try:
        store = JobStore(conn)
        now = time.time()
        request = default_catalogue().validate(None, RequestedOptions(prompt="a fox blinks in the snow"))
        requester = Requester(origin=JobOrigin.DISCORD, user_id=42, guild_id=1, channel_id=2)
        template = await store.create(
            NewJob(
                provider=ProviderName.RUNCOMFY, request=request, requester=requester, deadline_at=now + 86400
            )
        )
        await store.transition(
            template.id, JobState.QUEUED, provider_job_id="template", submitted_at=now, next_poll_at=now
        )
        async with conn.execute("SELECT * FROM jobs WHERE id = ?", (template.id,)) as cursor:
            row = await cursor.fetchone()
        assert row is not None
        base = {key: row[key] for key in row.keys() if key != "id"}  # noqa: SIM118 (sqlite Row)
        await conn.execute("DELETE FROM jobs WHERE id = ?", (template.id,))
        columns = list(base)
        rows = []
        for i in range(active):
            values = dict(base)
            if i < due:
                values.update(provider_job_id=f"due-{i}", next_poll_at=now - 1.0)
            else:
                values.update(
                    provider_job_id=f"later-{i}", next_poll_at=now + spread_from_s + 3600.0 * i / active
                )
            rows.append([values[c] for c in columns])
        for i in range(final):
            values = dict(base)
            values.update(
                provider_job_id=f"done-{i}",
                state=JobState.DELIVERED.value,
                next_poll_at=None,
                finished_at=now,
                announced_at=now,
                delivery_ref=f"message-{i}",
            )
            rows.append([values[c] for c in columns])
        await conn.execute("BEGIN IMMEDIATE")
        await conn.executemany(
            f"INSERT INTO jobs ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})", rows
        )
        await conn.execute("COMMIT")
    finally:
        await conn.close()


# --- 1. resume (each size in a fresh process) ----------------------------------------------------------


async def measure_resume(path: Path) -> dict[str, Any]:
    conn = await open_database(path)
    provider = RecordingProvider(ProviderStatus(ProviderState.QUEUED))
    notifier = RecordingNotifier()
    transport, _ = video_transport()
    try:
        async with httpx.AsyncClient(transport=transport) as http:
            store = JobStore(conn)

            async def one_start() -> tuple[JobPoller, int, float]:
                poller = make_poller(store, provider, notifier, http, poll_interval_s=60.0)
                started = time.perf_counter()
                resumed = await poller.start()
                return poller, resumed, time.perf_counter() - started

            # Cold run: resident size (the first time is the one that grows the process).
            gc.collect()
            rss_before = reset_peak_rss_kib()
            poller, resumed, _ = await one_start()
            rss_peak = proc_status_kib("VmHWM") - rss_before
            rss_after = proc_status_kib("VmRSS") - rss_before
            await poller.stop()
            del poller
            gc.collect()
            # Python heap, traced (slow, so not timed).
            tracemalloc.start()
            traced_before = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            poller, _, _ = await one_start()
            traced_now, traced_peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            await poller.stop()
            del poller
            gc.collect()
            timings = []
            for _ in range(RESUME_REPEATS):
                poller, _, elapsed = await one_start()
                timings.append(elapsed)
                await poller.stop()
                del poller
                gc.collect()
            assert provider.calls.total() == 0, "nothing was due; nothing should have been polled"
    finally:
        await conn.close()
    return {
        "resumed": resumed,
        "median_s": statistics.median(timings),
        "rss_peak_mib": rss_peak / 1024,
        "rss_after_mib": rss_after / 1024,
        "traced_peak_mib": (traced_peak - traced_before) / MIB,
        "traced_kept_mib": (traced_now - traced_before) / MIB,
    }


# --- 2. a tick with few jobs due -----------------------------------------------------------------------


async def make_due_now(conn: Any) -> None:
    await conn.execute(
        "UPDATE jobs SET next_poll_at = ? WHERE provider_job_id LIKE 'due-%'", (time.time() - 1.0,)
    )


async def measure_tick(path: Path) -> dict[str, float]:
    conn = await open_database(path)
    provider = RecordingProvider(ProviderStatus(ProviderState.QUEUED))
    notifier = RecordingNotifier()
    statements = 0
    vm_steps = 0

    def on_statement(_sql: str) -> None:
        nonlocal statements
        statements += 1

    def on_progress() -> int:
        nonlocal vm_steps
        vm_steps += 100
        return 0

    result: dict[str, float] = {}
    transport, _ = video_transport()
    try:
        async with httpx.AsyncClient(transport=transport) as http:
            store = CountingStore(conn)
            walls = []
            for repeat in range(TICK_REPEATS + 1):
                counting = repeat == TICK_REPEATS  # one extra run with SQLite's trace and progress hooks
                await make_due_now(conn)
                poller = make_poller(store, provider, notifier, http, poll_interval_s=60.0)
                if counting:
                    await conn.set_trace_callback(on_statement)
                    await conn.set_progress_handler(on_progress, 100)
                await poller.start()
                # No await from here to `started`: the loop's first pass has not run yet.
                statements = vm_steps = 0
                provider.calls.clear()
                store.expect(JobState.QUEUED, DUE)
                started = time.perf_counter()
                await asyncio.wait_for(store.done.wait(), WAIT_LIMIT_S)
                elapsed = time.perf_counter() - started
                if counting:
                    await conn.set_trace_callback(None)
                    await conn.set_progress_handler(None, 100)
                    result.update(
                        status_calls=provider.calls.total(),
                        reads=store.reads,
                        writes=store.writes,
                        statements=statements,
                        vm_steps=vm_steps,
                    )
                    assert sorted(provider.calls) == sorted(f"due-{i}" for i in range(DUE)), provider.calls
                else:
                    walls.append(elapsed)
                await poller.stop()
            result["wall_s"] = statistics.median(walls)
            result.update(await measure_steady(conn, store, http))
    finally:
        await conn.close()
    return result


async def measure_steady(conn: Any, store: CountingStore, http: httpx.AsyncClient) -> dict[str, float]:
    """The K due jobs polled every STEADY_INTERVAL_S while the others wait in the heap: CPU per poll."""
    provider = RecordingProvider(ProviderStatus(ProviderState.QUEUED))
    cpu_per_poll, polls = [], 0
    for _ in range(STEADY_REPEATS):
        await make_due_now(conn)
        poller = make_poller(store, provider, RecordingNotifier(), http, poll_interval_s=STEADY_INTERVAL_S)
        await poller.start()
        store.expect(JobState.QUEUED, DUE)
        await asyncio.wait_for(store.done.wait(), WAIT_LIMIT_S)  # the first tick is done
        provider.calls.clear()
        cpu = time.process_time()
        await asyncio.sleep(STEADY_WINDOW_S)
        cpu = time.process_time() - cpu
        polls = provider.calls.total()
        await poller.stop()
        cpu_per_poll.append(cpu / max(polls, 1))
    return {"cpu_per_poll_s": statistics.median(cpu_per_poll), "steady_polls": polls}


# --- 3. throughput -------------------------------------------------------------------------------------


async def measure_throughput(path: Path, folder: Path) -> dict[int, dict[str, float]]:
    conn = await open_database(path)
    provider = RecordingProvider(ProviderStatus(ProviderState.SUCCEEDED, video_url=VIDEO_URL, cost_usd=0.1))
    transport, downloads = video_transport()
    walls: dict[int, list[float]] = {c: [] for c in CONCURRENCIES}
    cpus: dict[int, list[float]] = {c: [] for c in CONCURRENCIES}
    try:
        async with httpx.AsyncClient(transport=transport) as http:
            store = CountingStore(conn)
            for _ in range(THROUGHPUT_REPEATS):
                for concurrency in CONCURRENCIES:
                    await conn.execute(
                        "UPDATE jobs SET state = 'queued', next_poll_at = ?, video_url = NULL, "
                        "delivery_ref = NULL, video_bytes = NULL, finished_at = NULL, cost_usd = NULL, "
                        "progress_percent = NULL, poll_failures = 0, announced_at = NULL, "
                        "lease_owner = NULL, lease_expires_at = NULL",
                        (time.time() - 1.0,),
                    )
                    notifier = RecordingNotifier()
                    downloads.clear()
                    provider.calls.clear()
                    poller = make_poller(
                        store,
                        provider,
                        notifier,
                        http,
                        poll_interval_s=5.0,
                        max_concurrency=concurrency,
                        download_dir=folder,
                    )
                    store.expect(JobState.DELIVERED, THROUGHPUT_JOBS)
                    gc.collect()
                    cpu = time.process_time()
                    started = time.perf_counter()
                    await poller.start()
                    await asyncio.wait_for(store.done.wait(), WAIT_LIMIT_S)
                    walls[concurrency].append(time.perf_counter() - started)
                    cpus[concurrency].append(time.process_time() - cpu)
                    await poller.stop()
                    async with conn.execute("SELECT COUNT(*) FROM jobs WHERE state = 'delivered'") as cursor:
                        row = await cursor.fetchone()
                    assert row is not None and row[0] == THROUGHPUT_JOBS
                    assert (
                        len(notifier.delivered) == len(downloads) == provider.calls.total() == THROUGHPUT_JOBS
                    )
    finally:
        await conn.close()
    return {
        c: {"wall_s": statistics.median(walls[c]), "cpu_s": statistics.median(cpus[c])} for c in CONCURRENCIES
    }


# --- 4. poll_now while the job's step is still running -------------------------------------------------


async def measure_poll_now_mid_step(path: Path) -> dict[str, float]:
    """Jobs later-0 and later-1 are idle; poll later-0, whose status() takes STEP_S; halfway through, poll_now
    it again and poll_now later-1. Count the loop's passes (its clock() calls) and the CPU time while the step
    runs, when later-1 is first polled, and whether later-0 is polled again soon after its step ends."""
    conn = await open_database(path)
    provider = RecordingProvider(ProviderStatus(ProviderState.QUEUED))
    provider.slow["later-0"] = STEP_S
    provider.entered["later-0"] = asyncio.Event()
    clock_calls = 0

    def clock() -> float:
        nonlocal clock_calls
        clock_calls += 1
        return time.time()

    transport, _ = video_transport()
    try:
        async with httpx.AsyncClient(transport=transport) as http:
            store = JobStore(conn)
            ids = {}
            for name in ("later-0", "later-1"):
                async with conn.execute("SELECT id FROM jobs WHERE provider_job_id = ?", (name,)) as cursor:
                    row = await cursor.fetchone()
                assert row is not None
                ids[name] = row[0]
            poller = make_poller(
                store,
                provider,
                RecordingNotifier(),
                http,
                poll_interval_s=60.0,
                max_concurrency=8,
                clock=clock,
            )
            await poller.start()
            poller.poll_now(ids["later-0"])
            await asyncio.wait_for(provider.entered["later-0"].wait(), WAIT_LIMIT_S)
            step_started = provider.call_times["later-0"][0]
            await asyncio.sleep(STEP_S / 4)
            poller.poll_now(ids["later-0"])  # "the provider says it changed": look again right away
            poller.poll_now(ids["later-1"])  # another job due now; 7 of 8 slots are free
            asked = time.perf_counter()
            clock_calls, cpu = 0, time.process_time()
            await asyncio.sleep(step_started + STEP_S - time.perf_counter() - 0.005)
            passes, cpu = clock_calls, time.process_time() - cpu
            window = time.perf_counter() - asked
            await asyncio.sleep(0.3)
            later1 = provider.call_times.get("later-1", [])
            await poller.stop()
    finally:
        await conn.close()
    return {
        "window_s": window,
        "passes": passes,
        "cpu_s": cpu,
        "other_wait_s": (later1[0] - asked) if later1 else float("nan"),
        "repolled": provider.calls["later-0"] - 1,
    }


# --- driver --------------------------------------------------------------------------------------------


def print_table(headers: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    print("  ".join(h.rjust(w) for h, w in zip(headers, widths, strict=True)))
    for row in rows:
        print("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))


def ratio(big: float, small: float) -> str:
    return f"{big / small:.1f}x" if small else "n/a"


def run_child(kind: str, path: Path) -> dict[str, Any]:
    child = subprocess.run(
        [sys.executable, __file__, "--child", kind, str(path)], check=True, capture_output=True, text=True
    )
    return json.loads(child.stdout)


async def build_all(folder: Path) -> dict[str, Path]:
    paths: dict[str, Path] = {}
    for n in SIZES:
        paths[f"resume-{n}"] = folder / f"resume-{n}.sqlite3"
        await build_database(paths[f"resume-{n}"], active=n)
        paths[f"tick-{n}"] = folder / f"tick-{n}.sqlite3"
        await build_database(paths[f"tick-{n}"], active=n, due=DUE, spread_from_s=3600.0)
    active, final = HISTORY_CASE
    paths["history"] = folder / "history.sqlite3"
    await build_database(paths["history"], active=active, final=final)
    paths["throughput"] = folder / "throughput.sqlite3"
    await build_database(paths["throughput"], active=THROUGHPUT_JOBS, due=THROUGHPUT_JOBS)
    paths["poll-now"] = folder / "poll-now.sqlite3"
    await build_database(paths["poll-now"], active=2, spread_from_s=3600.0)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--child", nargs=2, metavar=("KIND", "PATH"), help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.child:
        _, path = arguments.child
        print(json.dumps(asyncio.run(measure_resume(Path(path)))))
        return

    begun = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_poller_") as name:
        folder = Path(name)
        paths = asyncio.run(build_all(folder))

        print(
            f"1. Resume: JobPoller.start() over N active jobs (median of {RESUME_REPEATS}; "
            "a fresh process each)"
        )
        cases = [(f"{n:,}", paths[f"resume-{n}"]) for n in SIZES]
        cases.append((f"{HISTORY_CASE[0]:,} + {HISTORY_CASE[1]:,} final", paths["history"]))
        resumes = {label: run_child("resume", path) for label, path in cases}
        rows = []
        for label, _ in cases:
            r = resumes[label]
            rows.append(
                [
                    label,
                    f"{r['resumed']:,}",
                    f"{r['median_s'] * 1000:.1f}",
                    f"{r['median_s'] / r['resumed'] * 1e6:.1f}",
                    f"{r['rss_peak_mib']:.1f}",
                    f"{r['rss_after_mib']:.1f}",
                    f"{r['traced_peak_mib']:.1f}",
                    f"{r['traced_kept_mib']:.2f}",
                ]
            )
        small, big = resumes[f"{SIZES[0]:,}"], resumes[f"{SIZES[-1]:,}"]
        rows.append(
            [
                f"{SIZES[-1]:,} / {SIZES[0]:,}",
                "",
                ratio(big["median_s"], small["median_s"]),
                ratio(big["median_s"] / big["resumed"], small["median_s"] / small["resumed"]),
                "",
                "",
                ratio(big["traced_peak_mib"], small["traced_peak_mib"]),
                ratio(big["traced_kept_mib"], small["traced_kept_mib"]),
            ]
        )
        print_table(
            ["jobs", "resumed", "ms", "us/job", "RSS peak +MB", "RSS kept +MB", "py peak MB", "py kept MB"],
            rows,
        )

        print(
            f"\n2. Tick: N jobs in flight, K={DUE} due now; until each due job is polled once (median of "
            f"{TICK_REPEATS}); then K polled every {STEADY_INTERVAL_S * 1000:.0f} ms"
        )
        ticks = {n: asyncio.run(measure_tick(paths[f"tick-{n}"])) for n in SIZES}
        rows = []
        keys = ["wall_s", "status_calls", "reads", "writes", "statements", "vm_steps", "cpu_per_poll_s"]
        for n in SIZES:
            t = ticks[n]
            rows.append(
                [
                    f"{n:,}",
                    f"{t['wall_s'] * 1000:.2f}",
                    f"{t['status_calls']:.0f}",
                    f"{t['reads']:.0f}",
                    f"{t['writes']:.0f}",
                    f"{t['statements']:.0f}",
                    f"~{t['vm_steps']:,.0f}",
                    f"{t['cpu_per_poll_s'] * 1e6:.0f} ({t['steady_polls']:.0f})",
                ]
            )
        small, big = ticks[SIZES[0]], ticks[SIZES[-1]]
        rows.append([f"{SIZES[-1]:,} / {SIZES[0]:,}", *(ratio(big[k], small[k]) for k in keys)])
        print_table(
            ["N", "ms", "status()", "reads", "writes", "SQL stmts", "VM steps", "CPU us/poll (polls)"], rows
        )

        print(
            f"\n3. Throughput: {THROUGHPUT_JOBS:,} jobs due, SUCCEEDED at once, 16 KiB video, until all "
            f"DELIVERED (median of {THROUGHPUT_REPEATS})"
        )
        with tempfile.TemporaryDirectory(prefix="videos_", dir=folder) as videos:
            throughput = asyncio.run(measure_throughput(paths["throughput"], Path(videos)))
            assert not list(Path(videos).iterdir()), "a downloaded video was left behind"
        rows = [
            [
                str(c),
                f"{throughput[c]['wall_s']:.2f}",
                f"{THROUGHPUT_JOBS / throughput[c]['wall_s']:.0f}",
                f"{throughput[c]['cpu_s'] / THROUGHPUT_JOBS * 1e6:.0f}",
            ]
            for c in CONCURRENCIES
        ]
        first, last = CONCURRENCIES[0], CONCURRENCIES[-1]
        rows.append(
            [
                f"{last} / {first}",
                ratio(throughput[last]["wall_s"], throughput[first]["wall_s"]),
                ratio(throughput[first]["wall_s"], throughput[last]["wall_s"]),
                "",
            ]
        )
        print_table(["max_concurrency", "s", "jobs/s", "CPU us/job"], rows)

        print(
            f"\n4. poll_now on a job whose {STEP_S * 1000:.0f} ms step is running, plus one other job due now"
        )
        p = asyncio.run(measure_poll_now_mid_step(paths["poll-now"]))
        print(
            f"   loop passes while the step ran: {p['passes']:,} in {p['window_s'] * 1000:.0f} ms "
            f"(CPU {p['cpu_s'] * 1000:.0f} ms); the other due job waited {p['other_wait_s'] * 1000:.0f} ms; "
            f"re-polls of the job within 300 ms after its step: {p['repolled']}"
        )
    print(
        "\nMB = 1,048,576 bytes. RSS: growth of the process's resident size over its first start() (peak, "
        "and still held after it);\npy: Python heap under tracemalloc (misses SQLite's cache). "
        "VM steps: SQLite virtual-machine instructions (counted per 100). "
        f"Total {time.perf_counter() - begun:.0f} s."
    )


if __name__ == "__main__":
    main()
