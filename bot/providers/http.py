"""The HTTP core every provider client shares: one JSON exchange, retried reads, a paid submit sent once.

A provider client supplies only what differs between providers: its name for messages, and a pure
`ErrorParser` that turns an HTTP answer into the typed `ProviderError` it stands for. `JsonApi` does the rest,
following `bot.providers.retry`:

- `read`: an idempotent exchange (a status GET, a cancel), retried with jittered exponential backoff while
  the error is retryable and attempts remain, honouring `Retry-After`.
- `submit`: a paid request, sent again only when it provably created no job (a 429, or a connection that
  never opened). When it may have arrived but no usable answer came back (a 5xx, a read timeout, a dropped
  connection, an unreadable 2xx), it raises `SubmitOutcomeUnknownError`: the caller must not send it again.
- `exchange`: exactly one request, no retry, for callers that decide themselves (ModelArk's cancel).

The API key goes only into the Authorization header. It never reaches a log line or an exception message:
transport errors and server text are scrubbed of it, in case a proxy echoes headers back. Server text
reaches an error's `message` (which members may see) only as a short plain sentence; the rest goes to its
`detail`, a bounded scrubbed excerpt for the log (see `bot.providers.server_text`).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Protocol, TypeVar

import httpx
from pydantic import SecretStr

from bot import metrics
from bot.providers.errors import (
    ProviderAuthError,
    ProviderBalanceError,
    ProviderError,
    ProviderInvalidRequestError,
    ProviderNotFoundError,
    ProviderPermissionError,
    ProviderProtocolError,
    ProviderRateLimitError,
    ProviderServerError,
    ProviderTransportError,
    SubmitOutcomeUnknownError,
)
from bot.providers.retry import (
    RetryPolicy,
    backoff_delay,
    may_retry_read,
    may_retry_submit,
    parse_retry_after,
)
from bot.providers.server_text import REDACTED, log_excerpt

_log = logging.getLogger(__name__)

#: What an HTTP status means when the body names nothing more specific; each provider adjusts a few.
_ERRORS_BY_STATUS: Final[Mapping[int, type[ProviderError]]] = {
    400: ProviderInvalidRequestError,
    401: ProviderAuthError,
    402: ProviderBalanceError,
    403: ProviderPermissionError,
    404: ProviderNotFoundError,
    422: ProviderInvalidRequestError,
    429: ProviderRateLimitError,
}


def error_type_for_status(status_code: int) -> type[ProviderError]:
    """The error an HTTP status stands for by itself (5xx: the server's; anything else: the base)."""
    if 500 <= status_code < 600:
        return ProviderServerError
    return _ERRORS_BY_STATUS.get(status_code, ProviderError)


DEFAULT_RETRY_POLICY: Final = RetryPolicy()
#: Server-supplied text is shown to people; a page-long message helps nobody.
MAX_MESSAGE_CHARS: Final = 500

_T = TypeVar("_T")

#: Query parameters; a sequence value repeats the name (ModelArk's `filter.task_ids`).
QueryParams = Mapping[str, str | Sequence[str]]


class ErrorParser(Protocol):
    """A provider's pure rule: an HTTP answer → the error it stands for, or None when it is a success.

    `payload` is the decoded JSON body, or None when the body was not JSON (an HTML error page). `redact`
    scrubs secrets from server text before it is kept in a message.
    """

    def __call__(
        self,
        status_code: int,
        payload: object,
        *,
        request_id: str | None,
        retry_after_s: float | None,
        redact: Callable[[str], str],
    ) -> ProviderError | None:
        """The error this answer stands for, or None."""
        ...


@dataclass(frozen=True)
class Reply:
    """A successful answer: its JSON object and the HTTP request id, for support tickets."""

    payload: Mapping[str, object]
    request_id: str | None


class JsonApi:
    """A Bearer-authenticated JSON API on a shared `httpx.AsyncClient` owned by the caller.

    `provider_label` names the provider in messages ("RunComfy", "Novita", "ModelArk"). `request_id_headers`
    are the response headers that may carry the server's request id, first match wins.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str,
        api_key: SecretStr,
        provider_label: str,
        error_parser: ErrorParser,
        retry: RetryPolicy = DEFAULT_RETRY_POLICY,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.time,
        request_id_headers: Sequence[str] = ("x-request-id",),
    ) -> None:
        if not api_key.get_secret_value():
            raise ValueError(f"the {provider_label} API key is empty")
        self._http = http
        self._base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._label = provider_label
        self._error_parser = error_parser
        self._retry = retry
        self._sleep = sleep
        self._rng = rng
        self._clock = clock
        self._request_id_headers = tuple(request_id_headers)

    @property
    def base_url(self) -> str:
        """The base URL, without a trailing slash."""
        return self._base_url

    @property
    def label(self) -> str:
        """The provider's name as messages show it."""
        return self._label

    @property
    def retry(self) -> RetryPolicy:
        """The retry policy of reads and submits."""
        return self._retry

    async def read(
        self,
        method: str,
        path: str,
        *,
        params: QueryParams | None = None,
        error_parser: ErrorParser | None = None,
    ) -> Reply:
        """An idempotent exchange, retried with backoff while the error allows and attempts remain."""
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self.exchange(method, path, params=params, error_parser=error_parser)
            except ProviderError as error:
                if not may_retry_read(error, attempt, self._retry):
                    raise
                await self.wait_before_retry(f"{method} {path}", error, attempt)

    async def submit(
        self,
        method: str,
        path: str,
        body: Mapping[str, object],
        *,
        receipt: Callable[[Reply], _T],
        error_parser: ErrorParser | None = None,
    ) -> _T:
        """Send a paid request; sent again only after a 429 or a connection that never opened.

        `receipt` reads the answer (the job id); when it raises ProviderProtocolError the job probably
        exists, so that too ends as SubmitOutcomeUnknownError rather than as a resend.
        """
        attempt = 0
        while True:
            attempt += 1
            try:
                reply = await self.exchange(method, path, json_body=body, error_parser=error_parser)
                return receipt(reply)
            except ProviderError as error:
                if may_retry_submit(error, attempt, self._retry):
                    await self.wait_before_retry("submit", error, attempt)
                    continue
                if may_have_created_job(error):
                    raise SubmitOutcomeUnknownError(
                        f"The submit may have reached {self._label}, but no usable answer came back "
                        f"({error.message}); it will not be sent again.",
                        status_code=error.status_code,
                        provider_code=error.provider_code,
                        request_id=error.request_id,
                        detail=error.detail,
                    ) from error
                raise

    async def exchange(
        self,
        method: str,
        path: str,
        *,
        json_body: Mapping[str, object] | None = None,
        params: QueryParams | None = None,
        error_parser: ErrorParser | None = None,
    ) -> Reply:
        """One HTTP request → its JSON object, or the typed error it stands for. Never retried."""
        started = time.monotonic()
        try:
            response = await self._send(method, path, json_body=json_body, params=params)
        except ProviderError:
            metrics.provider_request(self._label.lower(), method, None, time.monotonic() - started)
            raise
        elapsed = time.monotonic() - started
        metrics.provider_request(self._label.lower(), method, response.status_code, elapsed)
        request_id = self._request_id(response)
        payload = json_or_none(response.content)
        parse = error_parser if error_parser is not None else self._error_parser
        error = parse(
            response.status_code,
            payload,
            request_id=request_id,
            retry_after_s=parse_retry_after(response.headers.get("retry-after"), now=self._clock),
            redact=self.redact,
        )
        if error is not None:
            if error.detail is None and response.content:
                # The parser kept none of the body (an HTML page, a JSON document without a message, or a
                # message it shows whole): the log gets a bounded, scrubbed excerpt of the body itself.
                error.detail = log_excerpt(response.text, self.redact)
            raise error
        if not isinstance(payload, dict):
            raise ProviderProtocolError(
                f"{self._label} answered HTTP {response.status_code} with a body that is not a JSON object",
                status_code=response.status_code,
                request_id=request_id,
            )
        return Reply(payload=payload, request_id=request_id)

    async def wait_before_retry(self, what: str, error: ProviderError, attempt: int) -> None:
        """Sleep the backoff (or the server's Retry-After, capped) after `attempt` failed attempts."""
        delay = backoff_delay(self._retry, attempt, rng=self._rng, retry_after_s=error.retry_after_s)
        _log.info(
            "%s %s failed on attempt %d (%s); retrying in %.2f s", self._label, what, attempt, error, delay
        )
        await self._sleep(delay)

    def redact(self, text: str) -> str:
        """`text` with the API key replaced by a marker."""
        return text.replace(self._api_key.get_secret_value(), REDACTED)

    def _request_id(self, response: httpx.Response) -> str | None:
        for header in self._request_id_headers:
            value: str | None = response.headers.get(header)
            if value:
                return value
        return None

    async def _send(
        self,
        method: str,
        path: str,
        *,
        json_body: Mapping[str, object] | None,
        params: QueryParams | None,
    ) -> httpx.Response:
        headers = {
            "Authorization": f"Bearer {self._api_key.get_secret_value()}",
            "Accept": "application/json",
        }
        try:
            return await self._http.request(
                method, f"{self._base_url}{path}", json=json_body, params=params, headers=headers
            )
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as error:
            # Nothing was written to a server: the request provably never arrived.
            raise ProviderTransportError(
                f"Could not connect to {self._label} ({self._describe(error)})", reached_server=False
            ) from error
        except httpx.UnsupportedProtocol as error:
            raise ProviderError(
                f"The {self._label} base URL cannot be used ({self._describe(error)})"
            ) from error
        except httpx.RequestError as error:
            # Read timeouts, dropped connections, broken responses: the server may have acted on it.
            detail = self._describe(error)
            raise ProviderTransportError(
                f"The connection to {self._label} failed after the request was sent ({detail})",
                reached_server=True,
            ) from error

    def _describe(self, error: Exception) -> str:
        detail = str(error)
        return self.redact(f"{type(error).__name__}: {detail}" if detail else type(error).__name__)


def may_have_created_job(error: ProviderError) -> bool:
    """Whether a failed submit may still have created a (paid) job at the provider."""
    if isinstance(error, ProviderTransportError):
        return error.reached_server
    # A 5xx may come after the job was created; an unreadable 2xx probably means it was.
    return isinstance(error, ProviderServerError | ProviderProtocolError)


def json_or_none(content: bytes) -> object:
    """The decoded JSON body, or None when it is empty or not JSON (an HTML error page)."""
    if not content:
        return None
    try:
        return json.loads(content)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError are both ValueErrors
        return None


def clip(text: str) -> str:
    """`text` cut to `MAX_MESSAGE_CHARS`, marked with an ellipsis when cut."""
    return text if len(text) <= MAX_MESSAGE_CHARS else text[: MAX_MESSAGE_CHARS - 1] + "…"


def text_field(payload: object, *keys: str) -> str | None:
    """The first non-blank string among `payload[key]` for `keys`, stripped; None when there is none."""
    if not isinstance(payload, Mapping):
        return None
    for key in keys:
        value = payload.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def int_field(payload: object, key: str) -> int | None:
    """`payload[key]` when it is an integer (not a bool), else None."""
    if not isinstance(payload, Mapping):
        return None
    value = payload.get(key)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return None


def data_uri(data: bytes, mime_type: str) -> str:
    """`data:<mime>;base64,<data>`, the inline form Novita and ModelArk take images in."""
    return f"data:{mime_type};base64,{base64.b64encode(data).decode('ascii')}"
