"""The ModelArk client against `httpx.MockTransport`: body, task states, errors, retries, cancel and listing
(and `statuses`, many tasks in one list call, also once against the ModelArk double over real sockets).

Every request the client sends is recorded, so the tests assert exactly what went over the wire. The cancel
tests matter most: ModelArk's DELETE throws away a finished task's record, so it must only ever reach a
task last seen queued.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from functools import partial
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from bot.domain.catalogue import ARK_MODELS, NOVITA_MODELS, ModelSpec
from bot.domain.media import MediaKind
from bot.domain.models import FrameImage, ProviderName
from bot.providers.ark import (
    DEFAULT_BASE_URL,
    STATUS_BATCH_SIZE,
    VOLCENGINE_BASE_URL,
    ArkProvider,
    ArkTask,
    ArkTaskStatus,
    TaskPage,
    build_submit_body,
    error_from_response,
    status_from_task,
)
from bot.providers.base import (
    BatchStatusProvider,
    CancelOutcome,
    ProviderState,
    ProviderStatus,
    References,
    Submission,
    batch_status_provider,
)
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
from bot.providers.retry import RetryPolicy
from tests.doubles.ark import ArkDouble, Lifecycle
from tests.providers.helpers import (
    NO_REFERENCES,
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

KEY = "ark-key-0c6e2f94b1"
BASE = "https://ark.example.test/api/v3"
TASKS_URL = f"{BASE}/contents/generations/tasks"
PROMPT = "The kite climbs into a stormy sky"
SPECS = {spec.key: spec for spec in ARK_MODELS}
V1_0, FAST, V1_5, V2_0 = (
    SPECS["seedance-1.0-pro"],
    SPECS["seedance-1.0-pro-fast"],
    SPECS["seedance-1.5-pro"],
    SPECS["seedance-2.0-pro"],
)
VIDEO = "https://ark-content-generation.example.test/out/video.mp4?X-Tos-Signature=abc"
LAST_FRAME = "https://ark-content-generation.example.test/out/last.png?X-Tos-Signature=def"
CALLBACK = "https://bot.example.test/hooks/ark?token=t0k"


def ark_error(status: int, code: str | None, message: str = "nope", **headers: str) -> httpx.Response:
    error: dict[str, object] = {"message": message, "param": "", "type": "BadRequest"}
    if code is not None:
        error["code"] = code
    return reply({"error": error}, status, request_id=f"req-{status}", **headers)


def task(status: str, task_id: str = "cgt-20250101-abc", **fields: object) -> dict[str, object]:
    """A task as ModelArk sends it, with the extra fields it carries."""
    payload: dict[str, object] = {
        "id": task_id,
        "model": "seedance-1-5-pro-251215",
        "status": status,
        "error": None,
        "created_at": 1_767_225_600,
        "updated_at": 1_767_225_660,
        "seed": 12345,
        "resolution": "720p",
        "ratio": "16:9",
        "duration": 5,
        "framespersecond": 24,
        "generate_audio": True,
        "service_tier": "default",
        "execution_expires_after": 172800,
    }
    payload.update(fields)
    return payload


def done(**fields: object) -> dict[str, object]:
    return task(
        "succeeded",
        content={"video_url": VIDEO, "last_frame_url": LAST_FRAME},
        usage={"completion_tokens": 108_900, "total_tokens": 108_900},
        **fields,
    )


def submission(
    spec: ModelSpec = V1_5,
    first: FrameImage | None = None,
    *,
    last: FrameImage | None = None,
    references: References = NO_REFERENCES,
    callback_url: str | None = None,
    no_first_frame: bool = False,
    **options: Any,
) -> Submission:
    first_frame = None if no_first_frame else (first or frame())
    return make_submission(
        spec,
        PROMPT,
        first_frame,
        last_frame=last,
        references=references,
        callback_url=callback_url,
        **options,
    )


def image_item(role: str) -> dict[str, object]:
    """A content item with its data URI replaced by a marker, to compare whole bodies."""
    return {"type": "image_url", "image_url": {"url": "<data>"}, "role": role}


def without_data(body: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[str, bytes]]]:
    """`body` with every data URI replaced by "<data>", and the decoded images in order."""
    images: list[tuple[str, bytes]] = []
    content = []
    for item in body["content"]:
        if item["type"] == "image_url" and item["image_url"]["url"].startswith("data:"):
            images.append(decode_data_uri(item["image_url"]["url"]))
            content.append({**item, "image_url": {"url": "<data>"}})
        else:
            content.append(item)
    return {**body, "content": content}, images


make_provider = partial(make_client, ArkProvider, base_url=BASE, key=KEY)


@pytest.fixture
def provider(http: httpx.AsyncClient, sleep: RecordingSleep) -> ArkProvider:
    return make_provider(http, sleep)


# --- The body ----------------------------------------------------------------------------------------------


def test_the_default_body_has_the_prompt_the_inline_first_frame_and_the_models_defaults() -> None:
    image = png()
    body, images = without_data(
        build_submit_body(submission(V1_5, frame(image, url="https://cdn.test/a.png")))
    )
    assert images == [("image/png", image)]
    assert body == {
        "model": "seedance-1-5-pro-251215",
        "content": [{"type": "text", "text": PROMPT}, image_item("first_frame")],
        "resolution": "720p",
        "ratio": "adaptive",
        "duration": 5,
        "camera_fixed": False,
        "watermark": False,
        "generate_audio": True,
    }


def test_every_option_reaches_the_body() -> None:
    first, last = png((1, 2, 3)), png((200, 200, 0))
    chosen = submission(
        V1_5,
        frame(first, fmt="JPEG"),
        last=frame(last, fmt="WEBP"),
        callback_url=CALLBACK,
        resolution="1080p",
        ratio="21:9",
        duration_s=12,
        generate_audio=False,
        camera_fixed=True,
        seed=4_294_967_295,
        watermark=True,
        service_tier="flex",
        expires_after_s=259_200,
        return_last_frame=True,
    )
    body, images = without_data(build_submit_body(chosen))
    assert images == [("image/jpeg", first), ("image/webp", last)]
    assert body == {
        "model": "seedance-1-5-pro-251215",
        "content": [{"type": "text", "text": PROMPT}, image_item("first_frame"), image_item("last_frame")],
        "resolution": "1080p",
        "ratio": "21:9",
        "duration": 12,
        "seed": 4_294_967_295,
        "camera_fixed": True,
        "watermark": True,
        "generate_audio": False,
        "return_last_frame": True,
        "service_tier": "flex",
        "execution_expires_after": 259_200,
        "callback_url": CALLBACK,
    }


def test_return_last_frame_false_is_left_out() -> None:
    assert "return_last_frame" not in build_submit_body(submission(V1_0, return_last_frame=False))


def test_seedance_2_0_on_modelark_sends_no_tools() -> None:
    plain = submission(V2_0)
    assert "tools" not in build_submit_body(plain)
    # Off is what ModelArk does anyway: a request that says so explicitly still builds, without tools.
    assert "tools" not in build_submit_body(replace(plain, request=replace(plain.request, web_search=False)))


def test_seedance_2_0_sends_reference_images_inline_and_clips_by_url_in_order() -> None:
    first_ref, second_ref = png((9, 9, 9)), png((250, 1, 1))
    references = References(
        images=(frame(first_ref), frame(second_ref, fmt="JPEG", url="https://cdn.test/r2.jpg")),
        videos=(
            clip(MediaKind.VIDEO, "https://cdn.test/v1.mp4"),
            clip(MediaKind.VIDEO, "https://cdn.test/v2.mp4"),
        ),
        audios=(clip(MediaKind.AUDIO, "https://cdn.test/a1.mp3"),),
    )
    chosen = submission(V2_0, references=references, no_first_frame=True, seed=3)
    body, images = without_data(build_submit_body(chosen))
    assert images == [("image/png", first_ref), ("image/jpeg", second_ref)]
    assert body == {
        "model": "dreamina-seedance-2-0-260128",
        "content": [
            {"type": "text", "text": PROMPT},
            image_item("reference_image"),
            image_item("reference_image"),
            {"type": "video_url", "video_url": {"url": "https://cdn.test/v1.mp4"}, "role": "reference_video"},
            {"type": "video_url", "video_url": {"url": "https://cdn.test/v2.mp4"}, "role": "reference_video"},
            {"type": "audio_url", "audio_url": {"url": "https://cdn.test/a1.mp3"}, "role": "reference_audio"},
        ],
        "resolution": "720p",
        "ratio": "adaptive",
        "duration": 5,
        "seed": 3,
        "watermark": False,
        "generate_audio": True,
    }


def test_seedance_2_0_takes_a_first_frame_with_reference_videos() -> None:
    references = References(videos=(clip(MediaKind.VIDEO, "https://cdn.test/v.mp4"),))
    body, _ = without_data(build_submit_body(submission(V2_0, frame(), references=references)))
    assert [item.get("role") for item in body["content"]] == [None, "first_frame", "reference_video"]


def test_seedance_2_0_without_any_image_is_text_to_video() -> None:
    body = build_submit_body(submission(V2_0, no_first_frame=True))
    assert body["content"] == [{"type": "text", "text": PROMPT}]


def test_an_image_too_large_to_inline_goes_by_its_url_when_it_has_one() -> None:
    big = frame(png(), url="https://cdn.test/big.png")
    small = frame(png((1, 1, 1)))
    limit = len(big.data) - 1
    chosen = submission(V1_5, big, last=small)
    body = build_submit_body(chosen, inline_image_max_bytes=limit)
    assert body["content"][1]["image_url"] == {"url": "https://cdn.test/big.png"}
    assert decode_data_uri(body["content"][2]["image_url"]["url"]) == ("image/png", small.data)
    # Without a URL it still goes inline: ModelArk takes images up to 30 MB.
    unpublished = build_submit_body(submission(V1_5, frame(big.data)), inline_image_max_bytes=limit)
    assert decode_data_uri(unpublished["content"][1]["image_url"]["url"])[1] == big.data


async def test_the_inline_limit_is_a_constructor_option(
    http: httpx.AsyncClient, script: Script, sleep: RecordingSleep
) -> None:
    provider = make_provider(http, sleep, inline_image_max_bytes=0)
    script.add(reply({"id": "cgt-1"}))
    await provider.submit(submission(V1_5, frame(url="https://cdn.test/f.png")))
    assert body_of(script.requests[0])["content"][1]["image_url"] == {"url": "https://cdn.test/f.png"}


VIDEO_REF = References(videos=(clip(MediaKind.VIDEO, "https://cdn.test/v.mp4"),))
IMAGE_REF = References(images=(frame(),))

REFUSALS: list[tuple[str, Callable[[], Submission], str]] = [
    (
        "reference image + first frame",
        lambda: replace(submission(V2_0, references=IMAGE_REF, no_first_frame=True), first_frame=frame()),
        "reference images with a first or last frame",
    ),
    (
        "reference image + last frame",
        lambda: replace(submission(V2_0, references=IMAGE_REF, no_first_frame=True), last_frame=frame()),
        "reference images with a first or last frame",
    ),
    (
        "last frame without first",
        lambda: replace(submission(V1_5, last=frame()), first_frame=None),
        "only together with a first frame",
    ),
    ("no first frame on 1.5", lambda: replace(submission(V1_5), first_frame=None), "needs a first frame"),
    (
        "no first frame on 1.0 fast",
        lambda: replace(submission(FAST), first_frame=None),
        "needs a first frame",
    ),
    (
        "video without url",
        lambda: replace(
            submission(V2_0, references=VIDEO_REF),
            references=References(videos=(clip(MediaKind.VIDEO, None),)),
        ),
        "reference video only by public URL",
    ),
    (
        "audio without url",
        lambda: replace(
            submission(V2_0, references=VIDEO_REF),
            references=References(videos=VIDEO_REF.videos, audios=(clip(MediaKind.AUDIO, None),)),
        ),
        "reference audio only by public URL",
    ),
    (
        "references on 1.5",
        lambda: replace(submission(V1_5), first_frame=None, references=VIDEO_REF),
        "takes no reference",
    ),
    ("empty image", lambda: submission(V1_5, frame(b"")), "empty"),
    (
        # providers.md documents no `tools` for ModelArk: a request that got past the catalogue is refused.
        "web search",
        lambda: replace(submission(V2_0), request=replace(submission(V2_0).request, web_search=True)),
        "no web search option",
    ),
    ("a Novita spec", lambda: replace(submission(V1_5), spec=NOVITA_MODELS[0]), "novita model"),
]


@pytest.mark.parametrize(
    ("make", "message"), [case[1:] for case in REFUSALS], ids=[case[0] for case in REFUSALS]
)
async def test_a_submission_modelark_would_refuse_is_refused_before_sending(
    provider: ArkProvider, script: Script, make: Callable[[], Submission], message: str
) -> None:
    with pytest.raises(ProviderInvalidRequestError, match=message):
        await provider.submit(make())
    assert script.requests == []


# --- Submit ------------------------------------------------------------------------------------------------


async def test_submit_posts_the_task_with_the_key_and_returns_its_id(
    provider: ArkProvider, script: Script
) -> None:
    script.add(reply({"id": "cgt-20250101-xyz", "unknown": [1]}, request_id="202501011200abcdef"))
    chosen = submission(V1_0, callback_url=CALLBACK)

    receipt = await provider.submit(chosen)

    [request] = script.requests
    assert (request.method, str(request.url)) == ("POST", TASKS_URL)
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.headers["content-type"] == "application/json"
    assert body_of(request) == build_submit_body(chosen)
    assert body_of(request)["callback_url"] == CALLBACK
    assert (receipt.provider_job_id, receipt.request_id) == ("cgt-20250101-xyz", "202501011200abcdef")


@pytest.mark.parametrize("base_url", [VOLCENGINE_BASE_URL, VOLCENGINE_BASE_URL + "/"])
async def test_the_volcengine_base_url_works_for_every_call(
    http: httpx.AsyncClient, script: Script, sleep: RecordingSleep, base_url: str
) -> None:
    provider = make_provider(http, sleep, base_url=base_url)
    volc = replace(V1_5, provider_model_id="doubao-seedance-1-5-pro-251215")
    script.add(
        reply({"id": "cgt-v"}), reply(task("queued", "cgt-v")), reply(task("queued", "cgt-v")), reply({})
    )

    await provider.submit(submission(volc))
    await provider.status("cgt-v", volc)
    assert await provider.cancel("cgt-v", volc) is CancelOutcome.CANCELLED

    assert [str(request.url) for request in script.requests] == [
        "https://ark.cn-beijing.volces.com/api/v3/contents/generations/tasks",
        "https://ark.cn-beijing.volces.com/api/v3/contents/generations/tasks/cgt-v",
        "https://ark.cn-beijing.volces.com/api/v3/contents/generations/tasks/cgt-v",
        "https://ark.cn-beijing.volces.com/api/v3/contents/generations/tasks/cgt-v",
    ]
    assert body_of(script.requests[0])["model"] == "doubao-seedance-1-5-pro-251215"


async def test_the_default_base_url_is_byteplus(http: httpx.AsyncClient, script: Script) -> None:
    script.add(reply({"id": "cgt-1"}))
    await ArkProvider(http, api_key=SecretStr(KEY)).submit(submission())
    assert str(script.requests[0].url) == f"{DEFAULT_BASE_URL}/contents/generations/tasks"
    assert DEFAULT_BASE_URL == "https://ark.ap-southeast.bytepluses.com/api/v3"


async def test_a_rate_limited_submit_is_resent_after_the_servers_delay(
    provider: ArkProvider, script: Script, sleep: RecordingSleep
) -> None:
    script.add(
        ark_error(429, "RateLimitExceeded.EndpointRPMExceeded", retry_after="3"), reply({"id": "cgt-2"})
    )
    assert (await provider.submit(submission())).provider_job_id == "cgt-2"
    assert len(script.requests) == 2
    assert body_of(script.requests[0]) == body_of(script.requests[1])
    assert sleep.delays == [3.0]


async def test_a_submit_refused_by_a_quota_code_is_resent(
    provider: ArkProvider, script: Script, sleep: RecordingSleep
) -> None:
    script.add(ark_error(429, "QuotaExceeded"), ark_error(429, "ServerOverloaded"), reply({"id": "cgt-3"}))
    assert (await provider.submit(submission())).provider_job_id == "cgt-3"
    assert len(script.requests) == 3
    assert sleep.delays == [0.5, 1.0]


async def test_a_submit_rate_limited_every_time_gives_up_as_rate_limited(
    provider: ArkProvider, script: Script, sleep: RecordingSleep
) -> None:
    script.add(*(ark_error(429, "RateLimitExceeded") for _ in range(5)))
    with pytest.raises(ProviderRateLimitError):
        await provider.submit(submission())
    assert len(script.requests) == 5
    assert sleep.delays == [0.5, 1.0, 2.0, 4.0]


@pytest.mark.parametrize(
    "answer",
    [
        ark_error(500, "InternalServiceError"),
        reply(None, 502),
        ark_error(503, None),
        httpx.ReadTimeout("timed out"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        httpx.WriteTimeout("write timed out"),
        reply({"status": "queued"}),
        httpx.Response(200, content=b"{"),
    ],
    ids=["500", "502 html", "503", "read timeout", "dropped", "write timeout", "no id", "malformed 200"],
)
async def test_a_submit_that_may_have_arrived_is_sent_exactly_once(
    provider: ArkProvider, script: Script, sleep: RecordingSleep, answer: Answer
) -> None:
    script.add(answer)
    with pytest.raises(SubmitOutcomeUnknownError) as raised:
        await provider.submit(submission())
    assert len(script.requests) == 1
    assert sleep.delays == []
    assert "ModelArk" in str(raised.value)


async def test_a_submit_whose_connection_never_opened_is_resent(
    provider: ArkProvider, script: Script, sleep: RecordingSleep
) -> None:
    script.add(httpx.ConnectError("[Errno -2] Name or service not known"), reply({"id": "cgt-4"}))
    assert (await provider.submit(submission())).provider_job_id == "cgt-4"
    assert len(script.requests) == 2
    assert sleep.delays == [0.5]


async def test_a_submit_that_never_connects_fails_as_never_sent(
    http: httpx.AsyncClient, script: Script, sleep: RecordingSleep
) -> None:
    provider = make_provider(http, sleep, retry=RetryPolicy(max_attempts=2))
    script.add(httpx.ConnectError("refused"), httpx.PoolTimeout("no connection free"))
    with pytest.raises(ProviderTransportError) as raised:
        await provider.submit(submission())
    assert raised.value.reached_server is False
    assert not isinstance(raised.value, SubmitOutcomeUnknownError)


@pytest.mark.parametrize(
    ("answer", "expected", "code"),
    [
        (
            ark_error(404, "InvalidEndpointOrModel.NotFound"),
            ProviderModelUnavailableError,
            "InvalidEndpointOrModel.NotFound",
        ),
        (ark_error(404, None, "The model does not exist"), ProviderModelUnavailableError, None),
        (ark_error(403, "ModelNotOpen"), ProviderModelUnavailableError, "ModelNotOpen"),
        (
            ark_error(400, "InputImageSensitiveContentDetected.PrivacyInformation"),
            ProviderContentRejectedError,
            "InputImageSensitiveContentDetected.PrivacyInformation",
        ),
        (
            ark_error(400, "InputTextSensitiveContentDetected"),
            ProviderContentRejectedError,
            "InputTextSensitiveContentDetected",
        ),
        (ark_error(400, "InvalidParameter"), ProviderInvalidRequestError, "InvalidParameter"),
        (ark_error(401, "AuthenticationError"), ProviderAuthError, "AuthenticationError"),
        (ark_error(403, "AccountOverdueError"), ProviderBalanceError, "AccountOverdueError"),
    ],
    ids=[
        "404 model",
        "404 bare",
        "model not open",
        "privacy",
        "text moderation",
        "invalid",
        "auth",
        "overdue",
    ],
)
async def test_a_refused_submit_raises_its_typed_error_without_retrying(
    provider: ArkProvider,
    script: Script,
    sleep: RecordingSleep,
    answer: httpx.Response,
    expected: type,
    code: str | None,
) -> None:
    script.add(answer)
    with pytest.raises(ProviderError) as raised:
        await provider.submit(submission())
    assert type(raised.value) is expected
    assert (raised.value.provider_code, raised.value.request_id) == (code, f"req-{answer.status_code}")
    assert len(script.requests) == 1
    assert sleep.delays == []


# --- Status ------------------------------------------------------------------------------------------------

NO_OUTPUT = "ModelArk reported the video as finished but sent no video."

STATUS_CASES: list[tuple[str, dict[str, object], ProviderStatus]] = [
    ("queued", task("queued"), ProviderStatus(ProviderState.QUEUED)),
    ("running", task("running"), ProviderStatus(ProviderState.RUNNING)),
    (
        "succeeded",
        done(),
        ProviderStatus(
            ProviderState.SUCCEEDED, video_url=VIDEO, last_frame_url=LAST_FRAME, usage_tokens=108_900
        ),
    ),
    (
        "succeeded, total tokens only",
        task("succeeded", content={"video_url": VIDEO}, usage={"total_tokens": 19_845}),
        ProviderStatus(ProviderState.SUCCEEDED, video_url=VIDEO, usage_tokens=19_845),
    ),
    (
        "succeeded, completion tokens win",
        task("succeeded", content={"video_url": VIDEO}, usage={"completion_tokens": 5, "total_tokens": 9}),
        ProviderStatus(ProviderState.SUCCEEDED, video_url=VIDEO, usage_tokens=5),
    ),
    (
        "succeeded without a video",
        task("succeeded", content={"last_frame_url": LAST_FRAME}, usage={"completion_tokens": 7}),
        ProviderStatus(ProviderState.FAILED, error_code="no_output", error_message=NO_OUTPUT, usage_tokens=7),
    ),
    (
        "succeeded without content",
        task("succeeded", content=None),
        ProviderStatus(ProviderState.FAILED, error_code="no_output", error_message=NO_OUTPUT),
    ),
    (
        "failed",
        task(
            "failed",
            error={
                "code": "OutputVideoSensitiveContentDetected",
                "message": "The output video may contain...",
            },
        ),
        ProviderStatus(
            ProviderState.FAILED,
            error_code="OutputVideoSensitiveContentDetected",
            error_message="The output video may contain...",
        ),
    ),
    (
        "failed without error",
        task("failed"),
        ProviderStatus(
            ProviderState.FAILED, error_message="ModelArk reported the job as failed without saying why."
        ),
    ),
    ("cancelled", task("cancelled"), ProviderStatus(ProviderState.CANCELLED)),
    ("canceled", task("canceled"), ProviderStatus(ProviderState.CANCELLED)),
    ("expired", task("expired"), ProviderStatus(ProviderState.EXPIRED)),
    (
        "expired with error",
        task("expired", error={"code": "TaskExpired", "message": "exceeded execution_expires_after"}),
        ProviderStatus(
            ProviderState.EXPIRED, error_code="TaskExpired", error_message="exceeded execution_expires_after"
        ),
    ),
    ("upper case", task("RUNNING"), ProviderStatus(ProviderState.RUNNING)),
]


@pytest.mark.parametrize(
    ("payload", "expected"), [case[1:] for case in STATUS_CASES], ids=[case[0] for case in STATUS_CASES]
)
async def test_every_task_status_maps_to_its_state(
    provider: ArkProvider, script: Script, payload: dict[str, object], expected: ProviderStatus
) -> None:
    script.add(reply(payload))
    assert await provider.status("cgt-20250101-abc", V1_5) == expected
    assert status_from_task(ArkTask.from_payload(payload)) == expected
    assert script.calls == [("GET", "/api/v3/contents/generations/tasks/cgt-20250101-abc")]


async def test_get_task_gives_a_typed_view_of_every_field(provider: ArkProvider, script: Script) -> None:
    script.add(reply(done()))
    assert await provider.get_task("cgt-20250101-abc") == ArkTask(
        id="cgt-20250101-abc",
        status=ArkTaskStatus.SUCCEEDED,
        model="seedance-1-5-pro-251215",
        video_url=VIDEO,
        last_frame_url=LAST_FRAME,
        completion_tokens=108_900,
        total_tokens=108_900,
        created_at=1_767_225_600,
        updated_at=1_767_225_660,
    )


async def test_a_task_id_is_escaped_as_one_path_segment(provider: ArkProvider, script: Script) -> None:
    script.add(reply(task("queued", "../x?y")))
    await provider.status("../x?y", V1_5)
    assert script.requests[0].url.raw_path == b"/api/v3/contents/generations/tasks/..%2Fx%3Fy"


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        (task("paused"), "paused"),
        (task(""), "unknown status"),
        ({"status": "queued"}, "without an id"),
        (task(None), "None"),  # type: ignore[arg-type]
    ],
    ids=["unknown word", "blank", "no id", "no status"],
)
async def test_an_unreadable_task_is_a_retryable_protocol_error(
    provider: ArkProvider, script: Script, payload: dict[str, object], match: str
) -> None:
    script.add(reply(payload, request_id="req-odd"))
    with pytest.raises(ProviderProtocolError, match=match) as raised:
        await provider.status("cgt-1", V1_5)
    assert raised.value.retryable
    assert raised.value.request_id == "req-odd"


@pytest.mark.parametrize(
    "fault",
    [
        lambda: reply(None, 502),
        lambda: ark_error(500, "InternalServiceError"),
        lambda: ark_error(429, "ServerOverloaded"),
        lambda: httpx.ReadTimeout("timed out"),
        lambda: httpx.RemoteProtocolError("peer closed connection"),
        lambda: httpx.ConnectError("refused"),
        lambda: httpx.Response(200, content=b"not json"),
    ],
    ids=["502 html", "500", "overloaded", "read timeout", "dropped", "connect error", "malformed"],
)
async def test_status_is_retried_with_backoff_through_transient_failures(
    provider: ArkProvider, script: Script, sleep: RecordingSleep, fault: Callable[[], Answer]
) -> None:
    script.add(fault(), fault(), reply(task("running")))
    assert (await provider.status("cgt-1", V1_5)).state is ProviderState.RUNNING
    assert len(script.requests) == 3
    assert sleep.delays == [0.5, 1.0]


async def test_a_429_on_status_honours_retry_after(
    provider: ArkProvider, script: Script, sleep: RecordingSleep
) -> None:
    script.add(ark_error(429, "RateLimitExceeded", retry_after="9"), reply(task("queued")))
    assert (await provider.status("cgt-1", V1_5)).state is ProviderState.QUEUED
    assert sleep.delays == [9.0]


async def test_status_gives_up_after_the_last_attempt(
    provider: ArkProvider, script: Script, sleep: RecordingSleep
) -> None:
    script.add(*(reply(None, 503) for _ in range(5)))
    with pytest.raises(ProviderServerError):
        await provider.status("cgt-1", V1_5)
    assert len(script.requests) == 5
    assert sleep.delays == [0.5, 1.0, 2.0, 4.0]


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (ark_error(404, None, "task not found"), ProviderNotFoundError),
        (ark_error(404, "ResourceNotFound"), ProviderNotFoundError),
        (ark_error(401, "AuthenticationError"), ProviderAuthError),
        (ark_error(403, "AccessDenied"), ProviderPermissionError),
    ],
    ids=["404", "404 with code", "401", "403"],
)
async def test_status_errors_asking_again_cannot_fix_are_raised_at_once(
    provider: ArkProvider, script: Script, sleep: RecordingSleep, answer: httpx.Response, expected: type
) -> None:
    script.add(answer)
    with pytest.raises(ProviderError) as raised:
        await provider.status("cgt-1", V1_5)
    assert type(raised.value) is expected
    assert raised.value.request_id == f"req-{answer.status_code}"
    assert sleep.delays == []


# --- Cancel ------------------------------------------------------------------------------------------------

TASK_PATH = "/api/v3/contents/generations/tasks/cgt-1"
GET, DELETE = ("GET", TASK_PATH), ("DELETE", TASK_PATH)


async def test_a_queued_task_is_read_then_deleted(provider: ArkProvider, script: Script) -> None:
    script.add(reply(task("queued", "cgt-1")), reply({}))
    assert await provider.cancel("cgt-1", V1_5) is CancelOutcome.CANCELLED
    assert script.calls == [GET, DELETE]


@pytest.mark.parametrize("status", ["running", "succeeded", "failed", "expired"])
async def test_a_running_or_finished_task_is_never_deleted(
    provider: ArkProvider, script: Script, status: str
) -> None:
    script.add(reply(task(status, "cgt-1", content={"video_url": VIDEO})))
    assert await provider.cancel("cgt-1", V1_5) is CancelOutcome.NOT_CANCELLABLE
    assert script.calls == [GET]


async def test_an_already_cancelled_task_is_cancelled_without_a_delete(
    provider: ArkProvider, script: Script
) -> None:
    script.add(reply(task("cancelled", "cgt-1")))
    assert await provider.cancel("cgt-1", V1_5) is CancelOutcome.CANCELLED
    assert script.calls == [GET]


@pytest.mark.parametrize(
    ("now", "outcome"), [("running", "not_cancellable"), ("succeeded", "not_cancellable")]
)
async def test_a_delete_refused_because_the_task_started_is_not_cancellable(
    provider: ArkProvider, script: Script, sleep: RecordingSleep, now: str, outcome: str
) -> None:
    script.add(
        reply(task("queued", "cgt-1")),
        ark_error(400, "InvalidParameter.TaskStatus", "task is running and cannot be cancelled"),
        reply(task(now, "cgt-1", content={"video_url": VIDEO})),
    )
    assert await provider.cancel("cgt-1", V1_5) == CancelOutcome(outcome)
    assert script.calls == [GET, DELETE, GET]  # the finished task is not deleted
    assert sleep.delays == []


async def test_a_delete_refused_while_the_task_is_still_queued_raises(
    provider: ArkProvider, script: Script
) -> None:
    script.add(reply(task("queued", "cgt-1")), ark_error(409, "Conflict"), reply(task("queued", "cgt-1")))
    with pytest.raises(ProviderError) as raised:
        await provider.cancel("cgt-1", V1_5)
    assert raised.value.status_code == 409
    assert script.calls == [GET, DELETE, GET]


async def test_a_delete_that_failed_in_transit_is_checked_before_being_sent_again(
    provider: ArkProvider, script: Script, sleep: RecordingSleep
) -> None:
    script.add(
        reply(task("queued", "cgt-1")),
        httpx.ReadTimeout("timed out"),
        reply(task("cancelled", "cgt-1")),  # the first DELETE did arrive
    )
    assert await provider.cancel("cgt-1", V1_5) is CancelOutcome.CANCELLED
    assert script.calls == [GET, DELETE, GET]
    assert sleep.delays == [0.5]


async def test_a_delete_that_failed_is_repeated_only_while_the_task_is_still_queued(
    provider: ArkProvider, script: Script, sleep: RecordingSleep
) -> None:
    script.add(
        reply(task("queued", "cgt-1")),
        reply(None, 502),
        reply(task("queued", "cgt-1")),
        reply({}),
    )
    assert await provider.cancel("cgt-1", V1_5) is CancelOutcome.CANCELLED
    assert script.calls == [GET, DELETE, GET, DELETE]
    assert sleep.delays == [0.5]


async def test_a_delete_that_keeps_failing_gives_up_with_its_error(
    http: httpx.AsyncClient, script: Script, sleep: RecordingSleep
) -> None:
    provider = make_provider(http, sleep, retry=RetryPolicy(max_attempts=2))
    script.add(
        reply(task("queued", "cgt-1")), reply(None, 503), reply(task("queued", "cgt-1")), reply(None, 503)
    )
    with pytest.raises(ProviderServerError):
        await provider.cancel("cgt-1", V1_5)
    assert script.calls == [GET, DELETE, GET, DELETE]


async def test_a_task_that_finished_while_a_failed_delete_was_retried_is_left_alone(
    provider: ArkProvider, script: Script
) -> None:
    script.add(reply(task("queued", "cgt-1")), reply(None, 500), reply(done(id="cgt-1")))
    assert await provider.cancel("cgt-1", V1_5) is CancelOutcome.NOT_CANCELLABLE
    assert script.calls == [GET, DELETE, GET]


async def test_cancel_of_an_unknown_task_is_not_found(provider: ArkProvider, script: Script) -> None:
    script.add(ark_error(404, "ResourceNotFound"))
    with pytest.raises(ProviderNotFoundError):
        await provider.cancel("cgt-1", V1_5)
    assert script.calls == [GET]


async def test_delete_task_is_one_raw_delete_never_retried(
    provider: ArkProvider, script: Script, sleep: RecordingSleep
) -> None:
    script.add(reply({}))
    await provider.delete_task("cgt-1")
    script.add(reply(None, 500))
    with pytest.raises(ProviderServerError):
        await provider.delete_task("cgt-1")
    assert script.calls == [DELETE, DELETE]
    assert sleep.delays == []


# --- Listing -----------------------------------------------------------------------------------------------


async def test_list_tasks_sends_every_filter_with_repeated_task_ids(
    provider: ArkProvider, script: Script
) -> None:
    script.add(
        reply({"total": 42, "items": [done(id="cgt-a"), task("failed", "cgt-b", error={"code": "X"})]})
    )

    page = await provider.list_tasks(
        status=ArkTaskStatus.SUCCEEDED,
        task_ids=["cgt-a", "cgt-b"],
        model="seedance-1-5-pro-251215",
        page_num=2,
        page_size=50,
    )

    [request] = script.requests
    assert (request.method, request.url.path) == ("GET", "/api/v3/contents/generations/tasks")
    assert request.url.params.multi_items() == [
        ("page_num", "2"),
        ("page_size", "50"),
        ("filter.status", "succeeded"),
        ("filter.task_ids", "cgt-a"),
        ("filter.task_ids", "cgt-b"),
        ("filter.model", "seedance-1-5-pro-251215"),
    ]
    assert isinstance(page, TaskPage)
    assert page.total == 42
    assert [(item.id, item.status, item.error_code) for item in page.items] == [
        ("cgt-a", ArkTaskStatus.SUCCEEDED, None),
        ("cgt-b", ArkTaskStatus.FAILED, "X"),
    ]
    assert page.items[0].video_url == VIDEO


async def test_list_tasks_defaults_to_the_first_page_of_twenty(provider: ArkProvider, script: Script) -> None:
    script.add(reply({"items": []}))
    page = await provider.list_tasks()
    assert script.requests[0].url.params.multi_items() == [("page_num", "1"), ("page_size", "20")]
    assert page == TaskPage(total=0, items=())


async def test_list_tasks_is_retried_like_a_read(
    provider: ArkProvider, script: Script, sleep: RecordingSleep
) -> None:
    script.add(reply(None, 502), reply({"total": 1, "items": [task("queued")]}))
    page = await provider.list_tasks(status=ArkTaskStatus.QUEUED)
    assert page.total == 1 and page.items[0].status is ArkTaskStatus.QUEUED
    assert sleep.delays == [0.5]


@pytest.mark.parametrize("payload", [{"items": "nope"}, {"items": [task("paused")]}, {"items": [7]}])
async def test_an_unreadable_list_is_a_protocol_error(
    provider: ArkProvider, script: Script, payload: object
) -> None:
    script.add(reply(payload))
    with pytest.raises(ProviderProtocolError):
        await provider.list_tasks()


async def test_list_tasks_refuses_a_page_before_the_first(provider: ArkProvider, script: Script) -> None:
    with pytest.raises(ValueError, match="start at 1"):
        await provider.list_tasks(page_num=0)
    assert script.requests == []


# --- Many statuses in one call -----------------------------------------------------------------------------


async def test_statuses_asks_for_one_page_of_exactly_the_ids_and_maps_each_task(
    provider: ArkProvider, script: Script
) -> None:
    script.add(
        reply(
            {
                "total": 3,
                "items": [
                    done(id="cgt-a"),
                    task("running", "cgt-b"),
                    task("failed", "cgt-c", error={"code": "OutputVideoSensitiveContentDetected"}),
                ],
            }
        )
    )

    found = await provider.statuses(
        ["cgt-a", "cgt-b", "cgt-c"], {"cgt-a": V1_5, "cgt-b": V1_5, "cgt-c": V1_0}
    )

    [request] = script.requests
    assert (request.method, request.url.path) == ("GET", "/api/v3/contents/generations/tasks")
    assert request.url.params.multi_items() == [
        ("page_num", "1"),
        ("page_size", "3"),
        ("filter.task_ids", "cgt-a"),
        ("filter.task_ids", "cgt-b"),
        ("filter.task_ids", "cgt-c"),
    ]
    assert found == {
        "cgt-a": status_from_task(ArkTask.from_payload(done(id="cgt-a"))),
        "cgt-b": ProviderStatus(ProviderState.RUNNING),
        "cgt-c": status_from_task(
            ArkTask.from_payload(
                task("failed", "cgt-c", error={"code": "OutputVideoSensitiveContentDetected"})
            )
        ),
    }
    assert found["cgt-a"].video_url == VIDEO


async def test_statuses_leaves_out_what_it_cannot_vouch_for(provider: ArkProvider, script: Script) -> None:
    # "cgt-gone" is not listed; "cgt-odd" has a status no document knows; "cgt-other" was never asked for (a
    # server that ignored the filter): none may be reported, so the caller asks for each asked id alone.
    script.add(
        reply(
            {
                "total": 4,
                "items": [
                    task("queued", "cgt-a"),
                    task("paused", "cgt-odd"),
                    task("succeeded", "cgt-other", content={"video_url": VIDEO}),
                    {"status": "queued"},
                ],
            }
        )
    )
    found = await provider.statuses(["cgt-a", "cgt-gone", "cgt-odd"], {})
    assert found == {"cgt-a": ProviderStatus(ProviderState.QUEUED)}


async def test_statuses_sends_each_id_once_and_nothing_for_no_ids(
    provider: ArkProvider, script: Script
) -> None:
    assert await provider.statuses([], {}) == {}
    assert script.requests == []
    script.add(reply({"total": 1, "items": [task("queued", "cgt-a")]}))
    assert await provider.statuses(["cgt-a", "cgt-a"], {}) == {"cgt-a": ProviderStatus(ProviderState.QUEUED)}
    assert script.requests[0].url.params.multi_items() == [
        ("page_num", "1"),
        ("page_size", "1"),
        ("filter.task_ids", "cgt-a"),
    ]


async def test_statuses_takes_at_most_its_batch_size(provider: ArkProvider, script: Script) -> None:
    assert provider.max_status_batch == STATUS_BATCH_SIZE == 100
    ids = [f"cgt-{n}" for n in range(STATUS_BATCH_SIZE + 1)]
    with pytest.raises(ValueError, match="at most 100"):
        await provider.statuses(ids, {})
    assert script.requests == []


async def test_a_failed_statuses_call_is_retried_like_a_read_then_raised(
    provider: ArkProvider, script: Script, sleep: RecordingSleep
) -> None:
    script.add(reply(None, 502), reply({"total": 1, "items": [task("running", "cgt-a")]}))
    assert await provider.statuses(["cgt-a", "cgt-b"], {}) == {"cgt-a": ProviderStatus(ProviderState.RUNNING)}
    assert sleep.delays == [0.5]
    # A 404 of the list itself is an error of the call, not news that any task is gone.
    script.add(ark_error(404, "ResourceNotFound"))
    with pytest.raises(ProviderNotFoundError):
        await provider.statuses(["cgt-a", "cgt-b"], {})


def test_modelark_offers_batch_statuses_and_the_poller_can_see_it(provider: ArkProvider) -> None:
    assert isinstance(provider, BatchStatusProvider)
    assert batch_status_provider(provider) is provider


async def test_statuses_against_the_double_report_each_task_and_leave_out_unknown_ids() -> None:
    # Real sockets, against the ModelArk double (written independently of this client).
    async with ArkDouble(api_keys=(KEY,)) as double, httpx.AsyncClient(timeout=5) as http:
        client = ArkProvider(
            http,
            base_url=double.base_url,
            api_key=SecretStr(KEY),
            sleep=RecordingSleep(),
            retry=RetryPolicy(),
        )
        double.script(Lifecycle.quick())
        double.script(Lifecycle.running().fails("The output video was flagged.", code="OutputVideoSensitive"))
        double.script(Lifecycle.queued(3))
        done_id, failing_id, queued_id = [
            (await client.submit(submission(first=frame(width=640, height=480)))).provider_job_id
            for _ in range(3)
        ]
        double.advance(failing_id)  # running -> failed
        ids = [done_id, "cgt-20250101000000-nosuch", failing_id, queued_id]

        found = await client.statuses(ids, dict.fromkeys(ids, V1_5))

        assert set(found) == {done_id, failing_id, queued_id}
        assert found[done_id].state is ProviderState.SUCCEEDED
        assert found[done_id].video_url == double.video_url(done_id)
        assert found[failing_id].state is ProviderState.FAILED
        assert found[failing_id].error_code == "OutputVideoSensitive"
        assert "flagged" in (found[failing_id].error_message or "")
        assert found[queued_id] == ProviderStatus(ProviderState.QUEUED)
        [listed] = double.requests_to("list")
        assert [value for name, value in listed.query_items if name == "filter.task_ids"] == ids
        assert dict(listed.query_items)["page_size"] == "4"
        assert double.requests_to("status") == []  # one call, no GET per task
        # The same answer, one task at a time, agrees with the batch.
        for task_id in (done_id, failing_id, queued_id):
            assert await client.status(task_id, V1_5) == found[task_id]


# --- Error mapping (pure) ----------------------------------------------------------------------------------


def body(code: str | None, message: str | None = "nope") -> dict[str, object]:
    error: dict[str, object] = {"param": "content", "type": "BadRequest"}
    if code is not None:
        error["code"] = code
    if message is not None:
        error["message"] = message
    return {"error": error}


Content, Auth, Balance = ProviderContentRejectedError, ProviderAuthError, ProviderBalanceError
Permission, Unavailable, Limited = (
    ProviderPermissionError,
    ProviderModelUnavailableError,
    ProviderRateLimitError,
)
Invalid, NotFound, Server = ProviderInvalidRequestError, ProviderNotFoundError, ProviderServerError

# (test id, HTTP status, error code, expected type); the body is `body(code)` on a task route.
CODE_CASES: list[tuple[str, int, str | None, type[ProviderError]]] = [
    ("sensitive", 400, "InputImageSensitiveContentDetected", Content),
    ("privacy", 400, "InputImageSensitiveContentDetected.PrivacyInformation", Content),
    ("output sensitive", 400, "OutputVideoSensitiveContentDetected", Content),
    ("auth", 401, "AuthenticationError", Auth),
    ("overdue", 403, "AccountOverdueError", Balance),
    ("access denied", 403, "AccessDenied", Permission),
    ("model not open", 404, "ModelNotOpen", Unavailable),
    ("endpoint not found", 404, "InvalidEndpoint.NotFound", Unavailable),
    ("endpoint or model", 404, "InvalidEndpointOrModel.NotFound", Unavailable),
    ("rpm", 429, "RateLimitExceeded.EndpointRPMExceeded", Limited),
    ("quota", 429, "QuotaExceeded", Limited),
    ("overloaded", 503, "ServerOverloaded", Limited),
    ("invalid parameter", 400, "InvalidParameter", Invalid),
    ("invalid parameter qualified", 400, "InvalidParameter.Duration", Invalid),
    ("missing parameter", 400, "MissingParameter", Invalid),
    ("code wins over status", 500, "AuthenticationError", Auth),
    ("unknown code 400", 400, "SomethingNew", Invalid),
    ("402 bare", 402, None, Balance),
    ("403 bare", 403, None, Permission),
    ("404 on a task", 404, None, NotFound),
    ("422", 422, None, Invalid),
    ("500", 500, "InternalServiceError", Server),
    ("418", 418, None, ProviderError),
]
GATEWAY_ERROR = {"ResponseMetadata": {"Error": {"Code": "AuthenticationError", "Message": "bad"}}}
ERROR_CASES: list[tuple[str, int, object, bool, type[ProviderError], str | None]] = [
    *((name, status, body(code), False, expected, code) for name, status, code, expected in CODE_CASES),
    ("404 on create", 404, body(None), True, Unavailable, None),
    ("401 no body", 401, None, False, Auth, None),
    ("429 no body", 429, None, False, Limited, None),
    ("502 html", 502, None, False, Server, None),
    ("volcengine gateway shape", 401, GATEWAY_ERROR, False, Auth, "AuthenticationError"),
    ("flat shape", 400, {"code": "InvalidParameter", "message": "bad"}, False, Invalid, "InvalidParameter"),
]


@pytest.mark.parametrize(
    ("status", "payload", "on_create", "expected_type", "code"),
    [case[1:] for case in ERROR_CASES],
    ids=[case[0] for case in ERROR_CASES],
)
def test_error_answers_map_to_typed_errors_keeping_their_details(
    status: int, payload: object, on_create: bool, expected_type: type[ProviderError], code: str | None
) -> None:
    error = error_from_response(status, payload, request_id="req-9", retry_after_s=2.0, on_create=on_create)
    assert type(error) is expected_type
    assert error is not None
    assert (error.status_code, error.provider_code, error.request_id) == (status, code, "req-9")
    assert error.retry_after_s == 2.0
    assert str(error).startswith("ModelArk")


@pytest.mark.parametrize("payload", [task("failed", error={"code": "X", "message": "y"}), {}, None])
def test_any_2xx_is_a_success_even_a_failed_tasks_error_field(payload: object) -> None:
    assert error_from_response(200, payload) is None


def test_the_message_comes_from_the_server_else_names_the_status() -> None:
    with_message = error_from_response(400, body("InvalidParameter", "duration must be 2-12"))
    bare = error_from_response(502, None)
    assert with_message is not None and with_message.message == "ModelArk: duration must be 2-12"
    assert bare is not None and bare.message == "ModelArk answered HTTP 502 without an error message"


# --- The key stays secret ----------------------------------------------------------------------------------


async def test_the_key_echoed_by_the_server_or_the_network_never_reaches_a_message(
    http: httpx.AsyncClient, script: Script, sleep: RecordingSleep
) -> None:
    provider = make_provider(http, sleep, retry=RetryPolicy(max_attempts=1))
    echo = f"invalid header 'Authorization: Bearer {KEY}'"
    script.add(
        ark_error(401, "AuthenticationError", echo),
        ark_error(500, None, echo),
        httpx.RemoteProtocolError(echo),
        httpx.ConnectError(echo),
    )
    errors: list[ProviderError] = []
    for call in (
        lambda: provider.status("cgt-1", V1_5),
        lambda: provider.submit(submission()),
        lambda: provider.submit(submission()),
        provider.list_tasks,
    ):
        with pytest.raises(ProviderError) as raised:
            await call()
        errors.append(raised.value)
    for error in errors:
        assert KEY not in str(error)
        assert KEY not in repr(error)
        assert "[redacted]" in str(error)


def test_the_provider_is_modelark_takes_inline_images_and_needs_a_key(http: httpx.AsyncClient) -> None:
    provider = ArkProvider(http, api_key=SecretStr(KEY))
    assert provider.name is ProviderName.ARK
    assert provider.accepts_inline_images is True
    with pytest.raises(ValueError, match="empty"):
        ArkProvider(http, api_key=SecretStr(""))
    with pytest.raises(ValueError, match="inline_image_max_bytes"):
        ArkProvider(http, api_key=SecretStr(KEY), inline_image_max_bytes=-1)
