"""The official ModelArk SDK (`volcengine-ark-runtime`, import `volcenginesdkarkruntime`) against the Ark
double: whatever the official client sends, the double must accept, and what the double answers, the official
client must understand. A refusal here is a bug in the double."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.doubles.ark import ArkDouble, Fault, Lifecycle
from tests.doubles.media import make_image

ark_sdk = pytest.importorskip("volcenginesdkarkruntime")
# The SDK exports its error types only from this private module.
ark_errors = pytest.importorskip("volcenginesdkarkruntime._exceptions")

KEY = "sdk-key"
V1_5 = "seedance-1-5-pro-251215"
V1_0 = "seedance-1-0-pro-250528"


@pytest.fixture
async def double() -> AsyncIterator[ArkDouble]:
    async with ArkDouble(api_keys=(KEY,)) as running:
        yield running


@pytest.fixture
async def ark(double: ArkDouble) -> AsyncIterator[Any]:
    client = ark_sdk.AsyncArk(base_url=double.base_url, api_key=KEY, max_retries=0)
    try:
        yield client
    finally:
        await client.close()


def first_frame_content(double: ArkDouble, prompt: str = "the cat turns its head") -> list[dict[str, Any]]:
    url = double.host_file(make_image(1280, 720, fmt="JPEG"), "image/jpeg", "frame.jpg")
    return [
        {"type": "text", "text": prompt},
        {"type": "image_url", "image_url": {"url": url}, "role": "first_frame"},
    ]


async def test_create_then_get_until_succeeded(double: ArkDouble, ark: Any) -> None:
    double.script(Lifecycle.queued(1).running(2).completes())
    created = await ark.content_generation.tasks.create(
        model=V1_5,
        content=first_frame_content(double),
        resolution="720p",
        ratio="adaptive",
        duration=5,
        generate_audio=False,
        return_last_frame=True,
        seed=1234,
    )
    job = double.jobs[created.id]
    # The SDK sends every parameter it knows, null when not given; the double takes null as absent.
    assert job.body["callback_url"] is None
    assert {"safety_identifier", "priority", "tools", "output_format"} <= set(job.body)
    [recorded] = double.requests_to("submit")
    assert recorded.bearer == KEY
    assert recorded.headers["user-agent"].startswith("volc-sdk-python/")

    first = await ark.content_generation.tasks.get(task_id=created.id)
    assert (first.status, first.content, first.usage) == ("queued", None, None)
    second = await ark.content_generation.tasks.get(task_id=created.id)
    assert second.status == "running"
    double.advance(created.id)  # the second running step, without a poll
    double.advance(created.id)
    done = await ark.content_generation.tasks.get(task_id=created.id)
    assert done.status == "succeeded"
    assert done.content.video_url == double.video_url(created.id)
    assert done.content.last_frame_url == double.last_frame_url(created.id)
    assert done.usage.completion_tokens == 1280 * 720 * 121 // 1024
    assert (done.seed, done.resolution, done.ratio, done.duration, done.framespersecond) == (
        1234,
        "720p",
        "16:9",
        5,
        24,
    )
    assert (done.generate_audio, done.service_tier, done.execution_expires_after) == (
        False,
        "default",
        172800,
    )
    assert done.error is None
    assert done.updated_at >= done.created_at


async def test_a_failed_task_carries_its_error_code(double: ArkDouble, ark: Any) -> None:
    double.script(Lifecycle.fails("flagged", code="OutputVideoSensitiveContentDetected"))
    created = await ark.content_generation.tasks.create(model=V1_5, content=first_frame_content(double))
    task = await ark.content_generation.tasks.get(task_id=created.id)
    assert task.status == "failed"
    assert (task.error.code, task.error.message) == ("OutputVideoSensitiveContentDetected", "flagged")


async def test_list_with_filters(double: ArkDouble, ark: Any) -> None:
    double.script(Lifecycle.quick())
    done = (await ark.content_generation.tasks.create(model=V1_5, content=first_frame_content(double))).id
    await ark.content_generation.tasks.get(task_id=done)
    old = (await ark.content_generation.tasks.create(model=V1_0, content=first_frame_content(double))).id
    new = (
        await ark.content_generation.tasks.create(
            model=V1_5, content=first_frame_content(double), service_tier="flex"
        )
    ).id

    everything = await ark.content_generation.tasks.list()
    assert (everything.total, [item.id for item in everything.items]) == (3, [new, old, done])
    queued = await ark.content_generation.tasks.list(status="queued", page_size=1)
    assert (queued.total, [item.id for item in queued.items]) == (2, [new])
    page_two = await ark.content_generation.tasks.list(status="queued", page_num=2, page_size=1)
    assert [item.id for item in page_two.items] == [old]
    by_ids = await ark.content_generation.tasks.list(task_ids=[done, old])
    assert [item.id for item in by_ids.items] == [old, done]
    by_model = await ark.content_generation.tasks.list(model=V1_0)
    assert [item.id for item in by_model.items] == [old]
    by_tier = await ark.content_generation.tasks.list(service_tier="flex")
    assert [item.id for item in by_tier.items] == [new]
    succeeded = await ark.content_generation.tasks.list(status="succeeded")
    assert succeeded.items[0].content.video_url == double.video_url(done)
    assert double.requests_to("list")[3].query_items == (
        ("filter.task_ids", done),
        ("filter.task_ids", old),
    )


async def test_delete_cancels_queued_and_deletes_finished_tasks(double: ArkDouble, ark: Any) -> None:
    double.script(Lifecycle.queued(3).completes())
    double.script(Lifecycle.quick())
    double.script(Lifecycle.running().completes())
    queued = (await ark.content_generation.tasks.create(model=V1_5, content=first_frame_content(double))).id
    finished = (await ark.content_generation.tasks.create(model=V1_5, content=first_frame_content(double))).id
    running = (await ark.content_generation.tasks.create(model=V1_5, content=first_frame_content(double))).id
    await ark.content_generation.tasks.get(task_id=finished)

    await ark.content_generation.tasks.delete(queued)
    assert (await ark.content_generation.tasks.get(task_id=queued)).status == "cancelled"
    await ark.content_generation.tasks.delete(finished)
    with pytest.raises(ark_errors.ArkNotFoundError) as gone:
        await ark.content_generation.tasks.get(task_id=finished)
    assert gone.value.code == "ResourceNotFound"
    with pytest.raises(ark_errors.ArkBadRequestError) as refused:
        await ark.content_generation.tasks.delete(running)
    assert refused.value.code == "InvalidAction.TaskStatusNotAllowed"
    assert [request.method for request in double.requests_to("cancel")] == ["DELETE"] * 3


@pytest.mark.parametrize(
    ("call", "error_type", "status", "code", "param"),
    [
        ({"duration": 3}, "ArkBadRequestError", 400, "InvalidParameter", "duration"),
        ({"model": "seedance-9-ultra"}, "ArkNotFoundError", 404, "InvalidEndpoint.NotFound", "model"),
        ({"camera_fixed": "yes"}, "ArkBadRequestError", 400, "InvalidParameter", "camera_fixed"),
        ({"extra_body": {"fps": 24}}, "ArkBadRequestError", 400, "InvalidParameter", "fps"),
    ],
)
async def test_refusals_reach_the_sdk_as_its_typed_errors_with_the_doubles_code(
    double: ArkDouble, ark: Any, call: dict[str, Any], error_type: str, status: int, code: str, param: str
) -> None:
    arguments = {"model": V1_5, "content": first_frame_content(double), **call}
    with pytest.raises(ark_errors.ArkAPIStatusError) as raised:
        await ark.content_generation.tasks.create(**arguments)
    error = raised.value
    assert type(error).__name__ == error_type
    assert (error.status_code, error.code, error.param, error.type) == (
        status,
        code,
        param,
        "BadRequest" if status == 400 else "NotFound",
    )
    assert double.submit_count == 0


@pytest.mark.parametrize(
    ("kind", "error_type"),
    [
        ("auth", "ArkAuthenticationError"),
        ("balance", "ArkPermissionDeniedError"),
        ("moderation", "ArkBadRequestError"),
        ("model_unavailable", "ArkNotFoundError"),
        ("rate_limit", "ArkRateLimitError"),
    ],
)
async def test_fault_for_maps_to_the_sdks_error_types(
    double: ArkDouble, ark: Any, kind: str, error_type: str
) -> None:
    fault = double.fault_for(kind)  # type: ignore[arg-type]
    double.inject("submit", fault)
    with pytest.raises(ark_errors.ArkAPIStatusError) as raised:
        await ark.content_generation.tasks.create(model=V1_5, content=first_frame_content(double))
    assert type(raised.value).__name__ == error_type
    assert (raised.value.status_code, raised.value.code) == (fault.status, fault.code)


async def test_a_wrong_key_is_an_authentication_error(double: ArkDouble) -> None:
    client = ark_sdk.AsyncArk(base_url=double.base_url, api_key="wrong", max_retries=0)
    try:
        with pytest.raises(ark_errors.ArkAuthenticationError) as raised:
            await client.content_generation.tasks.list()
    finally:
        await client.close()
    assert raised.value.code == "AuthenticationError"


async def test_the_sdk_retries_a_dropped_create_and_pays_twice(
    double: ArkDouble, monkeypatch: pytest.MonkeyPatch
) -> None:
    """providers.md warns that the official SDK retries POSTs: the double shows what that costs."""
    client = ark_sdk.AsyncArk(base_url=double.base_url, api_key=KEY, max_retries=1)
    monkeypatch.setattr(client, "_calculate_retry_timeout", lambda *args, **kwargs: 0.0)
    double.inject("submit", Fault.drop())
    try:
        created = await client.content_generation.tasks.create(
            model=V1_5, content=first_frame_content(double)
        )
    finally:
        await client.close()
    assert double.submit_count == 2  # the first task was created, its answer lost, then a second one made
    assert created.id == list(double.jobs)[1]
