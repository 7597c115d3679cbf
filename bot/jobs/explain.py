"""Provider errors and job endings in plain words a member can act on.

What a provider's server said reaches a member only as a short plain sentence (`member_reason`); an HTML
page, a JSON dump or anything mentioning credentials is summarised by the HTTP status and the kind of error,
and the server's words go to the log as a bounded, scrubbed excerpt.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bot.domain.stored_text import read_back
from bot.domain.text import Text
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
from bot.providers.server_text import log_excerpt, member_reason

_log = logging.getLogger(__name__)

# Messages the bot writes itself can be longer than a server sentence may be; still bounded.
_MAX_ERROR_MESSAGE_CHARS = 500
_MAX_CODE_CHARS = 64


@dataclass(frozen=True)
class Explanation:
    """A short machine code for the store, and the sentence for the member."""

    code: str
    text: Text

    @property
    def message(self) -> str:
        """The sentence in English, as the job stores it."""
        return str(self.text)


def explain_submit_error(error: ProviderError) -> Explanation:
    """Why a submit did not start a job, and what to do about it."""
    match error:
        case SubmitOutcomeUnknownError():
            return Explanation(
                "submit_unknown",
                Text(
                    "The video service did not confirm whether it accepted the job. To make sure you are not "
                    "charged twice it will not be sent again automatically; check /jobs later or try again."
                ),
            )
        case ProviderContentRejectedError():
            return Explanation(
                "content_rejected",
                Text(
                    "The video service's safety filter refused this prompt or image. "
                    "Try a different image or wording."
                ),
            )
        case ProviderInvalidRequestError():
            return Explanation(
                "provider_rejected",
                Text("The video service refused the request: {reason}", reason=_error_summary(error)),
            )
        case ProviderAuthError():
            return Explanation(
                "provider_auth",
                Text(
                    "The bot's video service account did not accept its API key. "
                    "The bot's owner needs to check its configuration."
                ),
            )
        case ProviderBalanceError():
            return Explanation(
                "provider_balance",
                Text("The bot's video service account is out of credit. Ask the bot's owner to top it up."),
            )
        case ProviderModelUnavailableError():
            return Explanation(
                "model_unavailable",
                Text(
                    "This model is not activated on the bot's video service account. Try another model, "
                    "or ask the bot's owner to activate it."
                ),
            )
        case ProviderPermissionError():
            return Explanation(
                "provider_permission",
                Text("The bot's video service account may not use this model. Try another model."),
            )
        case ProviderRateLimitError():
            return Explanation(
                "provider_busy",
                Text("The video service is busy right now (rate limited). Try again in a minute."),
            )
        case ProviderNotFoundError():
            return Explanation(
                "provider_not_found",
                Text("The video service does not know this model: {reason}", reason=_error_summary(error)),
            )
        case ProviderServerError() | ProviderTransportError():
            return Explanation(
                "provider_unavailable",
                Text("The video service could not be reached. Try again in a few minutes."),
            )
        case _:
            return Explanation(
                "provider_error",
                Text("The video service refused the request: {reason}", reason=_error_summary(error)),
            )


#: Failure codes providers put on a failed job, in words a member can act on. ModelArk's codes are
#: documented; a code containing one of these fragments gets the sentence (checked in this order).
_FAILURE_EXPLANATIONS: tuple[tuple[str, Text], ...] = (
    (
        "PrivacyInformation",
        Text(
            "The video service refused the image because it appears to show a real person's face. "
            "Try an image without a recognisable real person."
        ),
    ),
    (
        "OutputVideoSensitiveContent",
        Text(
            "The video was made, but the video service's safety filter withheld it. Try a different prompt."
        ),
    ),
    (
        "OutputAudioSensitiveContent",
        Text(
            "The video service's safety filter withheld the generated sound. Try again with audio off, or "
            "another prompt."
        ),
    ),
    (
        "SensitiveContentDetected",
        Text(
            "The video service's safety filter refused this prompt or media. "
            "Try a different image or wording."
        ),
    ),
    (
        "AccountOverdue",
        Text("The bot's video service account is out of credit. Ask the bot's owner to top it up."),
    ),
    (
        "ModelNotOpen",
        Text("This model is not activated on the bot's video service account. Try another model."),
    ),
    (
        "RateLimitExceeded",
        Text("The video service was too busy to run this job. Try again in a few minutes."),
    ),
    ("QuotaExceeded", Text("The bot's video service account has used up its quota. Try again later.")),
    ("InternalServiceError", Text("The video service hit an internal error. Try again.")),
)


def _error_summary(error: ProviderError) -> Text | str:
    """`error.message` when it is fit for a member (it nearly always is), else its HTTP status alone.

    The provider clients already keep server text out of `message` unless it is a plain sentence; this is
    the last check before a member sees it, for an error built anywhere else.
    """
    reason = member_reason(error.message, max_chars=_MAX_ERROR_MESSAGE_CHARS)
    if reason is not None:
        return reason
    _log.info("provider error withheld from the member: %s", log_excerpt(str(error)))
    if error.status_code is not None:
        return Text(
            "it answered HTTP {status} (the details are in the bot's log).", status=str(error.status_code)
        )
    return Text("it gave an error the bot cannot repeat (the details are in the bot's log).")


def describe_failure(error_code: str | None, error_message: str | None) -> str:
    """A failed job's reason for the member, in English as the job stores it (see `failure_text`)."""
    return str(failure_text(error_code, error_message))


def failure_text(error_code: str | None, error_message: str | None) -> Text:
    """A failed job's reason for the member, from what the provider said.

    A documented failure code gets its own sentence; otherwise the provider's message when it is a short
    plain sentence (said as it is: the provider's words are in no catalogue); otherwise (an HTML page, a
    JSON dump, credentials) only the code, and the message is logged as a scrubbed excerpt.
    """
    if error_code:
        for fragment, explanation in _FAILURE_EXPLANATIONS:
            if fragment.lower() in error_code.lower():
                return explanation
    code = member_reason(error_code, max_chars=_MAX_CODE_CHARS)
    if error_message:
        reason = member_reason(error_message, max_chars=_MAX_ERROR_MESSAGE_CHARS)
        if reason is not None:
            return Text.verbatim(reason)
        _log.info("provider failure text withheld from the member: %s", log_excerpt(error_message))
        if code is None:
            return Text("The video service reported a failure (the details are in the bot's log). Try again.")
        return Text("The video service reported error {code} (the details are in the bot's log).", code=code)
    if code:
        return Text("The video service reported error {code}.", code=code)
    return Text(
        "The video service reported a failure without saying why. Try again, perhaps with another image."
    )


#: The sentences with values that this module stores as a job's `error_message`, for `stored_reason`.
STORED_TEMPLATES = (
    "The video service refused the request: {reason}",
    "The video service does not know this model: {reason}",
    "The video service reported error {code} (the details are in the bot's log).",
    "The video service reported error {code}.",
)
#: What a `{reason}` above may be besides the provider's own words.
STORED_PARTS = (
    "it answered HTTP {status} (the details are in the bot's log).",
    "it gave an error the bot cannot repeat (the details are in the bot's log).",
)


def stored_reason(error_message: str) -> Text:
    """A job's stored `error_message` as a `Text` to say in the member's language: one of this module's
    sentences with its values when it is one; else the sentence as a catalogue id (every sentence without
    values that the bot stores is in the catalogues; the provider's own words stay as they are)."""
    return read_back(error_message, STORED_TEMPLATES, parts=STORED_PARTS)
