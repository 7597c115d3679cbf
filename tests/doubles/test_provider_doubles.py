"""The control surface all three provider doubles share: the same knobs, records, hooks and faults, so a
contract test can drive any of them with the same code. Protocol details live in each double's own tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.doubles.ark import ArkDouble
from tests.doubles.media import make_image
from tests.doubles.novita import NovitaDouble
from tests.doubles.provider_double import (
    FAULT_KINDS,
    Fault,
    Lifecycle,
    ProviderDouble,
    StepKind,
    running_in_thread,
)
from tests.doubles.runcomfy import RunComfyDouble

KEY = "shared-key"


@dataclass(frozen=True)
class Speaker:
    """How to submit and poll on one double, in its own protocol."""

    make: Callable[[], ProviderDouble[Any]]
    submit_request: Callable[[str], tuple[str, dict[str, Any]]]  # frame URL -> (path, JSON body)
    job_id: Callable[[httpx.Response], str]
    poll: Callable[[httpx.AsyncClient, str], Awaitable[httpx.Response]]
    status: Callable[[httpx.Response], str]
    error_message: Callable[[httpx.Response], str]
    base_path: str

    async def submit(self, http: httpx.AsyncClient, url: str) -> httpx.Response:
        path, body = self.submit_request(url)
        return await http.post(path, json=body)


SPEAKERS = {
    "runcomfy": Speaker(
        make=lambda: RunComfyDouble(api_keys=(KEY,)),
        submit_request=lambda url: (
            "/v1/models/bytedance/seedance-v1.5-pro/image-to-video",
            {"prompt": "x", "first_frame_image_url": url},
        ),
        job_id=lambda response: response.json()["request_id"],
        poll=lambda http, job_id: http.get(f"/v1/requests/{job_id}/status"),
        status=lambda response: response.json()["status"],
        error_message=lambda response: response.json()["error_message"],
        base_path="",
    ),
    "novita": Speaker(
        make=lambda: NovitaDouble(api_keys=(KEY,)),
        submit_request=lambda url: ("/v3/async/seedance-v1.5-pro-i2v", {"image": url}),
        job_id=lambda response: response.json()["task_id"],
        poll=lambda http, job_id: http.get("/v3/async/task-result", params={"task_id": job_id}),
        status=lambda response: response.json()["task"]["status"],
        error_message=lambda response: response.json()["message"],
        base_path="",
    ),
    "ark": Speaker(
        make=lambda: ArkDouble(api_keys=(KEY,)),
        submit_request=lambda url: (
            "/contents/generations/tasks",
            {
                "model": "seedance-1-5-pro-251215",
                "content": [{"type": "image_url", "image_url": {"url": url}, "role": "first_frame"}],
            },
        ),
        job_id=lambda response: response.json()["id"],
        poll=lambda http, job_id: http.get(f"/contents/generations/tasks/{job_id}"),
        status=lambda response: response.json()["status"],
        error_message=lambda response: response.json()["error"]["message"],
        base_path="/api/v3",
    ),
}


@pytest.fixture(params=list(SPEAKERS))
def speaker(request: pytest.FixtureRequest) -> Speaker:
    return SPEAKERS[request.param]


@pytest.fixture
async def double(speaker: Speaker) -> AsyncIterator[ProviderDouble[Any]]:
    async with speaker.make() as running:
        yield running


@pytest.fixture
async def http(double: ProviderDouble[Any]) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=double.base_url, headers={"Authorization": f"Bearer {KEY}"}, timeout=5.0
    ) as client:
        yield client


def frame_url(double: ProviderDouble[Any]) -> str:
    return double.host_file(make_image(640, 480), "image/png", "frame.png")


async def submitted(speaker: Speaker, double: ProviderDouble[Any], http: httpx.AsyncClient) -> str:
    response = await speaker.submit(http, frame_url(double))
    assert response.status_code == 200, response.text
    return speaker.job_id(response)


async def test_base_url_is_the_loopback_origin_plus_the_providers_base_path(
    speaker: Speaker, double: ProviderDouble[Any]
) -> None:
    assert double.base_url.startswith("http://127.0.0.1:")
    assert double.base_url == double.origin + speaker.base_path
    assert double.api_keys == {KEY}


async def test_the_default_lifecycle_is_queued_running_then_succeeded(
    speaker: Speaker, double: ProviderDouble[Any], http: httpx.AsyncClient
) -> None:
    job_id = await submitted(speaker, double, http)
    kinds = []
    for _ in range(4):
        (await speaker.poll(http, job_id)).raise_for_status()
        kinds.append(double.jobs[job_id].kind)
    assert kinds == [StepKind.QUEUED, StepKind.RUNNING, StepKind.SUCCEEDED, StepKind.SUCCEEDED]
    job = await double.wait_for_polls(job_id, 4)
    assert (job.id, job.api_key, job.polls, job.cancel_requests, job.cancelled, job.deleted) == (
        job_id,
        KEY,
        4,
        0,
        False,
        False,
    )
    async with httpx.AsyncClient() as anonymous:
        video = await anonymous.get(double.video_url(job_id))
        double.expire_outputs(job_id)
        expired = await anonymous.get(double.video_url(job_id))
    assert (video.status_code, video.content, expired.status_code) == (200, double.video, 403)


async def test_scripts_holds_releases_and_advances_work_alike(
    speaker: Speaker, double: ProviderDouble[Any], http: httpx.AsyncClient
) -> None:
    double.script(Lifecycle.queued(1, hold=True).running().fails("boom"))
    job_id = await submitted(speaker, double, http)
    for _ in range(3):
        await speaker.poll(http, job_id)
    assert double.jobs[job_id].kind is StepKind.QUEUED
    double.release(job_id)
    await speaker.poll(http, job_id)
    assert double.jobs[job_id].kind is StepKind.RUNNING
    double.advance(job_id)
    assert double.jobs[job_id].kind is StepKind.FAILED
    assert double.jobs[job_id].polls == 4


async def test_a_raw_status_word_is_shown_as_is(
    speaker: Speaker, double: ProviderDouble[Any], http: httpx.AsyncClient
) -> None:
    double.script(Lifecycle.step("paused_for_maintenance"))
    job_id = await submitted(speaker, double, http)
    assert speaker.status(await speaker.poll(http, job_id)) == "paused_for_maintenance"
    assert double.jobs[job_id].kind is StepKind.RAW


async def test_one_fault_renders_in_each_providers_error_shape(
    speaker: Speaker, double: ProviderDouble[Any], http: httpx.AsyncClient
) -> None:
    job_id = await submitted(speaker, double, http)
    double.inject("status", Fault.error(500, message="upstream exploded"))
    double.inject("status", Fault.rate_limited("3"))
    double.inject("status", Fault.html(502))
    broken = await speaker.poll(http, job_id)
    limited = await speaker.poll(http, job_id)
    html = await speaker.poll(http, job_id)
    assert (broken.status_code, speaker.error_message(broken)) == (500, "upstream exploded")
    assert (limited.status_code, limited.headers["retry-after"]) == (429, "3")
    assert (html.status_code, html.headers["content-type"].split(";")[0]) == (502, "text/html")
    assert double.jobs[job_id].polls == 0  # answered instead: the requests were not handled
    await double.wait_for_requests("status", 3)
    assert [r.http_request_id for r in double.requests_to("status")] == [
        response.headers["x-request-id"] for response in (broken, limited, html)
    ]


async def test_fault_for_knows_every_kind(double: ProviderDouble[Any]) -> None:
    faults = {kind: double.fault_for(kind) for kind in sorted(FAULT_KINDS)}  # type: ignore[arg-type]
    assert all(400 <= fault.status < 500 for fault in faults.values())
    assert faults["auth"].status == 401
    assert faults["rate_limit"].status == 429
    assert ("Retry-After", "2") in faults["rate_limit"].headers
    assert faults["not_found"].status == 404
    with pytest.raises(ValueError, match="unknown fault kind"):
        double.fault_for("teapot")  # type: ignore[arg-type]


async def test_dropped_and_delayed_submits_create_their_jobs(
    speaker: Speaker, double: ProviderDouble[Any], http: httpx.AsyncClient
) -> None:
    double.inject("submit", Fault.drop())
    with pytest.raises(httpx.RemoteProtocolError):
        await speaker.submit(http, frame_url(double))
    assert double.submit_count == 1
    double.inject("submit", Fault.delay(30))
    async with httpx.AsyncClient(base_url=double.base_url, headers=http.headers, timeout=0.1) as impatient:
        with pytest.raises(httpx.ReadTimeout):
            await speaker.submit(impatient, frame_url(double))
    job = await double.wait_for_submit(2)  # created before its answer was held back
    assert job.api_key == KEY


async def test_unknown_routes_are_refused_by_inject(double: ProviderDouble[Any]) -> None:
    with pytest.raises(ValueError, match="has no route"):
        double.inject("teapot", Fault.html(418))


def test_each_double_runs_in_a_thread_for_synchronous_callers(speaker: Speaker) -> None:
    with running_in_thread(speaker.make()) as double:
        path, body = speaker.submit_request(frame_url(double))
        with httpx.Client(base_url=double.base_url, headers={"Authorization": f"Bearer {KEY}"}) as client:
            job_id = speaker.job_id(client.post(path, json=body))
        double.advance(job_id)  # knobs work from the test's thread
        double.advance(job_id)
    assert double.jobs[job_id].kind is StepKind.SUCCEEDED
