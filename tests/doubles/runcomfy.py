"""A loopback double of RunComfy's Model API: a real HTTP server on 127.0.0.1 that follows the documented
contract (`shared/docs/providers.md` section 1, seeds 000 to 003), written independently of the bot's client.

It carries its own copy of each model's input schema from the seeds (it does not import the bot's
catalogue), so a body the bot builds wrongly, or a model option the catalogue gets wrong, fails a test.

Use from async tests::

    async with RunComfyDouble(api_keys=("test-key",)) as double:
        frame_url = double.host_file(make_image(512, 512), "image/png", "frame.png")
        double.script(Lifecycle.queued(2).running(1).completes(cost=0.3))
        double.inject("status", Fault.html(502), times=2)
        ...  # point the client at double.base_url
        job = await double.wait_for_submit()

Use from synchronous tests that run the CLI with `subprocess.run` (the server then runs on its own event
loop in a thread; only the awaitable hooks are off limits from the test's thread)::

    with running_in_thread(RunComfyDouble()) as double:
        subprocess.run([..., "--base-url", double.base_url], check=True, timeout=60)

The contract it follows:

- `POST /v1/models/{model_id}` (a known model id, slashes unescaped) with a JSON body that fits the model's
  seed schema; unknown fields are refused. It fetches every image URL in the body over HTTP, as RunComfy
  does, and applies the seed's validations to `first_frame_image_url`. Answers 200 `{"request_id",
  "status_url", "result_url", "cancel_url"}`; a violation gets 422 with `error_code`, `error_message` and
  the offending `field`.
- `GET /v1/requests/{id}/status`: the job's current step (see `Lifecycle`); every status GET after the first
  moves the job one step on. `queue_position` only while `in_queue`.
- `GET /v1/requests/{id}/result[?include_cost=true]`: the current state while unfinished; once finished
  `{"request_id", "status", "output": {"video": url}, "created_at", "finished_at"}` (+ `cost`), or
  `{"status": "failed", "error": ...}`.
- `POST /v1/requests/{id}/cancel`: 202 with outcome `cancelled` while queued, `not_cancellable` after.
- `GET /files/videos/{id}.mp4`: the finished video's bytes (`video/mp4`, `Content-Length`), without auth.
- Errors are `{"error_code": int, "error_message": str}`: missing or unknown bearer → 401/400004; another
  key's request → 403/403001; unknown request → 404/404001; unknown model → 400/400001. Every answer carries
  an `X-Request-Id` header, recorded with the request.
- `host_file()` serves test files (the member's "public" image) under `/files/hosted/...`.

The knobs and records (all on `RunComfyDouble`; the provider-neutral ones come from
`tests.doubles.provider_double`, shared with the Novita and ModelArk doubles):

- `base_url`, `host_file(data, content_type, name) -> url`, `video_url(request_id)`, `video` (the bytes
  every finished job serves unless its lifecycle brings its own), `api_keys`.
- `script(lifecycle)`: the next submit's lifecycle (FIFO); otherwise `default_lifecycle`
  (queued at 1, running one poll, then completed). `release(request_id)`: let a held job move on.
- `inject(route, fault, times=1)` for route "submit", "status", "result", "cancel", "video" or "hosted".
- `advance(request_id)`: move a job one step now; `expire_outputs(request_id)`: its video URL answers 403;
  `fault_for(kind)`: RunComfy's documented answer for "auth", "balance", "not_found", ...
- `jobs` (request_id → `RunComfyJob`: id/request_id, body, model_id, api_key, lifecycle, polls,
  result_reads, cancel_requests, cancelled), `submit_count` (jobs created, answered or not), `requests`
  (`RecordedRequest`s, oldest first) and `requests_to(route)`.
- Awaitable hooks, so tests never sleep: `wait_for(predicate)`, `wait_for_submit(count)`,
  `wait_for_polls(request_id, polls)`, `wait_for_requests(route, count)`; each gives up with TimeoutError
  after `wait_timeout_s` (10 s).
- `SEED_SCHEMAS`: the models' input schemas; pass `schemas=` to add an id (e.g. "bytedance/seedance-v2/pro")
  and `v2_image_fields=` to accept only one spelling of 2.0's image array.

Faults (`inject`) replace or alter the next answers of one route: an HTTP error with a JSON body (also HTTP
200 with an `error_code`), 429 with `Retry-After`, an HTML error page, a delay, a dropped connection after
the request was read and handled (for a submit the job *is* created: "it reached the server, the answer was
lost") and a malformed JSON body.
"""

from __future__ import annotations

import asyncio
import io
import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web
from PIL import Image, UnidentifiedImageError

from tests.doubles.provider_double import (
    BYTES_PER_MB,
    FAULT_KINDS,
    TERMINAL_KINDS,
    DoubleJob,
    Fault,
    FaultKind,
    FaultKindName,
    FetchError,
    ProviderDouble,
    RecordedRequest,
    Refusal,
    StepKind,
    Vocabulary,
    running_in_thread,
)
from tests.doubles.provider_double import Lifecycle as NeutralLifecycle
from tests.doubles.provider_double import Step as NeutralStep

__all__ = [
    "SEED_SCHEMAS",
    "DoubleJob",
    "Fault",
    "FaultKind",
    "Lifecycle",
    "RecordedRequest",
    "RouteName",
    "RunComfyDouble",
    "RunComfyJob",
    "Step",
    "StepKind",
    "running_in_thread",
]

RouteName = Literal["submit", "status", "result", "cancel", "video", "hosted"]

# --- The seeds' input schemas, copied (titles, descriptions and defaults dropped) ------------------------

_FIRST_FRAME_VALIDATIONS: list[dict[str, Any]] = [
    # Seed 002 (1.0 pro, English); seeds 000/001 (1.5 pro) carry the same rules in French.
    {
        "validation_rule": "width_pixels<",
        "validation_value": 6000,
        "validation_error": "The uploaded image width and height must not exceed 6000 pixels.",
    },
    {
        "validation_rule": "height_pixels<",
        "validation_value": 6000,
        "validation_error": "The uploaded image width and height must not exceed 6000 pixels.",
    },
    {
        "validation_rule": "width_pixels>",
        "validation_value": 300,
        "validation_error": "The uploaded image width and height must not be less than 300 pixels.",
    },
    {
        "validation_rule": "height_pixels>",
        "validation_value": 300,
        "validation_error": "The uploaded image width and height must not be less than 300 pixels.",
    },
    {
        "validation_rule": "width/height>",
        "validation_value": 0.4,
        "validation_error": "The aspect ratio range should be between 0.4 and 2.5.",
    },
    {
        "validation_rule": "width/height<",
        "validation_value": 2.5,
        "validation_error": "The aspect ratio range should be between 0.4 and 2.5.",
    },
    {
        "validation_rule": "file_size_mb<",
        "validation_value": 30,
        "validation_error": "File size must be less than 30 MB.",
    },
]

_RATIOS = ["16:9", "4:3", "1:1", "3:4", "9:16", "21:9", "adaptive"]

SEED_SCHEMAS: dict[str, dict[str, Any]] = {
    # Seed 002.
    "bytedance/seedance-1-0/pro/image-to-video": {
        "type": "object",
        "required": ["prompt", "first_frame_image_url"],
        "properties": {
            "prompt": {"type": "string"},
            "resolution": {"type": "string", "enum": ["480p", "720p", "1080p"]},
            "first_frame_image_url": {"type": "string", "validations": _FIRST_FRAME_VALIDATIONS},
            "ratio": {"type": "string", "enum": _RATIOS},
            "duration": {"type": "integer", "enum": [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]},
        },
    },
    # Seeds 000 and 001.
    "bytedance/seedance-v1.5-pro/image-to-video": {
        "type": "object",
        "required": ["prompt", "first_frame_image_url"],
        "properties": {
            "prompt": {"type": "string"},
            "first_frame_image_url": {"type": "string", "validations": _FIRST_FRAME_VALIDATIONS},
            "resolution": {"type": "string", "enum": ["480p", "720p", "1080p"]},
            "ratio": {"type": "string", "enum": _RATIOS},
            "duration": {"type": "integer", "enum": [4, 5, 6, 7, 8, 9, 10, 11, 12]},
            "generate_audio": {"type": "boolean"},
            "camera_fixed": {"type": "boolean"},
        },
    },
    # Seed 003.
    "bytedance/seedance-2.0/pro": {
        "type": "object",
        "required": ["prompt"],
        "properties": {
            "prompt": {"type": "string"},
            "images": {"type": "array", "items": {"type": "string", "format": "image_uri"}, "maxItems": 9},
            "videos": {"type": "array", "items": {"type": "string", "format": "video_uri"}, "maxItems": 3},
            "audios": {"type": "array", "items": {"type": "string", "format": "audio_uri"}, "maxItems": 3},
            "aspect_ratio": {
                "type": "string",
                "enum": ["adaptive", "16:9", "9:16", "4:3", "3:4", "1:1", "21:9"],
            },
            "duration": {"type": "integer", "minimum": 4, "maximum": 15},
            "resolution": {"type": "string", "enum": ["480p", "720p"]},
            "generate_audio": {"type": "boolean"},
            "seed": {"type": "integer"},
            "tools": {"type": "boolean"},
        },
    },
}

# Seed 003: "Support jpeg、png、webp、bmp、tiff、gif." (Pillow's names; MPO is a JPEG with extra pictures.)
_V2_IMAGE_FORMATS = frozenset({"JPEG", "MPO", "PNG", "WEBP", "BMP", "TIFF", "GIF"})
# "30 MB" read as decimal megabytes: the stricter reading, so a bot that cuts it close fails here first.
_BYTES_PER_MB = BYTES_PER_MB
_MAX_FETCH_BYTES = 30 * _BYTES_PER_MB + 1

# Not in the docs: 400003 fills the gap between the documented 400001, 400002 and 400004, a guess kept
# deliberately undocumented-looking so the client must fall back on the HTTP status (422).
SCHEMA_ERROR_CODE = 400003
AUTH_ERROR_CODE = 400004
BAD_MODEL_ERROR_CODE = 400001
BALANCE_ERROR_CODE = 400002
FOREIGN_REQUEST_ERROR_CODE = 403001
UNKNOWN_REQUEST_ERROR_CODE = 404001

# RunComfy's status words (doc: in_queue, in_progress, completed, cancelled; its clients also know failed).
# "succeeded" and "canceled" are other spellings RunComfy's own code and fixtures use (sdk).
VOCABULARY = Vocabulary(
    words={
        StepKind.QUEUED: "in_queue",
        StepKind.RUNNING: "in_progress",
        StepKind.SUCCEEDED: "completed",
        StepKind.FAILED: "failed",
        StepKind.CANCELLED: "cancelled",
        StepKind.EXPIRED: "expired",
    },
    aliases={"succeeded": StepKind.SUCCEEDED, "canceled": StepKind.CANCELLED},
)


# --- Lifecycles: the neutral ones, whose steps also tell their RunComfy word --------------------------------


class Step(NeutralStep):
    """A neutral step that also knows the word RunComfy's status endpoint shows for it."""

    @property
    def status(self) -> str:
        """RunComfy's status word for this step."""
        return VOCABULARY.word(self)

    @property
    def is_terminal(self) -> bool:
        """Whether the job is over once it reaches this step."""
        return VOCABULARY.kind(self) in TERMINAL_KINDS


class Lifecycle(NeutralLifecycle):
    """`provider_double.Lifecycle` whose steps tell their RunComfy word (`step.status`).

    RunComfyDouble takes any neutral Lifecycle; this one only adds the words for tests that read them.
    """

    step_class = Step


# --- Jobs --------------------------------------------------------------------------------------------------


@dataclass(eq=False)
class RunComfyJob(DoubleJob):
    """A RunComfy request: a `DoubleJob` that also counts result reads."""

    result_reads: int = 0

    @property
    def request_id(self) -> str:
        """RunComfy's name for the job id."""
        return self.id


class _Refusal(Refusal):
    """A RunComfy error answer (`field` names the offending body field)."""

    def __init__(self, status: int, error_code: int, message: str, field: str | None = None) -> None:
        super().__init__(status, error_code, message, param=field)


# --- The server --------------------------------------------------------------------------------------------


class RunComfyDouble(ProviderDouble[RunComfyJob]):
    """The RunComfy Model API on 127.0.0.1 (see the module docstring for the contract and the knobs)."""

    routes = frozenset({"submit", "status", "result", "cancel", "video", "hosted"})
    vocabulary = VOCABULARY

    def __init__(
        self,
        *,
        api_keys: Iterable[str] = ("test-key",),
        video: bytes | None = None,
        default_lifecycle: NeutralLifecycle | None = None,
        v2_image_fields: Iterable[str] = ("images", "image_url"),
        schemas: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        super().__init__(
            api_keys=api_keys,
            video=video,
            default_lifecycle=default_lifecycle or Lifecycle.queued(1).running(1).completes(),
        )
        self.schemas = _with_v2_image_fields(dict(schemas or SEED_SCHEMAS), tuple(v2_image_fields))

    def _add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/models/{model_id:.+}", self._submit, name="submit")
        app.router.add_get("/v1/requests/{request_id}/status", self._status, name="status")
        app.router.add_get("/v1/requests/{request_id}/result", self._result, name="result")
        app.router.add_post("/v1/requests/{request_id}/cancel", self._cancel, name="cancel")

    def render_error(
        self, status: int, code: int | str | None, message: str, param: str | None = None
    ) -> web.Response:
        """`{"error_code", "error_message"}` (+ `field`); without a code only `error_message` is sent."""
        payload: dict[str, Any] = {"error_message": message}
        if code is not None:
            payload = {"error_code": code, "error_message": message}
        if param is not None:
            payload["field"] = param
        return web.json_response(payload, status=status)

    def fault_for(self, kind: FaultKindName) -> Fault:
        """RunComfy's documented answer for `kind` (providers.md section 1)."""
        if kind == "auth":
            return Fault.error(401, AUTH_ERROR_CODE, "Invalid or expired token, or the account is inactive.")
        if kind == "balance":
            return Fault.error(402, BALANCE_ERROR_CODE, "Insufficient balance.")
        if kind == "moderation":
            # RunComfy documents no moderation error: flagged content ends as a failed request (use
            # `Lifecycle.fails`). As an HTTP answer, the nearest documented one is an input refused with 422
            # (schema mismatch), which has no documented code either.
            return Fault.error(422, message="The input was flagged by the content safety checker.")
        if kind == "model_unavailable":
            # No "model not enabled" answer exists; an unknown model id (400001) is the nearest.
            return Fault.error(400, BAD_MODEL_ERROR_CODE, "Unknown model id.")
        if kind == "rate_limit":
            return Fault.rate_limited("2")  # no documented code: RunComfy's clients key on the status
        if kind == "bad_request":
            return Fault.error(422, SCHEMA_ERROR_CODE, "prompt: this field is required.", param="prompt")
        if kind == "not_found":
            return Fault.error(404, UNKNOWN_REQUEST_ERROR_CODE, "Request not found or expired.")
        raise ValueError(f"unknown fault kind {kind!r}; known: {sorted(FAULT_KINDS)}")

    # The routes.

    def _authenticate(self, request: web.Request) -> str:
        key = self._bearer_key(request)
        if key is None:
            raise _Refusal(401, AUTH_ERROR_CODE, "Invalid or expired token, or the account is inactive.")
        return key

    def _owned_job(self, request: web.Request) -> RunComfyJob:
        key = self._authenticate(request)
        job = self.jobs.get(request.match_info["request_id"])
        if job is None:
            raise _Refusal(404, UNKNOWN_REQUEST_ERROR_CODE, "Request not found or expired.")
        if job.api_key != key:
            raise _Refusal(403, FOREIGN_REQUEST_ERROR_CODE, "This request belongs to another user.")
        return job

    def _urls(self, request_id: str) -> dict[str, str]:
        base = f"{self.base_url}/v1/requests/{request_id}"
        return {
            "status_url": f"{base}/status",
            "result_url": f"{base}/result",
            "cancel_url": f"{base}/cancel",
        }

    async def _submit(self, request: web.Request) -> web.Response:
        key = self._authenticate(request)
        model_id = request.match_info["model_id"]
        schema = self.schemas.get(model_id)
        if schema is None:
            raise _Refusal(400, BAD_MODEL_ERROR_CODE, f"Unknown model id: {model_id}")
        try:
            body = json.loads(await request.read())
        except ValueError:
            raise _Refusal(422, SCHEMA_ERROR_CODE, "The body is not valid JSON.") from None
        _check_schema(schema, body)
        await self._check_media(schema, body)
        job = self._register(
            RunComfyJob(
                id=str(uuid.uuid4()),
                model_id=model_id,
                body=body,
                api_key=key,
                lifecycle=self._next_lifecycle(),
                vocabulary=self.vocabulary,
            )
        )
        return web.json_response({"request_id": job.id, **self._urls(job.id)})

    async def _status(self, request: web.Request) -> web.Response:
        job = self._owned_job(request)
        self._poll(job)
        urls = self._urls(job.id)
        payload: dict[str, Any] = {
            "request_id": job.id,
            "status": job.status,
            "status_url": urls["status_url"],
            "result_url": urls["result_url"],
        }
        if job.step.queue_position is not None and job.kind is StepKind.QUEUED:
            payload["queue_position"] = job.step.queue_position
        return web.json_response(payload)

    async def _result(self, request: web.Request) -> web.Response:
        job = self._owned_job(request)
        job.result_reads += 1
        payload: dict[str, Any] = {"request_id": job.id, "status": job.status}
        if not job.is_finished:
            if job.step.queue_position is not None and job.kind is StepKind.QUEUED:
                payload["queue_position"] = job.step.queue_position
            return web.json_response(payload)
        payload["created_at"] = job.created_at.isoformat()
        payload["finished_at"] = (job.finished_at or job.created_at).isoformat()
        lifecycle = job.lifecycle
        if job.kind is StepKind.SUCCEEDED:
            payload["status"] = lifecycle.result_status
            if lifecycle.output == "video":
                payload["output"] = {"video": self.video_url(job.id)}
            elif lifecycle.output == "videos":
                payload["output"] = {"videos": [self.video_url(job.id)]}
            else:
                payload["output"] = {}
        elif job.kind is StepKind.FAILED:
            payload["error"] = lifecycle.error
        if request.query.get("include_cost") == "true" and lifecycle.cost is not None and not job.cancelled:
            payload["cost"] = lifecycle.cost
        return web.json_response(payload)

    async def _cancel(self, request: web.Request) -> web.Response:
        job = self._owned_job(request)
        job.cancel_requests += 1
        if job.kind is StepKind.QUEUED and not job.cancelled:
            job.cancel()
            self._status_changed(job)
        # A repeated cancel of a cancelled job says "cancelled" again: cancelling is idempotent, and a
        # client that lost the first answer must not be told the job could not be cancelled.
        outcome = "cancelled" if job.cancelled else "not_cancellable"
        return web.json_response({"request_id": job.id, "status": job.status, "outcome": outcome}, status=202)

    # Fetching and judging the media a submit points at, as RunComfy does.

    async def _check_media(self, schema: Mapping[str, Any], body: Mapping[str, Any]) -> None:
        for name, rule in schema["properties"].items():
            if name not in body:
                continue
            if "validations" in rule:
                data = await self._fetch(name, body[name])
                problem = await asyncio.to_thread(_first_frame_problem, data, rule["validations"])
                if problem is not None:
                    raise _Refusal(422, SCHEMA_ERROR_CODE, f"{name}: {problem}", field=name)
            elif rule.get("items", {}).get("format") == "image_uri":
                for index, url in enumerate(body[name]):
                    where = f"{name}[{index}]"
                    data = await self._fetch(where, url)
                    problem = await asyncio.to_thread(_reference_image_problem, data)
                    if problem is not None:
                        raise _Refusal(422, SCHEMA_ERROR_CODE, f"{where}: {problem}", field=name)

    async def _fetch(self, where: str, url: str) -> bytes:
        try:
            return await self.fetch(url, limit=_MAX_FETCH_BYTES)
        except FetchError as error:
            raise _Refusal(
                422, SCHEMA_ERROR_CODE, f"{where}: {error}.", field=where.split("[", 1)[0]
            ) from None


# --- Pure checks -------------------------------------------------------------------------------------------


def _with_v2_image_fields(
    schemas: dict[str, Mapping[str, Any]], fields: tuple[str, ...]
) -> dict[str, Mapping[str, Any]]:
    """Give 2.0's image array each accepted spelling: "images" (the seed), "image_url" (RunComfy's skills)."""
    v2_id = "bytedance/seedance-2.0/pro"
    if v2_id not in schemas:
        return schemas
    v2 = json.loads(json.dumps(schemas[v2_id]))
    image_rule = v2["properties"].pop("images", None)
    if image_rule is None:
        return schemas
    for name in fields:
        v2["properties"][name] = image_rule
    schemas[v2_id] = v2
    return schemas


def _check_schema(schema: Mapping[str, Any], body: Any) -> None:
    """Refuse `body` unless it fits `schema` (the seeds' subset of JSON schema); unknown fields included."""
    if not isinstance(body, dict):
        raise _Refusal(422, SCHEMA_ERROR_CODE, "The body must be a JSON object.")
    properties: Mapping[str, Any] = schema["properties"]
    for name in schema.get("required", ()):
        if name not in body:
            raise _Refusal(422, SCHEMA_ERROR_CODE, f"{name}: this field is required.", field=name)
    for name, value in body.items():
        rule = properties.get(name)
        if rule is None:
            # The seeds do not say; refusing unknown fields makes a misspelt field fail loudly here.
            raise _Refusal(422, SCHEMA_ERROR_CODE, f"{name}: unknown field for this model.", field=name)
        problem = _value_problem(rule, value)
        if problem is not None:
            raise _Refusal(422, SCHEMA_ERROR_CODE, f"{name}: {problem}", field=name)


def _value_problem(rule: Mapping[str, Any], value: Any) -> str | None:
    expected = rule["type"]
    if not _has_type(expected, value):
        return f"expected {expected}, got {json.dumps(value)}"
    if "enum" in rule and value not in rule["enum"]:
        return f"must be one of {json.dumps(rule['enum'])}, got {json.dumps(value)}"
    if "minimum" in rule and value < rule["minimum"]:
        return f"must be at least {rule['minimum']}, got {value}"
    if "maximum" in rule and value > rule["maximum"]:
        return f"must be at most {rule['maximum']}, got {value}"
    if expected == "array":
        if "maxItems" in rule and len(value) > rule["maxItems"]:
            return f"at most {rule['maxItems']} items, got {len(value)}"
        for item in value:
            problem = _value_problem({"type": rule["items"]["type"]}, item)
            if problem is not None:
                return problem
    return None


def _has_type(expected: str, value: Any) -> bool:
    if expected == "string":
        return isinstance(value, str)
    if expected == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if expected == "boolean":
        return isinstance(value, bool)
    if expected == "array":
        return isinstance(value, list)
    raise ValueError(f"the double's schema uses an unsupported type {expected!r}")


def _first_frame_problem(data: bytes, validations: Iterable[Mapping[str, Any]]) -> str | None:
    """The seed's `validation_error` for the first rule `data` breaks; an unreadable file is refused first."""
    size_mb = len(data) / _BYTES_PER_MB
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            width, height = image.size
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        if size_mb >= 30:
            return "File size must be less than 30 MB."
        return "The file is not an image that can be read."
    measures = {
        "width_pixels": float(width),
        "height_pixels": float(height),
        "width/height": width / height,
        "file_size_mb": size_mb,
    }
    for validation in validations:
        rule: str = validation["validation_rule"]
        measure, operator = measures[rule[:-1]], rule[-1]
        limit = float(validation["validation_value"])
        holds = measure < limit if operator == "<" else measure > limit
        if not holds:
            return str(validation["validation_error"])
    return None


def _reference_image_problem(data: bytes) -> str | None:
    try:
        with Image.open(io.BytesIO(data)) as image:
            image_format = image.format or "unknown"
            image.load()
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return "The file is not an image that can be read."
    if image_format not in _V2_IMAGE_FORMATS:
        return f"Unsupported image format {image_format}; supported: jpeg, png, webp, bmp, tiff, gif."
    return None
