"""One suite of scenarios, run against every provider client and that provider's loopback double.

Each client is the real one, over real sockets, against a double written from providers.md independently of
it. The scenarios are what the rest of the bot relies on whatever the provider: a job runs to a downloadable
video; every terminal state is terminal; a paid submit is sent at most once unless it provably created
nothing; reads ride out rate limits and bad gateways; provider refusals arrive as the right typed error;
cancel does what the provider can do, and no more.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import httpx
import pytest
from pydantic import SecretStr

from bot.domain.catalogue import ModelSpec, RequestedOptions, catalogue_for
from bot.domain.images import prepare_image
from bot.domain.models import FrameImage, ProviderName
from bot.jobs.download import download_video
from bot.jobs.errors import VideoDownloadError
from bot.jobs.explain import describe_failure, explain_submit_error
from bot.providers.ark import ArkProvider
from bot.providers.base import CancelOutcome, ProviderState, ProviderStatus, Submission, VideoProvider
from bot.providers.errors import (
    ProviderAuthError,
    ProviderBalanceError,
    ProviderContentRejectedError,
    ProviderError,
    ProviderInvalidRequestError,
    ProviderModelUnavailableError,
    ProviderNotFoundError,
    ProviderProtocolError,
    ProviderRateLimitError,
    SubmitOutcomeUnknownError,
)
from bot.providers.novita import NovitaProvider
from bot.providers.retry import RetryPolicy
from bot.providers.runcomfy import RunComfyProvider
from tests.doubles.ark import ArkDouble
from tests.doubles.media import make_image
from tests.doubles.novita import NovitaDouble
from tests.doubles.provider_double import Fault, Lifecycle, ProviderDouble
from tests.doubles.runcomfy import RunComfyDouble
from tests.providers.helpers import RecordingSleep

KEY = "contract-key"
IMAGE = make_image(640, 480)

ClientFactory = Callable[..., VideoProvider]


@dataclass(frozen=True)
class Kit:
    """How to pair one provider's client with its double."""

    provider: ProviderName
    double: Callable[[], ProviderDouble]  # type: ignore[type-arg]
    client: ClientFactory
    #: The error class each of the double's `fault_for` kinds must arrive as (where the provider documents
    #: no such answer, the double's nearest one and the class the client rightly gives it).
    refusals: dict[str, type[ProviderError]]

    @property
    def spec(self) -> ModelSpec:
        return catalogue_for((self.provider,)).get("seedance-1.5-pro")


_COMMON_REFUSALS: dict[str, type[ProviderError]] = {
    "auth": ProviderAuthError,
    "balance": ProviderBalanceError,
    "moderation": ProviderContentRejectedError,
    "model_unavailable": ProviderModelUnavailableError,
    "bad_request": ProviderInvalidRequestError,
}

KITS = [
    Kit(
        ProviderName.RUNCOMFY,
        lambda: RunComfyDouble(api_keys=(KEY,)),
        RunComfyProvider,
        # RunComfy documents neither a moderation answer nor "model not activated": the double sends a
        # 422 and an unknown model id (400001), both refusals of the request's contents.
        {
            **_COMMON_REFUSALS,
            "moderation": ProviderInvalidRequestError,
            "model_unavailable": ProviderInvalidRequestError,
        },
    ),
    Kit(ProviderName.NOVITA, lambda: NovitaDouble(api_keys=(KEY,)), NovitaProvider, dict(_COMMON_REFUSALS)),
    Kit(ProviderName.ARK, lambda: ArkDouble(api_keys=(KEY,)), ArkProvider, dict(_COMMON_REFUSALS)),
]


@dataclass
class Pair:
    """A started double, its client, and what the client slept (retries never really wait here)."""

    kit: Kit
    double: ProviderDouble  # type: ignore[type-arg]
    client: VideoProvider
    http: httpx.AsyncClient
    slept: list[float]

    def submission(self) -> Submission:
        prepared = prepare_image(IMAGE)
        url = self.double.host_file(IMAGE, "image/png", "frame.png")
        frame = FrameImage(data=prepared.data, info=prepared.info, url=url)
        spec = self.kit.spec
        request = catalogue_for((self.kit.provider,)).validate(
            spec.key, RequestedOptions(prompt="waves roll in")
        )
        return Submission(spec=spec, request=request, first_frame=frame)

    async def submit(self) -> str:
        return (await self.client.submit(self.submission())).provider_job_id

    async def status(self, job_id: str) -> ProviderStatus:
        return await self.client.status(job_id, self.kit.spec)

    async def run_to_end(self, job_id: str, *, limit: int = 20) -> list[ProviderStatus]:
        """Poll until a terminal state, as the poller does; every observation, in order."""
        seen = []
        for _ in range(limit):
            seen.append(await self.status(job_id))
            if seen[-1].state.is_terminal:
                return seen
        raise AssertionError(f"no terminal state after {limit} polls: {[s.state for s in seen]}")


@pytest.fixture(params=KITS, ids=[kit.provider.value for kit in KITS])
async def pair(request) -> AsyncIterator[Pair]:
    kit: Kit = request.param
    sleep = RecordingSleep()
    async with kit.double() as double, httpx.AsyncClient(timeout=5) as http:
        client = kit.client(
            http, base_url=double.base_url, api_key=SecretStr(KEY), sleep=sleep, retry=RetryPolicy()
        )
        yield Pair(kit, double, client, http, sleep.delays)


def states(observations: list[ProviderStatus]) -> list[ProviderState]:
    return [observation.state for observation in observations]


# --- A job's life ---------------------------------------------------------------------------------------


async def test_a_job_runs_through_queue_and_generation_to_a_downloadable_video(pair, tmp_path):
    pair.double.script(Lifecycle.queued(2).running(2).completes())
    job_id = await pair.submit()
    seen = await pair.run_to_end(job_id)
    ordered = list(dict.fromkeys(states(seen)))
    assert ordered == [ProviderState.QUEUED, ProviderState.RUNNING, ProviderState.SUCCEEDED]
    assert seen[-1].video_url == pair.double.video_url(job_id)
    video = await download_video(pair.http, seen[-1].video_url, max_bytes=10_000_000, directory=tmp_path)
    assert video.path.read_bytes() == pair.double.video
    assert pair.double.submit_count == 1


async def test_a_failed_job_is_terminal_and_keeps_the_providers_reason(pair):
    pair.double.script(
        Lifecycle.running().fails("The output video was flagged.", code="OutputVideoSensitiveContentDetected")
    )
    seen = await pair.run_to_end(await pair.submit())
    assert seen[-1].state is ProviderState.FAILED
    assert "flagged" in (seen[-1].error_message or "")


async def test_an_expired_job_is_terminal(pair):
    pair.double.script(Lifecycle.queued(1).expires())
    seen = await pair.run_to_end(await pair.submit())
    assert seen[-1].state is ProviderState.EXPIRED


async def test_a_job_that_succeeds_without_a_video_is_a_failure_not_a_crash(pair):
    pair.double.script(Lifecycle.running().completes(output=None))
    seen = await pair.run_to_end(await pair.submit())
    assert seen[-1].state is ProviderState.FAILED
    assert seen[-1].error_code == "no_output"


async def test_a_status_word_no_document_knows_is_a_protocol_error_not_a_guess(pair):
    pair.double.script(Lifecycle.step("paused_for_maintenance"))
    job_id = await pair.submit()
    with pytest.raises(ProviderProtocolError, match="paused_for_maintenance"):
        await pair.status(job_id)


async def test_an_unknown_job_is_not_found(pair):
    with pytest.raises(ProviderNotFoundError):
        await pair.status("no-such-job")


async def test_an_expired_output_link_fails_the_download_for_good(pair, tmp_path):
    pair.double.script(Lifecycle.quick())
    job_id = await pair.submit()
    url = (await pair.run_to_end(job_id))[-1].video_url
    pair.double.expire_outputs(job_id)
    with pytest.raises(VideoDownloadError) as caught:
        await download_video(pair.http, url, max_bytes=10_000_000, directory=tmp_path)
    assert caught.value.permanent


# --- The paid submit ------------------------------------------------------------------------------------


async def test_a_rate_limited_submit_waits_as_told_and_creates_one_job(pair):
    pair.double.inject("submit", pair.double.fault_for("rate_limit"))
    job_id = await pair.submit()
    assert job_id in pair.double.jobs
    assert pair.double.submit_count == 1
    assert len(pair.double.requests_to("submit")) == 2
    assert pair.slept == [2.0]  # the Retry-After


@pytest.mark.parametrize(
    "fault",
    [Fault.drop(), Fault.html(502), Fault.malformed(), Fault.error(503, message="upstream timeout")],
    ids=["dropped", "bad-gateway-page", "cut-json", "503"],
)
async def test_a_submit_that_may_have_arrived_is_never_sent_again(pair, fault):
    pair.double.inject("submit", fault)
    with pytest.raises(SubmitOutcomeUnknownError):
        await pair.submit()
    assert len(pair.double.requests_to("submit")) == 1


@pytest.mark.parametrize("kind", ["auth", "balance", "moderation", "model_unavailable", "bad_request"])
async def test_provider_refusals_arrive_as_the_right_error_and_start_nothing(pair, kind):
    pair.double.inject("submit", pair.double.fault_for(kind))
    with pytest.raises(ProviderError) as caught:
        await pair.submit()
    expected = pair.kit.refusals[kind]
    assert isinstance(caught.value, expected), (
        f"{kind}: {type(caught.value).__name__}, not {expected.__name__}"
    )
    assert not isinstance(caught.value, SubmitOutcomeUnknownError)
    assert caught.value.request_id  # kept for a support ticket
    assert len(pair.double.requests_to("submit")) == 1


async def test_a_wrong_key_is_an_auth_error_and_the_key_is_not_repeated(pair):
    wrong = pair.kit.client(pair.http, base_url=pair.double.base_url, api_key=SecretStr("wrong-key-123"))
    with pytest.raises(ProviderAuthError) as caught:
        await wrong.submit(pair.submission())
    assert "wrong-key-123" not in str(caught.value)
    assert pair.double.submit_count == 0


async def test_a_submit_refused_again_and_again_for_rate_ends_as_rate_limited(pair):
    pair.double.inject("submit", pair.double.fault_for("rate_limit"), times=50)
    with pytest.raises(ProviderRateLimitError):
        await pair.submit()
    assert pair.double.submit_count == 0
    assert len(pair.double.requests_to("submit")) == RetryPolicy().max_attempts


# --- Reads ------------------------------------------------------------------------------------------------


async def test_status_reads_ride_out_rate_limits_bad_gateways_and_cut_answers(pair):
    pair.double.script(Lifecycle.queued(1).completes())
    job_id = await pair.submit()
    pair.double.inject("status", Fault.rate_limited("1"))
    pair.double.inject("status", Fault.html(502))
    pair.double.inject("status", Fault.malformed())
    first = await pair.status(job_id)
    assert first.state in (ProviderState.QUEUED, ProviderState.SUCCEEDED)
    assert 1.0 in pair.slept  # the Retry-After was honoured
    assert len(pair.slept) == 3


# --- Cancel -----------------------------------------------------------------------------------------------


async def test_a_queued_job_is_cancelled_where_the_provider_can_cancel(pair):
    pair.double.script(Lifecycle.queued(1, hold=True).completes())
    job_id = await pair.submit()
    assert (await pair.status(job_id)).state is ProviderState.QUEUED
    outcome = await pair.client.cancel(job_id, pair.kit.spec)
    if pair.kit.provider is ProviderName.NOVITA:
        # Novita documents no cancel: the client says so and sends nothing.
        assert outcome is CancelOutcome.UNSUPPORTED
        assert pair.double.requests_to("submit") and not pair.double.jobs[job_id].cancelled
        return
    assert outcome is CancelOutcome.CANCELLED
    assert (await pair.status(job_id)).state is ProviderState.CANCELLED
    # Asking again is harmless.
    assert await pair.client.cancel(job_id, pair.kit.spec) in (
        CancelOutcome.CANCELLED,
        CancelOutcome.NOT_CANCELLABLE,
    )


async def test_a_running_job_is_not_cancellable_and_still_delivers(pair):
    pair.double.script(Lifecycle.running(1, hold=True).completes())
    job_id = await pair.submit()
    await pair.status(job_id)
    assert (await pair.status(job_id)).state is ProviderState.RUNNING
    outcome = await pair.client.cancel(job_id, pair.kit.spec)
    assert outcome in (CancelOutcome.NOT_CANCELLABLE, CancelOutcome.UNSUPPORTED)
    pair.double.release(job_id)
    seen = await pair.run_to_end(job_id)
    assert seen[-1].state is ProviderState.SUCCEEDED


async def test_cancelling_a_finished_job_never_loses_its_video(pair):
    pair.double.script(Lifecycle.quick())
    job_id = await pair.submit()
    done = (await pair.run_to_end(job_id))[-1]
    assert await pair.client.cancel(job_id, pair.kit.spec) in (
        CancelOutcome.NOT_CANCELLABLE,
        CancelOutcome.UNSUPPORTED,
    )
    # ModelArk's DELETE would have erased the record of a finished task: it is still there.
    again = await pair.status(job_id)
    assert (again.state, again.video_url) == (ProviderState.SUCCEEDED, done.video_url)


# --- What the server says reaches members only as a summary -------------------------------------------------

SECRET = "sk-secret-4242"
HOSTILE_TEXT = (
    f"Bad request. Authorization: Bearer {SECRET} <html><body><h1>400</h1><script>x()</script></body></html>"
)


def assert_fit_for_a_member(text: str) -> None:
    assert SECRET not in text
    assert "Bearer" not in text
    assert "Authorization" not in text
    assert "<html" not in text.lower()
    assert "{" not in text


@pytest.mark.parametrize(
    "fault",
    [
        Fault.error(400, message=HOSTILE_TEXT),
        Fault.raw(400, HOSTILE_TEXT, content_type="text/html"),
        Fault.raw(400, '{"debug": {"headers": {"Authorization": "Bearer ' + SECRET + '"}}}'),
    ],
    ids=["error-body", "html-page", "json-dump"],
)
async def test_a_refusal_echoing_a_token_and_html_is_summarised_for_the_member_and_scrubbed_in_logs(
    pair, fault
):
    pair.double.inject("submit", fault)
    with pytest.raises(ProviderError) as caught:
        await pair.submit()

    member_text = explain_submit_error(caught.value).message
    assert_fit_for_a_member(member_text)
    assert_fit_for_a_member(caught.value.message)
    assert "HTTP 400" in member_text  # the summary still says what happened
    logged = str(caught.value)  # what the bot's log gets: the server's words, bounded and scrubbed
    assert SECRET not in logged
    assert "[redacted]" in logged
    assert len(logged) < 600


async def test_a_failed_jobs_reason_echoing_a_token_and_html_is_summarised_for_the_member(pair):
    pair.double.script(Lifecycle.running().fails(HOSTILE_TEXT, code="E_UPSTREAM"))
    seen = await pair.run_to_end(await pair.submit())
    assert seen[-1].state is ProviderState.FAILED

    member_text = describe_failure(seen[-1].error_code, seen[-1].error_message)

    assert_fit_for_a_member(member_text)
    assert "details are in the bot's log" in member_text


async def test_a_plain_refusal_still_reaches_the_member_in_the_providers_words(pair):
    pair.double.inject("submit", Fault.error(400, message="duration must be between 4 and 12 seconds"))
    with pytest.raises(ProviderError) as caught:
        await pair.submit()

    assert "duration must be between 4 and 12 seconds" in explain_submit_error(caught.value).message
