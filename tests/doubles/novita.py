"""A loopback double of Novita's Seedance API: a real HTTP server on 127.0.0.1 that follows the documented
contract (`shared/docs/providers.md` section 2, seed 004, Novita's error-code guide), written independently
of the bot's client.

Use from async tests (the shared control surface is described in `tests.doubles.provider_double`)::

    async with NovitaDouble(api_keys=("test-key",)) as double:
        image_url = double.host_file(make_image(640, 480), "image/png", "frame.png")
        double.script(Lifecycle.queued(2).running(progress=50).completes())
        ...  # point the client at double.base_url (http://127.0.0.1:PORT; paths start with /v3/)
        job = await double.wait_for_submit()

The contract it follows:

- `POST /v3/async/seedance-v1.5-pro-i2v` (and the sibling `/v3/async/seedance-v1-pro-i2v`), Bearer key,
  a JSON body checked strictly against seed 004: `image` (required; an http(s) URL, fetched as Novita does,
  or `data:image/<fmt>;base64,...`), `prompt`, `last_image`, `ratio`, `duration`, `resolution`, `fps`,
  `seed`, `watermark`, `camera_fixed`, `generate_audio`, `service_tier`, `execution_expires_after`. Images:
  jpeg png webp bmp tiff gif, each side strictly between 300 and 6000 px, aspect strictly between 0.4 and
  2.5, under 30 MB. Unknown fields are refused, so a client's typo fails a test. Answers `{"task_id"}`.
- `GET /v3/async/task-result?task_id=...` -> `{"task": {...}, "images": [], "videos": [...], "audios": [],
  "extra": {...}}`; every GET after the first moves the task one step on.
- No cancel endpoint is documented, so there is none (`inject("cancel", ...)` is refused).
- Errors are `{"code": int, "reason": str, "message": str, "metadata": {}}`: 400 invalid parameters, 401
  missing or wrong key, 403 no access to the model or not enough balance, 404 unknown task (also another
  key's task: nothing leaks), 429 rate limit. Every answer carries `X-Request-Id`.
- Finished videos download from `/files/videos/{task_id}.mp4` without auth.
"""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.doubles.provider_double import (
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
    is_http_url,
    is_json_int,
    running_in_thread,
    seedance_image_problem,
)

__all__ = [
    "ENDPOINTS",
    "DoubleJob",
    "Fault",
    "FaultKind",
    "Lifecycle",
    "NovitaDouble",
    "NovitaEndpoint",
    "NovitaJob",
    "RecordedRequest",
    "Step",
    "StepKind",
    "running_in_thread",
]

# Novita's task statuses (3p; providers.md section 2). Novita documents that tasks past
# `execution_expires_after` are "marked as 'expired'", but its status list has no such word: an expired (or
# provider-cancelled) task is shown as TASK_STATUS_FAILED with a `reason` that says so. A test of a client's
# tolerance can still show the word with `Lifecycle.step("TASK_STATUS_EXPIRED")`, which this double treats as
# expired (terminal).
VOCABULARY = Vocabulary(
    words={
        StepKind.QUEUED: "TASK_STATUS_QUEUED",
        StepKind.RUNNING: "TASK_STATUS_PROCESSING",
        StepKind.SUCCEEDED: "TASK_STATUS_SUCCEED",
        StepKind.FAILED: "TASK_STATUS_FAILED",
        StepKind.CANCELLED: "TASK_STATUS_FAILED",
        StepKind.EXPIRED: "TASK_STATUS_FAILED",
    },
    aliases={"TASK_STATUS_EXPIRED": StepKind.EXPIRED, "TASK_STATUS_CANCELLED": StepKind.CANCELLED},
)

# A guess: the reasons are not documented; Novita's error guide documents only the HTTP statuses (and the
# lower-case `model_access_denied` case of 403, kept in that spelling). Clients should key on the status.
REASON_INVALID_REQUEST = "INVALID_REQUEST_BODY"
REASON_INVALID_KEY = "INVALID_API_KEY"
REASON_NOT_ENOUGH_BALANCE = "NOT_ENOUGH_BALANCE"
REASON_MODEL_ACCESS_DENIED = "model_access_denied"
REASON_SENSITIVE_CONTENT = "SENSITIVE_CONTENT_DETECTED"
REASON_RATE_LIMIT = "RATE_LIMIT_EXCEEDED"
REASON_TASK_NOT_FOUND = "TASK_NOT_FOUND"
_DEFAULT_REASONS = {
    400: REASON_INVALID_REQUEST,
    401: REASON_INVALID_KEY,
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: REASON_RATE_LIMIT,
    500: "INTERNAL_SERVER_ERROR",
    502: "BAD_GATEWAY",
    503: "SERVICE_UNAVAILABLE",
    504: "GATEWAY_TIMEOUT",
}

_RATIOS = ("16:9", "4:3", "1:1", "3:4", "9:16", "21:9", "adaptive")
_SEED_MAX = 4_294_967_295


@dataclass(frozen=True)
class NovitaEndpoint:
    """One submit path and what its body may hold."""

    task_type: str  # a guess: Novita's task-type names follow the path in upper snake case
    durations: tuple[int, int]
    generate_audio: bool


ENDPOINTS: dict[str, NovitaEndpoint] = {
    # Seed 004.
    "seedance-v1.5-pro-i2v": NovitaEndpoint("SEEDANCE_V1_5_PRO_I2V", (4, 12), generate_audio=True),
    # A guess: providers.md names the sibling path only; it is taken to have 1.5's schema without
    # generate_audio, and Seedance 1.0 pro's own duration range (2-12 s: seed 002, ModelArk).
    "seedance-v1-pro-i2v": NovitaEndpoint("SEEDANCE_V1_PRO_I2V", (2, 12), generate_audio=False),
}


@dataclass(eq=False)
class NovitaJob(DoubleJob):
    """A Novita task."""

    endpoint: str = ""
    seed: int = 0

    @property
    def task_id(self) -> str:
        """Novita's name for the job id."""
        return self.id


def _refuse(status: int, reason: str, message: str, field: str | None = None) -> Refusal:
    return Refusal(status, reason, message, param=field)


class NovitaDouble(ProviderDouble[NovitaJob]):
    """Novita's Seedance API on 127.0.0.1 (see the module docstring for the contract)."""

    routes = frozenset({"submit", "status", "video", "hosted"})  # no documented cancel endpoint
    vocabulary = VOCABULARY

    def __init__(
        self,
        *,
        api_keys: Iterable[str] = ("test-key",),
        video: bytes | None = None,
        default_lifecycle: Lifecycle | None = None,
        endpoints: Mapping[str, NovitaEndpoint] | None = None,
    ) -> None:
        super().__init__(api_keys=api_keys, video=video, default_lifecycle=default_lifecycle)
        self.endpoints = dict(endpoints or ENDPOINTS)

    def _add_routes(self, app: web.Application) -> None:
        app.router.add_get("/v3/async/task-result", self._task_result, name="status")
        app.router.add_post("/v3/async/{endpoint}", self._submit, name="submit")

    def render_error(
        self, status: int, code: int | str | None, message: str, param: str | None = None
    ) -> web.Response:
        """`{"code": int, "reason": str, "message", "metadata"}`; a string `code` is the reason.

        A guess: `metadata` names the offending field of a refused body.
        """
        reason = code if isinstance(code, str) else _DEFAULT_REASONS.get(status, "UNKNOWN_ERROR")
        number = code if isinstance(code, int) else status
        metadata = {"field": param} if param is not None else {}
        return web.json_response(
            {"code": number, "reason": reason, "message": message, "metadata": metadata}, status=status
        )

    def fault_for(self, kind: FaultKindName) -> Fault:
        """Novita's answer for `kind`: the statuses are documented, the reasons are guesses."""
        if kind == "auth":
            return Fault.error(401, REASON_INVALID_KEY, "API key is missing or incorrect.")
        if kind == "balance":
            return Fault.error(403, REASON_NOT_ENOUGH_BALANCE, "Not enough balance.")
        if kind == "moderation":
            # Not in Novita's error guide: a refused input is a 400 (invalid request parameters).
            return Fault.error(
                400, REASON_SENSITIVE_CONTENT, "The input image may contain sensitive content."
            )
        if kind == "model_unavailable":
            return Fault.error(403, REASON_MODEL_ACCESS_DENIED, "The API key may not call this model.")
        if kind == "rate_limit":
            return Fault.rate_limited("2", REASON_RATE_LIMIT, message="Rate limit exceeded.")
        if kind == "bad_request":
            return Fault.error(
                400, REASON_INVALID_REQUEST, "duration: must be between 4 and 12", param="duration"
            )
        if kind == "not_found":
            return Fault.error(404, REASON_TASK_NOT_FOUND, "Task not found.")
        raise ValueError(f"unknown fault kind {kind!r}; known: {sorted(FAULT_KINDS)}")

    # The routes.

    def _authenticate(self, request: web.Request) -> str:
        key = self._bearer_key(request)
        if key is None:
            raise _refuse(401, REASON_INVALID_KEY, "API key is missing or incorrect.")
        return key

    async def _submit(self, request: web.Request) -> web.Response:
        name = request.match_info["endpoint"]
        endpoint = self.endpoints.get(name)
        if endpoint is None:
            raise _refuse(404, "NOT_FOUND", f"Unknown endpoint /v3/async/{name}.")
        key = self._authenticate(request)
        try:
            body = json.loads(await request.read())
        except ValueError:
            raise _refuse(400, REASON_INVALID_REQUEST, "The body is not valid JSON.") from None
        _check_body(endpoint, body)
        for field_name in ("image", "last_image"):
            if field_name in body:
                await self._check_image(field_name, body[field_name])
        seed = body.get("seed", -1)
        job = self._register(
            NovitaJob(
                id=str(uuid.uuid4()),
                model_id=name,
                body=body,
                api_key=key,
                lifecycle=self._next_lifecycle(),
                vocabulary=self.vocabulary,
                endpoint=name,
                seed=seed if seed != -1 else random.randrange(2**31),
            )
        )
        return web.json_response({"task_id": job.id})

    async def _task_result(self, request: web.Request) -> web.Response:
        key = self._authenticate(request)
        task_id = request.query.get("task_id")
        if not task_id:
            raise _refuse(
                400, REASON_INVALID_REQUEST, "task_id: this query parameter is required.", "task_id"
            )
        job = self.jobs.get(task_id)
        if job is None or job.api_key != key:  # another key's task is not found either: nothing leaks
            raise _refuse(404, REASON_TASK_NOT_FOUND, f"Task {task_id} not found.")
        self._poll(job)
        return web.json_response(self.task_result(job))

    def task_result(self, job: NovitaJob) -> dict[str, Any]:
        """What the task-result endpoint shows for `job` now."""
        kind = job.kind
        reason = ""
        if kind is StepKind.FAILED:
            reason = _message_of(job.lifecycle.error)
        elif kind is StepKind.EXPIRED:
            reason = "The task expired: it did not finish within execution_expires_after seconds."
        elif kind is StepKind.CANCELLED:
            reason = "The task was cancelled."
        videos: list[dict[str, Any]] = []
        if kind is StepKind.SUCCEEDED and job.lifecycle.output is not None:
            # Field names are a guess (providers.md section 2): modelled on Novita's other v3 async APIs.
            videos = [{"video_url": self.video_url(job.id), "video_url_ttl": "3600", "video_type": "mp4"}]
        task = {
            "task_id": job.id,
            "task_type": self.endpoints[job.endpoint].task_type,
            "status": job.status,
            "reason": reason,
            "eta": _eta(job),  # a guess: seconds left, 0 once over
            "progress_percent": _progress(job),
        }
        # `extra.seed` as a string, as Novita's other v3 task results show it (a guess).
        return {"task": task, "images": [], "videos": videos, "audios": [], "extra": {"seed": str(job.seed)}}

    async def _check_image(self, field_name: str, value: str) -> None:
        declared: str | None = None
        if value.startswith("data:"):
            try:
                declared, data = decode_data_uri(value, "image")
            except ValueError as error:
                raise _refuse(400, REASON_INVALID_REQUEST, f"{field_name}: {error}", field_name) from None
        elif is_http_url(value):
            try:
                data = await self.fetch(value)
            except FetchError as error:
                raise _refuse(400, REASON_INVALID_REQUEST, f"{field_name}: {error}", field_name) from None
        else:
            raise _refuse(
                400,
                REASON_INVALID_REQUEST,
                f"{field_name}: must be an http(s) URL or data:image/<format>;base64,<data>",
                field_name,
            )
        problem = await asyncio.to_thread(seedance_image_problem, data, declared)
        if problem is not None:
            raise _refuse(400, REASON_INVALID_REQUEST, f"{field_name}: {problem}", field_name)


# --- Pure checks -------------------------------------------------------------------------------------------


def _is_str(value: Any) -> bool:
    return isinstance(value, str)


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool)


def _enum(*allowed: Any) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if value in allowed and type(value) is type(allowed[0]):
            return None
        return f"must be one of {json.dumps(list(allowed))}, got {json.dumps(value)}"

    return check


def _int_range(low: int, high: int) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if not is_json_int(value):
            return f"must be an integer, got {json.dumps(value)}"
        if not low <= value <= high:
            return f"must be between {low} and {high}, got {value}"
        return None

    return check


def _typed(predicate: Callable[[Any], bool], name: str) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        return None if predicate(value) else f"must be a {name}, got {json.dumps(value)}"

    return check


def _rules(endpoint: NovitaEndpoint) -> dict[str, Callable[[Any], str | None]]:
    """Seed 004's fields and what each accepts."""
    rules: dict[str, Callable[[Any], str | None]] = {
        "image": _typed(_is_str, "string"),
        "prompt": _typed(_is_str, "string"),
        "last_image": _typed(_is_str, "string"),
        "ratio": _enum(*_RATIOS),
        "duration": _int_range(*endpoint.durations),
        "resolution": _enum("480p", "720p", "1080p"),
        "fps": _enum(24),
        "seed": _int_range(-1, _SEED_MAX),
        "watermark": _typed(_is_bool, "boolean"),
        "camera_fixed": _typed(_is_bool, "boolean"),
        "service_tier": _enum("default", "flex"),
        "execution_expires_after": _int_range(3600, 259_200),
    }
    if endpoint.generate_audio:
        rules["generate_audio"] = _typed(_is_bool, "boolean")
    return rules


def _check_body(endpoint: NovitaEndpoint, body: Any) -> None:
    if not isinstance(body, dict):
        raise _refuse(400, REASON_INVALID_REQUEST, "The body must be a JSON object.")
    if "image" not in body:
        raise _refuse(400, REASON_INVALID_REQUEST, "image: this field is required.", "image")
    rules = _rules(endpoint)
    for name, value in body.items():
        rule = rules.get(name)
        if rule is None:
            # Novita does not say; refusing unknown fields makes a misspelt field fail loudly here.
            raise _refuse(400, REASON_INVALID_REQUEST, f"{name}: unknown field for this endpoint.", name)
        problem = rule(value)
        if problem is not None:
            raise _refuse(400, REASON_INVALID_REQUEST, f"{name}: {problem}", name)


def _message_of(error: Any) -> str:
    if isinstance(error, str):
        return error
    if isinstance(error, Mapping) and isinstance(error.get("message"), str):
        return str(error["message"])
    return json.dumps(error)


def _eta(job: DoubleJob) -> int:
    step = job.step
    if job.kind is StepKind.QUEUED:
        return 30 * (1 + (step.queue_position or 0))
    if job.kind is StepKind.RUNNING:
        return 20
    return 0


def _progress(job: DoubleJob) -> int:
    step: Step = job.step
    if step.progress is not None:
        return step.progress
    if job.kind is StepKind.SUCCEEDED:
        return 100
    if job.kind is StepKind.RUNNING:
        running = [i for i, s in enumerate(job.lifecycle.steps) if job.vocabulary.kind(s) is StepKind.RUNNING]
        done = running.index(job.position) + 1 if job.position in running else 1
        return min(99, 100 * done // (len(running) + 1))
    return 0
