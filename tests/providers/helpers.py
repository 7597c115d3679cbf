"""Helpers the provider client tests share: a scripted MockTransport handler, a recording sleep, reply,
image and submission builders. The fixtures built on them live in `conftest.py`; what belongs to one
provider (its error bodies, task payloads, spec and prompt) stays in that provider's test file."""

from __future__ import annotations

import base64
import json
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

import httpx
from pydantic import SecretStr

from bot.domain.catalogue import ModelSpec, RequestedOptions, validate_options
from bot.domain.media import MediaClip, MediaInfo, MediaKind
from bot.domain.models import FrameImage, ImageInfo
from bot.providers.base import References, Submission
from tests.doubles.media import make_image

Answer = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]

ClientT = TypeVar("ClientT")

NO_REFERENCES = References()


class Script:
    """A MockTransport handler: answers requests in order from a script and records every request."""

    def __init__(self) -> None:
        self.answers: deque[Answer] = deque()
        self.requests: list[httpx.Request] = []

    def add(self, *answers: Answer) -> None:
        self.answers.extend(answers)

    @property
    def calls(self) -> list[tuple[str, str]]:
        return [(request.method, request.url.path) for request in self.requests]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if not self.answers:
            raise AssertionError(f"unscripted request {request.method} {request.url}")
        answer = self.answers.popleft()
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, httpx.Response):
            return answer
        return answer(request)


class RecordingSleep:
    """Stands in for asyncio.sleep: remembers each delay and returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def make_client(
    cls: Callable[..., ClientT],
    http: httpx.AsyncClient,
    sleep: RecordingSleep,
    *,
    base_url: str,
    key: str,
    **options: Any,
) -> ClientT:
    """A provider client over `http` that sleeps with `sleep`."""
    # rng=1.0 makes the jittered delay its ceiling, so the recorded delays are exact.
    return cls(http, base_url=base_url, api_key=SecretStr(key), sleep=sleep, rng=lambda: 1.0, **options)


def reply(payload: object, status: int = 200, *, request_id: str = "req-1", **headers: str) -> httpx.Response:
    """A JSON answer (`None`: an HTML error page) with a request id; `retry_after="3"` sends Retry-After."""
    all_headers = {"X-Request-Id": request_id, **{k.replace("_", "-"): v for k, v in headers.items()}}
    if payload is None:
        return httpx.Response(status, content=b"<html>Bad Gateway</html>", headers=all_headers)
    return httpx.Response(status, json=payload, headers=all_headers)


def body_of(request: httpx.Request) -> Any:
    return json.loads(request.content)


def decode_data_uri(uri: object) -> tuple[str, bytes]:
    """The MIME type and bytes of a base64 data URI."""
    assert isinstance(uri, str)
    head, _, data = uri.partition(",")
    assert head.startswith("data:") and head.endswith(";base64")
    return head[len("data:") : -len(";base64")], base64.b64decode(data, validate=True)


def png(colour: tuple[int, int, int] = (10, 120, 200), width: int = 400, height: int = 300) -> bytes:
    return make_image(width, height, color=colour)


def frame(
    data: bytes | None = None,
    *,
    fmt: str = "PNG",
    url: str | None = None,
    width: int = 400,
    height: int = 300,
) -> FrameImage:
    data = png(width=width, height=height) if data is None else data
    return FrameImage(data=data, info=ImageInfo(fmt, width, height, len(data), "RGB"), url=url)


def clip(kind: MediaKind, url: str | None) -> MediaClip:
    """A short reference video (silent, 64 by 64) or audio clip."""
    if kind is MediaKind.VIDEO:
        info = MediaInfo(kind, "mp4", 4.0, 10, "video/mp4", 64, 64, has_audio=False)
    else:
        info = MediaInfo(kind, "mp3", 4.0, 10, "audio/mpeg", None, None, has_audio=True)
    return MediaClip(data=b"0123456789", info=info, url=url)


def make_submission(
    spec: ModelSpec,
    prompt: str,
    first_frame: FrameImage | None,
    *,
    last_frame: FrameImage | None = None,
    references: References = NO_REFERENCES,
    callback_url: str | None = None,
    **options: Any,
) -> Submission:
    """A submission of `spec` with the options validated as the bot validates a member's."""
    request = validate_options(
        spec,
        RequestedOptions(
            prompt=prompt,
            has_last_frame=last_frame is not None,
            reference_images=len(references.images),
            reference_videos=len(references.videos),
            reference_audios=len(references.audios),
            **options,
        ),
    )
    return Submission(
        spec=spec,
        request=request,
        first_frame=first_frame,
        last_frame=last_frame,
        references=references,
        callback_url=callback_url,
    )
