"""The BytePlus ModelArk client, which also speaks to Volcengine Ark (`shared/docs/providers.md` section 3).

ModelArk keeps every video job as a *task*: `POST /contents/generations/tasks` creates one (`{"id"}`),
`GET /contents/generations/tasks/{id}` reads it, `GET /contents/generations/tasks` lists them and
`DELETE /contents/generations/tasks/{id}` either cancels it (while queued) or deletes its record (once
succeeded, failed or expired). Volcengine Ark is the same API under another base URL
(`VOLCENGINE_BASE_URL`), with its own region-bound keys and `doubao-`-prefixed model ids.

What this module decides, and where:

- `build_submit_body`: the JSON body, pure. Images go inline as `data:` URIs (see `build_submit_body`);
  reference videos and audio go by public URL, the only way ModelArk documents.
- `error_from_response`: an HTTP answer → the typed `ProviderError`, pure; ModelArk's error code decides
  first, the HTTP status second.
- `ArkTask.from_payload` / `status_from_task`: a task → a frozen typed view → `ProviderStatus`, pure.
- `ArkProvider`: the exchanges on the shared `JsonApi`, plus `get_task`, `list_tasks` and `delete_task`;
  `statuses` reads many tasks in one list call (`BatchStatusProvider`), for the poller.

Cancelling is the delicate part: a DELETE on a finished task throws its record (and the only pointer to its
video) away, so `cancel` reads the task first and sends DELETE only while it is queued.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
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
    ProviderContentRejectedError,
    ProviderError,
    ProviderInvalidRequestError,
    ProviderModelUnavailableError,
    ProviderPermissionError,
    ProviderProtocolError,
    ProviderRateLimitError,
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

if TYPE_CHECKING:
    from bot.domain.media import MediaClip

_log = logging.getLogger(__name__)

DEFAULT_BASE_URL: Final = "https://ark.ap-southeast.bytepluses.com/api/v3"
VOLCENGINE_BASE_URL: Final = "https://ark.cn-beijing.volces.com/api/v3"
#: Images up to this many bytes go inline; a larger one goes by its public URL when it has one. Inline
#: images cannot expire before ModelArk fetches them, and Volcengine (in mainland China) may be unable to
#: reach the bot's image host at all; but base64 grows a body by a third, and nine reference images of
#: 30 MB each would make a request of hundreds of MB. 10 MB is a judgement, not a documented limit.
DEFAULT_INLINE_IMAGE_MAX_BYTES: Final = 10_000_000

#: The most task ids `statuses` asks for in one list call (one page of that size, filtered by the ids).
#: providers.md gives no bound; third-party copies of ModelArk's reference give page_size the range
#: [1, 500] and show page_size=100 with filter.task_ids, and the double takes 1-500 (its own guess). 100 is
#: a conservative choice inside that range, not a documented limit: every id adds about 41 bytes of query
#: ("filter.task_ids=cgt-20250331175019-68d9t&"), so 100 ids keep the URL near 4 KB, under the 8 KB request
#: line many proxies and gateways allow, where 500 would be about 20 KB.
STATUS_BATCH_SIZE: Final = 100

_LABEL: Final = "ModelArk"
_TASKS_PATH: Final = "/contents/generations/tasks"


class ArkTaskStatus(StrEnum):
    """A ModelArk task's `status`."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


_STATUS_WORDS: Final[Mapping[str, ArkTaskStatus]] = {
    **{status.value: status for status in ArkTaskStatus},
    "canceled": ArkTaskStatus.CANCELLED,  # the American spelling, in case ModelArk ever uses it
}


@dataclass(frozen=True)
class ArkTask:
    """A typed view of one ModelArk task; fields ModelArk left out are None."""

    id: str
    status: ArkTaskStatus
    model: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    video_url: str | None = None  # valid for 24 hours
    last_frame_url: str | None = None  # only when the request set `return_last_frame`
    completion_tokens: int | None = None
    total_tokens: int | None = None
    created_at: int | None = None  # Unix seconds
    updated_at: int | None = None

    @property
    def usage_tokens(self) -> int | None:
        """What the task was billed by: its completion tokens, else its total tokens."""
        return self.completion_tokens if self.completion_tokens is not None else self.total_tokens

    @classmethod
    def from_payload(cls, payload: object, *, request_id: str | None = None) -> ArkTask:
        """The task a JSON object describes; unknown extra fields are ignored.

        Raises ProviderProtocolError when the object has no `id` or an unknown `status`.
        """
        if not isinstance(payload, Mapping):
            raise ProviderProtocolError(
                "ModelArk sent a task that is not a JSON object", request_id=request_id
            )
        task_id = text_field(payload, "id")
        if task_id is None:
            raise ProviderProtocolError("ModelArk sent a task without an id", request_id=request_id)
        raw = payload.get("status")
        status = _STATUS_WORDS.get(raw.strip().lower()) if isinstance(raw, str) else None
        if status is None:
            raise ProviderProtocolError(
                f"ModelArk reported an unknown status {raw!r} for task {task_id}", request_id=request_id
            )
        error, content, usage = payload.get("error"), payload.get("content"), payload.get("usage")
        return cls(
            id=task_id,
            status=status,
            model=text_field(payload, "model"),
            error_code=_code_text(error.get("code")) if isinstance(error, Mapping) else None,
            error_message=text_field(error, "message"),
            video_url=text_field(content, "video_url"),
            last_frame_url=text_field(content, "last_frame_url"),
            completion_tokens=int_field(usage, "completion_tokens"),
            total_tokens=int_field(usage, "total_tokens"),
            created_at=_timestamp(payload.get("created_at")),
            updated_at=_timestamp(payload.get("updated_at")),
        )


@dataclass(frozen=True)
class TaskPage:
    """One page of `list_tasks`: `total` tasks match the filter, `items` holds this page of them."""

    total: int
    items: tuple[ArkTask, ...]


def _code_text(raw: object) -> str | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return str(raw)
    if isinstance(raw, str) and raw.strip():
        return raw.strip()
    return None


def _timestamp(raw: object) -> int | None:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        return None
    return int(raw)


def status_from_task(task: ArkTask) -> ProviderStatus:
    """The normalised status of a ModelArk task."""
    match task.status:
        case ArkTaskStatus.QUEUED:
            return ProviderStatus(ProviderState.QUEUED)
        case ArkTaskStatus.RUNNING:
            return ProviderStatus(ProviderState.RUNNING)
        case ArkTaskStatus.SUCCEEDED:
            if task.video_url is None:
                # Finished without a video: a terminal failure, not a reason to poll forever or crash.
                return ProviderStatus(
                    ProviderState.FAILED,
                    error_code="no_output",
                    error_message="ModelArk reported the video as finished but sent no video.",
                    usage_tokens=task.usage_tokens,
                )
            return ProviderStatus(
                ProviderState.SUCCEEDED,
                video_url=task.video_url,
                last_frame_url=task.last_frame_url,
                usage_tokens=task.usage_tokens,
            )
        case ArkTaskStatus.FAILED:
            return ProviderStatus(
                ProviderState.FAILED,
                error_code=task.error_code,
                error_message=clip(
                    task.error_message or "ModelArk reported the job as failed without saying why."
                ),
                usage_tokens=task.usage_tokens,
            )
        case ArkTaskStatus.CANCELLED:
            return ProviderStatus(ProviderState.CANCELLED)
        case ArkTaskStatus.EXPIRED:
            return ProviderStatus(
                ProviderState.EXPIRED,
                error_code=task.error_code,
                error_message=clip(task.error_message) if task.error_message else None,
            )


def build_submit_body(
    submission: Submission, *, inline_image_max_bytes: int = DEFAULT_INLINE_IMAGE_MAX_BYTES
) -> dict[str, object]:
    """The JSON body of a ModelArk create-task request for `submission`.

    `content` holds the prompt, then the first frame, the last frame, the reference images, videos and audio
    clips, each with its role. Images go inline as `data:` URIs, unless one is larger than
    `inline_image_max_bytes` and has a public URL (see `DEFAULT_INLINE_IMAGE_MAX_BYTES`).

    Raises ProviderInvalidRequestError when ModelArk would refuse the submission or the bot cannot express
    it: reference images together with a first or last frame, a last frame without a first, a missing first
    frame where the model needs one, reference media on a model without a reference mode, a reference video
    or audio clip without a public URL, web search (not documented for ModelArk), or a spec of another
    provider.
    """
    spec, request, references = submission.spec, submission.request, submission.references
    if spec.provider is not ProviderName.ARK:
        raise ProviderInvalidRequestError(
            f"{spec.display_name} is a {spec.provider.value} model; ModelArk cannot run it."
        )
    if references and spec.references is None:
        raise ProviderInvalidRequestError(
            f"{spec.display_name} on ModelArk takes no reference images, videos or audio."
        )
    has_frames = submission.first_frame is not None or submission.last_frame is not None
    if references.images and has_frames:
        raise ProviderInvalidRequestError(
            "ModelArk cannot combine reference images with a first or last frame: use one or the other."
        )
    if submission.last_frame is not None and submission.first_frame is None:
        raise ProviderInvalidRequestError("ModelArk takes a last frame only together with a first frame.")
    if submission.first_frame is None and not references and spec.requires_first_frame:
        raise ProviderInvalidRequestError(f"{spec.display_name} needs a first frame image.")
    if request.web_search:
        # providers.md lists no `tools` field for ModelArk; refused rather than dropped, so the member is
        # not handed a video made without the search they asked for.
        raise ProviderInvalidRequestError(f"{spec.display_name} on ModelArk has no web search option.")

    content: list[dict[str, object]] = [{"type": "text", "text": request.prompt}]
    framed = (
        (submission.first_frame, "first_frame"),
        (submission.last_frame, "last_frame"),
        *((image, "reference_image") for image in references.images),
    )
    for frame, role in framed:
        if frame is not None:
            url = _image_url(frame, role, inline_image_max_bytes)
            content.append({"type": "image_url", "image_url": {"url": url}, "role": role})
    for media, kind, role in (
        *((video, "video_url", "reference_video") for video in references.videos),
        *((audio, "audio_url", "reference_audio") for audio in references.audios),
    ):
        content.append({"type": kind, kind: {"url": _clip_url(media, role)}, "role": role})

    body: dict[str, object] = {
        "model": spec.provider_model_id,
        "content": content,
        "resolution": request.resolution.value,
        "ratio": request.ratio.value,
        "duration": request.duration_s,
    }
    optional: tuple[tuple[str, object], ...] = (
        ("seed", request.seed),
        ("camera_fixed", request.camera_fixed),
        ("watermark", request.watermark),
        ("generate_audio", request.generate_audio),
        ("return_last_frame", True if request.return_last_frame else None),
        ("service_tier", request.service_tier.value if request.service_tier is not None else None),
        ("execution_expires_after", request.expires_after_s),
        ("callback_url", submission.callback_url or None),
    )
    for name, value in optional:
        if value is not None:
            body[name] = value
    return body


def _image_url(frame: FrameImage, role: str, inline_max_bytes: int) -> str:
    if frame.data and (len(frame.data) <= inline_max_bytes or not frame.url):
        return data_uri(frame.data, frame.info.mime_type)
    if frame.url:
        return frame.url
    raise ProviderInvalidRequestError(f"The {role.replace('_', ' ')} image is empty.")


def _clip_url(media: MediaClip, role: str) -> str:
    if not media.url:
        raise ProviderInvalidRequestError(
            f"ModelArk takes a {role.replace('_', ' ')} only by public URL, "
            "and this one has not been published to one."
        )
    return media.url


# Codes are matched by prefix: ModelArk qualifies them (`RateLimitExceeded.EndpointRPMExceeded`). The
# moderation codes vary at the front (`InputImageSensitiveContentDetected.PrivacyInformation`), so they are
# matched by what they contain, and first.
_ERRORS_BY_CODE_PREFIX: Final[tuple[tuple[str, type[ProviderError]], ...]] = (
    ("AuthenticationError", ProviderAuthError),
    ("AccountOverdueError", ProviderBalanceError),
    ("AccessDenied", ProviderPermissionError),
    ("ModelNotOpen", ProviderModelUnavailableError),
    ("InvalidEndpoint", ProviderModelUnavailableError),  # InvalidEndpoint.NotFound, InvalidEndpointOrModel.*
    ("RateLimitExceeded", ProviderRateLimitError),
    ("QuotaExceeded", ProviderRateLimitError),
    ("ServerOverloaded", ProviderRateLimitError),
    ("InvalidParameter", ProviderInvalidRequestError),
    ("MissingParameter", ProviderInvalidRequestError),
)


def error_from_response(
    status_code: int,
    payload: object,
    *,
    request_id: str | None = None,
    retry_after_s: float | None = None,
    redact: Callable[[str], str] = lambda text: text,
    on_create: bool = False,
) -> ProviderError | None:
    """The error a ModelArk answer stands for, or None when it is a success (any 2xx).

    ModelArk's `error.code` picks the type when it is known, else the HTTP status does. `on_create` says
    the answer is to the create-task request, where a 404 means the model (endpoint) is not available to the
    account rather than an unknown task. `redact` scrubs secrets from the server's message.
    """
    if 200 <= status_code < 300:
        # A task's own `error` (a failed job) is not an HTTP error: success is judged by status alone.
        return None
    code, server_message = _error_fields(payload)
    error_type = _type_for_code(code) if code is not None else None
    if error_type is None:
        error_type = _type_for_status(status_code, on_create=on_create)
    message, detail = server_error_message("ModelArk", status_code, server_message, redact)
    return error_type(
        message,
        status_code=status_code,
        provider_code=code,
        request_id=request_id,
        retry_after_s=retry_after_s,
        detail=detail,
    )


def _create_error_from_response(
    status_code: int,
    payload: object,
    *,
    request_id: str | None,
    retry_after_s: float | None,
    redact: Callable[[str], str],
) -> ProviderError | None:
    return error_from_response(
        status_code,
        payload,
        request_id=request_id,
        retry_after_s=retry_after_s,
        redact=redact,
        on_create=True,
    )


def _error_fields(payload: object) -> tuple[str | None, str | None]:
    """`error.code` and `error.message`; also Volcengine's gateway shape `ResponseMetadata.Error`."""
    if not isinstance(payload, Mapping):
        return None, None
    error = payload.get("error")
    if isinstance(error, Mapping):
        return _code_text(error.get("code")), text_field(error, "message")
    if isinstance(error, str) and error.strip():
        return None, error.strip()
    metadata = payload.get("ResponseMetadata")
    gateway_error = metadata.get("Error") if isinstance(metadata, Mapping) else None
    if isinstance(gateway_error, Mapping):
        return _code_text(gateway_error.get("Code")), text_field(gateway_error, "Message")
    return _code_text(payload.get("code")), text_field(payload, "message")


def _type_for_code(code: str) -> type[ProviderError] | None:
    if "SensitiveContentDetected" in code:
        return ProviderContentRejectedError
    for prefix, error_type in _ERRORS_BY_CODE_PREFIX:
        if code.startswith(prefix):
            return error_type
    return None


def _type_for_status(status_code: int, *, on_create: bool) -> type[ProviderError]:
    # A 404 on create means the model (not activated, or unknown here), not a task.
    if status_code == 404 and on_create:
        return ProviderModelUnavailableError
    # ModelArk's 403s are AccountOverdueError and AccessDenied: the key is valid, the access is not.
    return error_type_for_status(status_code)


class ArkProvider:
    """`VideoProvider` over ModelArk's video generation tasks, on a shared `httpx.AsyncClient`.

    `base_url` picks the platform: BytePlus ModelArk (`DEFAULT_BASE_URL`) or Volcengine Ark
    (`VOLCENGINE_BASE_URL`); the key must belong to the same platform and region.
    """

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
        inline_image_max_bytes: int = DEFAULT_INLINE_IMAGE_MAX_BYTES,
    ) -> None:
        if inline_image_max_bytes < 0:
            raise ValueError("inline_image_max_bytes must not be negative")
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
        self._inline_image_max_bytes = inline_image_max_bytes

    @property
    def name(self) -> ProviderName:
        """Always ModelArk."""
        return ProviderName.ARK

    @property
    def accepts_inline_images(self) -> bool:
        """ModelArk takes images as `data:` URIs, so no public URL is needed."""
        return True

    async def submit(self, submission: Submission) -> SubmitReceipt:
        """Create a paid task; sent again only after a 429 or a connection that never opened.

        Raises SubmitOutcomeUnknownError when the request may have created a task but no usable answer came
        back (a 5xx, a read timeout, a dropped connection, an unreadable 200): the caller must not resend it.
        """
        body = build_submit_body(submission, inline_image_max_bytes=self._inline_image_max_bytes)
        return await self._api.submit(
            "POST", _TASKS_PATH, body, receipt=_receipt, error_parser=_create_error_from_response
        )

    async def status(self, provider_job_id: str, spec: ModelSpec) -> ProviderStatus:
        """The task's state; when SUCCEEDED, `video_url` (and `last_frame_url` when asked for) are set."""
        return status_from_task(await self.get_task(provider_job_id))

    @property
    def max_status_batch(self) -> int:
        """How many task ids one `statuses` call takes (`STATUS_BATCH_SIZE`)."""
        return STATUS_BATCH_SIZE

    async def statuses(
        self, provider_job_ids: Sequence[str], spec_for: Mapping[str, ModelSpec]
    ) -> dict[str, ProviderStatus]:
        """Many tasks' states in one list call: one page of `len(ids)` tasks filtered by their ids.

        Ids the answer leaves out are absent from the result: an unknown or deleted task, one older than the 7
        days ModelArk lists, or an entry that cannot be read. The caller asks `status` for those, which
        raises the right error for that task alone, so one strange task cannot stall the others. Tasks the
        answer holds but nobody asked for (a server that ignored the filter) are ignored. Read with retries;
        raises ProviderError when the list call fails, ValueError for more than `max_status_batch` ids.
        """
        wanted = list(dict.fromkeys(provider_job_ids))
        if not wanted:
            return {}
        if len(wanted) > STATUS_BATCH_SIZE:
            raise ValueError(f"at most {STATUS_BATCH_SIZE} task ids per call, got {len(wanted)}")
        items, _, request_id = await self._list_page(task_ids=wanted, page_size=len(wanted))
        asked = set(wanted)
        found: dict[str, ProviderStatus] = {}
        for item in items:
            try:
                task = ArkTask.from_payload(item, request_id=request_id)
            except ProviderProtocolError as error:
                _log.info("ModelArk listed a task the bot cannot read; asking for it alone: %s", error)
                continue
            if task.id in asked and task.id not in found:
                found[task.id] = status_from_task(task)
        return found

    async def cancel(self, provider_job_id: str, spec: ModelSpec) -> CancelOutcome:
        """Cancel the task if it is still queued; never touches a running or finished one.

        ModelArk's DELETE cancels a queued task but *deletes the record* of a finished one (and with it the
        only pointer to a video that may not be downloaded yet), so the task is read first and DELETE is sent
        only while it is queued. A DELETE that fails is not simply repeated: the task is read again, since the
        first DELETE may have worked, or the task may have started (or even finished) meanwhile.
        """
        last_error: ProviderError | None = None
        for attempt in range(1, self._api.retry.max_attempts + 1):
            task = await self.get_task(provider_job_id)
            if task.status is ArkTaskStatus.CANCELLED:
                return CancelOutcome.CANCELLED
            if task.status is not ArkTaskStatus.QUEUED:
                return CancelOutcome.NOT_CANCELLABLE
            if last_error is not None and not last_error.retryable:
                # Refused although the task is still queued: not a race this loop can wait out.
                raise last_error
            try:
                await self.delete_task(provider_job_id)
            except (ProviderAuthError, ProviderPermissionError, ProviderBalanceError):
                raise
            except ProviderError as error:
                # ModelArk refuses a DELETE once the task runs: the next read tells.
                _log.info("ModelArk DELETE of task %s failed (%s); reading it again", provider_job_id, error)
                last_error = error
                if error.retryable:
                    await self._api.wait_before_retry("cancel", error, attempt)
                continue
            return CancelOutcome.CANCELLED
        # The loop only runs out after a failed DELETE, so `last_error` is always set here.
        raise last_error or ProviderError(f"ModelArk could not cancel task {provider_job_id}")

    async def get_task(self, task_id: str) -> ArkTask:
        """One task, read with retries. Raises ProviderNotFoundError for an unknown (or deleted) task."""
        reply = await self._api.read("GET", _task_path(task_id))
        return ArkTask.from_payload(reply.payload, request_id=reply.request_id)

    async def list_tasks(
        self,
        *,
        status: ArkTaskStatus | None = None,
        task_ids: Sequence[str] = (),
        model: str | None = None,
        page_num: int = 1,
        page_size: int = 20,
    ) -> TaskPage:
        """One page of the account's tasks (ModelArk keeps them 7 days), filtered as asked; read with retries.

        Useful to find the task of a submit whose outcome is unknown. `task_ids` becomes repeated
        `filter.task_ids` parameters.
        """
        items, total, request_id = await self._list_page(
            status=status, task_ids=task_ids, model=model, page_num=page_num, page_size=page_size
        )
        tasks = tuple(ArkTask.from_payload(item, request_id=request_id) for item in items)
        return TaskPage(total=total if total is not None else len(tasks), items=tasks)

    async def _list_page(
        self,
        *,
        status: ArkTaskStatus | None = None,
        task_ids: Sequence[str] = (),
        model: str | None = None,
        page_num: int = 1,
        page_size: int = 20,
    ) -> tuple[list[object], int | None, str | None]:
        """One list call's raw items, its `total` and its request id; items are parsed by the caller."""
        if page_num < 1 or page_size < 1:
            raise ValueError("page_num and page_size start at 1")
        params: dict[str, str | Sequence[str]] = {"page_num": str(page_num), "page_size": str(page_size)}
        if status is not None:
            params["filter.status"] = status.value
        if task_ids:
            params["filter.task_ids"] = list(task_ids)
        if model is not None:
            params["filter.model"] = model
        reply = await self._api.read("GET", _TASKS_PATH, params=params)
        items = reply.payload.get("items")
        if items is None:
            items = []
        if not isinstance(items, list):
            raise ProviderProtocolError(
                "ModelArk listed tasks without an items list", request_id=reply.request_id
            )
        return items, int_field(reply.payload, "total"), reply.request_id

    async def delete_task(self, task_id: str) -> None:
        """One raw DELETE, never retried: cancels a queued task, *deletes* a finished task's record.

        Not retried because a repeat could land after the task finished and throw its record away; `cancel`
        is the safe way to stop a job.
        """
        await self._api.exchange("DELETE", _task_path(task_id))


def _task_path(task_id: str) -> str:
    # A task id is one path segment: escaping it keeps a strange id from reaching another endpoint.
    return f"{_TASKS_PATH}/{quote(task_id, safe='')}"


def _receipt(reply: Reply) -> SubmitReceipt:
    task_id = text_field(reply.payload, "id")
    if task_id is None:
        raise ProviderProtocolError("ModelArk accepted the task but sent no id", request_id=reply.request_id)
    return SubmitReceipt(provider_job_id=task_id, request_id=reply.request_id)
