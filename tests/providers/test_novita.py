"""The Novita client against `httpx.MockTransport`: its body, status words, error mapping and retry rules.

Every request the client sends is recorded, so the tests assert exactly what went over the wire (and how
many times: a paid submit must never be sent twice when it may have arrived).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from functools import partial
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from bot.domain.catalogue import NOVITA_MODELS, RUNCOMFY_MODELS
from bot.domain.media import MediaKind
from bot.domain.models import FrameImage, ProviderName
from bot.providers.base import CancelOutcome, ProviderState, ProviderStatus, References, Submission
from bot.providers.errors import (
    ProviderAuthError,
    ProviderBalanceError,
    ProviderContentRejectedError,
    ProviderError,
    ProviderInvalidRequestError,
    ProviderModelUnavailableError,
    ProviderNotFoundError,
    ProviderPermissionError,
    ProviderProtocolError,
    ProviderRateLimitError,
    ProviderServerError,
    ProviderTransportError,
    SubmitOutcomeUnknownError,
)
from bot.providers.novita import NovitaProvider, build_submit_body, error_from_response, status_from_result
from bot.providers.retry import RetryPolicy
from tests.providers.helpers import (
    Answer,
    RecordingSleep,
    Script,
    body_of,
    clip,
    decode_data_uri,
    frame,
    make_client,
    make_submission,
    png,
    reply,
)

KEY = "nv-key-7d3a91c2e5"
BASE = "https://api.novita.test"
PROMPT = "The lighthouse beam sweeps across the waves"
SPEC = NOVITA_MODELS[0]
SUBMIT_URL = f"{BASE}/v3/async/seedance-v1.5-pro-i2v"


def novita_error(status: int, reason: str | None, message: str = "nope", **headers: str) -> httpx.Response:
    body: dict[str, object] = {"code": status, "message": message, "metadata": {}}
    if reason is not None:
        body["reason"] = reason
    return reply(body, status, request_id=f"req-{status}", **headers)


def result(status: str, *, videos: object = None, **task: object) -> dict[str, object]:
    payload: dict[str, object] = {
        "task": {"task_id": "t-1", "status": status, "task_type": "SEEDANCE", "eta": 0, **task},
        "extra": {"seed": "42", "debug_info": {}},
        "images": [],
        "audios": [],
    }
    if videos is not None:
        payload["videos"] = videos
    return payload


def submission(
    first: FrameImage | None = None, *, last_frame: FrameImage | None = None, **options: Any
) -> Submission:
    return make_submission(SPEC, PROMPT, first or frame(), last_frame=last_frame, **options)


make_provider = partial(make_client, NovitaProvider, base_url=BASE, key=KEY)


@pytest.fixture
def provider(http: httpx.AsyncClient, sleep: RecordingSleep) -> NovitaProvider:
    return make_provider(http, sleep)


# --- The body ----------------------------------------------------------------------------------------------


def test_the_default_body_sends_the_first_frame_inline_and_the_models_defaults() -> None:
    image = png()
    body = build_submit_body(submission(frame(image, url="https://cdn.test/ignored.png")))

    assert decode_data_uri(body.pop("image")) == ("image/png", image)
    assert body == {
        "prompt": PROMPT,
        "ratio": "adaptive",
        "duration": 5,
        "resolution": "720p",
        "watermark": False,
        "camera_fixed": False,
        "generate_audio": True,
    }


def test_every_option_reaches_the_body_and_fps_never_does() -> None:
    first, last = png(colour=(1, 2, 3)), png(colour=(250, 250, 0))
    chosen = submission(
        frame(first, fmt="JPEG"),
        last_frame=frame(last, fmt="WEBP"),
        resolution="1080p",
        ratio="9:16",
        duration_s=12,
        generate_audio=False,
        camera_fixed=True,
        seed=-1,
        watermark=True,
        service_tier="flex",
        expires_after_s=3600,
    )
    body = build_submit_body(chosen)

    assert decode_data_uri(body.pop("image")) == ("image/jpeg", first)
    assert decode_data_uri(body.pop("last_image")) == ("image/webp", last)
    assert body == {
        "prompt": PROMPT,
        "ratio": "9:16",
        "duration": 12,
        "resolution": "1080p",
        "seed": -1,
        "watermark": True,
        "camera_fixed": True,
        "generate_audio": False,
        "service_tier": "flex",
        "execution_expires_after": 3600,
    }
    assert "fps" not in body


def test_the_default_tier_is_sent_by_name_and_the_largest_seed_as_a_number() -> None:
    body = build_submit_body(submission(service_tier="default", seed=4_294_967_295))
    assert (body["service_tier"], body["seed"]) == ("default", 4_294_967_295)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: replace(submission(), first_frame=None), "needs a first frame"),
        (
            lambda: replace(submission(), references=References(images=(frame(url="https://x.test/r.png"),))),
            "reference",
        ),
        (
            lambda: replace(
                submission(), references=References(videos=(clip(MediaKind.VIDEO, "https://x.test/v.mp4"),))
            ),
            "reference",
        ),
        (lambda: replace(submission(), first_frame=frame(b"")), "empty"),
        (
            lambda: replace(submission(), request=replace(submission().request, return_last_frame=True)),
            "last frame",
        ),
        (
            lambda: replace(submission(), request=replace(submission().request, web_search=True)),
            "no web search option",
        ),
        (lambda: replace(submission(), spec=RUNCOMFY_MODELS[1]), "runcomfy model"),
    ],
    ids=[
        "no first frame",
        "reference image",
        "reference video",
        "empty image",
        "return last frame",
        "web search",
        "spec",
    ],
)
async def test_a_submission_novita_cannot_take_is_refused_before_sending(
    provider: NovitaProvider, script: Script, make: Callable[[], Submission], message: str
) -> None:
    with pytest.raises(ProviderInvalidRequestError, match=message):
        await provider.submit(make())
    assert script.requests == []


# --- Submit ------------------------------------------------------------------------------------------------


async def test_submit_posts_the_body_to_the_models_path_with_the_key(
    provider: NovitaProvider, script: Script
) -> None:
    script.add(reply({"task_id": "task-abc", "extra": {"unknown": True}}, request_id="req-submit"))
    chosen = submission(seed=7)

    receipt = await provider.submit(chosen)

    [request] = script.requests
    assert (request.method, str(request.url)) == ("POST", SUBMIT_URL)
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.headers["content-type"] == "application/json"
    assert body_of(request) == build_submit_body(chosen)
    assert (receipt.provider_job_id, receipt.request_id) == ("task-abc", "req-submit")


async def test_the_base_url_may_end_with_a_slash(http: httpx.AsyncClient, script: Script) -> None:
    provider = make_provider(http, RecordingSleep(), base_url=BASE + "/")
    script.add(reply({"task_id": "t"}))
    await provider.submit(submission())
    assert str(script.requests[0].url) == SUBMIT_URL


@pytest.mark.parametrize(
    "payload", [{}, {"task_id": ""}, {"task_id": None}, ["task-abc"]], ids=["none", "blank", "null", "list"]
)
async def test_an_accepted_submit_without_a_task_id_is_an_unknown_outcome(
    provider: NovitaProvider, script: Script, sleep: RecordingSleep, payload: object
) -> None:
    script.add(reply(payload))
    with pytest.raises(SubmitOutcomeUnknownError):
        await provider.submit(submission())
    assert len(script.requests) == 1
    assert sleep.delays == []


async def test_a_rate_limited_submit_is_resent_after_the_servers_delay(
    provider: NovitaProvider, script: Script, sleep: RecordingSleep
) -> None:
    script.add(novita_error(429, "RATE_LIMIT_EXCEEDED", retry_after="3"), reply({"task_id": "t-2"}))
    receipt = await provider.submit(submission())
    assert receipt.provider_job_id == "t-2"
    assert len(script.requests) == 2
    assert body_of(script.requests[0]) == body_of(script.requests[1])
    assert sleep.delays == [3.0]


async def test_a_submit_rate_limited_every_time_gives_up_as_rate_limited(
    provider: NovitaProvider, script: Script, sleep: RecordingSleep
) -> None:
    script.add(*(novita_error(429, None) for _ in range(5)))
    with pytest.raises(ProviderRateLimitError):
        await provider.submit(submission())
    assert len(script.requests) == 5
    assert sleep.delays == [0.5, 1.0, 2.0, 4.0]


@pytest.mark.parametrize(
    "answer",
    [
        novita_error(500, "INTERNAL_ERROR"),
        novita_error(503, None, "backend busy"),
        reply(None, 502),
        novita_error(504, "TIMEOUT"),
        httpx.ReadTimeout("timed out"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        httpx.WriteError("broken pipe"),
        reply({"task_id": 5.5, "oops": True}),
        httpx.Response(200, content=b"{not json"),
    ],
    ids=["500", "503", "502 html", "504", "read timeout", "dropped", "write error", "no id", "malformed 200"],
)
async def test_a_submit_that_may_have_arrived_is_sent_exactly_once(
    provider: NovitaProvider, script: Script, sleep: RecordingSleep, answer: Answer
) -> None:
    script.add(answer)
    with pytest.raises(SubmitOutcomeUnknownError) as raised:
        await provider.submit(submission())
    assert len(script.requests) == 1
    assert sleep.delays == []
    assert "Novita" in str(raised.value)


async def test_a_submit_whose_connection_never_opened_is_resent(
    provider: NovitaProvider, script: Script, sleep: RecordingSleep
) -> None:
    script.add(httpx.ConnectError("[Errno 111] Connection refused"), reply({"task_id": "t-3"}))
    assert (await provider.submit(submission())).provider_job_id == "t-3"
    assert len(script.requests) == 2
    assert sleep.delays == [0.5]


async def test_a_submit_that_never_connects_fails_as_never_sent(
    http: httpx.AsyncClient, script: Script, sleep: RecordingSleep
) -> None:
    provider = make_provider(http, sleep, retry=RetryPolicy(max_attempts=3))
    script.add(*(httpx.ConnectTimeout("connect timed out") for _ in range(3)))
    with pytest.raises(ProviderTransportError) as raised:
        await provider.submit(submission())
    assert raised.value.reached_server is False
    assert not isinstance(raised.value, SubmitOutcomeUnknownError)
    assert sleep.delays == [0.5, 1.0]


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (novita_error(400, "INVALID_PARAMETERS", "duration must be in [4, 12]"), ProviderInvalidRequestError),
        (novita_error(401, "INVALID_API_KEY"), ProviderAuthError),
        (novita_error(403, "NOT_ENOUGH_BALANCE", "Insufficient balance"), ProviderBalanceError),
        (novita_error(403, "MODEL_ACCESS_DENIED"), ProviderModelUnavailableError),
        (novita_error(400, "SENSITIVE_CONTENT", "The image was flagged"), ProviderContentRejectedError),
    ],
    ids=["400", "401", "403 balance", "403 model", "moderation"],
)
async def test_a_refused_submit_raises_its_typed_error_without_retrying(
    provider: NovitaProvider, script: Script, sleep: RecordingSleep, answer: httpx.Response, expected: type
) -> None:
    script.add(answer)
    with pytest.raises(expected) as raised:
        await provider.submit(submission())
    assert type(raised.value) is expected
    assert raised.value.request_id == f"req-{answer.status_code}"
    assert len(script.requests) == 1
    assert sleep.delays == []


# --- Status ------------------------------------------------------------------------------------------------

VIDEO = "https://faas-output.novita.test/video/out.mp4?sig=abc"

STATUS_CASES: list[tuple[str, dict[str, object], ProviderStatus]] = [
    ("queued", result("TASK_STATUS_QUEUED"), ProviderStatus(ProviderState.QUEUED)),
    (
        "processing with progress",
        result("TASK_STATUS_PROCESSING", progress_percent=42),
        ProviderStatus(ProviderState.RUNNING, progress_percent=42.0),
    ),
    (
        "processing, float progress",
        result("TASK_STATUS_PROCESSING", progress_percent=99.5),
        ProviderStatus(ProviderState.RUNNING, progress_percent=99.5),
    ),
    (
        "processing, progress out of range",
        result("TASK_STATUS_PROCESSING", progress_percent=150),
        ProviderStatus(ProviderState.RUNNING),
    ),
    (
        "processing, progress as text",
        result("TASK_STATUS_PROCESSING", progress_percent="42"),
        ProviderStatus(ProviderState.RUNNING),
    ),
    (
        "processing, progress as bool",
        result("TASK_STATUS_PROCESSING", progress_percent=True),
        ProviderStatus(ProviderState.RUNNING),
    ),
    (
        "succeed",
        result(
            "TASK_STATUS_SUCCEED", videos=[{"video_url": VIDEO, "video_url_ttl": "3600", "video_type": "mp4"}]
        ),
        ProviderStatus(ProviderState.SUCCEEDED, video_url=VIDEO),
    ),
    (
        "succeed, url field",
        result("TASK_STATUS_SUCCEED", videos=[{"url": VIDEO}]),
        ProviderStatus(ProviderState.SUCCEEDED, video_url=VIDEO),
    ),
    (
        "succeed, lower case",
        result("task_status_succeed", videos=[{"video_url": VIDEO}]),
        ProviderStatus(ProviderState.SUCCEEDED, video_url=VIDEO),
    ),
    (
        "succeeded spelling",
        result("TASK_STATUS_SUCCEEDED", videos=[{"video_url": VIDEO}]),
        ProviderStatus(ProviderState.SUCCEEDED, video_url=VIDEO),
    ),
    (
        "succeed without videos",
        result("TASK_STATUS_SUCCEED"),
        ProviderStatus(
            ProviderState.FAILED,
            error_code="no_output",
            error_message="Novita reported the video as finished but sent no video.",
        ),
    ),
    (
        "succeed with an empty video",
        result("TASK_STATUS_SUCCEED", videos=[{"video_url": ""}]),
        ProviderStatus(
            ProviderState.FAILED,
            error_code="no_output",
            error_message="Novita reported the video as finished but sent no video.",
        ),
    ),
    (
        "failed",
        result("TASK_STATUS_FAILED", reason="The input image contains sensitive content"),
        ProviderStatus(ProviderState.FAILED, error_message="The input image contains sensitive content"),
    ),
    (
        "failed without a reason",
        result("TASK_STATUS_FAILED", reason=""),
        ProviderStatus(
            ProviderState.FAILED, error_message="Novita reported the job as failed without saying why."
        ),
    ),
    (
        "failed as expired",
        result("TASK_STATUS_FAILED", reason="Task expired: exceeded execution_expires_after"),
        ProviderStatus(
            ProviderState.EXPIRED,
            error_code="expired",
            error_message="Task expired: exceeded execution_expires_after",
        ),
    ),
    (
        "expired word",
        result("TASK_STATUS_EXPIRED"),
        ProviderStatus(ProviderState.EXPIRED, error_code="expired"),
    ),
    ("canceled", result("TASK_STATUS_CANCELED"), ProviderStatus(ProviderState.CANCELLED)),
    ("cancelled", result("TASK_STATUS_CANCELLED"), ProviderStatus(ProviderState.CANCELLED)),
]


@pytest.mark.parametrize(
    ("payload", "expected"), [case[1:] for case in STATUS_CASES], ids=[case[0] for case in STATUS_CASES]
)
async def test_every_status_word_maps_to_its_state(
    provider: NovitaProvider, script: Script, payload: dict[str, object], expected: ProviderStatus
) -> None:
    script.add(reply(payload))
    assert await provider.status("t-1", SPEC) == expected
    assert status_from_result(payload) == expected


async def test_status_reads_the_task_result_endpoint_with_the_task_id_as_a_query(
    provider: NovitaProvider, script: Script
) -> None:
    script.add(reply(result("TASK_STATUS_QUEUED")))
    await provider.status("id with spaces&x=1", SPEC)
    [request] = script.requests
    assert request.method == "GET"
    assert request.url.path == "/v3/async/task-result"
    assert dict(request.url.params) == {"task_id": "id with spaces&x=1"}
    assert request.headers["authorization"] == f"Bearer {KEY}"


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        (result("TASK_STATUS_PAUSED"), "TASK_STATUS_PAUSED"),
        (result(""), "unknown task status"),
        ({"task": {"task_id": "t-1"}}, "None"),
        ({"videos": []}, "without a task"),
        ({"task": "TASK_STATUS_QUEUED"}, "without a task"),
    ],
    ids=["unknown word", "blank word", "no status", "no task", "task not an object"],
)
async def test_an_unreadable_task_result_is_a_retryable_protocol_error(
    provider: NovitaProvider, script: Script, payload: dict[str, object], match: str
) -> None:
    script.add(reply(payload, request_id="req-odd"))
    with pytest.raises(ProviderProtocolError, match=match) as raised:
        await provider.status("t-1", SPEC)
    assert raised.value.retryable
    assert raised.value.request_id == "req-odd"


@pytest.mark.parametrize(
    "fault",
    [
        lambda: reply(None, 502),
        lambda: novita_error(503, None),
        lambda: httpx.ReadTimeout("timed out"),
        lambda: httpx.RemoteProtocolError("peer closed connection"),
        lambda: httpx.ConnectError("refused"),
        lambda: httpx.Response(200, content=b"<html>"),
    ],
    ids=["502 html", "503", "read timeout", "dropped", "connect error", "malformed"],
)
async def test_status_is_retried_with_backoff_through_transient_failures(
    provider: NovitaProvider, script: Script, sleep: RecordingSleep, fault: Callable[[], Answer]
) -> None:
    script.add(fault(), fault(), reply(result("TASK_STATUS_QUEUED")))
    assert (await provider.status("t-1", SPEC)).state is ProviderState.QUEUED
    assert len(script.requests) == 3
    assert sleep.delays == [0.5, 1.0]


async def test_status_gives_up_after_the_last_attempt(
    provider: NovitaProvider, script: Script, sleep: RecordingSleep
) -> None:
    script.add(*(novita_error(503, None) for _ in range(5)))
    with pytest.raises(ProviderServerError):
        await provider.status("t-1", SPEC)
    assert len(script.requests) == 5
    assert sleep.delays == [0.5, 1.0, 2.0, 4.0]


@pytest.mark.parametrize(("retry_after", "expected"), [("7", 7.0), ("600", 120.0)])
async def test_a_429_on_status_waits_as_long_as_the_server_asks_within_the_cap(
    provider: NovitaProvider, script: Script, sleep: RecordingSleep, retry_after: str, expected: float
) -> None:
    script.add(novita_error(429, "RATE_LIMIT", retry_after=retry_after), reply(result("TASK_STATUS_QUEUED")))
    assert (await provider.status("t-1", SPEC)).state is ProviderState.QUEUED
    assert sleep.delays == [expected]


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (novita_error(404, "TASK_NOT_FOUND"), ProviderNotFoundError),
        (novita_error(401, None), ProviderAuthError),
        (novita_error(403, "FORBIDDEN"), ProviderPermissionError),
        (novita_error(400, "INVALID_TASK_ID"), ProviderInvalidRequestError),
    ],
    ids=["404", "401", "403", "400"],
)
async def test_status_errors_that_asking_again_cannot_fix_are_not_retried(
    provider: NovitaProvider, script: Script, sleep: RecordingSleep, answer: httpx.Response, expected: type
) -> None:
    script.add(answer)
    with pytest.raises(expected) as raised:
        await provider.status("t-1", SPEC)
    assert raised.value.request_id == f"req-{answer.status_code}"
    assert sleep.delays == []


# --- Cancel ------------------------------------------------------------------------------------------------


async def test_cancel_is_unsupported_and_sends_nothing(provider: NovitaProvider, script: Script) -> None:
    assert await provider.cancel("t-1", SPEC) is CancelOutcome.UNSUPPORTED
    assert script.requests == []


# --- Error mapping (pure) ----------------------------------------------------------------------------------


def body(code: int, reason: str | None, message: str | None = "nope") -> dict[str, object]:
    payload: dict[str, object] = {"code": code, "metadata": {"x": 1}}
    if reason is not None:
        payload["reason"] = reason
    if message is not None:
        payload["message"] = message
    return payload


ERROR_CASES: list[tuple[str, int, object, type[ProviderError], str | None]] = [
    (
        "400 invalid parameters",
        400,
        body(400, "INVALID_REQUEST_BODY"),
        ProviderInvalidRequestError,
        "INVALID_REQUEST_BODY",
    ),
    ("422", 422, body(422, None), ProviderInvalidRequestError, "422"),
    (
        "400 sensitive",
        400,
        body(400, "SENSITIVE_CONTENT_DETECTED"),
        ProviderContentRejectedError,
        "SENSITIVE_CONTENT_DETECTED",
    ),
    (
        "400 nsfw message",
        400,
        body(400, "BAD_INPUT", "NSFW image"),
        ProviderContentRejectedError,
        "BAD_INPUT",
    ),
    ("400 moderation", 400, body(400, None, "Blocked by moderation"), ProviderContentRejectedError, "400"),
    (
        "400 prohibited",
        400,
        body(400, "PROHIBITED_CONTENT"),
        ProviderContentRejectedError,
        "PROHIBITED_CONTENT",
    ),
    ("401", 401, body(401, "INVALID_API_KEY"), ProviderAuthError, "INVALID_API_KEY"),
    ("401 no body", 401, None, ProviderAuthError, None),
    ("402", 402, body(402, "PAYMENT_REQUIRED"), ProviderBalanceError, "PAYMENT_REQUIRED"),
    ("403 balance", 403, body(403, "NOT_ENOUGH_BALANCE"), ProviderBalanceError, "NOT_ENOUGH_BALANCE"),
    (
        "403 credit message",
        403,
        body(403, "FORBIDDEN", "Not enough credits"),
        ProviderBalanceError,
        "FORBIDDEN",
    ),
    ("403 quota", 403, body(403, "QUOTA_EXCEEDED"), ProviderBalanceError, "QUOTA_EXCEEDED"),
    (
        "403 model access",
        403,
        body(403, "model_access_denied"),
        ProviderModelUnavailableError,
        "model_access_denied",
    ),
    (
        "403 verification",
        403,
        body(403, "FORBIDDEN", "Identity verification is required for this model"),
        ProviderModelUnavailableError,
        "FORBIDDEN",
    ),
    ("403 other", 403, body(403, "FORBIDDEN"), ProviderPermissionError, "FORBIDDEN"),
    ("404", 404, body(404, "TASK_NOT_FOUND"), ProviderNotFoundError, "TASK_NOT_FOUND"),
    (
        "429 rpm",
        429,
        body(429, "RATE_LIMIT_EXCEEDED", "RPM exceeded"),
        ProviderRateLimitError,
        "RATE_LIMIT_EXCEEDED",
    ),
    ("429 tpm", 429, body(429, None, "TPM exceeded"), ProviderRateLimitError, "429"),
    ("500", 500, body(500, "INTERNAL"), ProviderServerError, "INTERNAL"),
    ("503", 503, body(503, "SERVICE_UNAVAILABLE"), ProviderServerError, "SERVICE_UNAVAILABLE"),
    ("504 html", 504, None, ProviderServerError, None),
    ("418", 418, body(418, "TEAPOT"), ProviderError, "TEAPOT"),
    (
        "200 with an error body",
        200,
        body(403, "NOT_ENOUGH_BALANCE"),
        ProviderBalanceError,
        "NOT_ENOUGH_BALANCE",
    ),
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
    assert str(error).startswith("Novita")


@pytest.mark.parametrize(
    "payload",
    [{"task_id": "abc"}, result("TASK_STATUS_QUEUED"), {"code": 0, "reason": "OK"}, None, {"code": 500}],
    ids=["receipt", "result", "code 0", "no body", "code without reason"],
)
def test_a_2xx_is_a_success_unless_it_carries_an_error_body(payload: object) -> None:
    assert error_from_response(200, payload) is None


def test_the_message_comes_from_the_server_else_the_reason_else_the_status() -> None:
    with_message = error_from_response(400, body(400, "INVALID", "duration must be in [4, 12]"))
    with_reason = error_from_response(400, body(400, "INVALID", None))
    bare = error_from_response(502, None)
    assert with_message is not None and with_message.message == "Novita: duration must be in [4, 12]"
    assert with_reason is not None and with_reason.message == "Novita: INVALID"
    assert bare is not None and bare.message == "Novita answered HTTP 502 without an error message"


def test_a_long_server_message_is_clipped() -> None:
    error = error_from_response(400, body(400, "X", "y" * 2000))
    assert error is not None and len(error.message) < 520 and error.message.endswith("…")


# --- The key stays secret ----------------------------------------------------------------------------------


async def test_the_key_echoed_by_the_server_or_the_network_never_reaches_a_message(
    http: httpx.AsyncClient, script: Script, sleep: RecordingSleep
) -> None:
    provider = make_provider(http, sleep, retry=RetryPolicy(max_attempts=1))
    echo = f"upstream refused 'Authorization: Bearer {KEY}'"
    script.add(
        novita_error(401, "INVALID_API_KEY", echo),
        novita_error(500, None, echo),
        httpx.ReadTimeout(echo),
        httpx.ConnectError(echo),
    )
    errors: list[ProviderError] = []
    for call in (
        lambda: provider.status("t-1", SPEC),
        lambda: provider.submit(submission()),
        lambda: provider.submit(submission()),
        lambda: provider.status("t-1", SPEC),
    ):
        with pytest.raises(ProviderError) as raised:
            await call()
        errors.append(raised.value)
    for error in errors:
        assert KEY not in str(error)
        assert KEY not in repr(error)
        assert "[redacted]" in str(error)


def test_the_provider_is_novita_takes_inline_images_and_needs_a_key(http: httpx.AsyncClient) -> None:
    provider = NovitaProvider(http, api_key=SecretStr(KEY))
    assert provider.name is ProviderName.NOVITA
    assert provider.accepts_inline_images is True
    with pytest.raises(ValueError, match="empty"):
        NovitaProvider(http, api_key=SecretStr(""))


async def test_the_default_base_url_is_novitas(http: httpx.AsyncClient, script: Script) -> None:
    script.add(reply({"task_id": "t"}))
    await NovitaProvider(http, api_key=SecretStr(KEY)).submit(submission())
    assert str(script.requests[0].url) == "https://api.novita.ai/v3/async/seedance-v1.5-pro-i2v"
