"""The RunComfy double keeps the documented contract on its own, whatever client talks to it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.doubles.media import make_image, make_mp4, probe_mp4
from tests.doubles.runcomfy import Fault, Lifecycle, RunComfyDouble, running_in_thread

KEY = "double-key"
V1_5 = "bytedance/seedance-v1.5-pro/image-to-video"
V2 = "bytedance/seedance-2.0/pro"


@pytest.fixture
async def double() -> AsyncIterator[RunComfyDouble]:
    async with RunComfyDouble(api_keys=(KEY, "second-key")) as running:
        yield running


@pytest.fixture
async def client(double: RunComfyDouble) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=double.base_url, headers={"Authorization": f"Bearer {KEY}"}, timeout=5.0
    ) as http:
        yield http


def frame_url(double: RunComfyDouble, width: int = 640, height: int = 480, fmt: str = "PNG") -> str:
    return double.host_file(
        make_image(width, height, fmt=fmt), f"image/{fmt.lower()}", f"frame.{fmt.lower()}"
    )


async def submit(client: httpx.AsyncClient, model: str, body: dict[str, Any]) -> httpx.Response:
    return await client.post(f"/v1/models/{model}", json=body)


async def test_a_valid_submit_creates_a_job_and_answers_its_urls(
    double: RunComfyDouble, client: httpx.AsyncClient
) -> None:
    response = await submit(client, V1_5, {"prompt": "wave", "first_frame_image_url": frame_url(double)})
    assert response.status_code == 200
    request_id = response.json()["request_id"]
    assert response.json()["status_url"] == f"{double.base_url}/v1/requests/{request_id}/status"
    assert response.headers["x-request-id"] == double.requests_to("submit")[0].http_request_id
    assert double.jobs[request_id].api_key == KEY
    # RunComfy fetched the image itself.
    assert len(double.requests_to("hosted")) == 1


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({}, 401, 400004),
        ({"Authorization": "Bearer nope"}, 401, 400004),
        ({"Authorization": "Basic x"}, 401, 400004),
    ],
    ids=["missing", "unknown key", "not bearer"],
)
async def test_requests_without_a_known_bearer_are_refused(
    double: RunComfyDouble, headers: dict[str, str], status: int, code: int
) -> None:
    async with httpx.AsyncClient(base_url=double.base_url, headers=headers) as anonymous:
        response = await submit(anonymous, V1_5, {"prompt": "x", "first_frame_image_url": "http://x"})
    assert (response.status_code, response.json()["error_code"]) == (status, code)
    assert double.submit_count == 0


@pytest.mark.parametrize(
    ("model", "body", "field"),
    [
        (V1_5, {"prompt": "x"}, "first_frame_image_url"),
        (V1_5, {"prompt": "x", "first_frame_image_url": "URL", "duration": 3}, "duration"),
        (V1_5, {"prompt": "x", "first_frame_image_url": "URL", "duration": "5"}, "duration"),
        (V1_5, {"prompt": "x", "first_frame_image_url": "URL", "aspect_ratio": "16:9"}, "aspect_ratio"),
        (V1_5, {"prompt": "x", "first_frame_image_url": "URL", "generate_audio": "yes"}, "generate_audio"),
        (V1_5, {"prompt": "x", "first_frame_image_url": "URL", "resolution": "4k"}, "resolution"),
        (V2, {"prompt": "x", "ratio": "16:9"}, "ratio"),
        (V2, {"prompt": "x", "resolution": "1080p"}, "resolution"),
        (V2, {"prompt": "x", "duration": 16}, "duration"),
        (V2, {"prompt": "x", "seed": True}, "seed"),
        (V2, {"prompt": "x", "images": ["URL"] * 10}, "images"),
        (V2, {"prompt": 5}, "prompt"),
        # Seed 003's `tools` (web search) is a boolean, and only 2.0 has it.
        (V2, {"prompt": "x", "tools": "web_search"}, "tools"),
        (V2, {"prompt": "x", "tools": [{"type": "web_search"}]}, "tools"),
        (V1_5, {"prompt": "x", "first_frame_image_url": "URL", "tools": True}, "tools"),
    ],
)
async def test_bodies_outside_the_seed_schema_get_422_naming_the_field(
    double: RunComfyDouble, client: httpx.AsyncClient, model: str, body: dict[str, Any], field: str
) -> None:
    body = {name: frame_url(double) if value == "URL" else value for name, value in body.items()}
    response = await submit(client, model, body)
    assert response.status_code == 422
    assert response.json()["field"] == field
    assert field in response.json()["error_message"]
    assert double.submit_count == 0


@pytest.mark.parametrize("tools", [True, False])
async def test_seedance_2_0_takes_web_search_as_a_boolean(
    double: RunComfyDouble, client: httpx.AsyncClient, tools: bool
) -> None:
    response = await submit(client, V2, {"prompt": "today's weather in Paris", "tools": tools})
    assert response.status_code == 200
    assert double.jobs[response.json()["request_id"]].body["tools"] is tools


@pytest.mark.parametrize(
    ("width", "height", "reason"),
    [
        (300, 640, "must not be less than 300 pixels"),
        (640, 300, "must not be less than 300 pixels"),
        (1000, 400, "aspect ratio range should be between 0.4 and 2.5"),
        (400, 1000, "aspect ratio range should be between 0.4 and 2.5"),
    ],
)
async def test_first_frames_break_the_seed_validations_with_the_seed_text(
    double: RunComfyDouble, client: httpx.AsyncClient, width: int, height: int, reason: str
) -> None:
    url = frame_url(double, width, height)
    response = await submit(client, V1_5, {"prompt": "x", "first_frame_image_url": url})
    assert response.status_code == 422
    assert reason in response.json()["error_message"]


async def test_images_just_inside_the_limits_pass(double: RunComfyDouble, client: httpx.AsyncClient) -> None:
    for width, height in ((301, 301), (749, 301), (301, 749)):
        response = await submit(
            client, V1_5, {"prompt": "x", "first_frame_image_url": frame_url(double, width, height)}
        )
        assert response.status_code == 200, (width, height, response.text)


async def test_a_url_that_is_not_an_image_or_not_reachable_is_refused(
    double: RunComfyDouble, client: httpx.AsyncClient
) -> None:
    text_url = double.host_file(b"hello", "text/plain", "notes.txt")
    not_image = await submit(client, V1_5, {"prompt": "x", "first_frame_image_url": text_url})
    missing = await submit(
        client, V2, {"prompt": "x", "images": [f"{double.base_url}/files/hosted/no/pe.png"]}
    )
    assert (not_image.status_code, missing.status_code) == (422, 422)
    assert "not an image" in not_image.json()["error_message"]
    assert missing.json()["field"] == "images"


async def test_both_spellings_of_the_2_0_image_array_are_accepted_by_default(
    double: RunComfyDouble, client: httpx.AsyncClient
) -> None:
    for field in ("images", "image_url"):
        response = await submit(client, V2, {"prompt": "x", field: [frame_url(double, fmt="JPEG")]})
        assert response.status_code == 200, response.text


async def test_unknown_models_requests_and_other_users_requests_have_their_codes(
    double: RunComfyDouble, client: httpx.AsyncClient
) -> None:
    unknown_model = await submit(client, "bytedance/seedance-9/ultra", {"prompt": "x"})
    unknown_request = await client.get("/v1/requests/does-not-exist/status")
    created = await submit(client, V2, {"prompt": "x"})
    foreign = await client.get(
        f"/v1/requests/{created.json()['request_id']}/status", headers={"Authorization": "Bearer second-key"}
    )
    assert (unknown_model.status_code, unknown_model.json()["error_code"]) == (400, 400001)
    assert (unknown_request.status_code, unknown_request.json()["error_code"]) == (404, 404001)
    assert (foreign.status_code, foreign.json()["error_code"]) == (403, 403001)


async def test_status_walks_the_lifecycle_and_result_serves_the_video(
    double: RunComfyDouble, client: httpx.AsyncClient
) -> None:
    double.script(Lifecycle.queued(2).running().completes(cost=0.5))
    request_id = (await submit(client, V2, {"prompt": "x"})).json()["request_id"]

    statuses = [(await client.get(f"/v1/requests/{request_id}/status")).json() for _ in range(5)]
    assert [(s["status"], s.get("queue_position")) for s in statuses] == [
        ("in_queue", 2),
        ("in_queue", 1),
        ("in_progress", None),
        ("completed", None),
        ("completed", None),
    ]
    result = (await client.get(f"/v1/requests/{request_id}/result", params={"include_cost": "true"})).json()
    assert result["status"] == "succeeded"
    assert result["cost"] == 0.5
    assert {"created_at", "finished_at"} <= set(result)
    async with httpx.AsyncClient() as anonymous:  # output files download without auth
        video = await anonymous.get(result["output"]["video"])
    assert video.content == double.video
    assert video.headers["content-type"] == "video/mp4"
    plain = (await client.get(f"/v1/requests/{request_id}/result")).json()
    assert "cost" not in plain


async def test_a_held_job_waits_for_release(double: RunComfyDouble, client: httpx.AsyncClient) -> None:
    double.script(Lifecycle.running(hold=True).completes())
    request_id = (await submit(client, V2, {"prompt": "x"})).json()["request_id"]
    path = f"/v1/requests/{request_id}/status"
    held = [(await client.get(path)).json()["status"] for _ in range(4)]
    double.release(request_id)
    released = (await client.get(path)).json()["status"]
    assert held == ["in_progress"] * 4
    assert released == "completed"


async def test_cancel_only_succeeds_while_queued(double: RunComfyDouble, client: httpx.AsyncClient) -> None:
    double.script(Lifecycle.queued(1).running().completes())
    double.script(Lifecycle.running().completes())
    queued = (await submit(client, V2, {"prompt": "x"})).json()["request_id"]
    running = (await submit(client, V2, {"prompt": "x"})).json()["request_id"]
    first = await client.post(f"/v1/requests/{queued}/cancel")
    second = await client.post(f"/v1/requests/{running}/cancel")
    assert (first.status_code, first.json()["outcome"]) == (202, "cancelled")
    assert (second.status_code, second.json()["outcome"]) == (202, "not_cancellable")
    assert (await client.get(f"/v1/requests/{queued}/status")).json()["status"] == "cancelled"


async def test_a_dropped_submit_still_creates_the_job(
    double: RunComfyDouble, client: httpx.AsyncClient
) -> None:
    double.inject("submit", Fault.drop())
    with pytest.raises(httpx.RemoteProtocolError):
        await submit(client, V2, {"prompt": "x"})
    assert double.submit_count == 1


async def test_faults_apply_once_each_in_order(double: RunComfyDouble, client: httpx.AsyncClient) -> None:
    double.inject("submit", Fault.rate_limited("9"))
    double.inject("submit", Fault.html(502))
    limited = await submit(client, V2, {"prompt": "x"})
    html = await submit(client, V2, {"prompt": "x"})
    fine = await submit(client, V2, {"prompt": "x"})
    assert (limited.status_code, limited.headers["retry-after"]) == (429, "9")
    assert (html.status_code, html.headers["content-type"].split(";")[0]) == (502, "text/html")
    assert fine.status_code == 200
    assert double.submit_count == 1


async def test_wait_for_submit_resolves_when_a_job_arrives(
    double: RunComfyDouble, client: httpx.AsyncClient
) -> None:
    waiter = asyncio.create_task(double.wait_for_submit())
    response = await submit(client, V2, {"prompt": "x"})
    job = await waiter
    assert job.request_id == response.json()["request_id"]


def test_the_double_runs_in_a_thread_for_synchronous_callers() -> None:
    with running_in_thread(RunComfyDouble(api_keys=(KEY,))) as double:
        response = httpx.post(
            f"{double.base_url}/v1/models/{V2}",
            json={"prompt": "x"},
            headers={"Authorization": f"Bearer {KEY}"},
        )
    assert response.status_code == 200
    assert double.submit_count == 1


def test_lifecycles_build_the_same_from_the_class_or_an_instance() -> None:
    assert Lifecycle.queued(2).running(1).completes() == Lifecycle().queued(2).running(1).completes()
    assert [step.status for step in Lifecycle.queued(2).expires().steps] == [
        "in_queue",
        "in_queue",
        "expired",
    ]


@pytest.mark.parametrize("audio", [False, True])
def test_make_mp4_writes_seedance_shaped_h264(audio: bool) -> None:
    info = probe_mp4(make_mp4(2.0, width=96, height=64, audio=audio))
    assert (info.codec, info.width, info.height, info.frames, info.has_audio) == ("h264", 96, 64, 49, audio)
    assert info.duration_s == pytest.approx(49 / 24, abs=0.01)
