"""JobService.start runs the whole flow: the request is stored (credits reserved) before anything is
posted, the paid submit goes out once, and a request that cannot go ahead costs nothing."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from bot.domain.catalogue import RequestedOptions
from bot.domain.models import FIRST_FRAME, JobOrigin, JobState, Requester
from bot.domain.quota import MemberLimits, ServerRules
from bot.jobs.errors import FetchError, PublishError
from bot.jobs.ports import ReservationState
from bot.jobs.quota import Member, QuotaService
from bot.jobs.service import InputFile, JobService, PostedRequest, VideoOrder
from bot.providers.errors import ProviderBalanceError
from bot.storage.quota import QuotaStore

REQUESTER = Requester(origin=JobOrigin.DISCORD, user_id=42, guild_id=1, channel_id=2)
MEMBER = Member(guild_id=1, user_id=42, channel_id=2)


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (640, 480), (10, 120, 200)).save(buffer, "PNG")
    return buffer.getvalue()


class Tracker:
    def __init__(self) -> None:
        self.tracked: list = []
        self.poked: list[int] = []

    def track(self, job) -> None:
        self.tracked.append(job)

    def poll_now(self, job_id: int) -> None:
        self.poked.append(job_id)


class Publisher:
    """Records what the front end was asked to do, and what the store held at that moment."""

    def __init__(self, store, quota=None, *, refuse_post: Exception | None = None) -> None:
        self.store, self.quota, self.refuse_post = store, quota, refuse_post
        self.calls: list[str] = []
        self.seen_at_post = None

    def check_uploads(self, uploads) -> None:
        self.calls.append("check_uploads")

    async def post_request(self, job, prepared):
        self.calls.append("post_request")
        self.seen_at_post = (
            await self.store.get(job.id),
            await self.quota.reservation(job.id) if self.quota else None,
        )
        if self.refuse_post is not None:
            raise self.refuse_post
        return PostedRequest(
            status_message_id=555, urls={FIRST_FRAME.key: "https://cdn.test/first-frame.png"}
        )

    async def open_thread(self, job) -> int:
        self.calls.append("open_thread")
        return 555


@pytest.fixture
async def quota_store(db_path):
    store = await QuotaStore.open(db_path)
    yield store
    await store.close()


@pytest.fixture
def tracker():
    return Tracker()


@pytest.fixture
def service(store, provider, catalogue, tracker, quota_store):
    quota = QuotaService(
        quota_store, member_defaults=MemberLimits(credits_per_day=100), server_defaults=ServerRules()
    )
    return JobService(
        store,
        {provider.name: provider},
        catalogue,
        tracker=tracker,
        job_timeout_s=600,
        quota=quota,
        owner="me",
    )


def order(data: bytes | None = None, *, size: int | None = None, fetched: list | None = None) -> VideoOrder:
    content = png() if data is None else data

    async def fetch(limit: int) -> bytes:
        if fetched is not None:
            fetched.append(limit)
        return content

    return VideoOrder(
        model="seedance-1.5-pro",
        options=RequestedOptions(prompt="a fox blinks"),
        inputs=(InputFile(FIRST_FRAME, len(content) if size is None else size, fetch),),
        requester=REQUESTER,
        member=MEMBER,
        reply_handle="app:token",
    )


async def test_the_request_is_stored_with_its_credits_before_anything_is_posted(
    service, store, provider, tracker, quota_store
):
    publisher = Publisher(store, quota_store)
    job = await service.start(order(), publisher)

    assert publisher.calls == ["check_uploads", "post_request", "open_thread"]
    stored, reservation = publisher.seen_at_post
    assert (stored.state, stored.submit_started_at, stored.lease_owner) == (JobState.PENDING, None, "me")
    assert reservation.state is ReservationState.RESERVED
    assert (job.state, job.status_message_id, job.thread_id) == (JobState.QUEUED, 555, 555)
    assert job.reply_handle == "app:token"
    assert job.submit_started_at is not None
    assert [t.id for t in tracker.tracked] == [job.id]
    assert tracker.tracked[0].thread_id is None  # tracked before the thread was opened
    assert provider.submissions[0].first_frame.url == "https://cdn.test/first-frame.png"


async def test_a_request_that_cannot_be_shown_ends_without_charge_and_is_never_sent(
    service, store, provider, tracker, quota_store
):
    publisher = Publisher(store, quota_store, refuse_post=PublishError("I can't post in this channel."))
    with pytest.raises(PublishError):
        await service.start(order(), publisher)
    job = await store.get(1)
    assert (job.state, job.error_code) == (JobState.FAILED, "not_started")
    assert job.announced_at is not None  # the member was answered by the error itself
    assert (await quota_store.reservation(1)).state is ReservationState.RELEASED
    assert provider.submissions == []
    assert tracker.tracked == []


async def test_a_refused_submit_is_an_ending_the_poller_announces(
    service, store, provider, tracker, quota_store
):
    provider.submit_error = ProviderBalanceError("no money", status_code=402)
    publisher = Publisher(store, quota_store)
    job = await service.start(order(), publisher)
    assert job.state is JobState.FAILED
    assert tracker.poked == [job.id] and tracker.tracked == []
    assert publisher.calls == ["check_uploads", "post_request"]  # no thread for a job that did not start
    assert (await quota_store.reservation(job.id)).state is ReservationState.RELEASED


async def test_a_file_over_the_download_limit_is_refused_before_it_is_fetched(service, store, quota_store):
    fetched: list = []
    with pytest.raises(FetchError, match=r"The image is 40.0 MB; it must be under 30.0 MB"):
        await service.start(order(size=40_000_000, fetched=fetched), Publisher(store, quota_store))
    assert fetched == []
    assert await store.get(1) is None
