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

The knobs and records (all on `RunComfyDouble`):

- `base_url`, `host_file(data, content_type, name) -> url`, `video_url(request_id)`, `video` (the bytes
  every finished job serves unless its lifecycle brings its own), `api_keys`.
- `script(lifecycle)`: the next submit's lifecycle (FIFO); otherwise `default_lifecycle`
  (queued at 1, running one poll, then completed). `release(request_id)`: let a held job move on.
- `inject(route, fault, times=1)` for route "submit", "status", "result", "cancel", "video" or "hosted".
- `jobs` (request_id → `DoubleJob`: body, model_id, api_key, lifecycle, polls, result_reads,
  cancel_requests, cancelled), `submit_count` (jobs created, answered or not), `requests`
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
import contextlib
import functools
import io
import itertools
import json
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal, Self

import aiohttp
from aiohttp import web
from PIL import Image, UnidentifiedImageError

from tests.doubles.media import make_mp4

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
_BYTES_PER_MB = 1_000_000
_MAX_FETCH_BYTES = 30 * _BYTES_PER_MB + 1
_FETCH_TIMEOUT_S = 10.0

# Not in the docs: 400003 fills the gap between the documented 400001, 400002 and 400004, a guess kept
# deliberately undocumented-looking so the client must fall back on the HTTP status (422).
SCHEMA_ERROR_CODE = 400003
AUTH_ERROR_CODE = 400004
BAD_MODEL_ERROR_CODE = 400001
FOREIGN_REQUEST_ERROR_CODE = 403001
UNKNOWN_REQUEST_ERROR_CODE = 404001

_TERMINAL_WORDS = frozenset({"completed", "succeeded", "failed", "cancelled", "canceled", "expired"})
_SUCCESS_WORDS = frozenset({"completed", "succeeded"})


# --- Lifecycles --------------------------------------------------------------------------------------------


class _fluent:  # lower case: it is used as a decorator
    """A builder method callable on the class (starting from an empty Lifecycle) or on an instance."""

    def __init__(self, method: Callable[..., Lifecycle]) -> None:
        self._method = method
        self.__doc__ = method.__doc__

    def __get__(self, instance: Lifecycle | None, owner: type[Lifecycle]) -> Callable[..., Lifecycle]:
        return functools.partial(self._method, instance if instance is not None else owner())


@dataclass(frozen=True)
class Step:
    """One state a job shows on the status endpoint; a held step waits for `RunComfyDouble.release`."""

    status: str
    queue_position: int | None = None
    hold: bool = False

    @property
    def is_terminal(self) -> bool:
        """Whether the job is over once it reaches this step."""
        return self.status in _TERMINAL_WORDS


@dataclass(frozen=True)
class Lifecycle:
    """The scripted life of one job, advanced by status GETs; a job stays on its last step for good.

    Build it fluently, from the class or an instance:
    `Lifecycle.queued(3).running(2).completes(cost=0.3)`, `Lifecycle.running().hold().fails("boom")`,
    `Lifecycle.quick()` (finished on the first poll), `Lifecycle.queued(1, hold=True)` (queued until
    released), `Lifecycle.running().completes(output=None)` (finished but no video: the provider lies).
    """

    steps: tuple[Step, ...] = ()
    cost: float | None = 0.1
    output: Literal["video", "videos"] | None = "video"  # where the result puts the video URL; None: nowhere
    result_status: str = "succeeded"  # the result endpoint's word for a finished job (doc); "completed" too
    error: Any = None  # a failed job's `error` on the result endpoint, any JSON value
    video: bytes | None = None  # this job's video; None: the double's

    @classmethod
    def quick(cls) -> Lifecycle:
        """Finished with a video on the first status poll."""
        return cls().completes()

    @_fluent
    def step(self, status: str, *, queue_position: int | None = None, hold: bool = False) -> Lifecycle:
        """Add any step, including status words the documentation does not know."""
        return replace(self, steps=(*self.steps, Step(status, queue_position, hold)))

    @_fluent
    def queued(self, positions: int = 1, *, hold: bool = False) -> Lifecycle:
        """Wait in the queue at positions `positions`, ..., 1 (one status poll each)."""
        steps = tuple(Step("in_queue", position) for position in range(max(positions, 1), 0, -1))
        if hold:
            steps = (*steps[:-1], replace(steps[-1], hold=True))
        return replace(self, steps=(*self.steps, *steps))

    @_fluent
    def running(self, polls: int = 1, *, hold: bool = False) -> Lifecycle:
        """Run for `polls` status polls."""
        steps = tuple(Step("in_progress") for _ in range(max(polls, 1)))
        if hold:
            steps = (*steps[:-1], replace(steps[-1], hold=True))
        return replace(self, steps=(*self.steps, *steps))

    @_fluent
    def hold(self) -> Lifecycle:
        """Keep the job on the last step added so far until the test calls `release`."""
        if not self.steps:
            raise ValueError("add a step before holding on it")
        return replace(self, steps=(*self.steps[:-1], replace(self.steps[-1], hold=True)))

    @_fluent
    def completes(
        self,
        *,
        cost: float | None = 0.1,
        output: Literal["video", "videos"] | None = "video",
        status_word: str = "completed",
        result_status: str = "succeeded",
        video: bytes | None = None,
    ) -> Lifecycle:
        """Finish with a video (unless `output` is None) and, when asked for, a cost in USD."""
        return replace(
            self,
            steps=(*self.steps, Step(status_word)),
            cost=cost,
            output=output,
            result_status=result_status,
            video=video,
        )

    @_fluent
    def fails(self, error: Any = "The generation failed.", *, cost: float | None = None) -> Lifecycle:
        """Finish as failed; `error` is what the result shows (a string, an object, anything)."""
        return replace(self, steps=(*self.steps, Step("failed")), error=error, cost=cost)

    @_fluent
    def cancelled(self, *, word: str = "cancelled") -> Lifecycle:
        """Finish as cancelled by the provider."""
        return replace(self, steps=(*self.steps, Step(word)))

    @_fluent
    def expires(self) -> Lifecycle:
        """Finish as expired."""
        return replace(self, steps=(*self.steps, Step("expired")))


# --- Faults ------------------------------------------------------------------------------------------------


class FaultKind(StrEnum):
    """How a fault changes an answer."""

    RESPOND = "respond"  # answer with this instead; the request is not handled (no job is created)
    DROP = "drop"  # handle the request, then close the connection without answering
    DELAY = "delay"  # handle the request, then wait before answering
    MALFORMED = "malformed"  # handle the request, then answer HTTP 200 with broken JSON


@dataclass(frozen=True)
class Fault:
    """A change to one answer of one route; build with the class methods."""

    kind: FaultKind
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()
    delay_s: float = 0.0

    @classmethod
    def error(cls, status: int, error_code: int | None = None, message: str = "Injected failure") -> Fault:
        """HTTP `status` with RunComfy's error body; without `error_code` only `error_message` is sent."""
        payload: dict[str, Any] = {"error_message": message}
        if error_code is not None:
            payload = {"error_code": error_code, "error_message": message}
        return cls(FaultKind.RESPOND, status=status, body=json.dumps(payload).encode())

    @classmethod
    def error_with_200(cls, error_code: int, message: str = "Injected failure") -> Fault:
        """HTTP 200 whose body is an error, as RunComfy sometimes answers."""
        return cls.error(200, error_code, message)

    @classmethod
    def rate_limited(cls, retry_after: str | None = "2", error_code: int | None = None) -> Fault:
        """429 Too Many Requests, with a Retry-After header (seconds or an HTTP date) unless None."""
        fault = cls.error(429, error_code, "Too many requests")
        return replace(fault, headers=() if retry_after is None else (("Retry-After", retry_after),))

    @classmethod
    def html(cls, status: int = 502) -> Fault:
        """An HTML error page, as a proxy in front of the API would send."""
        page = f"<html><head><title>{status}</title></head><body><h1>{status} Bad Gateway</h1></body></html>"
        return cls(FaultKind.RESPOND, status=status, body=page.encode(), content_type="text/html")

    @classmethod
    def drop(cls) -> Fault:
        """Handle the request (a submit creates its job), then close the connection without an answer."""
        return cls(FaultKind.DROP)

    @classmethod
    def delay(cls, seconds: float) -> Fault:
        """Handle the request, then answer only after `seconds` (or when the double closes)."""
        return cls(FaultKind.DELAY, delay_s=seconds)

    @classmethod
    def malformed(cls) -> Fault:
        """Handle the request, then answer HTTP 200 with a JSON body cut in the middle."""
        return cls(FaultKind.MALFORMED)


# --- Recorded traffic and jobs ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordedRequest:
    """One request the double received, as it arrived."""

    route: RouteName | None  # None: no route matched
    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]  # lower-case names; Authorization is kept so tests can check it
    body: bytes
    json: Any  # the decoded body, or None
    http_request_id: str  # the X-Request-Id the double answered with

    @property
    def bearer(self) -> str | None:
        """The bearer token sent, if any."""
        return _bearer(self.headers.get("authorization"))


@dataclass
class DoubleJob:
    """A job the double accepted (and will charge for), and what has happened to it since."""

    request_id: str
    model_id: str
    body: dict[str, Any]
    api_key: str
    lifecycle: Lifecycle
    created_at: datetime
    position: int = 0
    polls: int = 0  # status GETs answered
    result_reads: int = 0
    cancel_requests: int = 0
    cancelled: bool = False  # by a cancel request
    releases: int = 0  # releases not yet spent on a held step
    finished_at: datetime | None = None

    @property
    def step(self) -> Step:
        """The step the job is on; a job without steps waits in the queue."""
        if self.cancelled:
            return Step("cancelled")
        if not self.lifecycle.steps:
            return Step("in_queue", 0)
        return self.lifecycle.steps[self.position]

    @property
    def status(self) -> str:
        """The status word the status endpoint shows now."""
        return self.step.status

    @property
    def is_finished(self) -> bool:
        """Whether the job is over."""
        return self.step.is_terminal

    def advance(self) -> None:
        """Move one step on, unless the job is over, on its last step, or held without a release.

        A terminal step is final even when more steps follow it (`Lifecycle.quick().fails()`).
        """
        if self.cancelled or self.is_finished or self.position >= len(self.lifecycle.steps) - 1:
            return
        if self.step.hold:
            if self.releases <= 0:
                return
            self.releases -= 1
        self.position += 1
        if self.step.is_terminal and self.finished_at is None:
            self.finished_at = datetime.now(UTC)


class _Refusal(Exception):
    """An error answer, raised from deep inside a handler."""

    def __init__(self, status: int, error_code: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.message = message
        self.field = field

    def response(self) -> web.Response:
        payload: dict[str, Any] = {"error_code": self.error_code, "error_message": self.message}
        if self.field is not None:
            payload["field"] = self.field
        return web.json_response(payload, status=self.status)


# --- The server --------------------------------------------------------------------------------------------


class RunComfyDouble:
    """The RunComfy Model API on 127.0.0.1 (see the module docstring for the contract and the knobs)."""

    def __init__(
        self,
        *,
        api_keys: Iterable[str] = ("test-key",),
        video: bytes | None = None,
        default_lifecycle: Lifecycle | None = None,
        v2_image_fields: Iterable[str] = ("images", "image_url"),
        schemas: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self.api_keys = set(api_keys)
        self.video = video if video is not None else make_mp4()
        self.default_lifecycle = default_lifecycle or Lifecycle.queued(1).running(1).completes()
        self.schemas = _with_v2_image_fields(dict(schemas or SEED_SCHEMAS), tuple(v2_image_fields))
        self.jobs: dict[str, DoubleJob] = {}
        self.requests: list[RecordedRequest] = []
        self._scripted: deque[Lifecycle] = deque()
        self._faults: dict[str, deque[Fault]] = {}
        self._hosted: dict[str, tuple[bytes, str]] = {}
        self._http_ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._changed: asyncio.Condition | None = None
        self._closing: asyncio.Event | None = None
        self._base_url: str | None = None
        self.wait_timeout_s = 10.0

    # Lifecycle of the server itself.

    async def start(self) -> None:
        """Listen on 127.0.0.1 on a free port."""
        self._changed = asyncio.Condition()
        self._closing = asyncio.Event()
        app = web.Application(middlewares=[self._middleware], client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/models/{model_id:.+}", self._submit, name="submit")
        app.router.add_get("/v1/requests/{request_id}/status", self._status, name="status")
        app.router.add_get("/v1/requests/{request_id}/result", self._result, name="result")
        app.router.add_post("/v1/requests/{request_id}/cancel", self._cancel, name="cancel")
        app.router.add_get("/files/videos/{request_id}.mp4", self._video, name="video")
        app.router.add_get("/files/hosted/{token}/{name}", self._hosted_file, name="hosted")
        # Answers held back by a delay fault end when the double closes, so a short shutdown is enough.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self._base_url = f"http://127.0.0.1:{port}"
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=_FETCH_TIMEOUT_S))

    async def close(self) -> None:
        """Stop listening; answers still held by delays are released first."""
        if self._closing is not None:
            self._closing.set()
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:PORT`, once started."""
        if self._base_url is None:
            raise RuntimeError("start the double first")
        return self._base_url

    # Knobs.

    def host_file(self, data: bytes, content_type: str, name: str = "file.bin") -> str:
        """Serve `data` at a new URL (a test's "public" image URL) and return that URL."""
        token = uuid.uuid4().hex
        self._hosted[token] = (data, content_type)
        return f"{self.base_url}/files/hosted/{token}/{name}"

    def script(self, lifecycle: Lifecycle) -> None:
        """Give the next accepted submit this lifecycle (scripts are used first in, first out)."""
        self._scripted.append(lifecycle)

    def inject(self, route: RouteName, fault: Fault, times: int = 1) -> None:
        """Apply `fault` to the next `times` requests to `route`, after any faults already queued there."""
        self._faults.setdefault(route, deque()).extend([fault] * times)

    def release(self, request_id: str) -> None:
        """Let the job move past its held step on its next status poll."""
        self.jobs[request_id].releases += 1

    def video_url(self, request_id: str) -> str:
        """Where a finished job's video is served."""
        return f"{self.base_url}/files/videos/{request_id}.mp4"

    # What happened.

    @property
    def submit_count(self) -> int:
        """Paid jobs created, including those whose answer never reached the client."""
        return len(self.jobs)

    def requests_to(self, route: RouteName) -> list[RecordedRequest]:
        """The recorded requests to one route, oldest first."""
        return [request for request in self.requests if request.route == route]

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        """Return once `predicate()` holds; it is checked after every request the double handles.

        Gives up (TimeoutError) after `wait_timeout_s`, so a test waiting for something that never comes
        fails instead of hanging; wrap the call in `asyncio.timeout` for a shorter limit.
        """
        if self._changed is None:
            raise RuntimeError("start the double first")
        async with asyncio.timeout(self.wait_timeout_s), self._changed:
            await self._changed.wait_for(predicate)

    async def wait_for_submit(self, count: int = 1) -> DoubleJob:
        """The `count`-th job created, once it exists."""
        await self.wait_for(lambda: len(self.jobs) >= count)
        return list(self.jobs.values())[count - 1]

    async def wait_for_polls(self, request_id: str, polls: int) -> DoubleJob:
        """The job, once it has answered `polls` status GETs."""
        await self.wait_for(lambda: request_id in self.jobs and self.jobs[request_id].polls >= polls)
        return self.jobs[request_id]

    async def wait_for_requests(self, route: RouteName, count: int = 1) -> None:
        """Return once `count` requests to `route` have been answered (or dropped)."""
        await self.wait_for(lambda: len(self.requests_to(route)) >= count)

    # The HTTP side.

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Any]
    ) -> web.StreamResponse:
        route = request.match_info.route.name
        body = await request.read()
        http_request_id = f"req-{next(self._http_ids):06d}"
        self.requests.append(
            RecordedRequest(
                route=route,  # type: ignore[arg-type]
                method=request.method,
                path=request.path,
                query=dict(request.query),
                headers={name.lower(): value for name, value in request.headers.items()},
                body=body,
                json=_json_or_none(body),
                http_request_id=http_request_id,
            )
        )
        try:
            response = await self._answer(request, handler, route)
            response.headers["X-Request-Id"] = http_request_id
            return response
        finally:
            await self._notify()

    async def _answer(
        self, request: web.Request, handler: Callable[[web.Request], Any], route: str | None
    ) -> web.StreamResponse:
        queue = self._faults.get(route) if route else None
        fault = queue.popleft() if queue else None
        if fault is not None and fault.kind is FaultKind.RESPOND:
            response = web.Response(status=fault.status, body=fault.body, content_type=fault.content_type)
            for name, value in fault.headers:
                response.headers[name] = value
            return response
        try:
            response = await handler(request)
        except _Refusal as refusal:
            response = refusal.response()
        if fault is None:
            return response
        if fault.kind is FaultKind.DROP:
            if request.transport is not None:
                request.transport.close()
            return response  # never delivered: the connection is gone
        if fault.kind is FaultKind.DELAY:
            assert self._closing is not None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), fault.delay_s)
            return response
        text = response.text if isinstance(response, web.Response) and response.text else "{}"
        return web.Response(
            status=200, body=text[: max(1, len(text) // 2)].encode(), content_type="application/json"
        )

    async def _notify(self) -> None:
        if self._changed is not None:
            async with self._changed:
                self._changed.notify_all()

    def _authenticate(self, request: web.Request) -> str:
        key = _bearer(request.headers.get("Authorization"))
        if key is None or key not in self.api_keys:
            raise _Refusal(401, AUTH_ERROR_CODE, "Invalid or expired token, or the account is inactive.")
        return key

    def _owned_job(self, request: web.Request) -> DoubleJob:
        key = self._authenticate(request)
        job = self.jobs.get(request.match_info["request_id"])
        if job is None:
            raise _Refusal(404, UNKNOWN_REQUEST_ERROR_CODE, "Request not found or expired.")
        if job.api_key != key:
            raise _Refusal(403, FOREIGN_REQUEST_ERROR_CODE, "This request belongs to another user.")
        return job

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
        lifecycle = self._scripted.popleft() if self._scripted else self.default_lifecycle
        request_id = str(uuid.uuid4())
        job = DoubleJob(
            request_id=request_id,
            model_id=model_id,
            body=body,
            api_key=key,
            lifecycle=lifecycle,
            created_at=datetime.now(UTC),
        )
        if job.is_finished:
            job.finished_at = job.created_at
        self.jobs[request_id] = job
        base = f"{self.base_url}/v1/requests/{request_id}"
        return web.json_response(
            {
                "request_id": request_id,
                "status_url": f"{base}/status",
                "result_url": f"{base}/result",
                "cancel_url": f"{base}/cancel",
            }
        )

    async def _status(self, request: web.Request) -> web.Response:
        job = self._owned_job(request)
        job.polls += 1
        if job.polls > 1:
            job.advance()
        base = f"{self.base_url}/v1/requests/{job.request_id}"
        payload: dict[str, Any] = {
            "request_id": job.request_id,
            "status": job.status,
            "status_url": f"{base}/status",
            "result_url": f"{base}/result",
        }
        if job.step.queue_position is not None and job.status == "in_queue":
            payload["queue_position"] = job.step.queue_position
        return web.json_response(payload)

    async def _result(self, request: web.Request) -> web.Response:
        job = self._owned_job(request)
        job.result_reads += 1
        payload: dict[str, Any] = {"request_id": job.request_id, "status": job.status}
        if not job.is_finished:
            if job.step.queue_position is not None and job.status == "in_queue":
                payload["queue_position"] = job.step.queue_position
            return web.json_response(payload)
        payload["created_at"] = job.created_at.isoformat()
        payload["finished_at"] = (job.finished_at or job.created_at).isoformat()
        lifecycle = job.lifecycle
        if job.status in _SUCCESS_WORDS:
            payload["status"] = lifecycle.result_status
            if lifecycle.output == "video":
                payload["output"] = {"video": self.video_url(job.request_id)}
            elif lifecycle.output == "videos":
                payload["output"] = {"videos": [self.video_url(job.request_id)]}
            else:
                payload["output"] = {}
        elif job.status == "failed":
            payload["error"] = lifecycle.error
        if request.query.get("include_cost") == "true" and lifecycle.cost is not None and not job.cancelled:
            payload["cost"] = lifecycle.cost
        return web.json_response(payload)

    async def _cancel(self, request: web.Request) -> web.Response:
        job = self._owned_job(request)
        job.cancel_requests += 1
        if job.status == "in_queue":
            job.cancelled = True
            job.finished_at = datetime.now(UTC)
        # A repeated cancel of a cancelled job says "cancelled" again: cancelling is idempotent, and a
        # client that lost the first answer must not be told the job could not be cancelled.
        outcome = "cancelled" if job.cancelled else "not_cancellable"
        return web.json_response(
            {"request_id": job.request_id, "status": job.status, "outcome": outcome}, status=202
        )

    async def _video(self, request: web.Request) -> web.Response:
        job = self.jobs.get(request.match_info["request_id"])
        if job is None or job.status not in _SUCCESS_WORDS or job.lifecycle.output is None:
            return web.Response(status=404, text="Not found")
        return web.Response(body=job.lifecycle.video or self.video, content_type="video/mp4")

    async def _hosted_file(self, request: web.Request) -> web.Response:
        hosted = self._hosted.get(request.match_info["token"])
        if hosted is None:
            return web.Response(status=404, text="Not found")
        data, content_type = hosted
        return web.Response(body=data, headers={"Content-Type": content_type})

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
        assert self._session is not None
        field_name = where.split("[", 1)[0]
        try:
            async with self._session.get(url) as response:
                if response.status != 200:
                    raise _Refusal(
                        422,
                        SCHEMA_ERROR_CODE,
                        f"{where}: the file could not be fetched (HTTP {response.status}).",
                        field=field_name,
                    )
                data = bytearray()
                async for chunk in response.content.iter_chunked(64 * 1024):
                    data.extend(chunk)
                    if len(data) >= _MAX_FETCH_BYTES:
                        break  # already too big: the size rule will refuse it
                return bytes(data)
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            raise _Refusal(
                422,
                SCHEMA_ERROR_CODE,
                f"{where}: the file could not be fetched ({type(error).__name__}).",
                field=field_name,
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


def _bearer(header: str | None) -> str | None:
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _json_or_none(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


@contextlib.contextmanager
def running_in_thread(double: RunComfyDouble) -> Iterator[RunComfyDouble]:
    """Run `double` on its own event loop in a thread, for synchronous tests (e.g. `subprocess.run`).

    Knobs (`script`, `inject`, `host_file`, `release`) and the records may be used from the test's thread;
    the awaitable `wait_for*` hooks may not (they belong to the double's loop).
    """
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="runcomfy-double", daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(double.start(), loop).result(timeout=30)
        yield double
    finally:
        asyncio.run_coroutine_threadsafe(double.close(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)
        loop.close()
