"""The ModelArk double keeps the documented contract on its own, whatever client talks to it."""

from __future__ import annotations

import base64
import re
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiohttp import web

from tests.doubles.ark import ARK_MODELS, ArkDouble, Fault, Lifecycle, volcengine_models
from tests.doubles.media import make_image, make_mp4, make_wav

KEY = "ark-key"
OTHER_KEY = "other-ark-key"
V1_0 = "seedance-1-0-pro-250528"
V1_0_FAST = "seedance-1-0-pro-fast-251015"
V1_5 = "seedance-1-5-pro-251215"
V2 = "dreamina-seedance-2-0-260128"
TASKS = "/contents/generations/tasks"


@pytest.fixture
async def double() -> AsyncIterator[ArkDouble]:
    async with ArkDouble(
        api_keys=(KEY, OTHER_KEY), inactive_models=("seedance-1-0-lite-i2v-250428",)
    ) as running:
        running.models["seedance-1-0-lite-i2v-250428"] = ARK_MODELS[V1_0]
        yield running


@pytest.fixture
async def client(double: ArkDouble) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=double.base_url, headers={"Authorization": f"Bearer {KEY}"}, timeout=5.0
    ) as http:
        yield http


class Receiver:
    """A callback receiver on 127.0.0.1 that records each POSTed body."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.bodies: list[dict[str, Any]] = []
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        self.bodies.append(await request.json())
        return web.Response(status=self.status)

    async def __aenter__(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/hook"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()


def image(double: ArkDouble, width: int = 640, height: int = 480) -> str:
    return double.host_file(make_image(width, height), "image/png", "frame.png")


def text(prompt: str = "a cat turns its head") -> dict[str, Any]:
    return {"type": "text", "text": prompt}


def frame(url: str, role: str | None = "first_frame") -> dict[str, Any]:
    item: dict[str, Any] = {"type": "image_url", "image_url": {"url": url}}
    if role is not None:
        item["role"] = role
    return item


def video(url: str) -> dict[str, Any]:
    return {"type": "video_url", "video_url": {"url": url}, "role": "reference_video"}


def audio(url: str) -> dict[str, Any]:
    return {"type": "audio_url", "audio_url": {"url": url}, "role": "reference_audio"}


async def create(client: httpx.AsyncClient, model: str, content: list[Any], **params: Any) -> httpx.Response:
    return await client.post(TASKS, json={"model": model, "content": content, **params})


async def create_id(client: httpx.AsyncClient, double: ArkDouble, model: str = V1_5, **params: Any) -> str:
    response = await create(client, model, [text(), frame(image(double))], **params)
    assert response.status_code == 200, response.text
    return response.json()["id"]


async def get(client: httpx.AsyncClient, task_id: str) -> dict[str, Any]:
    response = await client.get(f"{TASKS}/{task_id}")
    assert response.status_code == 200, response.text
    return response.json()


def assert_ark_error(response: httpx.Response, status: int, code: str, param: str | None = None) -> str:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"code", "message", "param", "type"}
    assert error["code"] == code
    if param is not None:
        assert error["param"] == param
    assert response.headers["x-request-id"]
    return error["message"]


async def test_a_valid_create_answers_an_id_and_records_the_task(
    double: ArkDouble, client: httpx.AsyncClient
) -> None:
    url = image(double)
    response = await create(client, V1_5, [text(), frame(url)], resolution="480p", duration=4, seed=7)
    assert response.status_code == 200, response.text
    task_id = response.json()["id"]
    assert set(response.json()) == {"id"}
    assert re.fullmatch(r"cgt-\d{14}-[a-z0-9]{5}", task_id)
    assert response.headers["x-request-id"] == double.requests_to("submit")[0].http_request_id
    job = double.jobs[task_id]
    assert (job.model_id, job.api_key, job.body["content"][1]["image_url"]["url"]) == (V1_5, KEY, url)
    assert double.base_url.endswith("/api/v3")
    assert len(double.requests_to("hosted")) == 1  # Ark fetched the image itself


async def test_a_lone_image_without_role_is_the_first_frame_and_a_data_uri_is_fine(
    double: ArkDouble, client: httpx.AsyncClient
) -> None:
    encoded = base64.b64encode(make_image(640, 640, fmt="JPEG")).decode()
    lone = await create(client, V1_5, [frame(f"data:image/jpeg;base64,{encoded}", role=None)])
    two = await create(client, V1_5, [frame(image(double), role=None), frame(image(double), role=None)])
    assert lone.status_code == 200, lone.text
    assert (await get(client, lone.json()["id"]))["ratio"] == "1:1"  # adaptive follows the first frame
    assert "role" in assert_ark_error(two, 400, "InvalidParameter", "content[0].role")


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer nope"}, {"Authorization": f"Basic {KEY}"}],
    ids=["missing", "unknown key", "not bearer"],
)
async def test_requests_without_a_known_bearer_get_401(double: ArkDouble, headers: dict[str, str]) -> None:
    async with httpx.AsyncClient(base_url=double.base_url, headers=headers) as anonymous:
        created = await create(anonymous, V1_5, [text()])
        listed = await anonymous.get(TASKS)
    assert_ark_error(created, 401, "AuthenticationError")
    assert created.json()["error"]["type"] == "Unauthorized"
    assert_ark_error(listed, 401, "AuthenticationError")
    assert double.submit_count == 0


async def test_unknown_and_inactive_models_are_404_and_other_model_tables_can_be_given(
    double: ArkDouble, client: httpx.AsyncClient
) -> None:
    unknown = await create(client, "seedance-9-ultra", [text()])
    inactive = await create(client, "seedance-1-0-lite-i2v-250428", [text()])
    missing = await client.post(TASKS, json={"content": [text()]})
    assert_ark_error(unknown, 404, "InvalidEndpoint.NotFound", "model")
    assert_ark_error(inactive, 404, "ModelNotOpen", "model")
    assert_ark_error(missing, 400, "MissingParameter", "model")
    async with (
        ArkDouble(api_keys=(KEY,), models=volcengine_models()) as volcengine,
        httpx.AsyncClient(base_url=volcengine.base_url, headers={"Authorization": f"Bearer {KEY}"}) as http,
    ):
        doubao = await create(http, "doubao-seedance-1-5-pro-251215", [text()])
        byteplus = await create(http, V1_5, [text()])
    assert doubao.status_code == 200, doubao.text
    assert_ark_error(byteplus, 404, "InvalidEndpoint.NotFound")


URL = "URL"  # replaced by a hosted image in the test


@pytest.mark.parametrize(
    ("model", "content", "message"),
    [
        (V1_5, [], "non-empty list"),
        (V1_5, [{"type": "image", "image": {"url": URL}}], "must be one of text, image_url"),
        (V1_5, [text(), text()], "at most one text"),
        (V1_5, [{"type": "text", "text": 5}], "must be a string"),
        (V1_5, [{"type": "text", "text": "x", "role": "prompt"}], "unknown field"),
        (V1_5, [{"type": "image_url", "image_url": URL}], '{"url": "..."}'),
        (V1_5, [{"type": "image_url", "image_url": {"url": URL, "detail": "high"}}], '{"url": "..."}'),
        (V1_5, [frame(URL, "middle_frame")], "first_frame, last_frame, reference_image"),
        (V1_5, [frame(URL), frame(URL)], "at most one first_frame"),
        (V1_5, [frame(URL, "last_frame")], "needs a first_frame"),
        (V1_0_FAST, [frame(URL), frame(URL, "last_frame")], "does not take a last_frame"),
        (V2, [frame(URL), frame(URL, "reference_image")], "cannot be combined"),
        (V2, [frame(URL, "reference_image")] * 10, "at most 9 reference images"),
        (
            V2,
            [frame(URL, "reference_image"), *[video("https://example.com/v.mp4")] * 4],
            "at most 3 reference videos",
        ),
        (
            V2,
            [frame(URL, "reference_image"), *[audio("https://example.com/a.wav")] * 4],
            "at most 3 reference audios",
        ),
        (V2, [text(), audio("https://example.com/a.wav")], "needs at least one image or video"),
        (V2, [{"type": "video_url", "video_url": {"url": "https://example.com/v.mp4"}}], "role"),
        (V2, [video("data:video/mp4;base64,AAAA")], "must be an http(s) URL"),
        (V2, [frame("ftp://example.com/a.png", "reference_image")], "http(s) URL or a base64 data URI"),
        (V1_5, [frame(URL, "reference_image")], "does not take reference images"),
        (V1_0, [text(), video("https://example.com/v.mp4")], "does not take reference"),
    ],
)
async def test_content_that_breaks_the_documented_rules_is_refused(
    double: ArkDouble, client: httpx.AsyncClient, model: str, content: list[Any], message: str
) -> None:
    response_url = image(double)

    def fill(value: Any) -> Any:
        if value == URL:
            return response_url
        if isinstance(value, dict):
            return {key: fill(item) for key, item in value.items()}
        if isinstance(value, list):
            return [fill(item) for item in value]
        return value

    filled = fill(content)
    response = await create(client, model, filled)
    assert message in assert_ark_error(response, 400, "InvalidParameter")
    assert double.submit_count == 0
    assert double.requests_to("hosted") == []  # refused before any media is fetched


@pytest.mark.parametrize(
    ("model", "params", "param"),
    [
        (V1_5, {"durations": 5}, "durations"),
        (V1_5, {"aspect_ratio": "16:9"}, "aspect_ratio"),
        (V1_0, {"duration": 1}, "duration"),
        (V1_0, {"duration": 13}, "duration"),
        (V1_5, {"duration": 3}, "duration"),
        (V2, {"duration": 16}, "duration"),
        (V1_5, {"duration": "5"}, "duration"),
        (V2, {"resolution": "1080p"}, "resolution"),
        (V1_5, {"ratio": "2:1"}, "ratio"),
        (V2, {"camera_fixed": True}, "camera_fixed"),
        (V1_0, {"generate_audio": False}, "generate_audio"),
        (V1_5, {"generate_audio": 1}, "generate_audio"),
        (V1_5, {"watermark": "yes"}, "watermark"),
        (V1_5, {"return_last_frame": 0}, "return_last_frame"),
        (V1_5, {"seed": -2}, "seed"),
        (V1_5, {"seed": 4_294_967_296}, "seed"),
        (V1_5, {"service_tier": "batch"}, "service_tier"),
        (V1_5, {"execution_expires_after": 3599}, "execution_expires_after"),
        (V1_5, {"execution_expires_after": 259_201}, "execution_expires_after"),
        (V1_5, {"callback_url": "ftp://example.com/hook"}, "callback_url"),
        (V1_5, {"frames": 29}, "frames"),
        (V1_0, {"frames": 30}, "frames"),
        (V1_0, {"frames": 29, "duration": 2}, "frames"),
        (V1_0, {"draft": True}, "draft"),
        (V1_5, {"tools": [{"type": "web_search"}]}, "tools"),
        (V2, {"tools": True}, "tools"),  # a list of {"type": ...}, not RunComfy's boolean
        (V1_5, {"priority": "high"}, "priority"),
    ],
)
async def test_parameters_the_model_does_not_take_are_refused_with_param_set(
    double: ArkDouble, client: httpx.AsyncClient, model: str, params: dict[str, Any], param: str
) -> None:
    response = await create(client, model, [text()], **params)
    message = assert_ark_error(response, 400, "InvalidParameter", param)
    assert f"`{param}`" in message
    assert double.submit_count == 0


async def test_null_parameters_count_as_absent_and_edge_values_pass(
    double: ArkDouble, client: httpx.AsyncClient
) -> None:
    nulls = dict.fromkeys(
        ["resolution", "ratio", "duration", "seed", "callback_url", "safety_identifier", "tools"]
    )
    accepted = [
        await create(client, V1_5, [text()], **nulls),
        await create(client, V1_0, [text()], duration=2, camera_fixed=True, seed=-1),
        await create(client, V1_0, [text()], frames=289, resolution="480p"),
        await create(
            client, V1_5, [text()], duration=12, resolution="1080p", draft=True, service_tier="flex"
        ),
        await create(client, V2, [text()], duration=15, resolution="480p", generate_audio=False),
        await create(
            client, V2, [text()], duration=4, tools=[{"type": "web_search"}], execution_expires_after=3600
        ),
    ]
    assert [response.status_code for response in accepted] == [200] * 6, [r.text for r in accepted]


async def test_media_is_fetched_and_judged(double: ArkDouble, client: httpx.AsyncClient) -> None:
    small = await create(client, V1_5, [frame(image(double, 300, 500))])
    wide = await create(client, V1_5, [frame(image(double, 1000, 400))])
    gone = await create(client, V1_5, [frame(f"{double.origin}/files/hosted/no/such.png")])
    ref = frame(image(double), "reference_image")
    short_video = double.host_file(make_mp4(1.0), "video/mp4", "short.mp4")
    long_video = double.host_file(make_mp4(16.0), "video/mp4", "long.mp4")
    good_video = double.host_file(make_mp4(2.0), "video/mp4", "good.mp4")
    not_video = double.host_file(b"\0" * 1000, "video/mp4", "fake.mp4")
    picture = double.host_file(make_image(640, 480), "video/mp4", "picture.mp4")
    short_audio = double.host_file(make_wav(1.0), "audio/wav", "short.wav")
    good_audio = double.host_file(make_wav(3.0), "audio/wav", "good.wav")
    too_short = await create(client, V2, [ref, video(short_video)])
    too_long = await create(client, V2, [ref, video(long_video)])
    fake = await create(client, V2, [ref, video(not_video)])
    still = await create(client, V2, [ref, video(picture)])
    quiet = await create(client, V2, [ref, audio(short_audio)])
    assert "more than 300" in assert_ark_error(small, 400, "InvalidParameter", "content[0].image_url")
    assert "between 0.4 and 2.5" in assert_ark_error(wide, 400, "InvalidParameter")
    assert "HTTP 404" in assert_ark_error(gone, 400, "InvalidParameter")
    assert "from 2 to 15 seconds, got 1.04" in assert_ark_error(
        too_short, 400, "InvalidParameter", "content[1].video_url"
    )
    assert "from 2 to 15 seconds" in assert_ark_error(too_long, 400, "InvalidParameter")
    assert "not a video" in assert_ark_error(fake, 400, "InvalidParameter")
    assert "unsupported video format png_pipe" in assert_ark_error(still, 400, "InvalidParameter")
    assert "from 2 to 15 seconds" in assert_ark_error(quiet, 400, "InvalidParameter", "content[1].audio_url")
    assert double.submit_count == 0
    encoded_audio = base64.b64encode(make_wav(2.5)).decode()
    fine = await create(
        client,
        V2,
        [text(), ref, video(good_video), audio(good_audio), audio(f"data:audio/wav;base64,{encoded_audio}")],
    )
    assert fine.status_code == 200, fine.text


async def test_get_walks_the_lifecycle_and_succeeded_tasks_carry_content_and_usage(
    double: ArkDouble, client: httpx.AsyncClient
) -> None:
    double.script(Lifecycle.queued(2).running().completes())
    task_id = await create_id(
        client, double, V1_0, resolution="480p", ratio="16:9", duration=2, seed=11, return_last_frame=True
    )
    seen = [await get(client, task_id) for _ in range(5)]
    assert [task["status"] for task in seen] == ["queued", "queued", "running", "succeeded", "succeeded"]
    assert all("content" not in task and "usage" not in task and task["error"] is None for task in seen[:3])
    done = seen[-1]
    assert done["content"] == {
        "video_url": double.video_url(task_id),
        "last_frame_url": double.last_frame_url(task_id),
    }
    # The recorded real response: 1.0 pro, 480p, 16:9, 2 s -> 864 x 480 x 49 / 1024.
    assert done["usage"] == {"completion_tokens": 19845, "total_tokens": 19845}
    assert {key: done[key] for key in ("id", "model", "seed", "resolution", "ratio", "duration")} == {
        "id": task_id,
        "model": V1_0,
        "seed": 11,
        "resolution": "480p",
        "ratio": "16:9",
        "duration": 2,
    }
    assert (done["framespersecond"], done["service_tier"], done["execution_expires_after"]) == (
        24,
        "default",
        172800,
    )
    assert "generate_audio" not in done  # 1.0 has no audio
    assert isinstance(done["created_at"], int) and done["updated_at"] >= done["created_at"]
    async with httpx.AsyncClient() as anonymous:  # outputs download without auth
        mp4 = await anonymous.get(done["content"]["video_url"])
        png = await anonymous.get(done["content"]["last_frame_url"])
    assert (mp4.status_code, mp4.content, mp4.headers["content-type"]) == (200, double.video, "video/mp4")
    assert (png.status_code, png.headers["content-type"], png.content[:4]) == (200, "image/png", b"\x89PNG")


@pytest.mark.parametrize(
    ("model", "params", "tokens"),
    [
        (V1_5, {"resolution": "720p", "ratio": "16:9"}, 1280 * 720 * 121 // 1024),
        (V1_5, {"resolution": "480p", "ratio": "16:9", "duration": 4}, 864 * 496 * 97 // 1024),
        (V2, {"resolution": "480p", "ratio": "9:16", "duration": 10}, 496 * 864 * 241 // 1024),
        (V1_0, {"resolution": "1080p", "ratio": "1:1", "frames": 29}, 1440 * 1440 * 29 // 1024),
    ],
)
async def test_usage_is_width_times_height_times_frames_over_1024(
    double: ArkDouble, client: httpx.AsyncClient, model: str, params: dict[str, Any], tokens: int
) -> None:
    double.script(Lifecycle.quick())
    task = await get(client, await create_id(client, double, model, **params))
    assert task["usage"]["completion_tokens"] == tokens


async def test_failed_and_expired_tasks(double: ArkDouble, client: httpx.AsyncClient) -> None:
    double.script(
        Lifecycle.running().fails("The output may be sensitive.", code="OutputVideoSensitiveContentDetected")
    )
    double.script(Lifecycle.queued().expires())
    failed_id = await create_id(client, double)
    expired_id = await create_id(client, double)
    failed = [await get(client, failed_id) for _ in range(2)][-1]
    expired = [await get(client, expired_id) for _ in range(2)][-1]
    assert (failed["status"], failed["error"]) == (
        "failed",
        {"code": "OutputVideoSensitiveContentDetected", "message": "The output may be sensitive."},
    )
    assert "content" not in failed
    assert (expired["status"], expired["error"]) == ("expired", None)


async def test_delete_cancels_queued_deletes_finished_and_refuses_running_or_cancelled(
    double: ArkDouble, client: httpx.AsyncClient
) -> None:
    double.script(Lifecycle.queued(2).running().completes())  # queued
    double.script(Lifecycle.running().completes())  # running
    double.script(Lifecycle.quick())  # succeeded
    double.script(Lifecycle.fails("boom"))  # failed
    double.script(Lifecycle.expires())  # expired
    queued, running, succeeded, failed, expired = [await create_id(client, double) for _ in range(5)]

    cancel = await client.delete(f"{TASKS}/{queued}")
    assert (cancel.status_code, cancel.json()) == (200, {})
    assert (await get(client, queued))["status"] == "cancelled"
    again = await client.delete(f"{TASKS}/{queued}")
    assert "cancelled" in assert_ark_error(again, 400, "InvalidAction.TaskStatusNotAllowed")
    busy = await client.delete(f"{TASKS}/{running}")
    assert "running" in assert_ark_error(busy, 400, "InvalidAction.TaskStatusNotAllowed")

    for task_id in (succeeded, failed, expired):
        deleted = await client.delete(f"{TASKS}/{task_id}")
        assert (deleted.status_code, deleted.json()) == (200, {})
        assert double.jobs[task_id].deleted
        assert_ark_error(await client.get(f"{TASKS}/{task_id}"), 404, "ResourceNotFound")
        assert_ark_error(await client.delete(f"{TASKS}/{task_id}"), 404, "ResourceNotFound")
    listed = (await client.get(TASKS)).json()
    assert {item["id"] for item in listed["items"]} == {queued, running}
    foreign = await client.delete(f"{TASKS}/{running}", headers={"Authorization": f"Bearer {OTHER_KEY}"})
    assert_ark_error(foreign, 404, "ResourceNotFound")
    assert [job.cancel_requests for job in double.jobs.values()] == [2, 1, 1, 1, 1]


async def test_list_filters_and_pages_newest_first(double: ArkDouble, client: httpx.AsyncClient) -> None:
    double.script(Lifecycle.quick())
    done = await create_id(client, double, V1_5)
    await get(client, done)
    first = await create_id(client, double, V1_0)
    second = await create_id(client, double, V1_5, service_tier="flex")
    async with httpx.AsyncClient(
        base_url=double.base_url, headers={"Authorization": f"Bearer {OTHER_KEY}"}
    ) as other:
        await create(other, V1_5, [text()])

    async def listed(*params: tuple[str, str | int]) -> dict[str, Any]:
        response = await client.get(TASKS, params=list(params))
        assert response.status_code == 200, response.text
        return response.json()

    everything = await listed()
    assert (everything["total"], [item["id"] for item in everything["items"]]) == (3, [second, first, done])
    assert everything["items"][2]["status"] == "succeeded"
    assert [i["id"] for i in (await listed(("filter.status", "queued")))["items"]] == [second, first]
    assert [i["id"] for i in (await listed(("filter.model", V1_0)))["items"]] == [first]
    ids = await listed(("filter.task_ids", done), ("filter.task_ids", second))
    assert [i["id"] for i in ids["items"]] == [second, done]
    assert [i["id"] for i in (await listed(("filter.service_tier", "flex")))["items"]] == [second]
    page = await listed(("page_num", 2), ("page_size", 2))
    assert (page["total"], [i["id"] for i in page["items"]]) == (3, [done])
    assert (await listed(("page_num", 3), ("page_size", 2)))["items"] == []
    assert (await listed(("page_size", 500)))["total"] == 3
    for name, value in [("page_size", "0"), ("page_size", "501"), ("page_num", "0"), ("page_num", "x")]:
        assert_ark_error(await client.get(TASKS, params={name: value}), 400, "InvalidParameter", name)
    assert_ark_error(
        await client.get(TASKS, params={"filter.status": "done"}), 400, "InvalidParameter", "filter.status"
    )
    assert_ark_error(await client.get(TASKS, params={"status": "queued"}), 400, "InvalidParameter", "status")
    assert all(job.polls == 0 for job in double.jobs.values() if job.id != done)  # listing is not polling


async def test_at_most_the_queue_limit_of_tasks_wait_per_key() -> None:
    async with (
        ArkDouble(api_keys=(KEY, OTHER_KEY), max_queued_per_key=2) as double,
        httpx.AsyncClient(base_url=double.base_url, headers={"Authorization": f"Bearer {KEY}"}) as http,
    ):
        first = await create_id(http, double)
        await create_id(http, double)
        full = await create(http, V1_5, [text()])
        assert "at most 2" in assert_ark_error(full, 429, "RateLimitExceeded.QueueFull")
        other = await http.post(
            TASKS,
            json={"model": V1_5, "content": [text()]},
            headers={"Authorization": f"Bearer {OTHER_KEY}"},
        )
        assert other.status_code == 200  # the limit is per key
        double.advance(first)  # running now: a place in the queue is free
        assert (await create(http, V1_5, [text()])).status_code == 200
        assert double.submit_count == 4


async def test_callbacks_are_posted_on_every_status_change(
    double: ArkDouble, client: httpx.AsyncClient
) -> None:
    double.script(Lifecycle.queued().running().completes())
    double.script(Lifecycle.queued(2).running().completes())
    async with Receiver() as receiver:
        task_id = await create_id(client, double, callback_url=receiver.url)
        await get(client, task_id)  # first GET: no change
        await get(client, task_id)  # queued -> running
        double.advance(task_id)  # running -> succeeded, without a poll
        deliveries = await double.wait_for_callbacks(3)
        cancelled_id = await create_id(client, double, callback_url=receiver.url)
        (await client.delete(f"{TASKS}/{cancelled_id}")).raise_for_status()
        deliveries = await double.wait_for_callbacks(5)
        final = await get(client, task_id)
    assert [d.body["status"] for d in deliveries] == ["queued", "running", "succeeded", "queued", "cancelled"]
    assert [d.status for d in deliveries] == [200] * 5
    assert {d.url for d in deliveries} == {receiver.url}
    assert receiver.bodies == [d.body for d in deliveries]
    assert deliveries[2].body == final  # the same shape as GET
    assert deliveries[2].body["content"]["video_url"] == double.video_url(task_id)


async def test_callback_failures_are_recorded_and_tasks_without_callback_url_send_none(
    double: ArkDouble, client: httpx.AsyncClient
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    async with Receiver(status=500) as failing:
        await create_id(client, double, callback_url=failing.url)
        await create_id(client, double)
        await create_id(client, double, callback_url=f"http://127.0.0.1:{closed_port}/hook")
        deliveries = await double.wait_for_callbacks(2)
    assert (deliveries[0].status, deliveries[0].error) == (500, None)
    assert deliveries[1].status is None
    assert "ClientConnectorError" in (deliveries[1].error or "")
    assert len(double.callbacks) == 2


async def test_faults_render_in_arks_error_shape_and_fault_for_gives_real_codes(
    double: ArkDouble, client: httpx.AsyncClient
) -> None:
    expected = {
        "auth": (401, "AuthenticationError"),
        "balance": (403, "AccountOverdueError"),
        "moderation": (400, "InputTextSensitiveContentDetected"),
        "model_unavailable": (404, "ModelNotOpen"),
        "rate_limit": (429, "RateLimitExceeded.EndpointRPMExceeded"),
        "bad_request": (400, "InvalidParameter"),
        "not_found": (404, "ResourceNotFound"),
    }
    for kind, (status, code) in expected.items():
        double.inject("submit", double.fault_for(kind))  # type: ignore[arg-type]
        assert_ark_error(await create(client, V1_5, [text()]), status, code)
    double.inject("list", Fault.rate_limited("5"))
    double.inject("list", Fault.error(500, message="boom"))
    limited = await client.get(TASKS)
    broken = await client.get(TASKS)
    assert_ark_error(limited, 429, "RateLimitExceeded.EndpointRPMExceeded")
    assert limited.headers["retry-after"] == "5"
    assert assert_ark_error(broken, 500, "InternalServiceError") == "boom"
    assert double.submit_count == 0


async def test_a_dropped_create_still_creates_the_task(double: ArkDouble, client: httpx.AsyncClient) -> None:
    double.inject("submit", Fault.drop())
    with pytest.raises(httpx.RemoteProtocolError):
        await create(client, V1_5, [text()])
    job = await double.wait_for_submit()
    assert job.status == "queued"
    double.inject("cancel", Fault.malformed())
    spoilt = await client.delete(f"{TASKS}/{job.id}")
    assert (spoilt.status_code, spoilt.content) == (200, b"{")
    assert job.cancelled  # handled, then spoilt


async def test_expired_outputs_answer_403(double: ArkDouble, client: httpx.AsyncClient) -> None:
    double.script(Lifecycle.quick())
    task_id = await create_id(client, double, return_last_frame=True)
    content = (await get(client, task_id))["content"]
    double.expire_outputs(task_id)
    async with httpx.AsyncClient() as anonymous:
        statuses = [(await anonymous.get(url)).status_code for url in content.values()]
    assert statuses == [403, 403]
