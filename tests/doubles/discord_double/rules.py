"""Discord's message rules as the double enforces them (limits, empty messages, uploads, mentions)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from typing import Any

from .components import message_component_errors
from .model import DiscordAPIError, MessageFlags, UploadedFile, field_error, invalid_form_body

MAX_CONTENT = 2000
MAX_EMBEDS = 10
MAX_FILES = 10
MAX_EMBED_TOTAL = 6000
EMBED_TITLE = 256
EMBED_DESCRIPTION = 4096
EMBED_FIELDS = 25
EMBED_FIELD_NAME = 256
EMBED_FIELD_VALUE = 1024
EMBED_FOOTER = 2048
EMBED_AUTHOR = 256
THREAD_NAME_MAX = 100
ARCHIVE_DURATIONS = frozenset({60, 1440, 4320, 10080})
MAX_AUTOCOMPLETE_CHOICES = 25

_USER_MENTION = re.compile(r"<@!?(\d+)>")
_ROLE_MENTION = re.compile(r"<@&(\d+)>")


def _too_long(limit: int) -> dict[str, Any]:
    return field_error("BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")


def _check_length(errors: dict[str, Any], key: str, value: Any, limit: int) -> int:
    """Record an error under ``key`` when ``value`` is longer than ``limit``; return its length."""
    if value is None:
        return 0
    text = str(value)
    if len(text) > limit:
        errors[key] = _too_long(limit)
    return len(text)


def _embed_errors(embed: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Per-embed limit violations and the embed's character count (towards the 6000 total)."""
    errors: dict[str, Any] = {}
    total = _check_length(errors, "title", embed.get("title"), EMBED_TITLE)
    total += _check_length(errors, "description", embed.get("description"), EMBED_DESCRIPTION)
    footer = embed.get("footer") or {}
    footer_errors: dict[str, Any] = {}
    total += _check_length(footer_errors, "text", footer.get("text"), EMBED_FOOTER)
    if footer_errors:
        errors["footer"] = footer_errors
    author = embed.get("author") or {}
    author_errors: dict[str, Any] = {}
    total += _check_length(author_errors, "name", author.get("name"), EMBED_AUTHOR)
    if author_errors:
        errors["author"] = author_errors
    fields = embed.get("fields") or []
    fields_errors: dict[str, Any] = {}
    if len(fields) > EMBED_FIELDS:
        fields_errors.update(_too_long(EMBED_FIELDS))
    for index, embed_field in enumerate(fields):
        one: dict[str, Any] = {}
        total += _check_length(one, "name", embed_field.get("name"), EMBED_FIELD_NAME)
        total += _check_length(one, "value", embed_field.get("value"), EMBED_FIELD_VALUE)
        if one:
            fields_errors[str(index)] = one
    if fields_errors:
        errors["fields"] = fields_errors
    return errors, total


def validate_message(
    body: dict[str, Any],
    files: Sequence[UploadedFile],
    *,
    upload_limit: int,
    kept_attachments: int = 0,
    partial: bool = False,
) -> None:
    """Raise the DiscordAPIError Discord answers for an invalid message create/edit body.

    ``kept_attachments`` counts attachments an edit keeps; ``partial`` is for edits, where absent
    fields keep their old value (the caller checks emptiness of the result).
    """
    # Discord's edge rejects an oversize upload before it looks at the body.
    for uploaded in files:
        if len(uploaded.data) > upload_limit:
            raise DiscordAPIError(413, 40005, "Request entity too large")

    errors: dict[str, Any] = {}
    content = body.get("content")
    if content is not None and not isinstance(content, str):
        errors["content"] = field_error("STRING_TYPE_CONVERT", "Could not interpret value as string.")
    elif content is not None:
        _check_length(errors, "content", content, MAX_CONTENT)

    embeds = body.get("embeds") or []
    if len(embeds) > MAX_EMBEDS:
        errors["embeds"] = _too_long(MAX_EMBEDS)
    else:
        embed_errors: dict[str, Any] = {}
        total = 0
        for index, embed in enumerate(embeds):
            one, characters = _embed_errors(embed)
            total += characters
            if one:
                embed_errors[str(index)] = one
        if total > MAX_EMBED_TOTAL:
            embed_errors.update(
                field_error(
                    "MAX_EMBED_SIZE_EXCEEDED", f"Embed size exceeds maximum size of {MAX_EMBED_TOTAL}"
                )
            )
        if embed_errors:
            errors["embeds"] = embed_errors

    if len(files) + kept_attachments > MAX_FILES:
        errors["attachments"] = _too_long(MAX_FILES)
    if body.get("components") is not None:
        v2 = bool(int(body.get("flags") or 0) & MessageFlags.IS_COMPONENTS_V2)
        errors.update(message_component_errors(body["components"], v2=v2))
    if errors:
        raise invalid_form_body(errors)

    if not partial and is_empty_message(body, attachment_count=len(files) + kept_attachments):
        raise DiscordAPIError(400, 50006, "Cannot send an empty message")


def is_empty_message(body: dict[str, Any], *, attachment_count: int) -> bool:
    """Whether Discord would refuse this message as empty (whitespace-only content counts as empty)."""
    content = body.get("content") or ""
    return not (
        content.strip()
        or body.get("embeds")
        or attachment_count
        or body.get("sticker_ids")
        or body.get("components")
        or body.get("poll")
    )


def effective_mentions(
    content: str, allowed_mentions: dict[str, Any] | None
) -> tuple[bool, list[int], list[int]]:
    """Who Discord would ping: (@everyone/@here, user ids, role ids) given ``allowed_mentions``.

    Without ``allowed_mentions`` Discord parses every mention in the content.
    """
    typed_everyone = "@everyone" in content or "@here" in content
    typed_users = [int(match) for match in _USER_MENTION.findall(content)]
    typed_roles = [int(match) for match in _ROLE_MENTION.findall(content)]
    if allowed_mentions is None:
        return typed_everyone, typed_users, typed_roles
    parse = allowed_mentions.get("parse") or []
    listed_users = {int(user_id) for user_id in allowed_mentions.get("users") or []}
    listed_roles = {int(role_id) for role_id in allowed_mentions.get("roles") or []}
    everyone = typed_everyone and "everyone" in parse
    users = [user_id for user_id in typed_users if "users" in parse or user_id in listed_users]
    roles = [role_id for role_id in typed_roles if "roles" in parse or role_id in listed_roles]
    return everyone, users, roles


MAX_REACTIONS = 20
_CUSTOM_EMOJI = re.compile(r"^(?:a:)?([A-Za-z0-9_]{2,32}):(\d{17,20})$")
# Code points that may follow or join the pictographs of an emoji sequence: ZWJ, variation selectors,
# the combining keycap, skin tones are category Sk, and tag characters for subdivision flags.
_EMOJI_JOINERS = frozenset({0x200D, 0xFE0E, 0xFE0F, 0x20E3}) | frozenset(range(0xE0020, 0xE0080))
_KEYCAP_BASES = frozenset("0123456789#*")


def is_unicode_emoji(text: str) -> bool:
    """Whether ``text`` looks like one Unicode emoji (sequence), as a reaction route names it.

    Discord checks against its emoji list; the double accepts a short sequence of pictographs (category
    So/Sk) with joiners and variation selectors, or a keycap, and refuses plain text.
    """
    if not 1 <= len(text) <= 16:
        return False
    has_pictograph = False
    for index, char in enumerate(text):
        category = unicodedata.category(char)
        if category in ("So", "Sk"):
            has_pictograph = True
        elif ord(char) in _EMOJI_JOINERS:
            continue
        elif char in _KEYCAP_BASES and index == 0 and text.endswith("\u20e3"):
            has_pictograph = True
        else:
            return False
    return has_pictograph


def validate_reaction_emoji(emoji: str) -> None:
    """400 / 10014 "Unknown Emoji" unless ``emoji`` is a Unicode emoji or a custom ``name:id``.

    Whether a custom emoji exists and the bot may use it is not checked: the double has no emoji list.
    """
    if not (is_unicode_emoji(emoji) or _CUSTOM_EMOJI.match(emoji)):
        raise DiscordAPIError(400, 10014, "Unknown Emoji")


def reaction_payload(emoji: str) -> dict[str, Any]:
    """The bot's reaction as a message object's ``reactions`` entry carries it."""
    custom = _CUSTOM_EMOJI.match(emoji)
    emoji_object = {"id": custom.group(2), "name": custom.group(1)} if custom else {"id": None, "name": emoji}
    return {
        "emoji": emoji_object,
        "count": 1,
        "count_details": {"burst": 0, "normal": 1},
        "burst_colors": [],
        "me": True,
        "me_burst": False,
    }


def validate_thread_name_and_duration(body: dict[str, Any]) -> None:
    """50035 for a thread name outside 1..100 characters or an unsupported archive duration."""
    errors: dict[str, Any] = {}
    name = body.get("name")
    if not isinstance(name, str) or not 1 <= len(name) <= THREAD_NAME_MAX:
        errors["name"] = field_error(
            "BASE_TYPE_BAD_LENGTH", f"Must be between 1 and {THREAD_NAME_MAX} in length."
        )
    duration = body.get("auto_archive_duration")
    if duration is not None and duration not in ARCHIVE_DURATIONS:
        errors["auto_archive_duration"] = field_error(
            "BASE_TYPE_CHOICES", f"Value must be one of {sorted(ARCHIVE_DURATIONS)}."
        )
    if errors:
        raise invalid_form_body(errors)


def validate_autocomplete_choices(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the choices of a type-8 callback, or raise 50035 for more than 25 / bad lengths."""
    choices = list(data.get("choices") or [])
    errors: dict[str, Any] = {}
    if len(choices) > MAX_AUTOCOMPLETE_CHOICES:
        errors["choices"] = _too_long(MAX_AUTOCOMPLETE_CHOICES)
    else:
        for index, choice in enumerate(choices):
            one: dict[str, Any] = {}
            name = str(choice.get("name", ""))
            if not 1 <= len(name) <= 100:
                one["name"] = field_error("BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
            value = choice.get("value")
            if isinstance(value, str) and len(value) > 100:
                one["value"] = _too_long(100)
            if one:
                errors.setdefault("choices", {})[str(index)] = one
    if errors:
        raise invalid_form_body({"data": errors})
    return choices
