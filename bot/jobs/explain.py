"""Provider errors and job endings in plain words a member can act on."""

from __future__ import annotations

from dataclasses import dataclass

from bot.providers.errors import (
    ProviderAuthError,
    ProviderBalanceError,
    ProviderContentRejectedError,
    ProviderError,
    ProviderInvalidRequestError,
    ProviderNotFoundError,
    ProviderPermissionError,
    ProviderRateLimitError,
    ProviderServerError,
    ProviderTransportError,
    SubmitOutcomeUnknownError,
)


@dataclass(frozen=True)
class Explanation:
    """A short machine code for the store, and the sentence for the member."""

    code: str
    message: str


def explain_submit_error(error: ProviderError) -> Explanation:
    """Why a submit did not start a job, and what to do about it."""
    match error:
        case SubmitOutcomeUnknownError():
            return Explanation(
                "submit_unknown",
                "The video service did not confirm whether it accepted the job. To make sure you are not "
                "charged twice it will not be sent again automatically; check /jobs later or try again.",
            )
        case ProviderContentRejectedError():
            return Explanation(
                "content_rejected",
                "The video service's safety filter refused this prompt or image. "
                "Try a different image or wording.",
            )
        case ProviderInvalidRequestError():
            return Explanation("provider_rejected", f"The video service refused the request: {error.message}")
        case ProviderAuthError():
            return Explanation(
                "provider_auth",
                "The bot's video service account did not accept its API key. "
                "The bot's owner needs to check its configuration.",
            )
        case ProviderBalanceError():
            return Explanation(
                "provider_balance",
                "The bot's video service account is out of credit. Ask the bot's owner to top it up.",
            )
        case ProviderPermissionError():
            return Explanation(
                "provider_permission",
                "The bot's video service account may not use this model. Try another model.",
            )
        case ProviderRateLimitError():
            return Explanation(
                "provider_busy",
                "The video service is busy right now (rate limited). Try again in a minute.",
            )
        case ProviderNotFoundError():
            return Explanation(
                "provider_not_found", f"The video service does not know this model: {error.message}"
            )
        case ProviderServerError() | ProviderTransportError():
            return Explanation(
                "provider_unavailable",
                "The video service could not be reached. Try again in a few minutes.",
            )
        case _:
            return Explanation("provider_error", f"The video service refused the request: {error.message}")


def describe_failure(error_code: str | None, error_message: str | None) -> str:
    """A failed job's reason for the member, from what the provider said."""
    if error_message:
        return error_message
    if error_code:
        return f"The video service reported error {error_code}."
    return "The video service reported a failure without saying why. Try again, perhaps with another image."
