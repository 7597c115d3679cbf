"""What the loopback provider doubles (RunComfy, Novita, ModelArk) share: the server, the records, the
faults, the hooks and a provider-neutral model of a job's life.

Each double is a real HTTP server on 127.0.0.1 that speaks one provider's protocol; this module holds the
parts that do not depend on the protocol, so that every double offers the same *control surface* and a
contract test can drive any of them with the same code::

    async with double:  # a RunComfyDouble, NovitaDouble or ArkDouble
        double.script(Lifecycle.queued(2).running(progress=40).completes())
        double.inject("status", Fault.html(502))
        double.inject("submit", double.fault_for("balance"))
        ...  # point the client at double.base_url
        job = await double.wait_for_submit()
        double.advance(job.id)  # one step now, without a poll (for callback tests)

The control surface (same names on every double):

- `base_url` (what the client's base URL setting takes), `api_keys` (constructor, default ("test-key",)).
- `script(lifecycle)`: the next submit's life (first in, first out); otherwise `default_lifecycle` (queued
  at 1, running one poll, then succeeded). Each status GET after the first moves the job one step on.
  `release(job_id)`: a held step may be left on the next poll. `advance(job_id)`: move one step now, even
  past a hold.
- `inject(route, fault, times=1)`, routes "submit", "status", "cancel" (if the provider has one), "video",
  "hosted", plus the double's own (RunComfy "result", Ark "list" and "last_frame").
- `Fault.error/rate_limited/html/drop/delay/malformed/raw`; one `Fault` works on any double, which renders
  `Fault.error`'s status, code and message in its own error body. `fault_for(kind)` gives the provider's real
  answer for kind in `FAULT_KINDS`.
- Records: `jobs` (id -> `DoubleJob`), `submit_count`, `requests` (`RecordedRequest`), `requests_to(route)`.
- Hooks (never sleep in tests): `wait_for(predicate)`, `wait_for_submit(count)`, `wait_for_polls(job_id,
  polls)`, `wait_for_requests(route, count)`; TimeoutError after `wait_timeout_s`.
- Files: `video` (a real MP4), `video_url(job_id)`, `host_file(data, content_type, name) -> url`,
  `expire_outputs(job_id)` (the job's output URLs then answer 403, like an expired signed URL).
- `running_in_thread(double)` for synchronous tests.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import concurrent.futures
import contextlib
import functools
import io
import itertools
import json
import re
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar, Generic, Literal, Self, TypeGuard, TypeVar, cast

import aiohttp
from aiohttp import web
from PIL import Image, UnidentifiedImageError

from tests.doubles.media import make_mp4

FAULT_KINDS = frozenset(
    {"auth", "balance", "moderation", "model_unavailable", "rate_limit", "bad_request", "not_found"}
)
FaultKindName = Literal[
    "auth", "balance", "moderation", "model_unavailable", "rate_limit", "bad_request", "not_found"
]

# "30 MB" read as decimal megabytes: the stricter reading, so a client that cuts it close fails here first.
BYTES_PER_MB = 1_000_000
FETCH_TIMEOUT_S = 10.0


# --- A job's life, provider-neutral ------------------------------------------------------------------------


class StepKind(StrEnum):
    """What a step means; each double shows it with its own status word."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    RAW = "raw"  # a status word of the test's choosing, which no doc may know


TERMINAL_KINDS = frozenset({StepKind.SUCCEEDED, StepKind.FAILED, StepKind.CANCELLED, StepKind.EXPIRED})


@dataclass(frozen=True)
class Step:
    """One state a job shows; a held step waits for `release` (or `advance`)."""

    kind: StepKind
    word: str | None = None  # the status word to show instead of the double's own (RAW: the word)
    queue_position: int | None = None
    progress: int | None = None  # percent, for providers that report it
    hold: bool = False


@dataclass(frozen=True)
class Vocabulary:
    """One provider's status words for the neutral kinds."""

    words: Mapping[StepKind, str]
    aliases: Mapping[str, StepKind] = field(default_factory=dict)  # other words that mean a kind

    def word(self, step: Step) -> str:
        """The status word the provider shows for `step`."""
        return step.word if step.word is not None else self.words[step.kind]

    def kind(self, step: Step) -> StepKind:
        """What `step` means to this provider: a raw step made of a known word means that word's kind."""
        if step.kind is not StepKind.RAW:
            return step.kind
        for kind, word in self.words.items():
            if word == step.word:
                return kind
        return self.aliases.get(step.word or "", StepKind.RAW)


class _fluent:  # lower case: it is used as a decorator
    """A builder method callable on the class (starting from an empty Lifecycle) or on an instance."""

    def __init__(self, method: Callable[..., Any]) -> None:
        self._method = method
        self.__doc__ = method.__doc__

    def __get__(self, instance: Any, owner: type) -> Callable[..., Any]:
        return functools.partial(self._method, instance if instance is not None else owner())


_L = TypeVar("_L", bound="Lifecycle")


@dataclass(frozen=True)
class Lifecycle:
    """The scripted life of one job, advanced by status GETs; a job stays on its last step for good.

    Build it fluently, from the class or an instance: `Lifecycle.queued(3).running(2).completes()`,
    `Lifecycle.running(progress=(20, 60)).fails("boom", code="OutputVideoSensitiveContentDetected")`,
    `Lifecycle.quick()` (finished on the first poll), `Lifecycle.queued(1, hold=True)` (queued until
    released), `Lifecycle.running().completes(output=None)` (succeeded but no video: the provider lies),
    `Lifecycle.step("TASK_STATUS_PAUSED")` (a status word no doc knows). A terminal step is final even when
    more steps follow it.

    Provider-specific extras are keyword arguments that other doubles ignore: RunComfy's `cost`,
    `result_status` and `output="videos"`.
    """

    step_class: ClassVar[type[Step]] = Step

    steps: tuple[Step, ...] = ()
    cost: float | None = 0.1  # RunComfy: the result's `cost` in USD with ?include_cost=true
    output: Literal["video", "videos"] | None = "video"  # None: succeeded without any video URL
    result_status: str = "succeeded"  # RunComfy: the result endpoint's word for a finished job
    error: Any = None  # a failed job's error: a message, or any JSON value (RunComfy shows it as is)
    error_code: str | None = None  # a failed job's error code, for providers that have one (Ark)
    video: bytes | None = None  # this job's video; None: the double's

    @classmethod
    def quick(cls) -> Self:
        """Finished with a video on the first status poll."""
        return cast(Self, cls().completes())

    def _add(self: _L, *steps: Step, **changes: Any) -> _L:
        return replace(self, steps=(*self.steps, *steps), **changes)

    def _held_last(self, steps: tuple[Step, ...], hold: bool) -> tuple[Step, ...]:
        return (*steps[:-1], replace(steps[-1], hold=True)) if hold and steps else steps

    @_fluent
    def step(
        self: _L,
        word: str,
        *,
        queue_position: int | None = None,
        progress: int | None = None,
        hold: bool = False,
    ) -> _L:
        """Add a step showing `word` as is, including status words the documentation does not know."""
        return self._add(self.step_class(StepKind.RAW, word, queue_position, progress, hold))

    @_fluent
    def queued(self: _L, positions: int = 1, *, hold: bool = False) -> _L:
        """Wait in the queue at positions `positions`, ..., 1 (one status poll each)."""
        steps = tuple(
            self.step_class(StepKind.QUEUED, queue_position=position)
            for position in range(max(positions, 1), 0, -1)
        )
        return self._add(*self._held_last(steps, hold))

    @_fluent
    def running(
        self: _L, polls: int = 1, *, hold: bool = False, progress: int | Iterable[int] | None = None
    ) -> _L:
        """Run for `polls` status polls; `progress` (percent) is one value for all, or one per poll."""
        if progress is None or isinstance(progress, int):
            values: list[int | None] = [progress] * max(polls, 1)
        else:
            values = list(progress)
        steps = tuple(self.step_class(StepKind.RUNNING, progress=value) for value in values)
        return self._add(*self._held_last(steps, hold))

    @_fluent
    def hold(self: _L) -> _L:
        """Keep the job on the last step added so far until the test calls `release` (or `advance`)."""
        if not self.steps:
            raise ValueError("add a step before holding on it")
        return replace(self, steps=(*self.steps[:-1], replace(self.steps[-1], hold=True)))

    @_fluent
    def completes(
        self: _L,
        *,
        cost: float | None = 0.1,
        output: Literal["video", "videos"] | None = "video",
        status_word: str | None = None,
        result_status: str = "succeeded",
        video: bytes | None = None,
    ) -> _L:
        """Succeed with a video (unless `output` is None); `status_word` replaces the double's word."""
        return self._add(
            self.step_class(StepKind.SUCCEEDED, status_word),
            cost=cost,
            output=output,
            result_status=result_status,
            video=video,
        )

    succeeds = completes

    @_fluent
    def fails(
        self: _L, error: Any = "The generation failed.", *, code: str | None = None, cost: float | None = None
    ) -> _L:
        """Fail; `error` is the message (or, for RunComfy, any JSON value), `code` the provider's code."""
        return self._add(self.step_class(StepKind.FAILED), error=error, error_code=code, cost=cost)

    @_fluent
    def cancelled(self: _L, *, word: str | None = None) -> _L:
        """End as cancelled by the provider."""
        return self._add(self.step_class(StepKind.CANCELLED, word))

    @_fluent
    def expires(self: _L, *, word: str | None = None) -> _L:
        """End as expired (the provider gave up waiting: `execution_expires_after`)."""
        return self._add(self.step_class(StepKind.EXPIRED, word))


# --- Jobs --------------------------------------------------------------------------------------------------


@dataclass(eq=False)
class DoubleJob:
    """A job the double accepted (and would charge for), and what has happened to it since."""

    id: str
    model_id: str
    body: dict[str, Any]
    api_key: str
    lifecycle: Lifecycle
    vocabulary: Vocabulary = field(repr=False)
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    position: int = 0
    polls: int = 0  # status GETs answered
    cancel_requests: int = 0
    cancelled: bool = False  # by a cancel request
    deleted: bool = False  # by a delete request (Ark)
    releases: int = 0  # releases not yet spent on a held step
    outputs_expired: bool = False
    finished_at: datetime | None = None
    updated_at: datetime | None = None

    def __post_init__(self) -> None:
        self.updated_at = self.created_at
        if self.is_finished:
            self.finished_at = self.created_at

    @property
    def step(self) -> Step:
        """The step the job is on; a job without steps waits in the queue."""
        if self.cancelled:
            return Step(StepKind.CANCELLED)
        if not self.lifecycle.steps:
            return Step(StepKind.QUEUED, queue_position=0)
        return self.lifecycle.steps[self.position]

    @property
    def kind(self) -> StepKind:
        """What the current step means."""
        return self.vocabulary.kind(self.step)

    @property
    def status(self) -> str:
        """The status word the provider shows now."""
        return self.vocabulary.word(self.step)

    @property
    def is_finished(self) -> bool:
        """Whether the job is over."""
        return self.kind in TERMINAL_KINDS

    def advance(self, *, force: bool = False) -> bool:
        """Move one step on, unless over, on its last step, or held (without a release, unless `force`).

        Returns whether the job moved.
        """
        if self.cancelled or self.is_finished or self.position >= len(self.lifecycle.steps) - 1:
            return False
        if self.step.hold and not force:
            if self.releases <= 0:
                return False
            self.releases -= 1
        self.position += 1
        self.touch()
        return True

    def cancel(self) -> None:
        """Cancelled by the client."""
        self.cancelled = True
        self.touch()

    def touch(self) -> None:
        """Note a change of state now."""
        self.updated_at = datetime.now(UTC)
        if self.is_finished and self.finished_at is None:
            self.finished_at = self.updated_at


# --- Faults ------------------------------------------------------------------------------------------------


class FaultKind(StrEnum):
    """How a fault changes an answer."""

    RESPOND = "respond"  # answer with this instead; the request is not handled (no job is created)
    DROP = "drop"  # handle the request, then close the connection without answering
    DELAY = "delay"  # handle the request, then wait before answering
    MALFORMED = "malformed"  # handle the request, then answer HTTP 200 with broken JSON


@dataclass(frozen=True)
class Fault:
    """A change to one answer of one route; build with the class methods.

    An error fault stores its status, code and message; the double it is injected into renders them in its
    provider's error body, so one Fault works on any double. `body` is a literal body sent as is.
    """

    kind: FaultKind
    status: int = 200
    code: int | str | None = None
    message: str = "Injected failure"
    param: str | None = None
    body: bytes | None = None
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()
    delay_s: float = 0.0

    @classmethod
    def error(
        cls,
        status: int,
        code: int | str | None = None,
        message: str = "Injected failure",
        *,
        error_code: int | str | None = None,
        param: str | None = None,
    ) -> Fault:
        """HTTP `status` with the provider's error body. Without `code` the double uses its default for the
        status (RunComfy then sends only `error_message`). `error_code` is the older spelling of `code`."""
        if error_code is not None:
            if code is not None and code != error_code:
                raise ValueError("give the code once")
            code = error_code
        return cls(FaultKind.RESPOND, status=status, code=code, message=message, param=param)

    @classmethod
    def error_with_200(cls, code: int | str, message: str = "Injected failure") -> Fault:
        """HTTP 200 whose body is an error, as RunComfy sometimes answers."""
        return cls.error(200, code, message)

    @classmethod
    def rate_limited(
        cls,
        retry_after: str | None = "2",
        code: int | str | None = None,
        *,
        error_code: int | str | None = None,
        message: str = "Too many requests",
    ) -> Fault:
        """429 Too Many Requests, with a Retry-After header (seconds or an HTTP date) unless None."""
        fault = cls.error(429, code, message, error_code=error_code)
        return replace(fault, headers=() if retry_after is None else (("Retry-After", retry_after),))

    @classmethod
    def html(cls, status: int = 502) -> Fault:
        """An HTML error page, as a proxy in front of the API would send."""
        page = f"<html><head><title>{status}</title></head><body><h1>{status} Bad Gateway</h1></body></html>"
        return cls(FaultKind.RESPOND, status=status, body=page.encode(), content_type="text/html")

    @classmethod
    def raw(
        cls,
        status: int,
        body: bytes | str,
        content_type: str = "application/json",
        headers: Iterable[tuple[str, str]] = (),
    ) -> Fault:
        """Any answer, sent as is."""
        data = body.encode() if isinstance(body, str) else body
        return cls(
            FaultKind.RESPOND, status=status, body=data, content_type=content_type, headers=tuple(headers)
        )

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


# --- Records -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordedRequest:
    """One request the double received, as it arrived."""

    route: str | None  # None: no route matched
    method: str
    path: str
    query: Mapping[str, str]  # a repeated parameter keeps its last value; see `query_items`
    headers: Mapping[str, str]  # lower-case names; Authorization is kept so tests can check it
    body: bytes
    json: Any  # the decoded body, or None
    http_request_id: str  # the X-Request-Id the double answered with
    query_items: tuple[tuple[str, str], ...] = ()

    @property
    def bearer(self) -> str | None:
        """The bearer token sent, if any."""
        return bearer_token(self.headers.get("authorization"))


class Refusal(Exception):
    """An error answer, raised from deep inside a handler and rendered by the double."""

    def __init__(self, status: int, code: int | str | None, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.param = param


class FetchError(Exception):
    """A media URL the double could not fetch."""


# --- The server --------------------------------------------------------------------------------------------

_J = TypeVar("_J", bound=DoubleJob)
_T = TypeVar("_T")

_EXPIRED_BODY = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
    b"<Message>Request has expired</Message></Error>"
)


class ProviderDouble(Generic[_J]):
    """The provider-neutral half of a loopback provider double; a subclass adds the protocol.

    A subclass sets `routes` (the route names `inject` accepts), `vocabulary` (its status words) and
    `base_path`, and implements `_add_routes`, `render_error` and `fault_for`. It creates jobs with
    `_next_lifecycle` and `_register`, counts status GETs with `_poll`, and may react to status changes in
    `_status_changed` (Ark's callbacks).
    """

    routes: ClassVar[frozenset[str]] = frozenset({"submit", "status", "video", "hosted"})
    vocabulary: ClassVar[Vocabulary]
    base_path: ClassVar[str] = ""  # appended to the origin to make `base_url`

    def __init__(
        self,
        *,
        api_keys: Iterable[str] = ("test-key",),
        video: bytes | None = None,
        default_lifecycle: Lifecycle | None = None,
    ) -> None:
        self.api_keys = set(api_keys)
        self.video = video if video is not None else make_mp4()
        self.default_lifecycle = default_lifecycle or Lifecycle.queued(1).running(1).completes()
        self.jobs: dict[str, _J] = {}
        self.requests: list[RecordedRequest] = []
        self.wait_timeout_s = 10.0
        self._scripted: deque[Lifecycle] = deque()
        self._faults: dict[str, deque[Fault]] = {}
        self._hosted: dict[str, tuple[bytes, str]] = {}
        self._http_ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing: asyncio.Event | None = None
        self._origin: str | None = None
        self._waiters: set[asyncio.Future[None]] = set()

    # What a subclass provides.

    def _add_routes(self, app: web.Application) -> None:
        raise NotImplementedError

    def render_error(
        self, status: int, code: int | str | None, message: str, param: str | None = None
    ) -> web.Response:
        """An error answer in this provider's body shape (`code` None: the provider's default, if any)."""
        raise NotImplementedError

    def fault_for(self, kind: FaultKindName) -> Fault:
        """A Fault with this provider's real status and code for `kind` (see `FAULT_KINDS`)."""
        raise NotImplementedError

    def _status_changed(self, job: _J) -> None:
        """Called on the double's loop whenever a job's status changes (and when it is created)."""

    async def _on_start(self) -> None:
        """Called once the server listens."""

    async def _on_close(self) -> None:
        """Called first when the double closes."""

    # Lifecycle of the server itself.

    async def start(self) -> None:
        """Listen on 127.0.0.1 on a free port."""
        self._loop = asyncio.get_running_loop()
        self._closing = asyncio.Event()
        app = web.Application(middlewares=[self._middleware], client_max_size=64 * 1024 * 1024)
        self._add_routes(app)
        app.router.add_get("/files/videos/{job_id}.mp4", self._video, name="video")
        app.router.add_get("/files/hosted/{token}/{name}", self._hosted_file, name="hosted")
        # Answers held back by a delay fault end when the double closes, so a short shutdown is enough.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self._origin = f"http://127.0.0.1:{port}"
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=FETCH_TIMEOUT_S))
        await self._on_start()

    async def close(self) -> None:
        """Stop listening; answers still held by delays are released first."""
        if self._closing is not None:
            self._closing.set()
        await self._on_close()
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
    def origin(self) -> str:
        """`http://127.0.0.1:PORT`, once started."""
        if self._origin is None:
            raise RuntimeError("start the double first")
        return self._origin

    @property
    def base_url(self) -> str:
        """What a client's base URL setting takes: the origin plus the provider's base path."""
        return self.origin + self.base_path

    # Knobs.

    def host_file(self, data: bytes, content_type: str, name: str = "file.bin") -> str:
        """Serve `data` at a new URL (a test's "public" image URL) and return that URL."""
        token = uuid.uuid4().hex
        self._hosted[token] = (data, content_type)
        return f"{self.origin}/files/hosted/{token}/{name}"

    def script(self, lifecycle: Lifecycle) -> None:
        """Give the next accepted submit this lifecycle (scripts are used first in, first out)."""
        self._scripted.append(lifecycle)

    def inject(self, route: str, fault: Fault, times: int = 1) -> None:
        """Apply `fault` to the next `times` requests to `route`, after any faults already queued there."""
        if route not in self.routes:
            raise ValueError(f"{type(self).__name__} has no route {route!r}; it has {sorted(self.routes)}")
        self._faults.setdefault(route, deque()).extend([fault] * times)

    def release(self, job_id: str) -> None:
        """Let the job move past its held step on its next status poll."""
        self.jobs[job_id].releases += 1

    def advance(self, job_id: str) -> _J:
        """Move the job one step on now, without a poll and even past a hold; returns the job."""
        job = self.jobs[job_id]
        self._on_loop(lambda: self._advance_job(job, force=True))
        return job

    def expire_outputs(self, job_id: str) -> None:
        """From now on the job's output URLs answer 403, as expired signed URLs do."""
        self.jobs[job_id].outputs_expired = True

    def video_url(self, job_id: str) -> str:
        """Where a finished job's video is served (without auth)."""
        return f"{self.origin}/files/videos/{job_id}.mp4"

    # What happened.

    @property
    def submit_count(self) -> int:
        """Paid jobs created, including those whose answer never reached the client."""
        return len(self.jobs)

    def requests_to(self, route: str) -> list[RecordedRequest]:
        """The recorded requests to one route, oldest first."""
        return [request for request in self.requests if request.route == route]

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        """Return once `predicate()` holds; it is checked after everything the double handles or does.

        Gives up (TimeoutError) after `wait_timeout_s`, so a test waiting for something that never comes
        fails instead of hanging; wrap the call in `asyncio.timeout` for a shorter limit.
        """
        if self._loop is None:
            raise RuntimeError("start the double first")
        async with asyncio.timeout(self.wait_timeout_s):
            while not predicate():
                waiter = self._loop.create_future()
                self._waiters.add(waiter)
                try:
                    await waiter
                finally:
                    self._waiters.discard(waiter)

    async def wait_for_submit(self, count: int = 1) -> _J:
        """The `count`-th job created, once it exists."""
        await self.wait_for(lambda: len(self.jobs) >= count)
        return list(self.jobs.values())[count - 1]

    async def wait_for_polls(self, job_id: str, polls: int) -> _J:
        """The job, once it has answered `polls` status GETs."""
        await self.wait_for(lambda: job_id in self.jobs and self.jobs[job_id].polls >= polls)
        return self.jobs[job_id]

    async def wait_for_requests(self, route: str, count: int = 1) -> None:
        """Return once `count` requests to `route` have been answered (or dropped)."""
        await self.wait_for(lambda: len(self.requests_to(route)) >= count)

    # For subclasses.

    def _next_lifecycle(self) -> Lifecycle:
        return self._scripted.popleft() if self._scripted else self.default_lifecycle

    def _register(self, job: _J) -> _J:
        self.jobs[job.id] = job
        self._status_changed(job)
        return job

    def _poll(self, job: _J) -> None:
        """Count a status GET; every one after the first moves the job one step on."""
        job.polls += 1
        if job.polls > 1:
            self._advance_job(job)

    def _advance_job(self, job: _J, *, force: bool = False) -> bool:
        moved = job.advance(force=force)
        if moved:
            self._status_changed(job)
            self._poke()
        return moved

    def _bearer_key(self, request: web.Request) -> str | None:
        """The request's bearer key if it is one of `api_keys`."""
        key = bearer_token(request.headers.get("Authorization"))
        return key if key is not None and key in self.api_keys else None

    async def fetch(self, url: str, *, limit: int = 30 * BYTES_PER_MB + 1) -> bytes:
        """GET `url` as the provider would; keeps at most `limit` bytes (a rule on size then refuses it)."""
        assert self._session is not None
        try:
            async with self._session.get(url) as response:
                if response.status != 200:
                    raise FetchError(f"the file could not be fetched (HTTP {response.status})")
                data = bytearray()
                async for chunk in response.content.iter_chunked(64 * 1024):
                    data.extend(chunk)
                    if len(data) >= limit:
                        break
                return bytes(data)
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            raise FetchError(f"the file could not be fetched ({type(error).__name__})") from None

    def _poke(self) -> None:
        """Wake the `wait_for` callers so they check their predicates again (on the double's loop)."""
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _on_loop(self, action: Callable[[], _T]) -> _T:
        """Run `action` on the double's loop (at once if already there); for knobs used from a thread."""
        loop = self._loop
        try:
            current: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            current = None
        if loop is None or current is loop or not loop.is_running():
            return action()
        done: concurrent.futures.Future[_T] = concurrent.futures.Future()

        def run() -> None:
            try:
                done.set_result(action())
            except BaseException as error:
                done.set_exception(error)

        loop.call_soon_threadsafe(run)
        return done.result(timeout=30)

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
                route=route,
                method=request.method,
                path=request.path,
                query=dict(request.query),
                headers={name.lower(): value for name, value in request.headers.items()},
                body=body,
                json=json_or_none(body),
                http_request_id=http_request_id,
                query_items=tuple(request.query.items()),
            )
        )
        try:
            response = await self._answer(request, handler, route)
            response.headers["X-Request-Id"] = http_request_id
            return response
        finally:
            self._poke()

    async def _answer(
        self, request: web.Request, handler: Callable[[web.Request], Any], route: str | None
    ) -> web.StreamResponse:
        queue = self._faults.get(route) if route else None
        fault = queue.popleft() if queue else None
        if fault is not None and fault.kind is FaultKind.RESPOND:
            if fault.body is not None:
                response = web.Response(status=fault.status, body=fault.body, content_type=fault.content_type)
            else:
                response = self.render_error(fault.status, fault.code, fault.message, fault.param)
            for name, value in fault.headers:
                response.headers[name] = value
            return response
        try:
            response = await handler(request)
        except Refusal as refusal:
            response = self.render_error(refusal.status, refusal.code, refusal.message, refusal.param)
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

    async def _video(self, request: web.Request) -> web.Response:
        job = self.jobs.get(request.match_info["job_id"])
        if job is None or job.kind is not StepKind.SUCCEEDED or job.lifecycle.output is None:
            return web.Response(status=404, text="Not found")
        if job.outputs_expired:
            return expired_url_response()
        return web.Response(body=job.lifecycle.video or self.video, content_type="video/mp4")

    async def _hosted_file(self, request: web.Request) -> web.Response:
        hosted = self._hosted.get(request.match_info["token"])
        if hosted is None:
            return web.Response(status=404, text="Not found")
        data, content_type = hosted
        return web.Response(body=data, headers={"Content-Type": content_type})


# --- Pure helpers ------------------------------------------------------------------------------------------

# Novita's page (seed 004) and ModelArk: "jpeg, png, webp, bmp, tiff, gif" (Pillow's names; MPO is a JPEG
# with extra pictures).
_IMAGE_FORMATS = {"JPEG": "jpeg", "MPO": "jpeg", "PNG": "png", "WEBP": "webp", "BMP": "bmp", "TIFF": "tiff"}
_IMAGE_FORMATS["GIF"] = "gif"
_DATA_URI_FORMATS = {"jpeg": "jpeg", "jpg": "jpeg", "png": "png", "webp": "webp", "bmp": "bmp"}
_DATA_URI_FORMATS |= {"tiff": "tiff", "tif": "tiff", "gif": "gif"}


def seedance_image_problem(data: bytes, declared_format: str | None = None) -> str | None:
    """Why Seedance refuses this image (format, 300 < side < 6000 px, 0.4 < w/h < 2.5, < 30 MB), or None.

    `declared_format` is the `<fmt>` of a data URI; a guess: the format it names must be the data's.
    """
    if len(data) >= 30 * BYTES_PER_MB:
        return "the image must be smaller than 30 MB"
    try:
        with Image.open(io.BytesIO(data)) as image:
            image_format = image.format or "unknown"
            image.load()
            width, height = image.size
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return "the file is not an image that can be read"
    actual = _IMAGE_FORMATS.get(image_format)
    if actual is None:
        return f"unsupported image format {image_format}; supported: jpeg, png, webp, bmp, tiff, gif"
    if declared_format is not None:
        declared = _DATA_URI_FORMATS.get(declared_format.lower())
        if declared is None:
            return f"unsupported image format image/{declared_format} in the data URI"
        if declared != actual:
            return f"the data URI says image/{declared_format} but the data is {actual}"
    if not (300 < width < 6000 and 300 < height < 6000):
        return f"width and height must each be more than 300 and less than 6000 pixels, got {width}x{height}"
    if not 0.4 < width / height < 2.5:
        return f"the aspect ratio (width/height) must be between 0.4 and 2.5, got {width / height:.3f}"
    return None


_DATA_URI = re.compile(r"data:(?P<media>[a-z]+)/(?P<format>[A-Za-z0-9.+-]+);base64,(?P<data>.*)", re.DOTALL)


def decode_data_uri(uri: str, media: str) -> tuple[str, bytes]:
    """`data:<media>/<format>;base64,<data>` -> (format, bytes); ValueError says what is wrong."""
    match = _DATA_URI.fullmatch(uri)
    if match is None or match["media"] != media:
        raise ValueError(f"a data URI must read data:{media}/<format>;base64,<data>")
    try:
        data = base64.b64decode(match["data"], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the data URI's base64 data is invalid") from None
    return match["format"], data


def is_http_url(value: str) -> bool:
    """Whether `value` is an absolute http(s) URL."""
    return re.fullmatch(r"https?://[^\s/?#]+[^\s]*", value) is not None


def bearer_token(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header."""
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def json_or_none(body: bytes) -> Any:
    """The decoded JSON body, or None."""
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


def expired_url_response() -> web.Response:
    """What an object store answers for an expired signed URL."""
    return web.Response(status=403, body=_EXPIRED_BODY, content_type="application/xml")


def is_json_int(value: Any) -> TypeGuard[int]:
    """An integer in JSON (not a boolean)."""
    return isinstance(value, int) and not isinstance(value, bool)


_D = TypeVar("_D", bound=ProviderDouble[Any])


@contextlib.contextmanager
def running_in_thread(double: _D) -> Iterator[_D]:
    """Run `double` on its own event loop in a thread, for synchronous tests (e.g. `subprocess.run`).

    Knobs (`script`, `inject`, `host_file`, `release`, `advance`) and the records may be used from the test's
    thread; the awaitable `wait_for*` hooks may not (they belong to the double's loop).
    """
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name=f"{type(double).__name__}-thread", daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(double.start(), loop).result(timeout=30)
        yield double
    finally:
        asyncio.run_coroutine_threadsafe(double.close(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)
        loop.close()
