"""Test data shared by the unit tests: a stored job as the store would return it."""

from __future__ import annotations

from typing import Any

from bot.domain.models import Job, JobOrigin, JobState, ProviderName, Requester, VideoRequest

#: When the default job was created (2023-11-14, a fixed instant so cards and ETAs are deterministic).
CREATED_AT = 1_700_000_000.0


def make_job(request: VideoRequest, /, **changes: Any) -> Job:
    """Job #7 of user 1 in guild 2, channel 3, queued at RunComfy; `changes` override any field."""
    values: dict[str, Any] = {
        "id": 7,
        "state": JobState.QUEUED,
        "provider": ProviderName.RUNCOMFY,
        "request": request,
        "requester": Requester(origin=JobOrigin.DISCORD, user_id=1, guild_id=2, channel_id=3),
        "created_at": CREATED_AT,
        "updated_at": CREATED_AT,
        "deadline_at": CREATED_AT + 3600,
    }
    values.update(changes)
    return Job(**values)
