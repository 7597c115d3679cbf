"""Open "Animate image" forms, kept in the state store so that a form submitted after a restart still works.

A modal's submit names only its custom id (at most 100 characters) — not the message it was opened on — and
fetching that message again would not show other members' attachments to a bot without the Message Content
intent. So the image the menu chose is written down when the form opens, under a short token that the form's
custom id carries.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import asdict, dataclass

from bot.domain.text import Text
from bot.jobs.errors import JobError
from bot.jobs.ports import StateStore

PREFIX = "form:"
#: How long an unanswered form is kept (Discord closes an open form long before).
FORM_TTL_S = 86_400


class FormExpiredError(JobError):
    """A form submitted after the bot forgot it."""


@dataclass(frozen=True)
class ImageForm:
    """What an "Animate image" form was opened for."""

    url: str
    name: str
    size_bytes: int | None
    position: int
    count: int
    user_id: int
    opened_at: float


class ImageForms:
    """Open forms by token."""

    def __init__(self, state: StateStore) -> None:
        self._state = state

    async def remember(self, form: ImageForm) -> str:
        """Store `form`; return the token its custom id carries."""
        token = secrets.token_urlsafe(9)
        await self._state.put(PREFIX + token, json.dumps(asdict(form)))
        return token

    async def take(self, token: str, user_id: int) -> ImageForm:
        """The form behind `token`, forgotten at once (a form is submitted once)."""
        raw = await self._state.get(PREFIX + token)
        await self._state.delete(PREFIX + token)
        form = ImageForm(**json.loads(raw)) if raw is not None else None
        if form is None or form.user_id != user_id or time.time() - form.opened_at > FORM_TTL_S:
            raise FormExpiredError(
                Text(
                    "That form is too old for me to find its image. "
                    "Use Apps → Animate image on the message again."
                )
            )
        return form

    async def forget_stale(self) -> int:
        """Drop forms nobody submitted (closed without sending); return how many."""
        dropped = 0
        for key, value in await self._state.items(PREFIX):
            if time.time() - float(json.loads(value)["opened_at"]) > FORM_TTL_S:
                await self._state.delete(key)
                dropped += 1
        return dropped
