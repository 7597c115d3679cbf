"""One error hierarchy for every provider client.

Each error keeps what a person debugging needs (HTTP status, the provider's own code, the request id, a
bounded and scrubbed excerpt of what the server said) and what the caller must decide on (`retryable`,
`retry_after_s`). A failed *job* is not an error: it is a `ProviderStatus` with state FAILED.

`message` may be shown to a member: it is written by the bot, or holds the server's text only when that is a
short plain sentence (see `bot.providers.server_text`). `detail` is for the log only; `str(error)` includes
it, so log the error itself and show members `message` (or `bot.jobs.explain`'s summary).
"""

from __future__ import annotations


class ProviderError(Exception):
    """Base of every error raised by a provider client."""

    #: Whether repeating an idempotent call may succeed.
    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        provider_code: str | None = None,
        request_id: str | None = None,
        retry_after_s: float | None = None,
        detail: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        #: What the server said, as a scrubbed single-line excerpt for the log; never shown to members.
        self.detail = detail
        self.status_code = status_code
        self.provider_code = provider_code
        self.request_id = request_id
        self.retry_after_s = retry_after_s

    def __str__(self) -> str:
        details = [
            f"{name}={value}"
            for name, value in (
                ("status", self.status_code),
                ("code", self.provider_code),
                ("request_id", self.request_id),
            )
            if value is not None
        ]
        text = f"{self.message} ({', '.join(details)})" if details else self.message
        return f"{text}; the server said: {self.detail}" if self.detail else text


class ProviderAuthError(ProviderError):
    """The API key is missing, wrong, expired, or the account is inactive."""


class ProviderBalanceError(ProviderError):
    """The provider account has run out of credit."""


class ProviderPermissionError(ProviderError):
    """The key may not touch this request or model (another user's request, model not activated)."""


class ProviderModelUnavailableError(ProviderPermissionError):
    """The model exists but is not activated (or not offered) for this account or region."""


class ProviderNotFoundError(ProviderError):
    """The request id or model is unknown to the provider, or has expired there."""


class ProviderInvalidRequestError(ProviderError):
    """The provider refused the request's contents (schema mismatch, bad model id, bad option)."""


class ProviderContentRejectedError(ProviderInvalidRequestError):
    """The provider's content moderation refused the prompt or an image."""


class ProviderRateLimitError(ProviderError):
    """Too many requests; `retry_after_s` says when to try again, if the provider said."""

    retryable = True


class ProviderServerError(ProviderError):
    """The provider answered with a 5xx."""

    retryable = True


class ProviderTransportError(ProviderError):
    """The request failed on the network.

    `reached_server` is False only when the request provably never left (connection refused, DNS failure):
    only then may a paid submit be sent again.
    """

    retryable = True

    def __init__(self, message: str, *, reached_server: bool, **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.reached_server = reached_server


class ProviderProtocolError(ProviderError):
    """The provider answered with something that does not follow its documented contract."""

    retryable = True


class SubmitOutcomeUnknownError(ProviderError):
    """A submit may have reached the provider but no answer came back: it must not be sent again."""
