"""Provider errors and failed jobs are explained to members in plain words, never in the server's raw text."""

from __future__ import annotations

import logging

import pytest

from bot.jobs.explain import describe_failure, explain_submit_error
from bot.providers.errors import (
    ProviderAuthError,
    ProviderError,
    ProviderInvalidRequestError,
    ProviderProtocolError,
    SubmitOutcomeUnknownError,
)

HOSTILE = '<html><body>Authorization: Bearer sk-secret-77 {"a": 1}</body></html>'


def test_a_refusal_in_plain_words_is_passed_on() -> None:
    explanation = explain_submit_error(ProviderInvalidRequestError("Novita: duration must be in [4, 12]"))

    assert explanation.code == "provider_rejected"
    assert explanation.message == "The video service refused the request: Novita: duration must be in [4, 12]"


@pytest.mark.parametrize(
    "error",
    [
        ProviderInvalidRequestError(HOSTILE, status_code=400),
        ProviderError(HOSTILE, status_code=418),
        ProviderProtocolError(HOSTILE),
    ],
    ids=["invalid-request", "base", "protocol"],
)
def test_an_error_message_holding_server_text_is_summarised_and_logged_scrubbed(
    error: ProviderError, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="bot.jobs.explain"):
        message = explain_submit_error(error).message

    for leaked in ("Bearer", "sk-secret-77", "<html", "{"):
        assert leaked not in message
        assert "sk-secret-77" not in caplog.text
    assert "the details are in the bot's log" in message
    if error.status_code is not None:
        assert f"HTTP {error.status_code}" in message
    assert "Authorization: [redacted]" in caplog.text


def test_errors_with_a_fixed_sentence_never_use_the_servers_text() -> None:
    for error in (ProviderAuthError(HOSTILE), SubmitOutcomeUnknownError(HOSTILE)):
        message = explain_submit_error(error).message
        assert "Bearer" not in message and "<html" not in message


def test_a_documented_failure_code_gets_its_sentence() -> None:
    message = describe_failure("OutputVideoSensitiveContentDetected", HOSTILE)

    assert message.startswith("The video was made, but the video service's safety filter withheld it.")


def test_a_plain_failure_reason_is_passed_on() -> None:
    assert describe_failure(None, "The prompt is too long.") == "The prompt is too long."


def test_a_failure_reason_holding_markup_or_a_token_is_summarised_by_its_code(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="bot.jobs.explain"):
        with_code = describe_failure("E_UPSTREAM", HOSTILE)
        without_code = describe_failure(None, HOSTILE)

    assert with_code == "The video service reported error E_UPSTREAM (the details are in the bot's log)."
    assert (
        without_code == "The video service reported a failure (the details are in the bot's log). Try again."
    )
    assert "sk-secret-77" not in caplog.text and "[redacted]" in caplog.text


def test_a_failure_without_words_says_so() -> None:
    assert describe_failure("E42", None) == "The video service reported error E42."
    assert describe_failure(None, None).startswith("The video service reported a failure without saying why.")
