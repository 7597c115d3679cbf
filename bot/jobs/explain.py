"""Provider errors and job endings in plain words a member can act on."""

from __future__ import annotations

from dataclasses import dataclass

from bot.providers.errors import (
    ProviderAuthError,
    ProviderBalanceError,
    ProviderContentRejectedError,
    ProviderError,
    ProviderInvalidRequestError,
    ProviderModelUnavailableError,
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
        case ProviderModelUnavailableError():
            return Explanation(
                "model_unavailable",
                "This model is not activated on the bot's video service account. Try another model, or ask "
                "the bot's owner to activate it.",
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


#: Failure codes providers put on a failed job, in words a member can act on. ModelArk's codes are
#: documented; a code containing one of these fragments gets the sentence (checked in this order).
_FAILURE_EXPLANATIONS: tuple[tuple[str, str], ...] = (
    (
        "PrivacyInformation",
        "The video service refused the image because it appears to show a real person's face. Try an image "
        "without a recognisable real person.",
    ),
    (
        "OutputVideoSensitiveContent",
        "The video was made, but the video service's safety filter withheld it. Try a different prompt.",
    ),
    (
        "OutputAudioSensitiveContent",
        "The video service's safety filter withheld the generated sound. Try again with audio off, or "
        "another prompt.",
    ),
    (
        "SensitiveContentDetected",
        "The video service's safety filter refused this prompt or media. Try a different image or wording.",
    ),
    ("AccountOverdue", "The bot's video service account is out of credit. Ask the bot's owner to top it up."),
    ("ModelNotOpen", "This model is not activated on the bot's video service account. Try another model."),
    ("RateLimitExceeded", "The video service was too busy to run this job. Try again in a few minutes."),
    ("QuotaExceeded", "The bot's video service account has used up its quota. Try again later."),
    ("InternalServiceError", "The video service hit an internal error. Try again."),
)


def describe_failure(error_code: str | None, error_message: str | None) -> str:
    """A failed job's reason for the member, from what the provider said."""
    if error_code:
        for fragment, explanation in _FAILURE_EXPLANATIONS:
            if fragment.lower() in error_code.lower():
                return explanation
    if error_message:
        return error_message
    if error_code:
        return f"The video service reported error {error_code}."
    return "The video service reported a failure without saying why. Try again, perhaps with another image."
