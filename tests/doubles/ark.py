"""A loopback double of BytePlus ModelArk / Volcengine Ark's video generation API: a real HTTP server on
127.0.0.1 that follows the documented contract (`shared/docs/providers.md` section 3), written independently
of the bot's client and checked against the official SDK (`test_ark_double_sdk.py`).

Use from async tests (the shared control surface is described in `tests.doubles.provider_double`)::

    async with ArkDouble(api_keys=("test-key",)) as double:
        image_url = double.host_file(make_image(640, 480), "image/png", "frame.png")
        double.script(Lifecycle.running().fails("flagged", code="OutputVideoSensitiveContentDetected"))
        ...  # point the client at double.base_url (http://127.0.0.1:PORT/api/v3)
        job = await double.wait_for_submit()
        double.advance(job.id)  # a status change: a task with callback_url gets a POST
        await double.wait_for_callbacks(2)

The contract it follows (all paths under `/api/v3`, Bearer key):

- `POST /contents/generations/tasks` -> `{"id": "cgt-<timestamp>-<rand>"}`. `model` must be a known model
  id (`models=`; `inactive_models=` are known but not activated); `content` is a list of text, image_url,
  video_url and audio_url items whose roles are checked (a lone image without role is the first frame,
  reference images do not mix with first/last frames, a last frame needs a first frame, at most 9 reference
  images, 3 videos, 3 audios, references only on models that take them). Every URL is fetched (images may
  also be data URIs) and judged: images as Seedance's rules say, videos and audios 2-15 s long (PyAV).
  Top-level parameters are checked against `ArkModel`, the double's own capability table. Unknown fields
  are refused; a null value counts as absent (the official SDK sends null for every parameter not given).
  At most `max_queued_per_key` (120) queued tasks per key.
- `GET /contents/generations/tasks/{id}` -> the task (see `ArkDouble.task_json`); every GET after the first
  moves it one step on. Another key's task, or a deleted one, is not found.
- `GET /contents/generations/tasks?page_num&page_size&filter.status&filter.task_ids&filter.model` ->
  `{"total", "items"}`, newest first.
- `DELETE /contents/generations/tasks/{id}`: a queued task is cancelled, a finished one (succeeded, failed,
  expired) is deleted; `{}`. A running or cancelled task cannot be: 400.
- A task with `callback_url` gets a POST of its JSON (as GET shows it) at creation and on every status
  change, however caused (GET, `advance`, DELETE); deliveries are recorded in `callbacks`. Unsigned, as
  documented.
- Errors are `{"error": {"code", "message", "param", "type"}}`; every answer carries `X-Request-Id`.
- Videos (`/files/videos/{id}.mp4`) and last frames (`/files/frames/{id}.png`) download without auth until
  `expire_outputs(id)`, then 403.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import math
import random
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
import av
from aiohttp import web
from PIL import Image

from tests.doubles.media import make_image
from tests.doubles.provider_double import (
    BYTES_PER_MB,
    FAULT_KINDS,
    DoubleJob,
    Fault,
    FaultKind,
    FaultKindName,
    FetchError,
    Lifecycle,
    ProviderDouble,
    RecordedRequest,
    Refusal,
    Step,
    StepKind,
    Vocabulary,
    decode_data_uri,
    expired_url_response,
    is_http_url,
    is_json_int,
    running_in_thread,
    seedance_image_problem,
)

__all__ = [
    "ARK_MODELS",
    "ArkDouble",
    "ArkJob",
    "ArkModel",
    "CallbackDelivery",
    "DoubleJob",
    "Fault",
    "FaultKind",
    "Lifecycle",
    "RecordedRequest",
    "Step",
    "StepKind",
    "running_in_thread",
    "volcengine_models",
]

VOCABULARY = Vocabulary(
    words={
        StepKind.QUEUED: "queued",
        StepKind.RUNNING: "running",
        StepKind.SUCCEEDED: "succeeded",
        StepKind.FAILED: "failed",
        StepKind.CANCELLED: "cancelled",
        StepKind.EXPIRED: "expired",
    },
)


@dataclass(frozen=True)
class ArkModel:
    """What one model accepts: the double's own table, kept apart from the bot's catalogue on purpose."""

    resolutions: tuple[str, ...]
    default_resolution: str
    durations: tuple[int, int]  # seconds, inclusive
    camera_fixed: bool = True
    generate_audio: bool = False
    last_frame: bool = True  # takes a last_frame image
    references: bool = False  # takes reference images, videos and audios
    frames: bool = False  # takes `frames` instead of `duration`
    draft: bool = False
    tools: bool = False


_ALL_RESOLUTIONS = ("480p", "720p", "1080p")

ARK_MODELS: dict[str, ArkModel] = {
    # Defaults, `frames` and the 1.0 fast model's lack of last frame are guesses; the ranges are the docs'.
    "seedance-1-0-pro-250528": ArkModel(_ALL_RESOLUTIONS, "1080p", (2, 12), frames=True),
    "seedance-1-0-pro-fast-251015": ArkModel(
        _ALL_RESOLUTIONS, "1080p", (2, 12), last_frame=False, frames=True
    ),
    "seedance-1-5-pro-251215": ArkModel(_ALL_RESOLUTIONS, "720p", (4, 12), generate_audio=True, draft=True),
    "dreamina-seedance-2-0-260128": ArkModel(
        ("480p", "720p"),
        "720p",
        (4, 15),
        camera_fixed=False,
        generate_audio=True,
        references=True,
        tools=True,
    ),
}

_ONE_ZERO_MODELS = frozenset({"seedance-1-0-pro-250528", "seedance-1-0-pro-fast-251015"})


def volcengine_models(models: Mapping[str, ArkModel] = ARK_MODELS) -> dict[str, ArkModel]:
    """The same models under Volcengine's `doubao-` ids (e.g. `doubao-seedance-1-5-pro-251215`)."""
    return {f"doubao-{model_id.removeprefix('dreamina-')}": model for model_id, model in models.items()}


_RATIOS = ("16:9", "4:3", "1:1", "3:4", "9:16", "21:9")
# Output sizes: providers.md section 5 gives 16:9, 1:1 and 9:16; 4:3, 3:4 and 21:9 are from memory of
# ModelArk's table (a guess).
_PIXELS: dict[str, dict[str, tuple[int, int]]] = {
    "480p": {
        "16:9": (864, 496),
        "4:3": (736, 544),
        "1:1": (640, 640),
        "3:4": (544, 736),
        "9:16": (496, 864),
        "21:9": (960, 416),
    },
    "720p": {
        "16:9": (1280, 720),
        "4:3": (1120, 832),
        "1:1": (960, 960),
        "3:4": (832, 1120),
        "9:16": (720, 1280),
        "21:9": (1504, 640),
    },
    "1080p": {
        "16:9": (1920, 1080),
        "4:3": (1664, 1248),
        "1:1": (1440, 1440),
        "3:4": (1248, 1664),
        "9:16": (1080, 1920),
        "21:9": (2176, 928),
    },
}
# The recorded real response (providers.md section 3): 1.0 pro, 480p, 16:9, 2 s -> 19845 tokens =
# 864x480x49/1024, not the 864x496 of section 5. The recording wins for the 1.0 models at 480p 16:9.
_ONE_ZERO_480P_16_9 = (864, 480)

_SEED_MAX = 4_294_967_295
_FPS = 24

# Documented codes (providers.md section 3).
CODE_INVALID_PARAMETER = "InvalidParameter"
CODE_MISSING_PARAMETER = "MissingParameter"
CODE_AUTHENTICATION = "AuthenticationError"
CODE_ACCOUNT_OVERDUE = "AccountOverdueError"
CODE_ACCESS_DENIED = "AccessDenied"
CODE_INPUT_TEXT_SENSITIVE = "InputTextSensitiveContentDetected"
# providers.md's spelling; real answers may read `InvalidEndpointOrModel.NotFound` (from memory, unverified).
CODE_UNKNOWN_MODEL = "InvalidEndpoint.NotFound"
CODE_MODEL_NOT_OPEN = "ModelNotOpen"
CODE_RATE_LIMIT = "RateLimitExceeded.EndpointRPMExceeded"
# Guesses: the docs name no code for these.
CODE_TASK_NOT_FOUND = "ResourceNotFound"
CODE_STATUS_NOT_ALLOWED = "InvalidAction.TaskStatusNotAllowed"  # DELETE of a running or cancelled task
CODE_QUEUE_FULL = "RateLimitExceeded.QueueFull"  # more than 120 queued tasks
CODE_DEFAULT_FAILURE = "InternalServiceError"  # a failed task's error code when the lifecycle gives none

# A guess: the `type` of Ark's error body, by HTTP status.
_ERROR_TYPES = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    429: "TooManyRequests",
}
_DEFAULT_CODES = {
    400: CODE_INVALID_PARAMETER,
    401: CODE_AUTHENTICATION,
    403: CODE_ACCESS_DENIED,
    404: CODE_TASK_NOT_FOUND,
    429: CODE_RATE_LIMIT,
}

_ROLES = {
    "image_url": ("first_frame", "last_frame", "reference_image"),
    "video_url": ("reference_video",),
    "audio_url": ("reference_audio",),
}

# Fields the official SDK (volcengine-ark-runtime 5.x) sends, beyond the documented ones (sdk; their
# semantics are not documented, so only their types are checked).
_SDK_FIELDS = ("safety_identifier", "priority", "tools", "output_format", "omni_reference_task_type")
_TOP_LEVEL_FIELDS = frozenset(
    {
        "model",
        "content",
        "resolution",
        "ratio",
        "duration",
        "frames",
        "seed",
        "camera_fixed",
        "watermark",
        "generate_audio",
        "return_last_frame",
        "service_tier",
        "execution_expires_after",
        "callback_url",
        "draft",
        *_SDK_FIELDS,
    }
)
_LIST_QUERY = frozenset(
    {"page_num", "page_size", "filter.status", "filter.task_ids", "filter.model", "filter.service_tier"}
)

_MAX_VIDEO_BYTES = 50 * BYTES_PER_MB  # a guess: not documented for ModelArk
_MAX_AUDIO_BYTES = 15 * BYTES_PER_MB  # RunComfy's 2.0 seed: audios under 15 MB
_VIDEO_FORMATS = frozenset({"mov,mp4,m4a,3gp,3g2,mj2"})  # mp4/mov (RunComfy's 2.0 seed)
_AUDIO_FORMATS = frozenset({"wav", "mp3"})  # RunComfy's 2.0 seed


@dataclass(frozen=True)
class CallbackDelivery:
    """One callback POST the double made."""

    url: str
    body: dict[str, Any]
    status: int | None  # the receiver's HTTP status; None when it could not be reached
    error: str | None = None  # why it could not be reached


@dataclass(eq=False)
class ArkJob(DoubleJob):
    """A ModelArk content generation task; `settings` is what the task shows of its parameters."""

    spec: ArkModel | None = field(default=None, repr=False)
    settings: dict[str, Any] = field(default_factory=dict)
    size: tuple[int, int] = (0, 0)  # output width and height
    frames: int = 0
    callback_url: str | None = None
    return_last_frame: bool = False

    @property
    def usage_tokens(self) -> int:
        """completion_tokens: width x height x frames / 1024."""
        return self.size[0] * self.size[1] * self.frames // 1024


def _invalid(param: str, detail: str) -> Refusal:
    return Refusal(
        400,
        CODE_INVALID_PARAMETER,
        f"The parameter `{param}` specified in the request is not valid: {detail}.",
        param,
    )


class ArkDouble(ProviderDouble[ArkJob]):
    """ModelArk's video generation API on 127.0.0.1 (see the module docstring for the contract)."""

    routes = frozenset({"submit", "status", "list", "cancel", "video", "last_frame", "hosted"})
    vocabulary = VOCABULARY
    base_path = "/api/v3"

    def __init__(
        self,
        *,
        api_keys: Iterable[str] = ("test-key",),
        video: bytes | None = None,
        default_lifecycle: Lifecycle | None = None,
        models: Mapping[str, ArkModel] | None = None,
        inactive_models: Iterable[str] = (),
        max_queued_per_key: int = 120,
        callback_on_create: bool = True,
    ) -> None:
        super().__init__(api_keys=api_keys, video=video, default_lifecycle=default_lifecycle)
        self.models = dict(models if models is not None else ARK_MODELS)
        self.inactive_models = set(inactive_models)
        self.max_queued_per_key = max_queued_per_key
        # A guess: ModelArk lists "queued" among the states a callback reports, so the task's first state is
        # delivered too; turn off to deliver changes only.
        self.callback_on_create = callback_on_create
        self.last_frame = make_image(64, 64, fmt="PNG")
        self.callbacks: list[CallbackDelivery] = []
        self._callback_queue: asyncio.Queue[tuple[str, dict[str, Any]]] | None = None
        self._callback_sender: asyncio.Task[None] | None = None
        self._callback_session: aiohttp.ClientSession | None = None

    # The shared surface.

    def _add_routes(self, app: web.Application) -> None:
        tasks = f"{self.base_path}/contents/generations/tasks"
        app.router.add_post(tasks, self._create, name="submit")
        app.router.add_get(tasks, self._list, name="list")
        app.router.add_get(tasks + "/{task_id}", self._get, name="status")
        app.router.add_delete(tasks + "/{task_id}", self._delete, name="cancel")
        app.router.add_get("/files/frames/{job_id}.png", self._last_frame, name="last_frame")

    def render_error(
        self, status: int, code: int | str | None, message: str, param: str | None = None
    ) -> web.Response:
        """`{"error": {"code", "message", "param", "type"}}`; without a code, the usual one for the status."""
        error = {
            "code": str(code) if code is not None else _DEFAULT_CODES.get(status, CODE_DEFAULT_FAILURE),
            "message": message,
            "param": param or "",
            "type": _ERROR_TYPES.get(status, "InternalServiceError"),
        }
        return web.json_response({"error": error}, status=status)

    def fault_for(self, kind: FaultKindName) -> Fault:
        """ModelArk's documented answer for `kind` (providers.md section 3)."""
        if kind == "auth":
            return Fault.error(401, CODE_AUTHENTICATION, "The API key in the request is missing or invalid.")
        if kind == "balance":
            return Fault.error(403, CODE_ACCOUNT_OVERDUE, "Your account has an overdue balance.")
        if kind == "moderation":
            return Fault.error(
                400,
                CODE_INPUT_TEXT_SENSITIVE,
                "The request failed because the input text may contain sensitive information.",
            )
        if kind == "model_unavailable":
            return Fault.error(
                404, CODE_MODEL_NOT_OPEN, "Your account has not activated the model.", param="model"
            )
        if kind == "rate_limit":
            return Fault.rate_limited("2", CODE_RATE_LIMIT, message="The request has exceeded the RPM limit.")
        if kind == "bad_request":
            return Fault.error(
                400,
                CODE_INVALID_PARAMETER,
                "The parameter `duration` specified in the request is not valid.",
                param="duration",
            )
        if kind == "not_found":
            return Fault.error(404, CODE_TASK_NOT_FOUND, "The specified task is not found.")
        raise ValueError(f"unknown fault kind {kind!r}; known: {sorted(FAULT_KINDS)}")

    def last_frame_url(self, job_id: str) -> str:
        """Where a finished task's last frame is served (when it asked for one)."""
        return f"{self.origin}/files/frames/{job_id}.png"

    async def wait_for_callbacks(self, count: int = 1) -> list[CallbackDelivery]:
        """The callback deliveries, once `count` have been made (answered or not)."""
        await self.wait_for(lambda: len(self.callbacks) >= count)
        return list(self.callbacks)

    # Callbacks.

    async def _on_start(self) -> None:
        self._callback_queue = asyncio.Queue()
        self._callback_session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        self._callback_sender = asyncio.create_task(self._send_callbacks(), name="ark-double-callbacks")

    async def _on_close(self) -> None:
        if self._callback_sender is not None:
            self._callback_sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._callback_sender
            self._callback_sender = None
        if self._callback_session is not None:
            await self._callback_session.close()
            self._callback_session = None

    def _register(self, job: ArkJob) -> ArkJob:
        self.jobs[job.id] = job
        if self.callback_on_create:
            self._status_changed(job)
        return job

    def _status_changed(self, job: ArkJob) -> None:
        if job.callback_url is not None and self._callback_queue is not None:
            # The body is taken now: a later change must not rewrite what this delivery says.
            self._callback_queue.put_nowait((job.callback_url, self.task_json(job)))

    async def _send_callbacks(self) -> None:
        assert self._callback_queue is not None
        while True:
            url, body = await self._callback_queue.get()
            assert self._callback_session is not None
            try:
                async with self._callback_session.post(url, json=body) as response:
                    await response.read()
                    delivery = CallbackDelivery(url, body, response.status)
            except (aiohttp.ClientError, TimeoutError, ValueError) as error:
                delivery = CallbackDelivery(url, body, None, f"{type(error).__name__}: {error}")
            self.callbacks.append(delivery)
            self._poke()

    # The routes.

    def _authenticate(self, request: web.Request) -> str:
        key = self._bearer_key(request)
        if key is None:
            raise Refusal(401, CODE_AUTHENTICATION, "The API key in the request is missing or invalid.")
        return key

    def _owned_task(self, request: web.Request) -> ArkJob:
        key = self._authenticate(request)
        task_id = request.match_info["task_id"]
        job = self.jobs.get(task_id)
        if job is None or job.deleted or job.api_key != key:  # another key's task is not found either
            raise Refusal(404, CODE_TASK_NOT_FOUND, f"The specified task {task_id} is not found.", "id")
        return job

    async def _create(self, request: web.Request) -> web.Response:
        key = self._authenticate(request)
        try:
            body = json.loads(await request.read())
        except ValueError:
            raise Refusal(400, CODE_INVALID_PARAMETER, "The request body is not valid JSON.") from None
        if not isinstance(body, dict):
            raise Refusal(400, CODE_INVALID_PARAMETER, "The request body must be a JSON object.")
        for name in body:
            if name not in _TOP_LEVEL_FIELDS:
                raise _invalid(name, "unknown parameter")
        params = {name: value for name, value in body.items() if value is not None}
        for name in ("model", "content"):
            if name not in params:
                raise Refusal(
                    400, CODE_MISSING_PARAMETER, f"The required parameter `{name}` is missing.", name
                )
        model_id = params["model"]
        spec = self._model(model_id)
        media = _check_content(model_id, spec, params["content"])
        _check_parameters(model_id, spec, params)
        queued = sum(
            1
            for job in self.jobs.values()
            if job.api_key == key and not job.deleted and job.kind is StepKind.QUEUED
        )
        if queued >= self.max_queued_per_key:
            raise Refusal(
                429,
                CODE_QUEUE_FULL,
                f"Too many queued tasks: at most {self.max_queued_per_key} may wait at once.",
            )
        first_image_size = await self._check_media(media)
        job = self._register(self._new_job(key, model_id, spec, body, params, first_image_size))
        return web.json_response({"id": job.id})

    async def _get(self, request: web.Request) -> web.Response:
        job = self._owned_task(request)
        self._poll(job)
        return web.json_response(self.task_json(job))

    async def _list(self, request: web.Request) -> web.Response:
        key = self._authenticate(request)
        for name in request.query:
            if name not in _LIST_QUERY:
                raise _invalid(name, "unknown query parameter")
        page_num = _query_int(request, "page_num", 1, 1, None)
        page_size = _query_int(request, "page_size", 10, 1, 500)  # the bounds are a guess
        status = request.query.get("filter.status")
        if status is not None and status not in VOCABULARY.words.values():
            raise _invalid("filter.status", f"must be one of {', '.join(VOCABULARY.words.values())}")
        task_ids = set(request.query.getall("filter.task_ids", []))
        model = request.query.get("filter.model")
        tier = request.query.get("filter.service_tier")
        matching = [
            job
            for job in reversed(self.jobs.values())  # newest first
            if job.api_key == key
            and not job.deleted
            and (status is None or job.status == status)
            and (not task_ids or job.id in task_ids)
            and (model is None or job.model_id == model)
            and (tier is None or job.settings.get("service_tier") == tier)
        ]
        start = (page_num - 1) * page_size
        items = [self.task_json(job) for job in matching[start : start + page_size]]
        return web.json_response({"total": len(matching), "items": items})

    async def _delete(self, request: web.Request) -> web.Response:
        job = self._owned_task(request)
        job.cancel_requests += 1
        kind = job.kind
        if kind is StepKind.QUEUED:
            job.cancel()
            self._status_changed(job)
        elif kind in (StepKind.SUCCEEDED, StepKind.FAILED, StepKind.EXPIRED):
            job.deleted = True
        else:
            # Documented: a running or cancelled task is neither cancelled nor deleted. The code is a guess.
            raise Refusal(
                400,
                CODE_STATUS_NOT_ALLOWED,
                f"The task {job.id} is {job.status}: it can be neither cancelled nor deleted.",
                "id",
            )
        return web.json_response({})

    async def _last_frame(self, request: web.Request) -> web.Response:
        job = self.jobs.get(request.match_info["job_id"])
        if (
            job is None
            or job.kind is not StepKind.SUCCEEDED
            or job.lifecycle.output is None
            or not job.return_last_frame
        ):
            return web.Response(status=404, text="Not found")
        if job.outputs_expired:
            return expired_url_response()
        return web.Response(body=self.last_frame, content_type="image/png")

    # The task.

    def task_json(self, job: ArkJob) -> dict[str, Any]:
        """The task as GET, list and callbacks show it now."""
        kind = job.kind
        payload: dict[str, Any] = {
            "id": job.id,
            "model": job.model_id,
            "status": job.status,
            "error": None,
            "created_at": int(job.created_at.timestamp()),
            "updated_at": int((job.updated_at or job.created_at).timestamp()),
            **job.settings,
        }
        if kind is StepKind.FAILED:
            payload["error"] = _task_error(job.lifecycle)
        if kind is StepKind.SUCCEEDED:
            if job.lifecycle.output is not None:
                content = {"video_url": self.video_url(job.id)}
                if job.return_last_frame:
                    content["last_frame_url"] = self.last_frame_url(job.id)
                payload["content"] = content
            payload["usage"] = {"completion_tokens": job.usage_tokens, "total_tokens": job.usage_tokens}
        return payload

    def _model(self, model_id: Any) -> ArkModel:
        if not isinstance(model_id, str):
            raise _invalid("model", "must be a string")
        spec = self.models.get(model_id)
        if spec is None:
            raise Refusal(
                404,
                CODE_UNKNOWN_MODEL,
                f"The model or endpoint {model_id} does not exist or you do not have access to it.",
                "model",
            )
        if model_id in self.inactive_models:
            raise Refusal(
                404,
                CODE_MODEL_NOT_OPEN,
                f"Your account has not activated the model {model_id}. Please activate it in the console.",
                "model",
            )
        return spec

    def _new_id(self) -> str:
        while True:
            stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
            suffix = "".join(random.choices(string.ascii_lowercase + string.digits, k=5))
            task_id = f"cgt-{stamp}-{suffix}"
            if task_id not in self.jobs:
                return task_id

    def _new_job(
        self,
        key: str,
        model_id: str,
        spec: ArkModel,
        body: dict[str, Any],
        params: Mapping[str, Any],
        first_image_size: tuple[int, int] | None,
    ) -> ArkJob:
        resolution = params.get("resolution", spec.default_resolution)
        ratio = params.get("ratio", "adaptive")
        if ratio == "adaptive":
            # A guess: the task shows the ratio chosen (the first image's closest; 16:9 without an image).
            ratio = _closest_ratio(first_image_size) if first_image_size else "16:9"
        size = _PIXELS[resolution][ratio]
        if model_id in _ONE_ZERO_MODELS and (resolution, ratio) == ("480p", "16:9"):
            size = _ONE_ZERO_480P_16_9
        seed = params.get("seed", -1)
        settings: dict[str, Any] = {
            "seed": seed if seed != -1 else random.randrange(2**31),
            "resolution": resolution,
            "ratio": ratio,
        }
        if "frames" in params:
            frames = params["frames"]
            settings["frames"] = frames
        else:
            duration = params.get("duration", 5)
            frames = _FPS * duration + 1
            settings["duration"] = duration
        settings["framespersecond"] = _FPS
        if spec.generate_audio:
            settings["generate_audio"] = params.get("generate_audio", True)
        if spec.draft:
            settings["draft"] = params.get("draft", False)
        settings["service_tier"] = params.get("service_tier", "default")
        settings["execution_expires_after"] = params.get("execution_expires_after", 172_800)
        return ArkJob(
            id=self._new_id(),
            model_id=model_id,
            body=body,
            api_key=key,
            lifecycle=self._next_lifecycle(),
            vocabulary=self.vocabulary,
            spec=spec,
            settings=settings,
            size=size,
            frames=frames,
            callback_url=params.get("callback_url"),
            return_last_frame=params.get("return_last_frame", False),
        )

    # Fetching and judging media.

    async def _check_media(self, media: list[_Media]) -> tuple[int, int] | None:
        """Fetch and judge every media item; the size of the first image, if any."""
        first_size: tuple[int, int] | None = None
        for item in media:
            data = await self._media_bytes(item)
            if item.kind == "image_url":
                problem = await asyncio.to_thread(seedance_image_problem, data, item.declared_format)
                if problem is None and first_size is None:
                    first_size = _image_size(data)
            elif item.kind == "video_url":
                problem = await asyncio.to_thread(_timed_media_problem, data, "video", _MAX_VIDEO_BYTES)
            else:
                problem = await asyncio.to_thread(_timed_media_problem, data, "audio", _MAX_AUDIO_BYTES)
            if problem is not None:
                raise _invalid(item.where, problem)
        return first_size

    async def _media_bytes(self, item: _Media) -> bytes:
        if item.url.startswith("data:"):
            media = "image" if item.kind == "image_url" else "audio"
            try:
                declared, data = decode_data_uri(item.url, media)
            except ValueError as error:
                raise _invalid(item.where, str(error)) from None
            if item.kind == "image_url":
                item.declared_format = declared
            return data
        limit = {"image_url": 30 * BYTES_PER_MB, "video_url": _MAX_VIDEO_BYTES, "audio_url": _MAX_AUDIO_BYTES}
        try:
            return await self.fetch(item.url, limit=limit[item.kind] + 1)
        except FetchError as error:
            raise _invalid(item.where, str(error)) from None


# --- Pure checks -------------------------------------------------------------------------------------------


@dataclass
class _Media:
    kind: str  # image_url, video_url or audio_url
    role: str | None
    url: str
    where: str  # e.g. content[1].image_url
    declared_format: str | None = None  # a data URI's image format


def _check_content(model_id: str, spec: ArkModel, content: Any) -> list[_Media]:
    """Refuse content that breaks the documented rules; the media items, each with its role."""
    if not isinstance(content, list) or not content:
        raise _invalid("content", "must be a non-empty list of content items")
    texts: list[str] = []
    media: list[_Media] = []
    for index, item in enumerate(content):
        where = f"content[{index}]"
        if not isinstance(item, dict):
            raise _invalid(where, "must be an object")
        kind = item.get("type")
        if kind == "text":
            _only_keys(item, {"type", "text"}, where)
            if not isinstance(item.get("text"), str):
                raise _invalid(f"{where}.text", "must be a string")
            texts.append(item["text"])
            continue
        if kind not in _ROLES:
            raise _invalid(f"{where}.type", "must be one of text, image_url, video_url, audio_url")
        _only_keys(item, {"type", kind, "role"}, where)
        holder = item.get(kind)
        if not isinstance(holder, dict) or set(holder) != {"url"} or not isinstance(holder["url"], str):
            raise _invalid(f"{where}.{kind}", 'must be an object {"url": "..."}')
        role = item.get("role")
        if role is not None and role not in _ROLES[kind]:
            raise _invalid(f"{where}.role", f"must be one of {', '.join(_ROLES[kind])} for {kind}")
        media.append(_Media(kind, role, holder["url"], f"{where}.{kind}"))
    if len(texts) > 1:
        raise _invalid("content", "at most one text item")  # a guess
    if not texts and not media:
        raise _invalid("content", "needs a text prompt or media")
    images = [item for item in media if item.kind == "image_url"]
    if len(images) == 1 and images[0].role is None:
        images[0].role = "first_frame"  # documented: a lone image without role is the first frame
    for item in media:
        if item.role is None:
            # A guess: only a lone image may leave its role out.
            raise _invalid(f"{item.where.rsplit('.', 1)[0]}.role", "is required here")
    roles = [item.role for item in media]
    firsts, lasts = roles.count("first_frame"), roles.count("last_frame")
    references = roles.count("reference_image")
    videos, audios = roles.count("reference_video"), roles.count("reference_audio")
    if firsts > 1 or lasts > 1:
        raise _invalid("content", "at most one first_frame and one last_frame image")
    if references and (firsts or lasts):
        raise _invalid("content", "reference_image cannot be combined with first_frame or last_frame")
    if lasts and not firsts:
        raise _invalid("content", "a last_frame image needs a first_frame image")
    if lasts and not spec.last_frame:
        raise _invalid("content", f"{model_id} does not take a last_frame image")
    if (references or videos or audios) and not spec.references:
        raise _invalid("content", f"{model_id} does not take reference images, videos or audios")
    if references > 9:
        raise _invalid("content", f"at most 9 reference images, got {references}")
    if videos > 3:
        raise _invalid("content", f"at most 3 reference videos, got {videos}")
    if audios > 3:
        raise _invalid("content", f"at most 3 reference audios, got {audios}")
    if audios and not (images or videos):
        raise _invalid("content", "reference audio needs at least one image or video")  # a guess
    for item in media:
        if is_http_url(item.url):
            continue
        if item.url.startswith("data:") and item.kind != "video_url":  # audio data URIs are a guess
            continue
        accepted = "an http(s) URL" if item.kind == "video_url" else "an http(s) URL or a base64 data URI"
        raise _invalid(item.where, f"the url must be {accepted}")
    return media


def _only_keys(item: Mapping[str, Any], allowed: set[str], where: str) -> None:
    for name in item:
        if name not in allowed:
            raise _invalid(f"{where}.{name}", "unknown field")


def _check_parameters(model_id: str, spec: ArkModel, params: Mapping[str, Any]) -> None:
    """Refuse top-level parameters the model does not take (null values were dropped before)."""

    def want(name: str, ok: bool, detail: str) -> None:
        if name in params and not ok:
            raise _invalid(name, f"{detail}, got {json.dumps(params[name])}")

    def boolean(name: str) -> None:
        want(name, isinstance(params.get(name), bool), "must be a boolean")

    def integer(name: str, low: int, high: int) -> None:
        value = params.get(name)
        want(name, is_json_int(value) and low <= value <= high, f"must be an integer from {low} to {high}")

    def unsupported(name: str, supported: bool) -> None:
        if name in params and not supported:
            raise _invalid(name, f"not supported by {model_id}")

    resolution = params.get("resolution")
    want("resolution", resolution in spec.resolutions, f"must be one of {', '.join(spec.resolutions)}")
    want(
        "ratio",
        params.get("ratio") in (*_RATIOS, "adaptive"),
        f"must be one of {', '.join(_RATIOS)}, adaptive",
    )
    if "duration" in params and "frames" in params:
        raise _invalid("frames", "give duration or frames, not both")
    integer("duration", *spec.durations)
    unsupported("frames", spec.frames)
    frames = params.get("frames")
    # A guess from ModelArk's 1.0 docs: 29 to 289 frames, 25 + 4n.
    want(
        "frames",
        is_json_int(frames) and 29 <= frames <= 289 and (frames - 25) % 4 == 0,
        "must be 25 + 4n, 29-289",
    )
    integer("seed", -1, _SEED_MAX)
    unsupported("camera_fixed", spec.camera_fixed)
    boolean("camera_fixed")
    boolean("watermark")
    unsupported("generate_audio", spec.generate_audio)
    boolean("generate_audio")
    boolean("return_last_frame")
    want("service_tier", params.get("service_tier") in ("default", "flex"), "must be default or flex")
    integer("execution_expires_after", 3600, 259_200)
    callback = params.get("callback_url")
    want("callback_url", isinstance(callback, str) and is_http_url(callback), "must be an http(s) URL")
    unsupported("draft", spec.draft)
    boolean("draft")
    # Sent by the official SDK; only their types are known.
    want("safety_identifier", isinstance(params.get("safety_identifier"), str), "must be a string")
    want("priority", is_json_int(params.get("priority")), "must be an integer")
    want("output_format", isinstance(params.get("output_format"), str), "must be a string")
    want(
        "omni_reference_task_type",
        isinstance(params.get("omni_reference_task_type"), str),
        "must be a string",
    )
    unsupported("tools", spec.tools)
    tools = params.get("tools")
    want(
        "tools",
        isinstance(tools, list)
        and all(isinstance(t, dict) and isinstance(t.get("type"), str) for t in tools),
        'must be a list of {"type": ...}',
    )


def _query_int(request: web.Request, name: str, default: int, low: int, high: int | None) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _invalid(name, f"must be an integer, got {raw!r}") from None
    if value < low or (high is not None and value > high):
        bounds = f"at least {low}" if high is None else f"from {low} to {high}"
        raise _invalid(name, f"must be {bounds}, got {value}")
    return value


def _task_error(lifecycle: Lifecycle) -> dict[str, str]:
    error = lifecycle.error
    if isinstance(error, Mapping) and "code" in error:
        return {"code": str(error["code"]), "message": str(error.get("message", ""))}
    message = error if isinstance(error, str) else json.dumps(error)
    return {"code": lifecycle.error_code or CODE_DEFAULT_FAILURE, "message": message}


def _closest_ratio(size: tuple[int, int]) -> str:
    aspect = math.log(size[0] / size[1])

    def distance(ratio: str) -> float:
        width, height = (int(part) for part in ratio.split(":"))
        return abs(math.log(width / height) - aspect)

    return min(_RATIOS, key=distance)


def _image_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        return image.size


def _timed_media_problem(data: bytes, media: str, max_bytes: int) -> str | None:
    """Why a reference video or audio is refused (format, 2-15 s, size), or None."""
    if len(data) >= max_bytes:
        return f"the {media} must be smaller than {max_bytes // BYTES_PER_MB} MB"
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            format_name = container.format.name
            streams = container.streams.video if media == "video" else container.streams.audio
            if not streams:
                return f"the file has no {media} stream"
            duration_s = (container.duration or 0) / av.time_base
    except (av.FFmpegError, OSError, ValueError):
        return f"the file is not a {media} that can be read"
    allowed = _VIDEO_FORMATS if media == "video" else _AUDIO_FORMATS
    if format_name not in allowed:
        names = "mp4, mov" if media == "video" else "wav, mp3"
        return f"unsupported {media} format {format_name}; supported: {names}"
    if not 2 <= duration_s <= 15:
        return f"the {media} must last from 2 to 15 seconds, got {duration_s:.2f}"
    return None
