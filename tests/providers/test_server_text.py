"""Server text reaches members only as a short plain sentence, and the log only bounded and scrubbed."""

from __future__ import annotations

import pytest

from bot.providers.server_text import (
    MAX_EXCERPT_CHARS,
    log_excerpt,
    member_reason,
    server_error_message,
)


@pytest.mark.parametrize(
    "text",
    [
        "Authorization: Bearer sk-live-123456",
        "invalid header 'Authorization: [redacted]'",  # even redacted, a sentence about credentials
        "Invalid token Bearer abcdef",
        "your api_key=abc123 is not valid",
        "key sk-abcdefgh rejected",
        "<html><body><h1>400 Bad Request</h1></body></html>",
        "<!DOCTYPE html>",
        '{"error": {"message": "bad"}}',
        '[{"loc": ["body", "prompt"], "msg": "field required"}]',
        "   \n\t ",
        "",
    ],
    ids=[
        "auth-header",
        "redacted-header",
        "bearer",
        "api-key-param",
        "key-shaped",
        "html",
        "doctype",
        "json-object",
        "json-list",
        "blank",
        "empty",
    ],
)
def test_markup_json_and_anything_credential_like_is_withheld_from_members(text: str) -> None:
    assert member_reason(text) is None


def test_a_plain_sentence_is_shown_on_one_line_and_cut_when_long() -> None:
    assert member_reason("duration must be\n  between 4 and 12") == "duration must be between 4 and 12"
    long = member_reason("word " * 100)
    assert long is not None and len(long) <= 200 and long.endswith("…")


def test_a_link_in_a_sentence_loses_its_query_string() -> None:
    reason = member_reason("could not fetch https://cdn.example/a.png?sig=abc&ex=1 (404)")
    assert reason == "could not fetch https://cdn.example/a.png (404)"


def test_the_log_excerpt_scrubs_credentials_and_signed_links_and_is_bounded() -> None:
    excerpt = log_excerpt(
        "Authorization: Bearer sk-one23456\nX-Api-Key: two\ntoken=three https://x.example/v.mp4?sig=four "
        + "y" * 1000,
        redact=lambda text: text.replace("two", "[redacted]"),
    )
    for secret in ("sk-one23456", "two", "three", "four"):
        assert secret not in excerpt
    assert "\n" not in excerpt
    assert len(excerpt) <= MAX_EXCERPT_CHARS and excerpt.endswith("…")


def test_an_error_message_is_the_providers_sentence_or_only_the_status() -> None:
    assert server_error_message("Acme", 400, "bad ratio", str) == ("Acme: bad ratio", None)
    message, detail = server_error_message("Acme", 400, "<html>Authorization: Bearer sk-secret99</html>", str)
    assert message == "Acme answered HTTP 400 (the details are in the bot's log)"
    assert detail is not None and "sk-secret99" not in detail and "[redacted]" in detail
    assert server_error_message("Acme", 502, None, str) == (
        "Acme answered HTTP 502 without an error message",
        None,
    )
