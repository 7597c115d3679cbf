"""What a provider's server said, made fit for a member's eyes or for the log.

A provider's error text is written for its developers, not for our members, and it is not always the
provider's: a proxy may answer with an HTML page, a gateway may echo the request's headers back (with the
API key), an SDK may dump a JSON document. So server text reaches people two ways:

- `member_reason`: a short plain sentence, or nothing. Text that looks like markup, JSON or anything
  credential-like (an Authorization header, a Bearer token, an `sk-` key, `api_key=`) is withheld whole,
  even where a redaction could be made: half a header still tells a member how the bot talks to its
  provider, and a redacted sentence reads as a leak.
- `log_excerpt`: a bounded, single-line excerpt for the bot's log, with credentials and URL query strings
  (signed links) replaced by a marker.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final

#: The longest server sentence shown to a member; a longer plain sentence is cut with an ellipsis.
MAX_REASON_CHARS: Final = 200
#: The longest excerpt of a server's answer kept in a log line.
MAX_EXCERPT_CHARS: Final = 300
REDACTED: Final = "[redacted]"

_WHITESPACE = re.compile(r"\s+")
# `Bearer <token>`, `Basic <credentials>`, `Authorization: [<scheme>] <credentials>`.
_AUTH_SCHEME = re.compile(r"(?i)\b(bearer|basic)\s+[^\s'\"<>,;]+")
_AUTH_HEADER = re.compile(
    r"(?i)\b(authori[sz]ation|x-api-key|api-key)(\s*[:=]\s*)(?:[A-Za-z]+\s+)?[^\s'\"<>,;]+"
)
# `api_key=…`, `"token": "…"`, `secret: …` as query parameters, JSON members or prose.
_ASSIGNED_SECRET = re.compile(
    r"(?i)\b(api[_-]?key|access[_-]?token|token|secret|password|signature)([\"']?\s*[:=]\s*[\"']?)"
    r"[^\s\"'<>,;&]+"
)
# Key shapes providers hand out (OpenAI-style `sk-…`, Volcengine `ak-…`), whatever surrounds them.
_KEY_SHAPED = re.compile(r"\b(?:sk|pk|rk|ak)-[A-Za-z0-9_\-]{4,}")
# A URL's query string: signed links carry their signature there.
_URL_QUERY = re.compile(r"(https?://[^\s?#'\"<>]+)\?[^\s'\"<>]*")

# What makes text unfit for a member, whether or not a redaction could be made.
_MARKUP = re.compile(r"<\s*[A-Za-z!/?]")
_JSON_LIKE = re.compile(r"[{\[]\s*[\"'{\[]|\"\s*:")
_CREDENTIAL_WORDS = re.compile(
    r"(?i)authori[sz]ation|\bbearer\b|\bbasic\s+[A-Za-z0-9+/=]{8,}|api[\s_-]?key|x-api-key|"
    r"access[_-]?token|\bsecret\b|\bpassword\b|" + _KEY_SHAPED.pattern
)


def member_reason(text: str | None, *, max_chars: int = MAX_REASON_CHARS) -> str | None:
    """`text` as one short line a member may read, or None when it must not be shown.

    Returned text is single-line, without URL query strings, and at most `max_chars` long (cut with "…").
    None for blank text, markup (an HTML page), JSON, and anything mentioning credentials.
    """
    if text is None:
        return None
    line = _WHITESPACE.sub(" ", text).strip()
    if not line or not line.isprintable():
        return None
    if _MARKUP.search(line) or _JSON_LIKE.search(line) or _CREDENTIAL_WORDS.search(line):
        return None
    if REDACTED in line:  # a secret was scrubbed from it upstream: the sentence was about credentials
        return None
    line = _URL_QUERY.sub(r"\1", line)
    return line if len(line) <= max_chars else line[: max_chars - 1].rstrip() + "…"


def log_excerpt(text: str, redact: Callable[[str], str] = lambda text: text) -> str:
    """A single-line excerpt of `text` for the log: at most `MAX_EXCERPT_CHARS`, credentials scrubbed.

    `redact` removes what only the caller knows (its own API key) before the generic patterns run.
    """
    line = _WHITESPACE.sub(" ", redact(text)).strip()
    line = _AUTH_HEADER.sub(rf"\1\2{REDACTED}", line)
    line = _AUTH_SCHEME.sub(rf"\1 {REDACTED}", line)
    line = _ASSIGNED_SECRET.sub(rf"\1\2{REDACTED}", line)
    line = _KEY_SHAPED.sub(REDACTED, line)
    line = _URL_QUERY.sub(rf"\1?{REDACTED}", line)
    return line if len(line) <= MAX_EXCERPT_CHARS else line[: MAX_EXCERPT_CHARS - 1] + "…"


def server_error_message(
    label: str, status_code: int, server_text: str | None, redact: Callable[[str], str]
) -> tuple[str, str | None]:
    """The message and the log detail of a `ProviderError` built from a server's answer.

    The message is "<label>: <reason>" when the server's text is a plain sentence (see `member_reason`),
    else it names only the HTTP status. The detail is the log excerpt of the server's text, or None when
    the message already holds all of it.
    """
    if server_text is None or not server_text.strip():
        return f"{label} answered HTTP {status_code} without an error message", None
    detail = log_excerpt(server_text, redact)
    reason = member_reason(redact(server_text))
    if reason is None:
        return f"{label} answered HTTP {status_code} (the details are in the bot's log)", detail
    return f"{label}: {reason}", (None if reason == detail else detail)
