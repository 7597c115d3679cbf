"""Spend controls in the job layer: audit lines once per outcome, budget alerts once per threshold, the
admission listener that feeds them."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from dataclasses import dataclass, field

import pytest

from bot.domain.catalogue import default_catalogue
from bot.domain.models import (
    Job,
    JobOrigin,
    JobState,
    ProviderName,
    Ratio,
    Requester,
    Resolution,
    VideoRequest,
)
from bot.domain.quota import MemberLimits, ServerRules, Usage
from bot.jobs.audit import Auditor, AuditOutcome, AuditPost, audit_line
from bot.jobs.quota import Admission, Member, QuotaExceededError, QuotaService
from bot.providers.base import ProviderState, ProviderStatus
from bot.storage.database import open_database
from bot.storage.jobs import NewJob
from bot.storage.quota import QuotaStore
from tests.jobs.test_poller import make_poller, queued_job

GUILD, USER, AUDIT_CHANNEL, ROLE = 1, 42, 900, 77
NOW = 1_780_000_000.0  # 2026-05-28 UTC
REQUEST = VideoRequest(
    model="seedance-1.5-pro", prompt="go", resolution=Resolution.P720, ratio=Ratio.R16_9, duration_s=4
)


def make_job(job_id: int = 7, state: JobState = JobState.QUEUED, **fields) -> Job:
    return Job(
        id=job_id,
        state=state,
        provider=ProviderName.RUNCOMFY,
        request=REQUEST,
        requester=Requester(JobOrigin.DISCORD, user_id=USER, guild_id=GUILD, channel_id=2),
        created_at=NOW,
        updated_at=NOW,
        deadline_at=NOW + 600,
        credits=8,
        **fields,
    )


class MemoryState:
    """StateStore's put_if_absent, in memory (the backends' contract tests prove the real ones)."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    async def put_if_absent(self, key: str, value: str) -> bool:
        await asyncio.sleep(0)  # a real store yields here: let a burst interleave
        if key in self.values:
            return False
        self.values[key] = value
        return True


@dataclass
class RecordingSink:
    posts: list[AuditPost] = field(default_factory=list)
    error: Exception | None = None

    async def post(self, post: AuditPost) -> None:
        if self.error is not None:
            raise self.error
        self.posts.append(post)


def auditor(sink, state=None, rules: ServerRules | None = None) -> Auditor:
    rules = rules or ServerRules(audit_channel_id=AUDIT_CHANNEL)

    async def rules_for(guild_id: int) -> ServerRules:
        assert guild_id == GUILD
        return rules

    return Auditor(
        rules_for, state or MemoryState(), sink, model_names={"seedance-1.5-pro": "Seedance 1.5 Pro"}
    )


# --- lines ------------------------------------------------------------------------------------------------


def test_a_line_names_member_model_duration_credits_and_the_reported_cost() -> None:
    job = make_job(state=JobState.DELIVERED, cost_usd=0.125, usage_tokens=108_900)
    line = audit_line(AuditOutcome.FINISHED, job, "Seedance 1.5 Pro")
    assert line == (
        f"✅ Finished · #7 · <@{USER}> · Seedance 1.5 Pro · 4 s · 720p · 8 credits · "
        "provider cost $0.1250 (108,900 tokens)"
    )
    assert "provider cost" not in audit_line(AuditOutcome.STARTED, make_job(), "Seedance 1.5 Pro")


@pytest.mark.parametrize(
    ("state", "label"),
    [
        (JobState.FAILED, "❌ Failed · "),
        (JobState.EXPIRED, "❌ Failed (expired) · "),
        (JobState.TIMED_OUT, "❌ Failed (timed out) · "),
        (JobState.UNKNOWN, "❌ Failed (outcome unknown) · "),
        (JobState.CANCELLED, "🚫 Cancelled · "),
    ],
)
async def test_endings_without_a_video_count_as_failed_or_cancelled_and_return_credits(state, label) -> None:
    sink = RecordingSink()
    await auditor(sink).job_ended(make_job(state=state, error_code="E1"))
    [post] = sink.posts
    assert post.text.startswith(label) and "8 credits (returned)" in post.text
    assert (post.channel_id, post.mention_role_id) == (AUDIT_CHANNEL, None)


async def test_no_channel_no_line_and_a_failed_post_is_swallowed(caplog) -> None:
    sink = RecordingSink()
    await auditor(sink, rules=ServerRules()).job_started(make_job())
    assert sink.posts == []
    sink.error = RuntimeError("Discord is down")
    await auditor(sink).job_started(make_job())  # does not raise
    assert "could not post job 7 started" in caplog.text


# --- budget alerts ----------------------------------------------------------------------------------------


def admission(day_before: int, cost: int = 5, rules: ServerRules | None = None, job_id: int = 1) -> Admission:
    rules = rules or ServerRules(
        credits_per_day=20, credits_per_month=1_000, audit_channel_id=AUDIT_CHANNEL, alert_role_id=ROLE
    )
    usage = Usage(now=NOW, server_credits_today=day_before, server_credits_this_month=day_before)
    return Admission(job=make_job(job_id), cost=cost, rules=rules, usage=usage)


async def test_each_threshold_alerts_once_even_across_processes_and_a_burst() -> None:
    state, sink = MemoryState(), RecordingSink()
    first, second = auditor(sink, state), auditor(sink, state)  # two processes sharing the database
    # A burst: admissions taking the day from 0 to 40 credits, spread over both processes at once.
    await asyncio.gather(
        *((first if n % 2 else second).admitted(admission(day_before=5 * n, job_id=n)) for n in range(8))
    )
    texts = sorted(post.text for post in sink.posts)
    assert len(texts) == 3, texts
    assert all(post.mention_role_id == ROLE and post.text.startswith(f"<@&{ROLE}> ") for post in sink.posts)
    assert ["50 %" in t for t in texts].count(True) == 1
    assert ["80 %" in t for t in texts].count(True) == 1
    assert ["all of its daily budget" in t for t in texts].count(True) == 1
    assert len(state.values) == 3

    # A later admission in the same day finds every alert fired, on a fresh process too.
    await auditor(sink, state).admitted(admission(day_before=40))
    assert len(sink.posts) == 3


async def test_no_alert_is_recorded_while_no_audit_channel_is_set() -> None:
    state, sink = MemoryState(), RecordingSink()
    rules = ServerRules(credits_per_day=20)
    await auditor(sink, state).admitted(admission(day_before=15, rules=rules))
    assert (sink.posts, state.values) == ([], {})
    # Once a channel is set, the thresholds already reached are reported (once).
    with_channel = dataclasses.replace(rules, audit_channel_id=AUDIT_CHANNEL)
    await auditor(sink, state).admitted(admission(day_before=15, cost=1, rules=with_channel))
    assert len(sink.posts) == 2  # 50 % and 80 % of 20 (16 credits)


# --- the admission listener -------------------------------------------------------------------------------


@pytest.fixture
async def quota_service(tmp_path):
    path = tmp_path / "bot.sqlite3"
    await (await open_database(path)).close()
    store = await QuotaStore.open(path)
    yield QuotaService(
        store,
        member_defaults=MemberLimits(credits_per_day=100, concurrent_jobs=10),
        server_defaults=ServerRules(credits_per_day=200),
    )
    await store.close()


def new_job() -> NewJob:
    return NewJob(
        provider=ProviderName.RUNCOMFY,
        request=REQUEST,
        requester=Requester(JobOrigin.DISCORD, user_id=USER, guild_id=GUILD, channel_id=2),
        deadline_at=time.time() + 600,
    )


async def test_listeners_hear_each_admission_with_the_usage_it_was_decided_on(quota_service) -> None:
    heard: list[Admission] = []

    async def listener(admitted: Admission) -> None:
        heard.append(admitted)

    async def broken(admitted: Admission) -> None:
        raise RuntimeError("a listener bug")

    quota_service.add_admission_listener(broken)  # must not fail the admission nor silence the others
    quota_service.add_admission_listener(listener)
    spec = default_catalogue().get(REQUEST.model)
    member = Member(GUILD, USER)
    first = await quota_service.admit(new_job(), member, spec)
    second = await quota_service.admit(new_job(), member, spec)

    assert [a.job.id for a in heard] == [first.id, second.id]
    assert [(a.usage.server_credits_today, a.server_credits_today) for a in heard] == [(0, 8), (8, 16)]
    assert heard[0].rules.credits_per_day == 200  # the bot's default filled in


async def test_a_refused_admission_is_not_heard_and_the_hourly_limit_refuses_the_next(quota_service) -> None:
    heard: list[Admission] = []

    async def listener(admitted: Admission) -> None:
        heard.append(admitted)

    quota_service.add_admission_listener(listener)
    await quota_service.store.set_limits(GUILD, "server", 0, MemberLimits(videos_per_hour=2), by=None)
    spec = default_catalogue().get(REQUEST.model)
    member = Member(GUILD, USER)
    await quota_service.admit(new_job(), member, spec)
    await quota_service.admit(new_job(), member, spec)
    with pytest.raises(QuotaExceededError) as refused:
        await quota_service.admit(new_job(), member, spec)
    assert "2 videos in the last hour" in refused.value.refusal.message
    with pytest.raises(QuotaExceededError):
        await quota_service.precheck(member, spec, REQUEST)  # the early check says the same
    assert len(heard) == 2


# --- the poller's hook: one line per ending, after the durable announce -----------------------------------


@dataclass
class RecordingAudit:
    ended: list[tuple[int, JobState]] = field(default_factory=list)
    _waiters: dict[int, asyncio.Future[None]] = field(default_factory=dict)

    def heard(self, job_id: int) -> asyncio.Future[None]:
        return self._waiters.setdefault(job_id, asyncio.get_running_loop().create_future())

    async def job_started(self, job: Job) -> None:
        raise AssertionError("the poller never starts jobs")

    async def job_ended(self, job: Job) -> None:
        self.ended.append((job.id, job.state))
        future = self.heard(job.id)
        if not future.done():
            future.set_result(None)


async def test_the_poller_reports_each_ending_once_even_when_driven_again(
    store, provider, catalogue, notifier, http, video_server, tmp_path
) -> None:
    audit = RecordingAudit()
    poller = make_poller(store, provider, catalogue, notifier, http, download_dir=tmp_path, audit=audit)
    await poller.start()
    try:
        delivered = await queued_job(store, catalogue, provider)
        poller.track(delivered)
        await asyncio.wait_for(audit.heard(delivered.id), 10)
        provider.script = [ProviderStatus(ProviderState.FAILED, error_code="E1", error_message="no")]
        failed = await queued_job(store, catalogue, provider)
        poller.track(failed)
        await asyncio.wait_for(audit.heard(failed.id), 10)
    finally:
        await poller.stop()

    # Another process (a restart) resumes whatever is not announced: nothing, so nothing is reported again.
    again = make_poller(store, provider, catalogue, notifier, http, download_dir=tmp_path, audit=audit)
    await again.start(take_over=True)
    for job in (delivered, failed):
        again.track(await store.get(job.id))
        assert await again._step(job.id) is None  # driving an announced job again is a no-op
    await again.stop()
    assert audit.ended == [(delivered.id, JobState.DELIVERED), (failed.id, JobState.FAILED)]
