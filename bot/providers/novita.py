"""The Novita client (`shared/docs/providers.md` section 2, seed 004).

Novita runs each Seedance model behind `POST /v3/async/{model_id}`, which answers `{"task_id"}`, and reports
every task at `GET /v3/async/task-result?task_id=...`. It documents no way to cancel a task.

What this module decides, and where:

- `build_submit_body`: the JSON body, pure. Images always go inline as `data:` URIs: Novita takes them,
  and no public URL (which may expire or be unreachable) is needed.
- `error_from_response`: an HTTP answer → the typed `ProviderError`, pure. Novita's error body is
  `{"code", "reason", "message", "metadata"}`; its reason words are not all documented, so the HTTP status
  decides the type, refined by words in the reason and message (balance, model access, moderation).
- `status_from_result`: a task-result answer → `ProviderStatus`, pure.
- `NovitaProvider`: the exchanges, on the shared `JsonApi` (retried reads; a submit sent at most once).
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from enum import StrEnum
from typing import Final
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
    ProviderBalanceError,
    ProviderContentRejectedError,
    ProviderError,
    ProviderInvalidRequestError,
    ProviderModelUnavailableError,
    ProviderProtocolError,
)
from bot.providers.http import (
    DEFAULT_RETRY_POLICY,
    JsonApi,
    Reply,
    clip,
    data_uri,
    error_type_for_status,
    int_field,
    text_field,
)
from bot.providers.retry import RetryPolicy
from bot.providers.server_text import server_error_message

DEFAULT_BASE_URL: Final = "https://api.novita.ai"
_LABEL: Final = "Novita"

# Words in a 403's reason or message that mean the account is out of money (a guess: Novita documents 403
# for "permission", and its balance errors are not spelled out).
_BALANCE_WORDS: Final = ("balance", "credit", "quota", "insufficient", "billing", "payment")
# Words that mean the model is not open to this account: `model_access_denied` (doc) and the identity
# verification some models require (doc, wording a guess).
_MODEL_ACCESS_WORDS: Final = ("model_access_denied", "verif")
# Words in a 400's reason or message that mean content moderation refused the prompt or an image (a guess
# from ModelArk's `*SensitiveContentDetected*` codes, which Novita's Seedance sits on).
_MODERATION_WORDS: Final = ("sensitive", "moderation", "nsfw", "prohibited")


def build_submit_body(submission: Submission) -> dict[str, object]:
    """The JSON body of a Novita submit for `submission`.

    Raises ProviderInvalidRequestError when Novita cannot take the submission: no first frame, reference
    media (Novita's 1.5 i2v has no reference mode), a spec of another provider, or an option Novita lacks
    (returning the last frame, web search).
    """
    spec, request = submission.spec, submission.request
    if spec.provider is not ProviderName.NOVITA:
        raise ProviderInvalidRequestError(
            f"{spec.display_name} is a {spec.provider.value} model; Novita cannot run it."
        )
    if submission.references:
        raise ProviderInvalidRequestError(
            f"{spec.display_name} on Novita takes no reference images, videos or audio."
        )
    if submission.first_frame is None:
        raise ProviderInvalidRequestError(f"{spec.display_name} on Novita needs a first frame image.")
    if request.return_last_frame:
        # Refused rather than dropped: the member asked for something they would silently not get.
        raise ProviderInvalidRequestError(f"{spec.display_name} on Novita cannot return the last frame.")
    if request.web_search:
        raise ProviderInvalidRequestError(f"{spec.display_name} on Novita has no web search option.")

    body: dict[str, object] = {
        "image": _inline(submission.first_frame, "first frame"),
        "prompt": request.prompt,
    }
    if submission.last_frame is not None:
        body["last_image"] = _inline(submission.last_frame, "last frame")
    # `fps` is left out: 24 is its only value and its default.
    body["ratio"] = request.ratio.value
    body["duration"] = request.duration_s
    body["resolution"] = request.resolution.value
    optional: tuple[tuple[str, object], ...] = (
        ("seed", request.seed),
        ("watermark", request.watermark),
        ("camera_fixed", request.camera_fixed),
        ("generate_audio", request.generate_audio),
        ("service_tier", request.service_tier.value if request.service_tier is not None else None),
        ("execution_expires_after", request.expires_after_s),
    )
    for name, value in optional:
        if value is not None:
            body[name] = value
    return body


def _inline(frame: FrameImage, what: str) -> str:
    if not frame.data:
        raise ProviderInvalidRequestError(f"The {what} image is empty.")
    return data_uri(frame.data, frame.info.mime_type)


def error_from_response(
    status_code: int,
    payload: object,
    *,
    request_id: str | None = None,
    retry_after_s: float | None = None,
    redact: Callable[[str], str] = lambda text: text,
) -> ProviderError | None:
    """The error a Novita answer stands for, or None when it is a success.

    A 2xx is a success, unless its body is an error body (an integer `code` of 400 or more with a `reason`:
    a guess, in case Novita reports errors with HTTP 200 as RunComfy does). `provider_code` is the `reason`
    word, else the numeric `code`. `redact` scrubs secrets from the server's message before it is kept.
    """
    reason = text_field(payload, "reason")
    numeric_code = int_field(payload, "code")
    server_message = text_field(payload, "message", "error", "detail")
    effective_status = status_code
    if 200 <= status_code < 300:
        if numeric_code is None or numeric_code < 400 or reason is None:
            return None
        effective_status = numeric_code
    provider_code = (
        reason if reason is not None else (str(numeric_code) if numeric_code is not None else None)
    )
    error_type = _error_type(effective_status, " ".join(filter(None, (reason, server_message))).lower())
    message, detail = server_error_message("Novita", status_code, server_message or reason, redact)
    return error_type(
        message,
        status_code=status_code,
        provider_code=provider_code,
        request_id=request_id,
        retry_after_s=retry_after_s,
        detail=detail,
    )


def _error_type(status_code: int, words: str) -> type[ProviderError]:
    if status_code == 403:
        if any(word in words for word in _BALANCE_WORDS):
            return ProviderBalanceError
        if any(word in words for word in _MODEL_ACCESS_WORDS):
            return ProviderModelUnavailableError
    if status_code in (400, 422) and any(word in words for word in _MODERATION_WORDS):
        return ProviderContentRejectedError
    return error_type_for_status(status_code)


class _TaskStatus(StrEnum):
    """Novita's task words (without their `TASK_STATUS_` prefix), with tolerated spellings folded in."""

    QUEUED = "QUEUED"
    PROCESSING = "PROCESSING"
    SUCCEED = "SUCCEED"
    FAILED = "FAILED"
    EXPIRED = "EXPIRED"
    CANCELLED = "CANCELLED"


_STATUS_WORDS: Final[Mapping[str, _TaskStatus]] = {
    "QUEUED": _TaskStatus.QUEUED,
    "PROCESSING": _TaskStatus.PROCESSING,
    "SUCCEED": _TaskStatus.SUCCEED,
    "SUCCEEDED": _TaskStatus.SUCCEED,
    "FAILED": _TaskStatus.FAILED,
    # Not documented, but the task may be terminated past `execution_expires_after`, and other Novita
    # clients list TASK_STATUS_CANCELED: any terminal word must end the job rather than spin forever.
    "EXPIRED": _TaskStatus.EXPIRED,
    "CANCELED": _TaskStatus.CANCELLED,
    "CANCELLED": _TaskStatus.CANCELLED,
}


def status_from_result(payload: Mapping[str, object], *, request_id: str | None = None) -> ProviderStatus:
    """The `ProviderStatus` a task-result answer describes.

    Raises ProviderProtocolError when the answer has no `task` object or an unknown status word.
    """
    task = payload.get("task")
    if not isinstance(task, Mapping):
        raise ProviderProtocolError("Novita answered a task result without a task", request_id=request_id)
    raw = task.get("status")
    word = raw.strip().upper().removeprefix("TASK_STATUS_") if isinstance(raw, str) else None
    remote = _STATUS_WORDS.get(word) if word is not None else None
    if remote is None:
        raise ProviderProtocolError(f"Novita reported an unknown task status {raw!r}", request_id=request_id)
    # `reason` (doc); some clients read `err_detail` too.
    reason = text_field(task, "reason", "err_detail")
    match remote:
        case _TaskStatus.QUEUED:
            return ProviderStatus(ProviderState.QUEUED)
        case _TaskStatus.PROCESSING:
            return ProviderStatus(
                ProviderState.RUNNING, progress_percent=_percent(task.get("progress_percent"))
            )
        case _TaskStatus.SUCCEED:
            video_url = _video_url(payload.get("videos"))
            if video_url is None:
                # Finished without a video: a terminal failure, not a reason to poll forever or crash.
                return ProviderStatus(
                    ProviderState.FAILED,
                    error_code="no_output",
                    error_message="Novita reported the video as finished but sent no video.",
                )
            return ProviderStatus(ProviderState.SUCCEEDED, video_url=video_url)
        case _TaskStatus.FAILED if reason is not None and "expire" in reason.lower():
            # Novita says tasks past `execution_expires_after` are "marked as expired" but lists no such
            # status word: a failure that says so is read as the expiry it is.
            return ProviderStatus(ProviderState.EXPIRED, error_code="expired", error_message=clip(reason))
        case _TaskStatus.FAILED:
            return ProviderStatus(
                ProviderState.FAILED,
                error_message=clip(reason or "Novita reported the job as failed without saying why."),
            )
        case _TaskStatus.EXPIRED:
            return ProviderStatus(
                ProviderState.EXPIRED, error_code="expired", error_message=clip(reason) if reason else None
            )
        case _TaskStatus.CANCELLED:
            return ProviderStatus(ProviderState.CANCELLED)


def _percent(raw: object) -> float | None:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        return None
    value = float(raw)
    return value if math.isfinite(value) and 0.0 <= value <= 100.0 else None


def _video_url(videos: object) -> str | None:
    """`videos[0].video_url`, else `videos[0].url` (the item's field names are a guess)."""
    if not isinstance(videos, list) or not videos:
        return None
    first = videos[0]
    if isinstance(first, str):
        return first.strip() or None
    return text_field(first, "video_url", "url")


class NovitaProvider:
    """`VideoProvider` over Novita's async API, on a shared `httpx.AsyncClient` owned by the caller."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str = DEFAULT_BASE_URL,
        api_key: SecretStr,
        retry: RetryPolicy = DEFAULT_RETRY_POLICY,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._api = JsonApi(
            http,
            base_url=base_url,
            api_key=api_key,
            provider_label=_LABEL,
            error_parser=error_from_response,
            retry=retry,
            sleep=sleep,
            rng=rng,
            clock=clock,
        )

    @property
    def name(self) -> ProviderName:
        """Always Novita."""
        return ProviderName.NOVITA

    @property
    def accepts_inline_images(self) -> bool:
        """Novita takes images as `data:` URIs, so no public URL is needed."""
        return True

    async def submit(self, submission: Submission) -> SubmitReceipt:
        """Start a paid task; sent again only after a 429 or a connection that never opened.

        Raises SubmitOutcomeUnknownError when the request may have created a task but no usable answer came
        back (a 5xx, a read timeout, a dropped connection, an unreadable 200): the caller must not resend it.
        """
        body = build_submit_body(submission)
        path = "/v3/async/" + quote(submission.spec.provider_model_id.strip("/"), safe="")
        return await self._api.submit("POST", path, body, receipt=_receipt)

    async def status(self, provider_job_id: str, spec: ModelSpec) -> ProviderStatus:
        """The task's state from the task-result endpoint; when SUCCEEDED, `video_url` is set."""
        reply = await self._api.read("GET", "/v3/async/task-result", params={"task_id": provider_job_id})
        return status_from_result(reply.payload, request_id=reply.request_id)

    async def cancel(self, provider_job_id: str, spec: ModelSpec) -> CancelOutcome:
        """Novita documents no way to cancel a task: UNSUPPORTED, without sending anything."""
        return CancelOutcome.UNSUPPORTED


def _receipt(reply: Reply) -> SubmitReceipt:
    task_id = reply.payload.get("task_id")
    if isinstance(task_id, int) and not isinstance(task_id, bool):
        task_id = str(task_id)
    if not isinstance(task_id, str) or not task_id.strip():
        raise ProviderProtocolError(
            "Novita accepted the submit but sent no task_id", request_id=reply.request_id
        )
    return SubmitReceipt(provider_job_id=task_id.strip(), request_id=reply.request_id)
