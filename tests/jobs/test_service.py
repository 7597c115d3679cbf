"""JobService: validation before anything is stored, one paid submit, and honest outcomes."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from bot.domain.catalogue import RequestedOptions
from bot.domain.errors import InvalidImageError, OptionValueError
from bot.domain.models import JobOrigin, JobState, Requester
from bot.jobs.errors import (
    ImageNotPublishedError,
    JobNotCancellableError,
    JobNotFoundError,
    MissingFrameError,
)
from bot.jobs.service import JobService
from bot.providers.base import CancelOutcome
from bot.providers.errors import (
    ProviderBalanceError,
    ProviderRateLimitError,
    ProviderTransportError,
    SubmitOutcomeUnknownError,
)

REQUESTER = Requester(origin=JobOrigin.DISCORD, user_id=42, guild_id=1, channel_id=2)
IMAGE_URL = "https://cdn.example.test/frame.png"


def png(width: int = 640, height: int = 480) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (10, 120, 200)).save(buffer, "PNG")
    return buffer.getvalue()


class Tracker:
    def __init__(self) -> None:
        self.tracked: list[int] = []
        self.poked: list[int] = []

    def track(self, job) -> None:
        self.tracked.append(job.id)

    def poll_now(self, job_id) -> None:
        self.poked.append(job_id)


@pytest.fixture
def tracker():
    return Tracker()


@pytest.fixture
def service(store, provider, catalogue, tracker):
    return JobService(store, {provider.name: provider}, catalogue, tracker=tracker, job_timeout_s=600)


async def count_jobs(store) -> int:
    return (await store._db.fetch_one("SELECT COUNT(*) FROM jobs"))[0]


async def test_a_valid_request_is_stored_submitted_once_and_tracked(service, store, provider, tracker):
    prepared = await service.prepare(
        "seedance-1.5-pro", RequestedOptions(prompt="a fox blinks", duration_s=6), png()
    )
    job = await service.submit(prepared, REQUESTER, first_frame_url=IMAGE_URL)
    assert job.state is JobState.QUEUED
    assert job.provider_job_id == "req-1"
    assert job.first_frame is not None and (job.first_frame.width, job.first_frame.height) == (640, 480)
    assert job.deadline_at == pytest.approx(job.created_at + 600)
    assert len(provider.submissions) == 1
    submission = provider.submissions[0]
    assert submission.first_frame.url == IMAGE_URL
    assert submission.request.duration_s == 6
    assert tracker.tracked == [job.id]


async def test_bad_options_are_refused_before_the_image_is_even_read(service, store, provider):
    with pytest.raises(OptionValueError):
        await service.prepare(
            "seedance-1.0-pro", RequestedOptions(prompt="x", duration_s=13), b"not an image"
        )
    assert await count_jobs(store) == 0
    assert provider.submissions == []


async def test_a_bad_image_is_refused_and_nothing_is_stored_or_sent(service, store, provider):
    with pytest.raises(InvalidImageError) as caught:
        await service.prepare(None, RequestedOptions(prompt="x"), png(200, 600))
    assert "200" in caught.value.message
    assert await count_jobs(store) == 0
    assert provider.submissions == []


async def test_a_missing_first_frame_is_refused_for_image_to_video_models(service):
    with pytest.raises(MissingFrameError, match="Seedance 1.5 Pro needs a first-frame image"):
        await service.prepare("seedance-1.5-pro", RequestedOptions(prompt="x"), None)


async def test_a_url_only_provider_without_a_url_is_refused_before_storing(service, store, provider):
    prepared = await service.prepare(None, RequestedOptions(prompt="x"), png())
    with pytest.raises(ImageNotPublishedError, match="only accepts images by public URL"):
        await service.submit(prepared, REQUESTER)
    assert await count_jobs(store) == 0


@pytest.mark.parametrize(
    ("error", "state", "code"),
    [
        (SubmitOutcomeUnknownError("read timeout"), JobState.UNKNOWN, "submit_unknown"),
        (ProviderBalanceError("no credit", status_code=402), JobState.FAILED, "provider_balance"),
        (ProviderRateLimitError("busy", status_code=429), JobState.FAILED, "provider_busy"),
        (ProviderTransportError("refused", reached_server=False), JobState.FAILED, "provider_unavailable"),
    ],
)
async def test_a_submit_that_does_not_start_a_job_is_an_outcome_not_a_crash(
    service, provider, tracker, error, state, code
):
    provider.submit_error = error
    prepared = await service.prepare(None, RequestedOptions(prompt="x"), png())
    job = await service.submit(prepared, REQUESTER, first_frame_url=IMAGE_URL)
    assert job.state is state
    assert job.error_code == code
    assert job.error_message
    assert len(provider.submissions) == 1  # never resent
    assert tracker.tracked == []


async def test_cancel_a_queued_job(service, provider):
    prepared = await service.prepare(None, RequestedOptions(prompt="x"), png())
    job = await service.submit(prepared, REQUESTER, first_frame_url=IMAGE_URL)
    cancelled = await service.cancel(job.id, user_id=42)
    assert cancelled.state is JobState.CANCELLED
    assert provider.cancelled == ["req-1"]
    with pytest.raises(JobNotCancellableError, match="already cancelled"):
        await service.cancel(job.id, user_id=42)


async def test_a_running_job_is_reported_as_not_cancellable(service, provider, store):
    provider.cancel_outcome = CancelOutcome.NOT_CANCELLABLE
    prepared = await service.prepare(None, RequestedOptions(prompt="x"), png())
    job = await service.submit(prepared, REQUESTER, first_frame_url=IMAGE_URL)
    with pytest.raises(JobNotCancellableError, match="cannot stop it now"):
        await service.cancel(job.id, user_id=42)
    assert (await store.get(job.id)).state is JobState.QUEUED


async def test_members_cannot_see_or_cancel_each_others_jobs(service, provider):
    prepared = await service.prepare(None, RequestedOptions(prompt="x"), png())
    job = await service.submit(prepared, REQUESTER, first_frame_url=IMAGE_URL)
    with pytest.raises(JobNotFoundError, match=f"no job #{job.id}"):
        await service.cancel(job.id, user_id=99)
    assert provider.cancelled == []


# --- Reference media, flex jobs, providers without cancel -------------------------------------------------


def wav(seconds: float) -> bytes:
    from tests.doubles.media import make_wav

    return make_wav(seconds)


async def test_reference_media_is_validated_and_submitted_with_its_urls(service, provider):
    from tests.doubles.media import make_mp4

    prepared = await service.prepare(
        "seedance-2.0-pro",
        RequestedOptions(prompt="the dancer from image 1 moves to audio 1"),
        None,
        reference_images=[png(), png(800, 600)],
        reference_videos=[make_mp4(3.0)],
        reference_audios=[wav(4.0)],
    )
    assert prepared.request.reference_images == 2
    assert [upload.label for upload in prepared.uploads()] == ["image1", "image2", "video1", "audio1"]
    urls = {upload.label: f"https://cdn.example.test/{upload.label}" for upload in prepared.uploads()}
    job = await service.submit(prepared, REQUESTER, published=urls)
    assert job.state is JobState.QUEUED
    references = provider.submissions[0].references
    assert [image.url for image in references.images] == [urls["image1"], urls["image2"]]
    assert references.videos[0].url == urls["video1"]
    assert references.audios[0].info.duration_s == pytest.approx(4.0, abs=0.05)
    assert job.request.options_summary()["references"] == "2 images, 1 video, 1 audio clip"


async def test_a_reference_clip_is_judged_by_what_it_holds(service, store):
    from bot.domain.errors import InvalidMediaError

    with pytest.raises(InvalidMediaError, match="Reference audio clip 1 is 1.0 s long"):
        await service.prepare(
            "seedance-2.0-pro", RequestedOptions(prompt="x"), None, reference_audios=[wav(1.0)]
        )
    with pytest.raises(OptionValueError, match="at most 3 reference audio clips"):
        await service.prepare(
            "seedance-2.0-pro", RequestedOptions(prompt="x"), None, reference_audios=[wav(3.0)] * 4
        )
    assert await count_jobs(store) == 0


async def test_a_reference_without_a_url_is_refused_before_anything_is_stored(service, store):
    prepared = await service.prepare(
        "seedance-2.0-pro", RequestedOptions(prompt="x"), None, reference_audios=[wav(3.0)]
    )
    with pytest.raises(ImageNotPublishedError, match="reference audio clip 1 has none"):
        await service.submit(prepared, REQUESTER)
    assert await count_jobs(store) == 0


async def test_a_flex_job_is_given_as_long_as_the_provider_gives_it(store, catalogue, tracker):
    from bot.domain.catalogue import catalogue_for
    from bot.domain.models import ProviderName
    from bot.jobs.service import FLEX_GRACE_S
    from tests.jobs.conftest import ScriptedProvider

    novita = ScriptedProvider()
    novita.name = ProviderName.NOVITA
    novita.accepts_inline_images = True
    service = JobService(
        store,
        {ProviderName.NOVITA: novita},
        catalogue_for((ProviderName.NOVITA,)),
        tracker=tracker,
        job_timeout_s=600,
    )
    flex = await service.prepare(
        None, RequestedOptions(prompt="x", service_tier="flex", expires_after_s=7200), png()
    )
    job = await service.submit(flex, REQUESTER)
    assert job.deadline_at - job.created_at == pytest.approx(7200 + FLEX_GRACE_S)
    fast = await service.prepare(None, RequestedOptions(prompt="x"), png())
    job = await service.submit(fast, REQUESTER)
    assert job.deadline_at - job.created_at == pytest.approx(600)

    novita.cancel_outcome = CancelOutcome.UNSUPPORTED
    with pytest.raises(JobNotCancellableError, match="novita, which offers no way to cancel"):
        await service.cancel(job.id, user_id=42)
    assert (await store.get(job.id)).state is JobState.QUEUED
