"""The Novita double keeps the documented contract on its own, whatever client talks to it."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.doubles.media import make_image
from tests.doubles.novita import Fault, Lifecycle, NovitaDouble
from tests.doubles.provider_double import seedance_image_problem

KEY = "novita-key"
OTHER_KEY = "other-novita-key"
V1_5 = "/v3/async/seedance-v1.5-pro-i2v"
V1 = "/v3/async/seedance-v1-pro-i2v"
RESULT = "/v3/async/task-result"


@pytest.fixture
async def double() -> AsyncIterator[NovitaDouble]:
    async with NovitaDouble(api_keys=(KEY, OTHER_KEY)) as running:
        yield running


@pytest.fixture
async def client(double: NovitaDouble) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=double.base_url, headers={"Authorization": f"Bearer {KEY}"}, timeout=5.0
    ) as http:
        yield http


def image_url(double: NovitaDouble, width: int = 640, height: int = 480, fmt: str = "PNG") -> str:
    return double.host_file(
        make_image(width, height, fmt=fmt), f"image/{fmt.lower()}", f"frame.{fmt.lower()}"
    )


def data_uri(width: int = 640, height: int = 480, fmt: str = "PNG", declared: str | None = None) -> str:
    encoded = base64.b64encode(make_image(width, height, fmt=fmt)).decode()
    return f"data:image/{declared or fmt.lower()};base64,{encoded}"


async def submit(client: httpx.AsyncClient, body: dict[str, Any], path: str = V1_5) -> httpx.Response:
    return await client.post(path, json=body)


async def result(client: httpx.AsyncClient, task_id: str) -> dict[str, Any]:
    response = await client.get(RESULT, params={"task_id": task_id})
    assert response.status_code == 200, response.text
    return response.json()


def assert_novita_error(response: httpx.Response, status: int, reason: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"code", "reason", "message", "metadata"}
    assert body["code"] == status
    if reason is not None:
        assert body["reason"] == reason
    return body


async def test_a_valid_submit_fetches_the_image_and_answers_a_task_id(
    double: NovitaDouble, client: httpx.AsyncClient
) -> None:
    url = image_url(double)
    body = {
        "image": url,
        "prompt": "the cat turns its head",
        "last_image": image_url(double, 600, 450, "JPEG"),
        "ratio": "4:3",
        "duration": 12,
        "resolution": "1080p",
        "fps": 24,
        "seed": 4_294_967_295,
        "watermark": False,
        "camera_fixed": True,
        "generate_audio": False,
        "service_tier": "flex",
        "execution_expires_after": 259_200,
    }
    response = await submit(client, body)
    assert response.status_code == 200, response.text
    assert set(response.json()) == {"task_id"}
    job = double.jobs[response.json()["task_id"]]
    assert (job.body, job.api_key, job.model_id) == (body, KEY, "seedance-v1.5-pro-i2v")
    assert response.headers["x-request-id"] == double.requests_to("submit")[0].http_request_id
    assert len(double.requests_to("hosted")) == 2  # Novita fetched both frames itself


async def test_a_data_uri_image_is_decoded_and_judged(
    double: NovitaDouble, client: httpx.AsyncClient
) -> None:
    fine = await submit(client, {"image": data_uri(fmt="JPEG", declared="jpg")})
    too_small = await submit(client, {"image": data_uri(200, 400)})
    bad_base64 = await submit(client, {"image": "data:image/png;base64,%%%"})
    mislabelled = await submit(client, {"image": data_uri(fmt="PNG", declared="jpeg")})
    not_an_image = await submit(client, {"image": "data:text/plain;base64,aGVsbG8="})
    assert fine.status_code == 200, fine.text
    assert "more than 300" in assert_novita_error(too_small, 400)["message"]
    assert "base64" in assert_novita_error(bad_base64, 400)["message"]
    assert "image/jpeg but the data is png" in assert_novita_error(mislabelled, 400)["message"]
    assert "data:image/" in assert_novita_error(not_an_image, 400)["message"]
    assert double.submit_count == 1


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer nope"}, {"Authorization": f"Basic {KEY}"}, {"Authorization": KEY}],
    ids=["missing", "unknown key", "not bearer", "no scheme"],
)
async def test_requests_without_a_known_bearer_get_401(double: NovitaDouble, headers: dict[str, str]) -> None:
    async with httpx.AsyncClient(base_url=double.base_url, headers=headers) as anonymous:
        submitted = await submit(anonymous, {"image": image_url(double)})
        polled = await anonymous.get(RESULT, params={"task_id": "x"})
    assert_novita_error(submitted, 401, "INVALID_API_KEY")
    assert_novita_error(polled, 401)
    assert double.submit_count == 0


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"image": None}, "image"),
        ({"durations": 5}, "durations"),
        ({"aspect_ratio": "16:9"}, "aspect_ratio"),
        ({"duration": 3}, "duration"),
        ({"duration": 13}, "duration"),
        ({"duration": "5"}, "duration"),
        ({"duration": 5.0}, "duration"),
        ({"resolution": "4k"}, "resolution"),
        ({"ratio": "2:1"}, "ratio"),
        ({"fps": 30}, "fps"),
        ({"fps": True}, "fps"),
        ({"seed": -2}, "seed"),
        ({"seed": 4_294_967_296}, "seed"),
        ({"seed": True}, "seed"),
        ({"watermark": 1}, "watermark"),
        ({"camera_fixed": 0}, "camera_fixed"),
        ({"generate_audio": "true"}, "generate_audio"),
        ({"service_tier": "fast"}, "service_tier"),
        ({"execution_expires_after": 3599}, "execution_expires_after"),
        ({"execution_expires_after": 259_201}, "execution_expires_after"),
        ({"prompt": 5}, "prompt"),
        ({"image": 5}, "image"),
        ({"image": "ftp://example.com/a.png"}, "image"),
        ({"last_image": "data:image/png;base64,"}, "last_image"),
        ({"tools": True}, "tools"),  # seed 004 has no web search
    ],
)
async def test_bodies_outside_the_documented_schema_are_refused_naming_the_field(
    double: NovitaDouble, client: httpx.AsyncClient, change: dict[str, Any], field: str
) -> None:
    body = {"image": image_url(double), "prompt": "x", **change}
    body = {name: value for name, value in body.items() if value is not None}
    response = await submit(client, body)
    error = assert_novita_error(response, 400, "INVALID_REQUEST_BODY")
    assert field in error["message"]
    assert error["metadata"] == {"field": field}
    assert double.submit_count == 0


@pytest.mark.parametrize(
    ("width", "height", "reason"),
    [
        (300, 640, "more than 300 and less than 6000 pixels"),
        (6000, 400, "more than 300 and less than 6000 pixels"),
        (1000, 400, "between 0.4 and 2.5"),
        (400, 1000, "between 0.4 and 2.5"),
    ],
)
async def test_images_on_or_outside_the_limits_are_refused(
    double: NovitaDouble, client: httpx.AsyncClient, width: int, height: int, reason: str
) -> None:
    response = await submit(client, {"image": image_url(double, width, height)})
    assert reason in assert_novita_error(response, 400)["message"]


async def test_images_just_inside_the_limits_and_every_format_pass(
    double: NovitaDouble, client: httpx.AsyncClient
) -> None:
    for width, height, fmt in [(301, 301, "PNG"), (749, 301, "JPEG"), (301, 749, "WEBP"), (640, 480, "BMP")]:
        response = await submit(client, {"image": image_url(double, width, height, fmt)})
        assert response.status_code == 200, (width, height, fmt, response.text)
    for fmt in ("TIFF", "GIF"):
        response = await submit(client, {"image": image_url(double, fmt=fmt)})
        assert response.status_code == 200, (fmt, response.text)


async def test_unreadable_unsupported_or_unreachable_images_are_refused(
    double: NovitaDouble, client: httpx.AsyncClient
) -> None:
    text = await submit(client, {"image": double.host_file(b"hello", "text/plain", "a.txt")})
    ppm = await submit(client, {"image": image_url(double, fmt="PPM")})
    missing = await submit(client, {"image": f"{double.origin}/files/hosted/nothing/here.png"})
    assert "not an image" in assert_novita_error(text, 400)["message"]
    assert "unsupported image format PPM" in assert_novita_error(ppm, 400)["message"]
    assert "HTTP 404" in assert_novita_error(missing, 400)["message"]


def test_images_of_30_mb_or_more_are_refused() -> None:
    assert seedance_image_problem(b"\0" * 30_000_000) == "the image must be smaller than 30 MB"


async def test_the_1_0_sibling_path_has_no_audio_and_1_0_durations(
    double: NovitaDouble, client: httpx.AsyncClient
) -> None:
    audio = await submit(client, {"image": image_url(double), "generate_audio": True}, V1)
    short = await submit(client, {"image": image_url(double), "duration": 2}, V1)
    unknown = await submit(client, {"image": image_url(double)}, "/v3/async/seedance-v9-i2v")
    assert "generate_audio" in assert_novita_error(audio, 400)["message"]
    assert short.status_code == 200
    assert_novita_error(unknown, 404)
    polled = await result(client, short.json()["task_id"])
    assert polled["task"]["task_type"] == "SEEDANCE_V1_PRO_I2V"


async def test_task_result_walks_the_lifecycle_and_serves_the_video(
    double: NovitaDouble, client: httpx.AsyncClient
) -> None:
    double.script(Lifecycle.queued(2).running(2, progress=(30, 70)).completes())
    task_id = (await submit(client, {"image": image_url(double), "seed": 42})).json()["task_id"]

    seen = [await result(client, task_id) for _ in range(6)]
    tasks = [page["task"] for page in seen]
    assert [(t["status"], t["progress_percent"]) for t in tasks] == [
        ("TASK_STATUS_QUEUED", 0),
        ("TASK_STATUS_QUEUED", 0),
        ("TASK_STATUS_PROCESSING", 30),
        ("TASK_STATUS_PROCESSING", 70),
        ("TASK_STATUS_SUCCEED", 100),
        ("TASK_STATUS_SUCCEED", 100),
    ]
    assert all(t["task_type"] == "SEEDANCE_V1_5_PRO_I2V" and t["task_id"] == task_id for t in tasks)
    assert [t["eta"] > 0 for t in tasks] == [True, True, True, True, False, False]
    assert all(page["videos"] == [] for page in seen[:4])
    done = seen[-1]
    assert done["videos"] == [
        {"video_url": double.video_url(task_id), "video_url_ttl": "3600", "video_type": "mp4"}
    ]
    assert (done["images"], done["audios"], done["extra"]) == ([], [], {"seed": "42"})
    async with httpx.AsyncClient() as anonymous:  # output files download without auth
        video = await anonymous.get(done["videos"][0]["video_url"])
    assert (video.status_code, video.content) == (200, double.video)
    assert video.headers["content-type"] == "video/mp4"
    assert double.jobs[task_id].polls == 6


async def test_a_failed_task_carries_its_reason_and_no_video(
    double: NovitaDouble, client: httpx.AsyncClient
) -> None:
    double.script(Lifecycle.running().fails("The output video was flagged."))
    task_id = (await submit(client, {"image": image_url(double)})).json()["task_id"]
    await result(client, task_id)
    failed = await result(client, task_id)
    assert (failed["task"]["status"], failed["task"]["reason"]) == (
        "TASK_STATUS_FAILED",
        "The output video was flagged.",
    )
    assert failed["videos"] == []
    async with httpx.AsyncClient() as anonymous:
        assert (await anonymous.get(double.video_url(task_id))).status_code == 404


async def test_expiry_shows_as_failed_with_a_reason_unless_the_raw_word_is_scripted(
    double: NovitaDouble, client: httpx.AsyncClient
) -> None:
    double.script(Lifecycle.queued().expires())
    double.script(Lifecycle.queued().step("TASK_STATUS_EXPIRED").running().completes())
    expired = (await submit(client, {"image": image_url(double)})).json()["task_id"]
    raw = (await submit(client, {"image": image_url(double)})).json()["task_id"]
    statuses = {}
    for task_id in (expired, raw):
        pages = [await result(client, task_id) for _ in range(4)]
        statuses[task_id] = [page["task"] for page in pages]
    assert statuses[expired][-1]["status"] == "TASK_STATUS_FAILED"
    assert "expired" in statuses[expired][-1]["reason"]
    # The raw word is shown as is, and is terminal: the steps after it never come.
    assert [t["status"] for t in statuses[raw]] == ["TASK_STATUS_QUEUED"] + ["TASK_STATUS_EXPIRED"] * 3
    assert double.jobs[raw].is_finished


async def test_unknown_and_foreign_tasks_are_not_found_and_task_id_is_required(
    double: NovitaDouble, client: httpx.AsyncClient
) -> None:
    task_id = (await submit(client, {"image": image_url(double)})).json()["task_id"]
    unknown = await client.get(RESULT, params={"task_id": "no-such-task"})
    foreign = await client.get(
        RESULT, params={"task_id": task_id}, headers={"Authorization": f"Bearer {OTHER_KEY}"}
    )
    missing = await client.get(RESULT)
    assert_novita_error(unknown, 404, "TASK_NOT_FOUND")
    assert_novita_error(foreign, 404, "TASK_NOT_FOUND")  # nothing leaks about another key's task
    assert_novita_error(missing, 400)
    assert double.jobs[task_id].polls == 0


async def test_a_held_task_waits_for_release_and_advance_moves_it_without_a_poll(
    double: NovitaDouble, client: httpx.AsyncClient
) -> None:
    double.script(Lifecycle.queued(1, hold=True).running().completes())
    task_id = (await submit(client, {"image": image_url(double)})).json()["task_id"]
    held = [(await result(client, task_id))["task"]["status"] for _ in range(3)]
    double.release(task_id)
    released = (await result(client, task_id))["task"]["status"]
    double.advance(task_id)
    assert double.jobs[task_id].status == "TASK_STATUS_SUCCEED"
    assert held == ["TASK_STATUS_QUEUED"] * 3
    assert released == "TASK_STATUS_PROCESSING"
    assert double.jobs[task_id].polls == 4


async def test_faults_render_in_novitas_error_shape(double: NovitaDouble, client: httpx.AsyncClient) -> None:
    double.inject("submit", Fault.rate_limited("7"))
    double.inject("submit", double.fault_for("balance"))
    double.inject("submit", Fault.error(503, message="backend timeout"))
    limited = await submit(client, {"image": image_url(double)})
    balance = await submit(client, {"image": image_url(double)})
    busy = await submit(client, {"image": image_url(double)})
    assert_novita_error(limited, 429, "RATE_LIMIT_EXCEEDED")
    assert limited.headers["retry-after"] == "7"
    assert_novita_error(balance, 403, "NOT_ENOUGH_BALANCE")
    assert assert_novita_error(busy, 503)["message"] == "backend timeout"
    assert double.submit_count == 0


async def test_a_dropped_submit_still_creates_the_task_and_malformed_answers_are_cut(
    double: NovitaDouble, client: httpx.AsyncClient
) -> None:
    double.inject("submit", Fault.drop())
    with pytest.raises(httpx.RemoteProtocolError):
        await submit(client, {"image": image_url(double)})
    job = await double.wait_for_submit()
    double.inject("status", Fault.malformed())
    broken = await client.get(RESULT, params={"task_id": job.id})
    assert broken.status_code == 200
    with pytest.raises(ValueError, match="Expecting|Unterminated"):
        broken.json()
    assert job.polls == 1  # handled, then spoilt


def test_there_is_no_cancel_route_to_inject_into() -> None:
    with pytest.raises(ValueError, match="no route 'cancel'"):
        NovitaDouble().inject("cancel", Fault.html(502))


async def test_expired_outputs_answer_403(double: NovitaDouble, client: httpx.AsyncClient) -> None:
    double.script(Lifecycle.quick())
    task_id = (await submit(client, {"image": image_url(double)})).json()["task_id"]
    await result(client, task_id)
    double.expire_outputs(task_id)
    async with httpx.AsyncClient() as anonymous:
        expired = await anonymous.get(double.video_url(task_id))
    assert expired.status_code == 403
    assert b"Request has expired" in expired.content
