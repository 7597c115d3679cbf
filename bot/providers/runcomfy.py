"""The RunComfy Model API client (`shared/docs/providers.md` section 1, seeds 000 to 003).

RunComfy runs each Seedance model behind one submit URL, `POST /v1/models/{model_id}`, and tracks the job
under the returned `request_id` (`/v1/requests/{id}/status`, `/result`, `/cancel`). Images, and Seedance
2.0's reference videos and audio, go in as public URLs only.

What this module decides, and where:

- `build_submit_body`: the JSON body per model family (1.0 pro i2v, 1.5 pro i2v, 2.0 pro), pure.
- `error_from_response`: an HTTP answer → the typed `ProviderError`, pure. RunComfy also reports errors with
  HTTP 200 and an `error_code` in the body, so a 2xx is not enough to call an answer a success.
- `RunComfyProvider`: the exchanges, on the shared `bot.providers.http.JsonApi`, whose retry loops follow
  `bot.providers.retry`: reads and cancels are retried; a submit only when it provably created no job,
  otherwise `SubmitOutcomeUnknownError`.

The API key goes only into the Authorization header: it never reaches a log line or an exception message
(server text is scrubbed of it too, in case a proxy echoes headers back).
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Final
from urllib.parse import quote

import httpx
from pydantic import SecretStr

from bot.domain.catalogue import ModelSpec
from bot.domain.models import FrameImage, ProviderName
from bot.providers.base import (
    CancelOutcome,
    ProviderState,
    ProviderStatus,
    Submission,
    SubmitReceipt,
)
from bot.providers.errors import (
    ProviderAuthError,
    ProviderBalanceError,
    ProviderError,
    ProviderInvalidRequestError,
    ProviderNotFoundError,
    ProviderPermissionError,
    ProviderProtocolError,
)
from bot.providers.http import DEFAULT_RETRY_POLICY, JsonApi, Reply, clip, error_type_for_status
from bot.providers.retry import RetryPolicy
from bot.providers.server_text import server_error_message

if TYPE_CHECKING:
    from bot.domain.media import MediaClip

_log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_RETRY_POLICY",
    "DEFAULT_V2_AUDIO_FIELD",
    "DEFAULT_V2_IMAGE_FIELD",
    "DEFAULT_V2_VIDEO_FIELD",
    "ModelFamily",
    "RunComfyProvider",
    "V2Fields",
    "build_submit_body",
    "error_from_response",
    "model_family",
]

# The seed's spellings; RunComfy's skill docs say "image_url", "video_url" and "audio_url" (3p).
DEFAULT_V2_IMAGE_FIELD: Final = "images"
DEFAULT_V2_VIDEO_FIELD: Final = "videos"
DEFAULT_V2_AUDIO_FIELD: Final = "audios"

# RunComfy's documented error codes (seed 000). They win over the HTTP status, which may even be 200.
_ERRORS_BY_CODE: Final[Mapping[int, type[ProviderError]]] = {
    400001: ProviderInvalidRequestError,  # unknown model id
    400002: ProviderBalanceError,
    400004: ProviderAuthError,  # bad or expired token, inactive account
    403001: ProviderPermissionError,  # the request belongs to another user
    404001: ProviderNotFoundError,  # unknown or expired request id
}


class ModelFamily(StrEnum):
    """The RunComfy input schemas the bot knows; each takes a differently shaped body."""

    SEEDANCE_1_0_PRO_I2V = "seedance-1.0-pro-i2v"
    SEEDANCE_1_5_PRO_I2V = "seedance-1.5-pro-i2v"
    SEEDANCE_2_0_PRO = "seedance-2.0-pro"


# Checked in this order: "seedance-1.5" would also match the 1.0 pattern. The ids vary in spelling
# ("seedance-2.0", "seedance-v2", "seedance-1-0", "seedance-v1.5-pro"), the version number does not.
_FAMILY_PATTERNS: Final = (
    (ModelFamily.SEEDANCE_2_0_PRO, re.compile(r"seedance-v?2([.-]0)?\b")),
    (ModelFamily.SEEDANCE_1_5_PRO_I2V, re.compile(r"seedance-v?1[.-]5\b")),
    (ModelFamily.SEEDANCE_1_0_PRO_I2V, re.compile(r"seedance-v?1([.-]0)?\b")),
)


def model_family(spec: ModelSpec) -> ModelFamily:
    """Which body shape `spec` takes, judged from its RunComfy model id, else from its catalogue key."""
    for text in (spec.provider_model_id.lower(), spec.key.lower()):
        for family, pattern in _FAMILY_PATTERNS:
            if pattern.search(text):
                return family
    raise ProviderInvalidRequestError(
        f"The bot does not know the RunComfy input schema of {spec.display_name} ({spec.provider_model_id})."
    )


@dataclass(frozen=True)
class V2Fields:
    """The names of Seedance 2.0's media arrays on RunComfy (see `DEFAULT_V2_IMAGE_FIELD`)."""

    images: str = DEFAULT_V2_IMAGE_FIELD
    videos: str = DEFAULT_V2_VIDEO_FIELD
    audios: str = DEFAULT_V2_AUDIO_FIELD


def build_submit_body(
    submission: Submission,
    *,
    v2_image_field: str = DEFAULT_V2_IMAGE_FIELD,
    v2_video_field: str = DEFAULT_V2_VIDEO_FIELD,
    v2_audio_field: str = DEFAULT_V2_AUDIO_FIELD,
) -> dict[str, object]:
    """The JSON body of a RunComfy submit for `submission`, shaped by its model's schema.

    Seedance 2.0 takes its media as URL arrays: the first frame (if any) then the reference images in
    `v2_image_field`, reference videos in `v2_video_field`, reference audio in `v2_audio_field`; an empty
    array is left out. A request for web search adds `"tools": true` (seed 003's boolean).

    Raises ProviderInvalidRequestError when the submission cannot be expressed: an image or clip without a
    public URL (RunComfy fetches media itself), a missing first frame where the model needs one, a last
    frame, reference media on a model without a reference mode, or an option the model does not have.
    """
    spec, request = submission.spec, submission.request
    family = model_family(spec)
    if submission.last_frame is not None:
        raise ProviderInvalidRequestError(f"{spec.display_name} on RunComfy does not take a last frame.")
    first_frame_url = _public_url(submission.first_frame)
    _refuse_option(spec, "watermark", request.watermark)
    _refuse_option(spec, "service_tier", request.service_tier)
    _refuse_option(spec, "expires_after", request.expires_after_s)
    _refuse_option(spec, "return_last_frame", request.return_last_frame or None)

    body: dict[str, object] = {"prompt": request.prompt, "resolution": request.resolution.value}
    if family is ModelFamily.SEEDANCE_2_0_PRO:
        body["aspect_ratio"] = request.ratio.value
        body["duration"] = request.duration_s
        if request.generate_audio is not None:
            body["generate_audio"] = request.generate_audio
        if request.seed is not None:
            body["seed"] = request.seed
        if request.web_search:
            # Seed 003: `tools` is a boolean, default false; off is left to that default.
            body["tools"] = True
        references = submission.references
        # 2.0 has no first-frame field: the first image of the array plays that part.
        images = [
            url
            for url in (first_frame_url, *(_public_url(image) for image in references.images))
            if url is not None
        ]
        for field_name, urls in (
            (v2_image_field, images),
            (v2_video_field, [_media_url(video, "video") for video in references.videos]),
            (v2_audio_field, [_media_url(audio, "audio clip") for audio in references.audios]),
        ):
            if urls:
                body[field_name] = urls
        _refuse_option(spec, "camera_fixed", request.camera_fixed)
        return body

    if submission.references:
        raise ProviderInvalidRequestError(
            f"{spec.display_name} on RunComfy takes no reference images, videos or audio."
        )
    if first_frame_url is None:
        raise ProviderInvalidRequestError(f"{spec.display_name} needs a first frame image.")
    body["first_frame_image_url"] = first_frame_url
    body["ratio"] = request.ratio.value
    body["duration"] = request.duration_s
    _refuse_option(spec, "seed", request.seed)
    _refuse_option(spec, "web_search", request.web_search or None)
    if family is ModelFamily.SEEDANCE_1_5_PRO_I2V:
        if request.generate_audio is not None:
            body["generate_audio"] = request.generate_audio
        if request.camera_fixed is not None:
            body["camera_fixed"] = request.camera_fixed
        return body
    _refuse_option(spec, "generate_audio", request.generate_audio)
    _refuse_option(spec, "camera_fixed", request.camera_fixed)
    return body


def _public_url(frame: FrameImage | None) -> str | None:
    if frame is None:
        return None
    if not frame.url:
        raise ProviderInvalidRequestError(
            "RunComfy only takes images by public URL, and this image has not been published to one."
        )
    return frame.url


def _media_url(media: MediaClip, noun: str) -> str:
    if not media.url:
        raise ProviderInvalidRequestError(
            f"RunComfy only takes a reference {noun} by public URL, "
            "and this one has not been published to one."
        )
    return media.url


def _refuse_option(spec: ModelSpec, option: str, value: object) -> None:
    # The catalogue already drops options a model lacks; reaching this means the two disagree, and
    # silently dropping the option would hand the member a video made without it.
    if value is not None:
        raise ProviderInvalidRequestError(f"{spec.display_name} on RunComfy has no `{option}` option.")


def error_from_response(
    status_code: int,
    payload: object,
    *,
    request_id: str | None = None,
    retry_after_s: float | None = None,
    redact: Callable[[str], str] = lambda text: text,
) -> ProviderError | None:
    """The error a RunComfy answer stands for, or None when it is a success.

    `payload` is the decoded JSON body, or None when the body was not JSON (an HTML error page). A body with
    an `error_code` is an error whatever the HTTP status; a documented code picks the error type, otherwise
    the HTTP status does. `redact` scrubs secrets from the server's message before it is kept.
    """
    code, server_message = _error_fields(payload)
    if code is None and 200 <= status_code < 300:
        return None
    error_type = _ERRORS_BY_CODE.get(_as_int(code)) if code is not None else None
    if error_type is None:
        error_type = _error_type_for_status(status_code)
    message, detail = server_error_message("RunComfy", status_code, server_message, redact)
    return error_type(
        message,
        status_code=status_code,
        provider_code=code,
        request_id=request_id,
        retry_after_s=retry_after_s,
        detail=detail,
    )


def _error_fields(payload: object) -> tuple[str | None, str | None]:
    if not isinstance(payload, Mapping):
        return None, None
    raw_code = payload.get("error_code")
    code: str | None = None
    if isinstance(raw_code, int) and not isinstance(raw_code, bool):
        code = str(raw_code)
    elif isinstance(raw_code, str) and raw_code.strip():
        code = raw_code.strip()
    message = None
    for key in ("error_message", "message", "detail"):
        value = payload.get(key)
        if isinstance(value, str) and value.strip():
            message = value.strip()
            break
    return code, message


def _as_int(code: str) -> int:
    return int(code) if code.isdigit() else -1


def _error_type_for_status(status_code: int) -> type[ProviderError]:
    # RunComfy's clients read a 403 as a key problem, as they do a 401.
    return ProviderAuthError if status_code == 403 else error_type_for_status(status_code)


class _RemoteStatus(StrEnum):
    """RunComfy's status words, with the spellings its docs and clients disagree on folded together."""

    IN_QUEUE = "in_queue"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


_STATUS_WORDS: Final[Mapping[str, _RemoteStatus]] = {
    "in_queue": _RemoteStatus.IN_QUEUE,
    "in_progress": _RemoteStatus.IN_PROGRESS,
    "completed": _RemoteStatus.COMPLETED,
    "succeeded": _RemoteStatus.COMPLETED,  # the result endpoint's word (doc); "completed" in fixtures (sdk)
    "failed": _RemoteStatus.FAILED,
    "cancelled": _RemoteStatus.CANCELLED,
    "canceled": _RemoteStatus.CANCELLED,
    "expired": _RemoteStatus.EXPIRED,
}


class RunComfyProvider:
    """`VideoProvider` over RunComfy's Model API, on a shared `httpx.AsyncClient` owned by the caller.

    `v2_image_field`, `v2_video_field` and `v2_audio_field` name Seedance 2.0's media arrays (the seed's
    `images`/`videos`/`audios`; RunComfy's skill docs spell them `image_url`/`video_url`/`audio_url`).
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str,
        api_key: SecretStr,
        retry: RetryPolicy = DEFAULT_RETRY_POLICY,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: Callable[[], float] = random.random,
        v2_image_field: str = DEFAULT_V2_IMAGE_FIELD,
        clock: Callable[[], float] = time.time,
        v2_video_field: str = DEFAULT_V2_VIDEO_FIELD,
        v2_audio_field: str = DEFAULT_V2_AUDIO_FIELD,
    ) -> None:
        fields = (v2_image_field, v2_video_field, v2_audio_field)
        if not all(fields):
            raise ValueError("v2_image_field, v2_video_field and v2_audio_field must each name a field")
        if len(set(fields)) != len(fields):
            raise ValueError(f"the Seedance 2.0 media fields must differ; got {fields}")
        self._api = JsonApi(
            http,
            base_url=base_url,
            api_key=api_key,
            provider_label="RunComfy",
            error_parser=error_from_response,
            retry=retry,
            sleep=sleep,
            rng=rng,
            clock=clock,
        )
        self._v2_fields = V2Fields(images=v2_image_field, videos=v2_video_field, audios=v2_audio_field)

    @property
    def name(self) -> ProviderName:
        """Always RunComfy."""
        return ProviderName.RUNCOMFY

    @property
    def accepts_inline_images(self) -> bool:
        """RunComfy fetches images from public URLs; it takes no bytes."""
        return False

    async def submit(self, submission: Submission) -> SubmitReceipt:
        """Start a paid job; sent again only after a 429 or a connection that never opened.

        Raises SubmitOutcomeUnknownError when the request may have created a job but no usable answer came
        back (a 5xx, a read timeout, a dropped connection, an unreadable 200): the caller must not resend it.
        """
        body = build_submit_body(
            submission,
            v2_image_field=self._v2_fields.images,
            v2_video_field=self._v2_fields.videos,
            v2_audio_field=self._v2_fields.audios,
        )
        # Model ids contain slashes that are part of the path, so they are not escaped.
        path = "/v1/models/" + submission.spec.provider_model_id.strip("/")
        return await self._api.submit("POST", path, body, receipt=_receipt)

    async def status(self, provider_job_id: str, spec: ModelSpec) -> ProviderStatus:
        """The job's state; a finished job's video URL and cost come from the result endpoint."""
        reply = await self._api.read("GET", _request_path(provider_job_id, "status"))
        remote = _remote_status(reply.payload, reply.request_id)
        if remote is _RemoteStatus.IN_QUEUE:
            return ProviderStatus(ProviderState.QUEUED, queue_position=_queue_position(reply.payload))
        if remote is _RemoteStatus.IN_PROGRESS:
            return ProviderStatus(ProviderState.RUNNING)
        if remote is _RemoteStatus.CANCELLED:
            return ProviderStatus(ProviderState.CANCELLED)
        if remote is _RemoteStatus.EXPIRED:
            return ProviderStatus(ProviderState.EXPIRED)
        if remote is _RemoteStatus.FAILED:
            return await self._failure(provider_job_id)
        return await self._outcome(provider_job_id)

    async def cancel(self, provider_job_id: str, spec: ModelSpec) -> CancelOutcome:
        """Ask RunComfy to cancel; only a job still in the queue can be. Safe to repeat."""
        reply = await self._api.read("POST", _request_path(provider_job_id, "cancel"))
        outcome = reply.payload.get("outcome")
        if outcome in ("cancelled", "canceled"):
            return CancelOutcome.CANCELLED
        if outcome == "not_cancellable":
            return CancelOutcome.NOT_CANCELLABLE
        raise ProviderProtocolError(
            f"RunComfy answered a cancel with an unknown outcome {outcome!r}", request_id=reply.request_id
        )

    async def _outcome(self, provider_job_id: str) -> ProviderStatus:
        reply = await self._read_result(provider_job_id)
        payload = reply.payload
        # The status endpoint said "finished"; a result without a status word is read the same way.
        remote = _remote_status(payload, reply.request_id) if "status" in payload else _RemoteStatus.COMPLETED
        cost = _cost(payload.get("cost"))
        if remote is _RemoteStatus.IN_QUEUE:
            # The result endpoint lags the status endpoint: report what it says and poll again.
            return ProviderStatus(ProviderState.QUEUED, queue_position=_queue_position(payload))
        if remote is _RemoteStatus.IN_PROGRESS:
            return ProviderStatus(ProviderState.RUNNING)
        if remote is _RemoteStatus.CANCELLED:
            return ProviderStatus(ProviderState.CANCELLED, cost_usd=cost)
        if remote is _RemoteStatus.EXPIRED:
            return ProviderStatus(ProviderState.EXPIRED, cost_usd=cost)
        if remote is _RemoteStatus.FAILED:
            return _failed_status(payload.get("error"), cost)
        video_url = _video_url(payload.get("output"))
        if video_url is None:
            # Finished without a video: a terminal failure, not a reason to poll forever or crash.
            return ProviderStatus(
                ProviderState.FAILED,
                error_code="no_output",
                error_message="RunComfy reported the video as finished but sent no video.",
                cost_usd=cost,
            )
        return ProviderStatus(ProviderState.SUCCEEDED, video_url=video_url, cost_usd=cost)

    async def _failure(self, provider_job_id: str) -> ProviderStatus:
        # The status answer carries no reason; the result does. The job has failed either way, so a
        # result that cannot be read only costs the member the explanation.
        try:
            reply = await self._read_result(provider_job_id)
        except ProviderError as error:
            _log.warning("RunComfy job %s failed; its result could not be read: %s", provider_job_id, error)
            return _failed_status(None, None)
        return _failed_status(reply.payload.get("error"), _cost(reply.payload.get("cost")))

    async def _read_result(self, provider_job_id: str) -> Reply:
        return await self._api.read(
            "GET", _request_path(provider_job_id, "result"), params={"include_cost": "true"}
        )


def _request_path(provider_job_id: str, action: str) -> str:
    # A request id is one path segment: escaping it keeps a strange id from reaching another endpoint.
    return f"/v1/requests/{quote(provider_job_id, safe='')}/{action}"


def _receipt(reply: Reply) -> SubmitReceipt:
    request_id = reply.payload.get("request_id")
    if isinstance(request_id, int) and not isinstance(request_id, bool):
        request_id = str(request_id)
    if not isinstance(request_id, str) or not request_id.strip():
        raise ProviderProtocolError(
            "RunComfy accepted the submit but sent no request_id", request_id=reply.request_id
        )
    return SubmitReceipt(provider_job_id=request_id.strip(), request_id=reply.request_id)


def _remote_status(payload: Mapping[str, object], request_id: str | None) -> _RemoteStatus:
    raw = payload.get("status")
    word = raw.strip().lower() if isinstance(raw, str) else None
    remote = _STATUS_WORDS.get(word) if word is not None else None
    if remote is None:
        raise ProviderProtocolError(f"RunComfy reported an unknown job status {raw!r}", request_id=request_id)
    return remote


def _queue_position(payload: Mapping[str, object]) -> int | None:
    position = payload.get("queue_position")
    if isinstance(position, int) and not isinstance(position, bool) and position >= 0:
        return position
    return None


def _video_url(output: object) -> str | None:
    """`output.video`, else the first of `output.videos` (RunComfy's own client reads both)."""
    if not isinstance(output, Mapping):
        return None
    video = output.get("video")
    if isinstance(video, Mapping):  # tolerate a {"url": ...} object, as some queue APIs send
        video = video.get("url")
    if isinstance(video, str) and video.strip():
        return video.strip()
    videos = output.get("videos")
    if isinstance(videos, list) and videos:
        first = videos[0]
        if isinstance(first, Mapping):
            first = first.get("url")
        if isinstance(first, str) and first.strip():
            return first.strip()
    return None


def _cost(raw: object) -> float | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int | float):
        value = float(raw)
    elif isinstance(raw, str):
        try:
            value = float(raw)
        except ValueError:
            return None
    else:
        return None
    return value if math.isfinite(value) and value >= 0 else None


def _failed_status(error: object, cost: float | None) -> ProviderStatus:
    """A FAILED status from a result's `error`, whose shape RunComfy leaves unspecified."""
    code: str | None = None
    message: str | None = None
    if isinstance(error, str) and error.strip():
        message = error.strip()
    elif isinstance(error, Mapping):
        for key in ("message", "error_message", "detail", "reason"):
            value = error.get(key)
            if isinstance(value, str) and value.strip():
                message = value.strip()
                break
        for key in ("code", "error_code", "type"):
            value = error.get(key)
            if isinstance(value, int | str) and not isinstance(value, bool) and str(value).strip():
                code = str(value).strip()
                break
    if message is None:
        message = "RunComfy reported the job as failed without saying why."
    return ProviderStatus(ProviderState.FAILED, error_code=code, error_message=clip(message), cost_usd=cost)
