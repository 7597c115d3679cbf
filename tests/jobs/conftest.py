"""In-memory collaborators for the jobs layer: a scripted provider and a recording notifier."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass, field

import httpx
import pytest

from bot.domain.catalogue import ModelSpec, default_catalogue
from bot.domain.models import Job, JobState, ProviderName
from bot.jobs.errors import DeliveryError
from bot.jobs.notifier import DownloadedVideo
from bot.providers.base import CancelOutcome, ProviderState, ProviderStatus, Submission, SubmitReceipt
from bot.providers.errors import ProviderError
from bot.storage.database import open_database
from bot.storage.jobs import JobStore

VIDEO_URL = "https://files.test/out/video.mp4"
VIDEO_BYTES = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 64


class ScriptedProvider:
    """A provider whose answers a test scripts: per job, a list of statuses or errors, the last repeated."""

    name = ProviderName.RUNCOMFY
    accepts_inline_images = False

    def __init__(self) -> None:
        self.submissions: list[Submission] = []
        self.submit_error: ProviderError | None = None
        self.script: list[ProviderStatus | ProviderError] = [
            ProviderStatus(ProviderState.QUEUED, queue_position=1),
            ProviderStatus(ProviderState.RUNNING, progress_percent=50.0),
            ProviderStatus(ProviderState.SUCCEEDED, video_url=VIDEO_URL, cost_usd=0.12),
        ]
        self.scripts: dict[str, list[ProviderStatus | ProviderError]] = {}
        self.status_calls: defaultdict[str, int] = defaultdict(int)
        self.cancel_outcome = CancelOutcome.CANCELLED
        self.cancelled: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.gate: asyncio.Event | None = None  # when set, status calls wait for it
        self._changed = asyncio.Condition()

    async def wait_until(self, predicate, timeout: float = 5.0) -> None:
        """Wait until `predicate()` holds, re-checked after every status call."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(predicate), timeout)

    async def _announce(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def submit(self, submission: Submission) -> SubmitReceipt:
        self.submissions.append(submission)
        if self.submit_error is not None:
            raise self.submit_error
        job_id = f"req-{len(self.submissions)}"
        self.scripts[job_id] = list(self.script)
        return SubmitReceipt(provider_job_id=job_id, request_id="http-req")

    async def status(self, provider_job_id: str, spec: ModelSpec) -> ProviderStatus:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await self._announce()
            if self.gate is not None:
                await self.gate.wait()
            self.status_calls[provider_job_id] += 1
            await self._announce()
            script = self.scripts.setdefault(provider_job_id, list(self.script))
            step = script.pop(0) if len(script) > 1 else script[0]
            if isinstance(step, ProviderError):
                raise step
            return step
        finally:
            self.in_flight -= 1

    async def cancel(self, provider_job_id: str, spec: ModelSpec) -> CancelOutcome:
        self.cancelled.append(provider_job_id)
        return self.cancel_outcome


@dataclass
class RecordingNotifier:
    """Records every call; tests await the end of a job instead of sleeping."""

    events: list[tuple[str, int, JobState]] = field(default_factory=list)
    delivered: dict[int, bytes] = field(default_factory=dict)
    last_frames: dict[int, bytes | None] = field(default_factory=dict)
    failures_before_delivery: list[DeliveryError] = field(default_factory=list)
    _ends: dict[int, asyncio.Future[Job]] = field(default_factory=dict)

    def ended(self, job_id: int) -> asyncio.Future[Job]:
        if job_id not in self._ends:
            self._ends[job_id] = asyncio.get_running_loop().create_future()
        return self._ends[job_id]

    async def job_progressed(self, job: Job) -> None:
        self.events.append(("progress", job.id, job.state))

    async def deliver_video(self, job: Job, video: DownloadedVideo) -> str:
        if self.failures_before_delivery:
            self.events.append(("delivery_failed", job.id, job.state))
            raise self.failures_before_delivery.pop(0)
        self.delivered[job.id] = video.path.read_bytes()
        self.last_frames[job.id] = video.last_frame
        self.events.append(("delivered", job.id, job.state))
        self.ended(job.id).set_result(job)
        return f"message-{job.id}"

    async def find_delivery(self, job: Job) -> str | None:
        self.events.append(("find_delivery", job.id, job.state))
        return f"message-{job.id}" if job.id in self.delivered else None

    async def video_delivered(self, job: Job) -> None:
        self.events.append(("video_delivered", job.id, job.state))

    async def job_ended(self, job: Job) -> None:
        self.events.append(("ended", job.id, job.state))
        self.ended(job.id).set_result(job)


@pytest.fixture
def catalogue():
    return default_catalogue()


@pytest.fixture
def provider():
    return ScriptedProvider()


@pytest.fixture
def notifier():
    return RecordingNotifier()


@pytest.fixture
def video_server():
    """Serves VIDEO_BYTES at VIDEO_URL through an in-memory transport; counts downloads."""
    calls: list[str] = []
    responses: dict[str, httpx.Response] = {}

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url))
        if str(request.url) in responses:
            return responses[str(request.url)]
        if str(request.url) == VIDEO_URL:
            return httpx.Response(200, content=VIDEO_BYTES, headers={"content-type": "video/mp4"})
        return httpx.Response(404)

    return calls, responses, handle


@pytest.fixture
async def http(video_server):
    _, _, handle = video_server
    async with httpx.AsyncClient(transport=httpx.MockTransport(handle)) as client:
        yield client


@pytest.fixture
async def db_path(tmp_path):
    return tmp_path / "jobs.sqlite3"


@pytest.fixture
async def store(db_path):
    conn = await open_database(db_path)
    yield JobStore(conn)
    await conn.close()
