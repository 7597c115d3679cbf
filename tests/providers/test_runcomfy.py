"""The RunComfy client against the loopback RunComfy double, plus its pure body and error rules.

The double knows the API only from the seeds, so a submit it accepts is one the documented API accepts:
these tests are the contract between the bot's catalogue, its client and RunComfy.
"""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from bot.domain.catalogue import ModelSpec, RequestedOptions, catalogue_for, validate_options
from bot.domain.media import MediaKind
from bot.domain.models import FrameImage, ProviderName, Ratio, Resolution, VideoRequest
from bot.providers.base import CancelOutcome, ProviderState, ProviderStatus, References, Submission
from bot.providers.errors import (
    ProviderAuthError,
    ProviderBalanceError,
    ProviderError,
    ProviderInvalidRequestError,
    ProviderNotFoundError,
    ProviderPermissionError,
    ProviderProtocolError,
    ProviderRateLimitError,
    ProviderServerError,
    ProviderTransportError,
    SubmitOutcomeUnknownError,
)
from bot.providers.retry import RetryPolicy
from bot.providers.runcomfy import (
    ModelFamily,
    RunComfyProvider,
    build_submit_body,
    error_from_response,
    model_family,
)
from tests.doubles.runcomfy import Fault, Lifecycle, RunComfyDouble
from tests.providers.helpers import RecordingSleep, clip, frame, make_client, make_submission, png

KEY = "test-key-5f1c9a7e"
OTHER_KEY = "other-key-03b2d8"
CATALOGUE = catalogue_for([ProviderName.RUNCOMFY])
PROMPT = "The cat slowly turns its head towards the window"
PUBLIC_URL = "https://cdn.example.com/frame.png"


class RefuseConnections(httpx.AsyncBaseTransport):
    """A transport whose first `refusals` connections are refused, as by a server not yet listening."""

    def __init__(self, refusals: int) -> None:
        self.refusals = refusals
        self._inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.refusals > 0:
            self.refusals -= 1
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


@pytest.fixture
async def double() -> AsyncIterator[RunComfyDouble]:
    async with RunComfyDouble(api_keys=(KEY, OTHER_KEY)) as running:
        yield running


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5.0) as client:
        yield client


def make_provider(
    http: httpx.AsyncClient, base_url: str, sleep: RecordingSleep, *, key: str = KEY, **options: Any
) -> RunComfyProvider:
    return make_client(RunComfyProvider, http, sleep, base_url=base_url, key=key, **options)


@pytest.fixture
def provider(http: httpx.AsyncClient, double: RunComfyDouble, sleep: RecordingSleep) -> RunComfyProvider:
    return make_provider(http, double.base_url, sleep)


def hosted_frame(double: RunComfyDouble, width: int = 512, height: int = 512) -> FrameImage:
    data = png(width=width, height=height)
    url = double.host_file(data, "image/png", "frame.png")
    return frame(data, url=url, width=width, height=height)


def frame_at(url: str | None) -> FrameImage:
    return frame(url=url, width=512, height=512)


def submission_for(model_key: str, frame: FrameImage | None, **options: Any) -> Submission:
    return make_submission(CATALOGUE.get(model_key), PROMPT, frame, **options)


async def submit_default(provider: RunComfyProvider, double: RunComfyDouble) -> tuple[str, ModelSpec]:
    submission = submission_for("seedance-1.5-pro", hosted_frame(double))
    receipt = await provider.submit(submission)
    return receipt.provider_job_id, submission.spec


# --- The body per model (pure) -----------------------------------------------------------------------------


def test_body_for_seedance_1_0_pro_has_first_frame_ratio_and_no_extras() -> None:
    submission = submission_for(
        "seedance-1.0-pro", frame_at(PUBLIC_URL), resolution="720p", ratio="16:9", duration_s=2
    )
    assert build_submit_body(submission) == {
        "prompt": PROMPT,
        "first_frame_image_url": PUBLIC_URL,
        "resolution": "720p",
        "ratio": "16:9",
        "duration": 2,
    }


def test_body_for_seedance_1_5_pro_adds_audio_and_fixed_camera() -> None:
    submission = submission_for(
        "seedance-1.5-pro", frame_at(PUBLIC_URL), duration_s=12, generate_audio=False, camera_fixed=False
    )
    assert build_submit_body(submission) == {
        "prompt": PROMPT,
        "first_frame_image_url": PUBLIC_URL,
        "resolution": "480p",
        "ratio": "adaptive",
        "duration": 12,
        "generate_audio": False,
        "camera_fixed": False,
    }


def test_body_for_seedance_2_0_pro_uses_aspect_ratio_and_an_image_array() -> None:
    submission = submission_for("seedance-2.0-pro", frame_at(PUBLIC_URL), ratio="9:16", seed=42)
    assert build_submit_body(submission) == {
        "prompt": PROMPT,
        "resolution": "720p",
        "aspect_ratio": "9:16",
        "duration": 5,
        "generate_audio": True,
        "seed": 42,
        "images": [PUBLIC_URL],
    }


@pytest.mark.parametrize(("web_search", "tools"), [(True, True), (False, None), (None, None)])
def test_seedance_2_0_asks_for_web_search_with_tools_true_only_when_the_member_did(
    web_search: bool | None, tools: bool | None
) -> None:
    body = build_submit_body(submission_for("seedance-2.0-pro", None, web_search=web_search))
    # Seed 003: `tools` is a boolean defaulting to false, so "off" is left to the default.
    assert body.get("tools") is tools


async def test_runcomfy_takes_the_web_search_request_and_starts_the_job(
    provider: RunComfyProvider, double: RunComfyDouble
) -> None:
    receipt = await provider.submit(submission_for("seedance-2.0-pro", hosted_frame(double), web_search=True))
    assert double.jobs[receipt.provider_job_id].body["tools"] is True


def test_body_for_seedance_2_0_pro_honours_the_configured_image_field_and_omits_absent_options() -> None:
    with_frame = submission_for("seedance-2.0-pro", frame_at(PUBLIC_URL))
    body = build_submit_body(with_frame, v2_image_field="image_url")
    assert body["image_url"] == [PUBLIC_URL]
    assert "images" not in body
    assert "seed" not in body

    text_only = build_submit_body(submission_for("seedance-2.0-pro", None))
    assert set(text_only) == {"prompt", "resolution", "aspect_ratio", "duration", "generate_audio"}


@pytest.mark.parametrize(
    ("submission", "message"),
    [
        (submission_for("seedance-1.5-pro", frame_at(None)), "public URL"),
        (submission_for("seedance-2.0-pro", frame_at(None)), "public URL"),
        (submission_for("seedance-1.0-pro", None), "needs a first frame"),
        (
            replace(
                submission_for("seedance-1.5-pro", frame_at(PUBLIC_URL)), last_frame=frame_at(PUBLIC_URL)
            ),
            "last frame",
        ),
    ],
    ids=["1.5 without url", "2.0 without url", "1.0 without frame", "last frame"],
)
def test_a_submission_runcomfy_cannot_take_is_refused_before_sending(
    submission: Submission, message: str
) -> None:
    with pytest.raises(ProviderInvalidRequestError, match=message):
        build_submit_body(submission)


def test_an_option_the_model_lacks_is_refused_rather_than_dropped() -> None:
    spec = CATALOGUE.get("seedance-1.0-pro")
    request = VideoRequest(
        model=spec.key,
        prompt=PROMPT,
        resolution=Resolution.P480,
        ratio=Ratio.ADAPTIVE,
        duration_s=5,
        generate_audio=True,
    )
    with pytest.raises(ProviderInvalidRequestError, match="generate_audio"):
        build_submit_body(Submission(spec=spec, request=request, first_frame=frame_at(PUBLIC_URL)))


@pytest.mark.parametrize(
    ("model_id", "family"),
    [
        ("bytedance/seedance-1-0/pro/image-to-video", ModelFamily.SEEDANCE_1_0_PRO_I2V),
        ("bytedance/seedance-v1.5-pro/image-to-video", ModelFamily.SEEDANCE_1_5_PRO_I2V),
        ("bytedance/seedance-2.0/pro", ModelFamily.SEEDANCE_2_0_PRO),
        ("bytedance/seedance-v2/pro", ModelFamily.SEEDANCE_2_0_PRO),
    ],
)
def test_model_family_follows_the_model_id_spellings(model_id: str, family: ModelFamily) -> None:
    spec = replace(CATALOGUE.get("seedance-1.0-pro"), provider_model_id=model_id, key="custom")
    assert model_family(spec) is family


def test_a_model_of_unknown_shape_is_refused() -> None:
    spec = replace(CATALOGUE.get("seedance-1.0-pro"), provider_model_id="acme/hyper-video", key="hyper")
    with pytest.raises(ProviderInvalidRequestError, match="input schema"):
        model_family(spec)


# --- Error mapping (pure) ----------------------------------------------------------------------------------


def error_body(code: int | str | None, message: str = "nope") -> dict[str, object]:
    return {"error_message": message} if code is None else {"error_code": code, "error_message": message}


ERROR_CASES: list[tuple[str, int, object, type[ProviderError], str | None]] = [
    ("bad model id", 400, error_body(400001), ProviderInvalidRequestError, "400001"),
    ("balance", 402, error_body(400002), ProviderBalanceError, "400002"),
    ("bad token", 401, error_body(400004), ProviderAuthError, "400004"),
    ("someone else's request", 403, error_body(403001), ProviderPermissionError, "403001"),
    ("unknown request", 404, error_body(404001), ProviderNotFoundError, "404001"),
    ("code as a string", 404, error_body("404001"), ProviderNotFoundError, "404001"),
    ("code wins over status", 500, error_body(400002), ProviderBalanceError, "400002"),
    ("HTTP 200 with a code", 200, error_body(400002), ProviderBalanceError, "400002"),
    ("HTTP 200, unknown code", 200, error_body(999999), ProviderError, "999999"),
    ("unknown code, 5xx", 503, error_body(500001), ProviderServerError, "500001"),
    ("401 without code", 401, error_body(None), ProviderAuthError, None),
    ("403 without code", 403, error_body(None), ProviderAuthError, None),
    ("402 without code", 402, error_body(None), ProviderBalanceError, None),
    ("404 without code", 404, error_body(None), ProviderNotFoundError, None),
    ("400 without code", 400, error_body(None), ProviderInvalidRequestError, None),
    ("422 without code", 422, {"detail": "duration too long"}, ProviderInvalidRequestError, None),
    ("429", 429, error_body(None), ProviderRateLimitError, None),
    ("500 JSON", 500, error_body(None), ProviderServerError, None),
    ("502 HTML page", 502, None, ProviderServerError, None),
    ("504 empty", 504, None, ProviderServerError, None),
    ("418", 418, None, ProviderError, None),
    ("302", 302, None, ProviderError, None),
]


@pytest.mark.parametrize(
    ("status", "payload", "expected_type", "code"),
    [case[1:] for case in ERROR_CASES],
    ids=[case[0] for case in ERROR_CASES],
)
def test_error_answers_map_to_typed_errors_keeping_their_details(
    status: int, payload: object, expected_type: type[ProviderError], code: str | None
) -> None:
    error = error_from_response(status, payload, request_id="req-9", retry_after_s=4.0)
    assert type(error) is expected_type
    assert error is not None
    assert (error.status_code, error.provider_code, error.request_id) == (status, code, "req-9")
    assert error.retry_after_s == 4.0


@pytest.mark.parametrize("payload", [{"request_id": "abc"}, {"error_code": None, "request_id": "abc"}, None])
def test_a_2xx_without_an_error_code_is_a_success(payload: object) -> None:
    assert error_from_response(200, payload) is None


def test_error_messages_come_from_the_server_or_name_the_status() -> None:
    with_message = error_from_response(400, error_body(400001, "Model not found: x/y"))
    html_page = error_from_response(502, None)
    assert with_message is not None and "Model not found: x/y" in str(with_message)
    assert html_page is not None and "HTTP 502" in str(html_page)


def test_secrets_echoed_by_the_server_are_scrubbed() -> None:
    error = error_from_response(
        401,
        error_body(400004, f"Invalid token Bearer {KEY}"),
        redact=lambda text: text.replace(KEY, "[redacted]"),
    )
    assert error is not None
    assert KEY not in str(error)
    assert "[redacted]" in str(error)


# --- The contract: what the client sends, the double (the seeds) accepts ----------------------------------


def catalogue_edge_options() -> list[tuple[str, dict[str, Any]]]:
    """Every resolution and ratio of every model, at both ends of its duration range."""
    cases: list[tuple[str, dict[str, Any]]] = []
    for spec in CATALOGUE:
        low, high = spec.duration_range_s
        for index, ratio in enumerate(spec.ratios):
            resolution = spec.resolutions[index % len(spec.resolutions)]
            options: dict[str, Any] = {
                "resolution": resolution.value,
                "ratio": ratio.value,
                "duration_s": low if index % 2 else high,
            }
            if spec.supports_audio:
                options["generate_audio"] = bool(index % 2)
            if spec.supports_camera_fixed:
                options["camera_fixed"] = not index % 2
            if spec.supports_seed:
                options["seed"] = 4_294_967_295 if index % 2 else -1
            if spec.supports_web_search:
                options["web_search"] = bool(index % 2)
            cases.append((spec.key, options))
        for resolution in spec.resolutions:
            cases.append((spec.key, {"resolution": resolution.value, "duration_s": low}))
    return cases


async def test_the_double_accepts_every_option_the_catalogue_offers(
    provider: RunComfyProvider, double: RunComfyDouble
) -> None:
    frame = hosted_frame(double)
    for model_key, options in catalogue_edge_options():
        submission = submission_for(model_key, frame, **options)
        receipt = await provider.submit(submission)
        job = double.jobs[receipt.provider_job_id]
        assert job.model_id == submission.spec.provider_model_id
        assert job.body == build_submit_body(submission)
    assert double.submit_count == len(catalogue_edge_options())


@pytest.mark.parametrize("model_key", ["seedance-1.0-pro", "seedance-1.5-pro", "seedance-2.0-pro"])
async def test_submit_posts_to_the_model_path_with_the_key_and_returns_the_request_id(
    provider: RunComfyProvider, double: RunComfyDouble, model_key: str
) -> None:
    submission = submission_for(model_key, hosted_frame(double))
    receipt = await provider.submit(submission)

    [recorded] = double.requests_to("submit")
    assert recorded.path == f"/v1/models/{submission.spec.provider_model_id}"
    assert recorded.bearer == KEY
    assert receipt.provider_job_id in double.jobs
    assert receipt.request_id == recorded.http_request_id


async def test_seedance_2_0_without_an_image_is_text_to_video(
    provider: RunComfyProvider, double: RunComfyDouble
) -> None:
    receipt = await provider.submit(submission_for("seedance-2.0-pro", None))
    assert "images" not in double.jobs[receipt.provider_job_id].body


async def test_seedance_2_0_image_field_spelling_is_configurable(
    http: httpx.AsyncClient, sleep: RecordingSleep
) -> None:
    async with RunComfyDouble(api_keys=(KEY,), v2_image_fields=("image_url",)) as strict:
        seed_spelling = make_provider(http, strict.base_url, sleep)
        skills_spelling = make_provider(http, strict.base_url, sleep, v2_image_field="image_url")
        frame = hosted_frame(strict)

        with pytest.raises(ProviderInvalidRequestError, match="images") as refused:
            await seed_spelling.submit(submission_for("seedance-2.0-pro", frame))
        receipt = await skills_spelling.submit(submission_for("seedance-2.0-pro", frame))

    assert refused.value.status_code == 422
    assert strict.jobs[receipt.provider_job_id].body["image_url"] == [frame.url]


async def test_a_value_outside_the_seed_schema_is_refused_naming_the_field(
    provider: RunComfyProvider, double: RunComfyDouble
) -> None:
    spec = CATALOGUE.get("seedance-1.0-pro")
    request = VideoRequest(spec.key, PROMPT, Resolution.P480, Ratio.ADAPTIVE, duration_s=13)
    with pytest.raises(ProviderInvalidRequestError, match="duration") as refused:
        await provider.submit(Submission(spec, request, hosted_frame(double)))
    assert refused.value.status_code == 422
    assert double.submit_count == 0


@pytest.mark.parametrize(
    ("width", "height", "seed_text"),
    [
        (300, 400, "must not be less than 300 pixels"),
        (1200, 400, "aspect ratio range should be between 0.4 and 2.5"),
    ],
)
async def test_a_first_frame_outside_runcomfys_limits_is_refused_with_the_documented_reason(
    provider: RunComfyProvider, double: RunComfyDouble, width: int, height: int, seed_text: str
) -> None:
    submission = submission_for("seedance-1.0-pro", hosted_frame(double, width, height))
    with pytest.raises(ProviderInvalidRequestError, match=seed_text):
        await provider.submit(submission)
    assert double.submit_count == 0


async def test_an_image_url_runcomfy_cannot_fetch_is_refused(
    provider: RunComfyProvider, double: RunComfyDouble
) -> None:
    missing = frame_at(f"{double.base_url}/files/hosted/nothing/here.png")
    with pytest.raises(ProviderInvalidRequestError, match="could not be fetched"):
        await provider.submit(submission_for("seedance-1.5-pro", missing))


async def test_an_unknown_model_id_is_refused_and_not_retried(
    provider: RunComfyProvider, double: RunComfyDouble, sleep: RecordingSleep
) -> None:
    spec = replace(
        CATALOGUE.get("seedance-1.0-pro"), provider_model_id="bytedance/seedance-1-0/pro/no-such-thing"
    )
    request = validate_options(spec, RequestedOptions(prompt=PROMPT))
    with pytest.raises(ProviderInvalidRequestError) as refused:
        await provider.submit(Submission(spec, request, hosted_frame(double)))
    assert (refused.value.status_code, refused.value.provider_code) == (400, "400001")
    assert len(double.requests_to("submit")) == 1
    assert sleep.delays == []


# --- A job's life ------------------------------------------------------------------------------------------


async def test_a_job_goes_from_the_queue_to_a_downloadable_video_with_its_cost(
    provider: RunComfyProvider, double: RunComfyDouble, http: httpx.AsyncClient
) -> None:
    double.script(Lifecycle.queued(3).running(2).completes(cost=0.37))
    job_id, spec = await submit_default(provider, double)

    seen = [await provider.status(job_id, spec) for _ in range(6)]

    assert [(status.state, status.queue_position) for status in seen] == [
        (ProviderState.QUEUED, 3),
        (ProviderState.QUEUED, 2),
        (ProviderState.QUEUED, 1),
        (ProviderState.RUNNING, None),
        (ProviderState.RUNNING, None),
        (ProviderState.SUCCEEDED, None),
    ]
    done = seen[-1]
    assert done.video_url == double.video_url(job_id)
    assert done.cost_usd == pytest.approx(0.37)
    assert double.requests_to("result")[-1].query == {"include_cost": "true"}
    api_requests = [request for request in double.requests if request.route in ("submit", "status", "result")]
    assert {request.bearer for request in api_requests} == {KEY}

    video = await http.get(done.video_url)
    assert video.content == double.video
    assert video.headers["content-type"] == "video/mp4"
    assert int(video.headers["content-length"]) == len(double.video)


@pytest.mark.parametrize(
    "lifecycle",
    [
        Lifecycle.quick(),
        Lifecycle.running().completes(output="videos"),
        Lifecycle.running().completes(result_status="completed"),
        Lifecycle.running().completes(status_word="succeeded"),
    ],
    ids=["output.video", "output.videos", "result says completed", "status says succeeded"],
)
async def test_every_documented_spelling_of_success_yields_the_video(
    provider: RunComfyProvider, double: RunComfyDouble, lifecycle: Lifecycle
) -> None:
    double.script(lifecycle)
    job_id, spec = await submit_default(provider, double)
    status = await provider.status(job_id, spec)
    while not status.state.is_terminal:
        status = await provider.status(job_id, spec)
    assert status.state is ProviderState.SUCCEEDED
    assert status.video_url == double.video_url(job_id)


async def run_to_end(provider: RunComfyProvider, job_id: str, spec: ModelSpec) -> ProviderStatus:
    for _ in range(20):
        status = await provider.status(job_id, spec)
        if status.state.is_terminal:
            return status
    raise AssertionError("the job never reached a terminal state")


@pytest.mark.parametrize(
    ("error", "code", "message"),
    [
        (
            "The image was refused by content moderation.",
            None,
            "The image was refused by content moderation.",
        ),
        ({"code": "E_GPU", "message": "The worker crashed."}, "E_GPU", "The worker crashed."),
        ({"error_code": 500123, "error_message": "Timed out."}, "500123", "Timed out."),
        (None, None, "RunComfy reported the job as failed without saying why."),
        (["odd", "shape"], None, "RunComfy reported the job as failed without saying why."),
    ],
    ids=["string", "object", "error_code object", "null", "list"],
)
async def test_a_failed_job_reports_why_whatever_the_shape_of_the_error(
    provider: RunComfyProvider, double: RunComfyDouble, error: object, code: str | None, message: str
) -> None:
    double.script(Lifecycle.running().fails(error))
    job_id, spec = await submit_default(provider, double)
    status = await run_to_end(provider, job_id, spec)
    assert (status.state, status.error_code, status.error_message) == (ProviderState.FAILED, code, message)


async def test_a_failed_job_whose_result_cannot_be_read_is_still_failed(
    provider: RunComfyProvider, double: RunComfyDouble
) -> None:
    double.script(Lifecycle.fails("boom"))
    job_id, spec = await submit_default(provider, double)
    double.inject("result", Fault.error(404, 404001))
    status = await provider.status(job_id, spec)
    assert status.state is ProviderState.FAILED
    assert status.error_message == "RunComfy reported the job as failed without saying why."


@pytest.mark.parametrize(
    ("lifecycle", "state"),
    [
        (Lifecycle.queued(2).cancelled(), ProviderState.CANCELLED),
        (Lifecycle.queued().cancelled(word="canceled"), ProviderState.CANCELLED),
        (Lifecycle.queued(2).expires(), ProviderState.EXPIRED),
    ],
    ids=["cancelled", "canceled", "expired"],
)
async def test_every_terminal_state_ends_the_job(
    provider: RunComfyProvider, double: RunComfyDouble, lifecycle: Lifecycle, state: ProviderState
) -> None:
    double.script(lifecycle)
    job_id, spec = await submit_default(provider, double)
    assert (await run_to_end(provider, job_id, spec)).state is state


async def test_a_finished_job_without_a_video_fails_instead_of_spinning(
    provider: RunComfyProvider, double: RunComfyDouble
) -> None:
    double.script(Lifecycle.running().completes(output=None, cost=0.2))
    job_id, spec = await submit_default(provider, double)
    status = await run_to_end(provider, job_id, spec)
    assert (status.state, status.error_code) == (ProviderState.FAILED, "no_output")
    assert status.error_message is not None and "no video" in status.error_message


async def test_an_unknown_status_word_is_a_protocol_error(
    provider: RunComfyProvider, double: RunComfyDouble
) -> None:
    double.script(Lifecycle.step("paused"))
    job_id, spec = await submit_default(provider, double)
    with pytest.raises(ProviderProtocolError, match="paused"):
        await provider.status(job_id, spec)


async def test_a_queued_job_can_be_cancelled_and_then_reports_cancelled(
    provider: RunComfyProvider, double: RunComfyDouble
) -> None:
    double.script(Lifecycle.queued(5).running().completes())
    job_id, spec = await submit_default(provider, double)
    assert await provider.cancel(job_id, spec) is CancelOutcome.CANCELLED
    assert await provider.cancel(job_id, spec) is CancelOutcome.CANCELLED  # repeating it is harmless
    assert (await provider.status(job_id, spec)).state is ProviderState.CANCELLED


async def test_a_running_job_cannot_be_cancelled(provider: RunComfyProvider, double: RunComfyDouble) -> None:
    double.script(Lifecycle.running().hold().completes())
    job_id, spec = await submit_default(provider, double)
    assert (await provider.status(job_id, spec)).state is ProviderState.RUNNING
    assert await provider.cancel(job_id, spec) is CancelOutcome.NOT_CANCELLABLE


async def test_cancel_is_retried_like_a_read(
    provider: RunComfyProvider, double: RunComfyDouble, sleep: RecordingSleep
) -> None:
    job_id, spec = await submit_default(provider, double)
    double.inject("cancel", Fault.html(503))
    assert await provider.cancel(job_id, spec) is CancelOutcome.CANCELLED
    assert len(double.requests_to("cancel")) == 2
    assert sleep.delays == [0.5]


# --- Errors on reads ---------------------------------------------------------------------------------------


READ_FAULTS: list[tuple[str, Fault, type[ProviderError], int, str | None]] = [
    ("bad token", Fault.error(401, 400004), ProviderAuthError, 401, "400004"),
    ("another user's request", Fault.error(403, 403001), ProviderPermissionError, 403, "403001"),
    ("unknown request", Fault.error(404, 404001), ProviderNotFoundError, 404, "404001"),
    ("bad model", Fault.error(400, 400001), ProviderInvalidRequestError, 400, "400001"),
    ("balance", Fault.error(402, 400002), ProviderBalanceError, 402, "400002"),
    ("200 + balance code", Fault.error_with_200(400002), ProviderBalanceError, 200, "400002"),
    ("200 + token code", Fault.error_with_200(400004), ProviderAuthError, 200, "400004"),
    ("402 without code", Fault.error(402), ProviderBalanceError, 402, None),
    ("401 without code", Fault.error(401), ProviderAuthError, 401, None),
    ("403 without code", Fault.error(403), ProviderAuthError, 403, None),
    ("404 without code", Fault.error(404), ProviderNotFoundError, 404, None),
    ("422 without code", Fault.error(422), ProviderInvalidRequestError, 422, None),
    ("418", Fault.error(418), ProviderError, 418, None),
]


@pytest.mark.parametrize(
    ("fault", "expected_type", "status_code", "code"),
    [case[1:] for case in READ_FAULTS],
    ids=[case[0] for case in READ_FAULTS],
)
async def test_status_errors_are_typed_and_carry_status_code_and_request_id(
    provider: RunComfyProvider,
    double: RunComfyDouble,
    sleep: RecordingSleep,
    fault: Fault,
    expected_type: type[ProviderError],
    status_code: int,
    code: str | None,
) -> None:
    job_id, spec = await submit_default(provider, double)
    double.inject("status", fault)
    with pytest.raises(ProviderError) as raised:
        await provider.status(job_id, spec)
    error = raised.value
    [recorded] = double.requests_to("status")
    assert type(error) is expected_type
    assert (error.status_code, error.provider_code) == (status_code, code)
    assert error.request_id == recorded.http_request_id
    assert sleep.delays == []  # none of these improves by asking again


async def test_the_wrong_key_is_an_auth_error_that_does_not_reveal_the_key(
    http: httpx.AsyncClient, double: RunComfyDouble, sleep: RecordingSleep
) -> None:
    wrong_key = "sk-wrong-4d1e7b"
    stranger = make_provider(http, double.base_url, sleep, key=wrong_key)
    with pytest.raises(ProviderAuthError) as raised:
        await stranger.submit(submission_for("seedance-1.5-pro", hosted_frame(double)))
    assert (raised.value.status_code, raised.value.provider_code) == (401, "400004")
    assert wrong_key not in str(raised.value)
    assert wrong_key not in repr(raised.value)
    assert double.submit_count == 0


async def test_another_users_request_is_a_permission_error(
    provider: RunComfyProvider, double: RunComfyDouble, http: httpx.AsyncClient, sleep: RecordingSleep
) -> None:
    job_id, spec = await submit_default(provider, double)
    other = make_provider(http, double.base_url, sleep, key=OTHER_KEY)
    with pytest.raises(ProviderPermissionError) as raised:
        await other.status(job_id, spec)
    assert (raised.value.status_code, raised.value.provider_code) == (403, "403001")


async def test_an_unknown_request_is_not_found(provider: RunComfyProvider, double: RunComfyDouble) -> None:
    spec = CATALOGUE.get("seedance-1.5-pro")
    with pytest.raises(ProviderNotFoundError) as raised:
        await provider.status("00000000-0000-0000-0000-000000000000", spec)
    assert (raised.value.status_code, raised.value.provider_code) == (404, "404001")


@pytest.mark.parametrize(
    "fault",
    [Fault.html(502), Fault.error(500, message="Internal error"), Fault.malformed(), Fault.drop()],
    ids=["html 502", "json 500", "malformed json", "dropped connection"],
)
async def test_status_is_retried_with_backoff_through_transient_failures(
    provider: RunComfyProvider, double: RunComfyDouble, sleep: RecordingSleep, fault: Fault
) -> None:
    double.script(Lifecycle.queued(4).completes())
    job_id, spec = await submit_default(provider, double)
    double.inject("status", fault, times=2)
    status = await provider.status(job_id, spec)
    assert status.state is ProviderState.QUEUED
    assert sleep.delays == [0.5, 1.0]  # full jitter with rng=1.0: base, then twice the base
    assert len(double.requests_to("status")) == 3


async def test_status_gives_up_after_the_last_attempt(
    provider: RunComfyProvider, double: RunComfyDouble, sleep: RecordingSleep
) -> None:
    job_id, spec = await submit_default(provider, double)
    double.inject("status", Fault.html(502), times=5)
    with pytest.raises(ProviderServerError) as raised:
        await provider.status(job_id, spec)
    assert raised.value.status_code == 502
    assert len(double.requests_to("status")) == 5
    assert sleep.delays == [0.5, 1.0, 2.0, 4.0]


@pytest.mark.parametrize(("retry_after", "expected"), [("7", 7.0), ("600", 120.0)])
async def test_a_429_on_status_waits_as_long_as_the_server_asks_within_the_cap(
    provider: RunComfyProvider,
    double: RunComfyDouble,
    sleep: RecordingSleep,
    retry_after: str,
    expected: float,
) -> None:
    job_id, spec = await submit_default(provider, double)
    double.inject("status", Fault.rate_limited(retry_after))
    assert (await provider.status(job_id, spec)).state is ProviderState.QUEUED
    assert sleep.delays == [expected]


async def test_a_retry_after_date_is_read_against_the_injected_clock(
    http: httpx.AsyncClient, double: RunComfyDouble, sleep: RecordingSleep
) -> None:
    now = datetime(2026, 5, 1, 9, 30, tzinfo=UTC)
    provider = make_provider(http, double.base_url, sleep, clock=now.timestamp)
    double.script(Lifecycle.quick())
    job_id, spec = await submit_default(provider, double)
    double.inject("result", Fault.rate_limited(format_datetime(now + timedelta(seconds=12), usegmt=True)))
    assert (await provider.status(job_id, spec)).state is ProviderState.SUCCEEDED
    assert sleep.delays == [12.0]


async def test_the_key_echoed_in_a_server_error_is_scrubbed(
    http: httpx.AsyncClient, double: RunComfyDouble, sleep: RecordingSleep
) -> None:
    provider = make_provider(http, double.base_url, sleep, retry=RetryPolicy(max_attempts=1))
    echo = Fault.error(500, message=f"upstream refused 'Authorization: Bearer {KEY}'")
    job_id, spec = await submit_default(provider, double)
    double.inject("status", echo)
    double.inject("submit", echo)
    with pytest.raises(ProviderServerError) as on_status:
        await provider.status(job_id, spec)
    with pytest.raises(SubmitOutcomeUnknownError) as on_submit:
        await provider.submit(submission_for("seedance-1.5-pro", hosted_frame(double)))
    for error in (on_status.value, on_submit.value):
        assert KEY not in str(error)
        assert "[redacted]" in str(error)


# --- A paid submit is sent at most once --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "job_created"),
    [
        (Fault.html(502), False),
        (Fault.error(500, message="Internal error"), False),
        (Fault.error(503, error_code=500001), False),
        (Fault.drop(), True),
        (Fault.malformed(), True),
    ],
    ids=["html 502", "json 500", "503 with code", "dropped after the job was created", "malformed 200"],
)
async def test_a_submit_that_may_have_arrived_is_never_resent(
    provider: RunComfyProvider, double: RunComfyDouble, sleep: RecordingSleep, fault: Fault, job_created: bool
) -> None:
    double.inject("submit", fault)
    with pytest.raises(SubmitOutcomeUnknownError):
        await provider.submit(submission_for("seedance-1.5-pro", hosted_frame(double)))
    assert len(double.requests_to("submit")) == 1
    assert double.submit_count == (1 if job_created else 0)
    assert sleep.delays == []


async def test_a_submit_that_timed_out_waiting_for_the_answer_is_never_resent(
    double: RunComfyDouble, sleep: RecordingSleep
) -> None:
    async with httpx.AsyncClient(timeout=httpx.Timeout(5.0, read=0.2)) as impatient:
        provider = make_provider(impatient, double.base_url, sleep)
        double.inject("submit", Fault.delay(30.0))
        with pytest.raises(SubmitOutcomeUnknownError, match="ReadTimeout"):
            await provider.submit(submission_for("seedance-1.5-pro", hosted_frame(double)))
    assert double.submit_count == 1
    assert len(double.requests_to("submit")) == 1
    assert sleep.delays == []


async def test_a_rate_limited_submit_is_resent_after_the_servers_delay(
    provider: RunComfyProvider, double: RunComfyDouble, sleep: RecordingSleep
) -> None:
    double.inject("submit", Fault.rate_limited("3"))
    receipt = await provider.submit(submission_for("seedance-1.5-pro", hosted_frame(double)))
    assert receipt.provider_job_id in double.jobs
    assert double.submit_count == 1
    assert len(double.requests_to("submit")) == 2
    assert sleep.delays == [3.0]


async def test_a_submit_rate_limited_on_every_attempt_fails_as_rate_limited(
    provider: RunComfyProvider, double: RunComfyDouble, sleep: RecordingSleep
) -> None:
    double.inject("submit", Fault.rate_limited(None), times=5)
    with pytest.raises(ProviderRateLimitError):
        await provider.submit(submission_for("seedance-1.5-pro", hosted_frame(double)))
    assert len(double.requests_to("submit")) == 5
    assert double.submit_count == 0
    assert sleep.delays == [0.5, 1.0, 2.0, 4.0]


@pytest.mark.parametrize(
    ("fault", "expected_type"),
    [
        (Fault.error(400, 400001), ProviderInvalidRequestError),
        (Fault.error_with_200(400002), ProviderBalanceError),
        (Fault.error(401, 400004), ProviderAuthError),
    ],
    ids=["400", "200 + balance code", "401"],
)
async def test_a_refused_submit_raises_its_typed_error_without_retrying(
    provider: RunComfyProvider,
    double: RunComfyDouble,
    sleep: RecordingSleep,
    fault: Fault,
    expected_type: type[ProviderError],
) -> None:
    double.inject("submit", fault)
    with pytest.raises(expected_type):
        await provider.submit(submission_for("seedance-1.5-pro", hosted_frame(double)))
    assert len(double.requests_to("submit")) == 1
    assert sleep.delays == []


async def test_a_refused_connection_proves_the_submit_never_left_so_it_is_resent(
    double: RunComfyDouble, sleep: RecordingSleep
) -> None:
    async with httpx.AsyncClient(transport=RefuseConnections(refusals=1), timeout=5.0) as flaky:
        provider = make_provider(flaky, double.base_url, sleep)
        receipt = await provider.submit(submission_for("seedance-1.5-pro", hosted_frame(double)))
    assert receipt.provider_job_id in double.jobs
    assert double.submit_count == 1
    assert sleep.delays == [0.5]


async def test_a_server_that_is_not_listening_fails_the_submit_as_never_sent(
    http: httpx.AsyncClient, sleep: RecordingSleep
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    provider = make_provider(
        http, f"http://127.0.0.1:{closed_port}", sleep, retry=RetryPolicy(max_attempts=3)
    )
    with pytest.raises(ProviderTransportError) as raised:
        await provider.submit(submission_for("seedance-1.5-pro", frame_at(PUBLIC_URL)))
    assert raised.value.reached_server is False
    assert not isinstance(raised.value, SubmitOutcomeUnknownError)
    assert sleep.delays == [0.5, 1.0]
    assert KEY not in str(raised.value)


def test_the_provider_is_runcomfy_and_takes_images_by_url_only(provider: RunComfyProvider) -> None:
    assert provider.name is ProviderName.RUNCOMFY
    assert provider.accepts_inline_images is False


# --- Seedance 2.0 reference media --------------------------------------------------------------------------


def with_references(frame: FrameImage | None, **media: Any) -> Submission:
    return replace(submission_for("seedance-2.0-pro", frame), references=References(**media))


REF_IMAGES = (frame_at("https://cdn.example.com/ref-1.png"), frame_at("https://cdn.example.com/ref-2.png"))
REF_VIDEOS = (clip(MediaKind.VIDEO, "https://cdn.example.com/clip.mp4"),)
REF_AUDIOS = (
    clip(MediaKind.AUDIO, "https://cdn.example.com/voice.mp3"),
    clip(MediaKind.AUDIO, "https://cdn.example.com/music.mp3"),
)


def test_seedance_2_0_puts_the_first_frame_first_then_the_reference_media_in_their_arrays() -> None:
    body = build_submit_body(
        with_references(frame_at(PUBLIC_URL), images=REF_IMAGES, videos=REF_VIDEOS, audios=REF_AUDIOS)
    )
    assert body == {
        "prompt": PROMPT,
        "resolution": "720p",
        "aspect_ratio": "adaptive",
        "duration": 5,
        "generate_audio": True,
        "images": [PUBLIC_URL, "https://cdn.example.com/ref-1.png", "https://cdn.example.com/ref-2.png"],
        "videos": ["https://cdn.example.com/clip.mp4"],
        "audios": ["https://cdn.example.com/voice.mp3", "https://cdn.example.com/music.mp3"],
    }


def test_seedance_2_0_leaves_out_empty_arrays() -> None:
    only_video = build_submit_body(with_references(None, videos=REF_VIDEOS))
    only_images = build_submit_body(with_references(None, images=REF_IMAGES))
    assert only_video["videos"] == ["https://cdn.example.com/clip.mp4"]
    assert "images" not in only_video and "audios" not in only_video
    assert only_images["images"] == ["https://cdn.example.com/ref-1.png", "https://cdn.example.com/ref-2.png"]
    assert "videos" not in only_images and "audios" not in only_images


def test_seedance_2_0_media_field_names_are_configurable() -> None:
    body = build_submit_body(
        with_references(frame_at(PUBLIC_URL), videos=REF_VIDEOS, audios=REF_AUDIOS[:1]),
        v2_image_field="image_url",
        v2_video_field="video_url",
        v2_audio_field="audio_url",
    )
    assert (body["image_url"], body["video_url"], body["audio_url"]) == (
        [PUBLIC_URL],
        ["https://cdn.example.com/clip.mp4"],
        ["https://cdn.example.com/voice.mp3"],
    )
    assert not {"images", "videos", "audios"} & set(body)


@pytest.mark.parametrize(
    ("media", "message"),
    [
        ({"images": (frame_at(None),)}, "images by public URL"),
        ({"videos": (clip(MediaKind.VIDEO, None),)}, "reference video by public URL"),
        ({"audios": (clip(MediaKind.AUDIO, ""),)}, "reference audio clip by public URL"),
    ],
    ids=["image", "video", "audio"],
)
def test_every_reference_needs_a_public_url_on_runcomfy(media: dict[str, Any], message: str) -> None:
    with pytest.raises(ProviderInvalidRequestError, match=message):
        build_submit_body(with_references(None, **media))


@pytest.mark.parametrize("model_key", ["seedance-1.0-pro", "seedance-1.5-pro"])
def test_reference_media_on_a_model_without_a_reference_mode_is_refused(model_key: str) -> None:
    submission = replace(
        submission_for(model_key, frame_at(PUBLIC_URL)), references=References(videos=REF_VIDEOS)
    )
    with pytest.raises(ProviderInvalidRequestError, match="reference"):
        build_submit_body(submission)


@pytest.mark.parametrize(
    ("field", "value"),
    [("watermark", True), ("expires_after_s", 3600), ("return_last_frame", True), ("web_search", True)],
)
def test_options_runcomfy_lacks_are_refused_rather_than_dropped(field: str, value: object) -> None:
    submission = submission_for("seedance-1.5-pro", frame_at(PUBLIC_URL))
    submission = replace(submission, request=replace(submission.request, **{field: value}))
    with pytest.raises(ProviderInvalidRequestError, match="RunComfy has no"):
        build_submit_body(submission)


async def test_the_provider_sends_reference_media_under_its_configured_field_names(
    sleep: RecordingSleep,
) -> None:
    sent: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json={"request_id": "rq-1"})

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
        provider = make_provider(
            client, "https://runcomfy.test", sleep, v2_video_field="video_url", v2_audio_field="audio_url"
        )
        await provider.submit(with_references(frame_at(PUBLIC_URL), videos=REF_VIDEOS, audios=REF_AUDIOS))

    [request] = sent
    assert str(request.url) == "https://runcomfy.test/v1/models/bytedance/seedance-2.0/pro"
    body = json.loads(request.content)
    assert body["images"] == [PUBLIC_URL]
    assert body["video_url"] == ["https://cdn.example.com/clip.mp4"]
    assert body["audio_url"] == ["https://cdn.example.com/voice.mp3", "https://cdn.example.com/music.mp3"]


@pytest.mark.parametrize(
    "fields",
    [{"v2_video_field": ""}, {"v2_audio_field": "images"}],
    ids=["empty", "duplicate"],
)
async def test_the_media_field_names_must_be_distinct_and_non_empty(
    http: httpx.AsyncClient, fields: dict[str, str]
) -> None:
    with pytest.raises(ValueError, match="field"):
        RunComfyProvider(http, base_url="https://x.test", api_key=SecretStr(KEY), **fields)
