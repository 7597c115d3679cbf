"""Backend-neutral pieces of the stores: the job row's columns and their Python forms, the JSON kept in
quota rows, and the usage windows. SQLite and PostgreSQL stores both use these, so a row means the same
thing whichever database holds it.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping
from dataclasses import asdict
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Protocol

from bot.domain.models import (
    FINAL_STATES,
    Derivation,
    ImageInfo,
    Job,
    JobOrigin,
    JobState,
    Lineage,
    ProviderName,
    Ratio,
    Requester,
    Resolution,
    ServiceTier,
    VideoRequest,
    sources_of,
)
from bot.domain.quota import MemberLimits, ServerRules
from bot.jobs.ports import GuildQuotaConfig, LimitScope, NewJob, ReservationRow, ReservationState, UsageRow

#: Columns a transition may set besides `state`. Anything else is a programming error.
UPDATABLE_FIELDS = frozenset(
    {
        "provider_job_id",
        "submitted_at",
        "finished_at",
        "next_poll_at",
        "poll_failures",
        "queue_position",
        "progress_percent",
        "video_url",
        "last_frame_url",
        "video_bytes",
        "cost_usd",
        "usage_tokens",
        "error_code",
        "error_message",
        "status_message_id",
        "thread_id",
        "delivery_ref",
        "submit_started_at",
        "announced_at",
        "reply_handle",
        "lease_owner",
        "lease_expires_at",
    }
)

#: SQL literal lists of the states (the same text in both dialects).
ACTIVE_STATES_SQL = ", ".join(f"'{state.value}'" for state in JobState if not state.is_final)
FINAL_STATES_SQL = ", ".join(f"'{state.value}'" for state in FINAL_STATES)

#: The columns `insert_job` writes, in the order of `new_job_values`.
NEW_JOB_COLUMNS: tuple[str, ...] = (
    "state",
    "provider",
    "model",
    "request_json",
    "origin",
    "user_id",
    "guild_id",
    "channel_id",
    "first_frame_json",
    "last_frame_json",
    "status_message_id",
    "thread_id",
    "upload_limit_bytes",
    "credits",
    "created_at",
    "updated_at",
    "deadline_at",
    "lease_owner",
    "lease_expires_at",
    "reply_handle",
    "parent_job_id",
    "derivation",
)

_DAY_S = 86_400
_ROLLING_WINDOW_S = 30 * _DAY_S


class Row(Protocol):
    """A database row read by column name (sqlite3/aiosqlite.Row, asyncpg.Record)."""

    def __getitem__(self, key: str, /) -> Any: ...


def check_updatable(fields: Mapping[str, Any]) -> None:
    """Refuse columns a transition may not set (a programming error)."""
    unknown = set(fields) - UPDATABLE_FIELDS - {"state"}
    if unknown:
        raise ValueError(f"cannot update job columns {sorted(unknown)}")


def to_column(value: Any) -> Any:
    """A transition's field value as stored (a state as its text)."""
    return value.value if isinstance(value, JobState) else value


def new_job_values(new: NewJob, now: float) -> tuple[Any, ...]:
    """The values of NEW_JOB_COLUMNS for `new`, created at `now` in state PENDING."""
    return (
        JobState.PENDING.value,
        new.provider.value,
        new.request.model,
        json.dumps(request_to_json(new.request)),
        new.requester.origin.value,
        new.requester.user_id,
        new.requester.guild_id,
        new.requester.channel_id,
        image_to_json(new.first_frame),
        image_to_json(new.last_frame),
        new.status_message_id,
        new.thread_id,
        new.upload_limit_bytes,
        new.credits,
        now,
        now,
        new.deadline_at,
        new.lease_owner,
        new.lease_expires_at,
        new.reply_handle,
        new.lineage.parent_job_id if new.lineage else None,
        new.lineage.derivation.value if new.lineage else None,
    )


def request_to_json(request: VideoRequest) -> dict[str, Any]:
    """The request as the JSON object stored in `request_json`."""
    data = asdict(request)
    data["resolution"] = request.resolution.value
    data["ratio"] = request.ratio.value
    data["service_tier"] = request.service_tier.value if request.service_tier else None
    return data


def request_from_json(raw: str) -> VideoRequest:
    """The inverse of `request_to_json` (from its text); keys added later read as "not asked"."""
    data = json.loads(raw)
    return VideoRequest(
        model=data["model"],
        prompt=data["prompt"],
        resolution=Resolution(data["resolution"]),
        ratio=Ratio(data["ratio"]),
        duration_s=int(data["duration_s"]),
        generate_audio=data.get("generate_audio"),
        camera_fixed=data.get("camera_fixed"),
        seed=data.get("seed"),
        watermark=data.get("watermark"),
        service_tier=ServiceTier(data["service_tier"]) if data.get("service_tier") else None,
        expires_after_s=data.get("expires_after_s"),
        return_last_frame=data.get("return_last_frame"),
        reference_images=int(data.get("reference_images", 0)),
        reference_videos=int(data.get("reference_videos", 0)),
        reference_audios=int(data.get("reference_audios", 0)),
        # Rows stored before web search existed have no key: not asked.
        web_search=data.get("web_search"),
    )


def image_to_json(info: ImageInfo | None) -> str | None:
    """An image's facts as stored in `first_frame_json` / `last_frame_json`."""
    return None if info is None else json.dumps(asdict(info))


def image_from_json(raw: str | None) -> ImageInfo | None:
    """The inverse of `image_to_json`."""
    if raw is None:
        return None
    data = json.loads(raw)
    data["notes"] = tuple(data.get("notes", ()))
    return ImageInfo(**data)


def row_to_job(row: Row) -> Job:
    """A `jobs` row (every column, by name) as a Job."""
    return Job(
        id=row["id"],
        state=JobState(row["state"]),
        provider=ProviderName(row["provider"]),
        request=request_from_json(row["request_json"]),
        requester=Requester(
            origin=JobOrigin(row["origin"]),
            user_id=row["user_id"],
            guild_id=row["guild_id"],
            channel_id=row["channel_id"],
        ),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        deadline_at=row["deadline_at"],
        first_frame=image_from_json(row["first_frame_json"]),
        last_frame=image_from_json(row["last_frame_json"]),
        provider_job_id=row["provider_job_id"],
        submitted_at=row["submitted_at"],
        finished_at=row["finished_at"],
        next_poll_at=row["next_poll_at"],
        poll_failures=row["poll_failures"],
        queue_position=row["queue_position"],
        progress_percent=row["progress_percent"],
        video_url=row["video_url"],
        last_frame_url=row["last_frame_url"],
        video_bytes=row["video_bytes"],
        cost_usd=row["cost_usd"],
        error_code=row["error_code"],
        error_message=row["error_message"],
        status_message_id=row["status_message_id"],
        thread_id=row["thread_id"],
        delivery_ref=row["delivery_ref"],
        upload_limit_bytes=row["upload_limit_bytes"],
        credits=row["credits"],
        usage_tokens=row["usage_tokens"],
        lease_owner=row["lease_owner"],
        lease_expires_at=row["lease_expires_at"],
        submit_started_at=row["submit_started_at"],
        announced_at=row["announced_at"],
        reply_handle=row["reply_handle"],
        card_final_at=row["card_final_at"],
        lineage=(
            Lineage(row["parent_job_id"], Derivation(row["derivation"]))
            if row["parent_job_id"] is not None and row["derivation"] is not None
            else None
        ),
        removed_at=row["removed_at"],
    )


def usage_windows(now: float) -> tuple[float, float, float]:
    """The starts of the usage windows at `now`: the UTC day, the rolling 30 days, the UTC month."""
    day_start = now - now % _DAY_S  # unix time has no leap seconds, so this is midnight UTC
    window_start = now - _ROLLING_WINDOW_S
    month_start = datetime.fromtimestamp(now, UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return day_start, window_start, month_start.timestamp()


def limits_to_json(limits: MemberLimits) -> str:
    """MemberLimits as the JSON stored in `quota_limits` (None kept: it means "no limit")."""
    data: dict[str, Any] = {
        "credits_per_day": limits.credits_per_day,
        "credits_per_30_days": limits.credits_per_30_days,
        "concurrent_jobs": limits.concurrent_jobs,
        "cooldown_s": limits.cooldown_s,
        "allowed_models": None if limits.allowed_models is None else sorted(limits.allowed_models),
        "max_resolution": None if limits.max_resolution is None else limits.max_resolution.value,
        "max_duration_s": limits.max_duration_s,
        "videos_per_hour": limits.videos_per_hour,
    }
    return json.dumps(data, sort_keys=True)


def limits_from_json(raw: str) -> MemberLimits:
    """The inverse of `limits_to_json`; a missing key is "no limit"."""
    data = json.loads(raw)
    models = data.get("allowed_models")
    resolution = data.get("max_resolution")
    return MemberLimits(
        credits_per_day=data.get("credits_per_day"),
        credits_per_30_days=data.get("credits_per_30_days"),
        concurrent_jobs=data.get("concurrent_jobs"),
        cooldown_s=data.get("cooldown_s"),
        allowed_models=None if models is None else frozenset(models),
        max_resolution=None if resolution is None else Resolution(resolution),
        max_duration_s=data.get("max_duration_s"),
        videos_per_hour=data.get("videos_per_hour"),
    )


def rules_to_json(rules: ServerRules) -> str:
    """ServerRules as the JSON stored in `quota_rules`."""
    channels = rules.allowed_channel_ids
    data: dict[str, Any] = {
        "credits_per_day": rules.credits_per_day,
        "credits_per_month": rules.credits_per_month,
        "allowed_channel_ids": None if channels is None else sorted(channels),
        "banned_user_ids": sorted(rules.banned_user_ids),
        "banned_words": list(rules.banned_words),
        "max_credits_per_job": rules.max_credits_per_job,
        "audit_channel_id": rules.audit_channel_id,
        "alert_role_id": rules.alert_role_id,
    }
    return json.dumps(data, sort_keys=True)


def rules_from_json(raw: str) -> ServerRules:
    """The inverse of `rules_to_json`; a missing key takes ServerRules' default."""
    data = json.loads(raw)
    channels = data.get("allowed_channel_ids")
    return ServerRules(
        credits_per_day=data.get("credits_per_day"),
        credits_per_month=data.get("credits_per_month"),
        allowed_channel_ids=None if channels is None else frozenset(channels),
        banned_user_ids=frozenset(data.get("banned_user_ids", ())),
        banned_words=tuple(data.get("banned_words", ())),
        max_credits_per_job=data.get("max_credits_per_job"),
        audit_channel_id=data.get("audit_channel_id"),
        alert_role_id=data.get("alert_role_id"),
    )


def quota_config(limit_rows: Iterable[Row], rules_json: str | None) -> GuildQuotaConfig:
    """A server's quota configuration from its `quota_limits` rows (scope, target_id, limits_json) and its
    `quota_rules.rules_json` (None: never set, the default rules)."""
    server_default: MemberLimits | None = None
    roles: dict[int, MemberLimits] = {}
    members: dict[int, MemberLimits] = {}
    for row in limit_rows:
        limits = limits_from_json(row["limits_json"])
        match LimitScope(row["scope"]):
            case LimitScope.SERVER:
                server_default = limits
            case LimitScope.ROLE:
                roles[row["target_id"]] = limits
            case LimitScope.MEMBER:
                members[row["target_id"]] = limits
    return GuildQuotaConfig(
        server_default=server_default,
        roles=MappingProxyType(roles),
        members=MappingProxyType(members),
        rules=rules_from_json(rules_json) if rules_json is not None else ServerRules(),
    )


def transition_values(
    to: JobState, expected: Collection[JobState] | None, fields: Mapping[str, Any], now: float
) -> tuple[frozenset[JobState], dict[str, Any]]:
    """The states a transition to `to` may start from, and the columns it writes: entering a final state
    stamps `finished_at` and clears `next_poll_at`; entering DELIVERED records the outcome as announced (the
    video is the announcement). Raises ValueError for a transition the state machine does not allow."""
    sources = sources_of(to) if expected is None else frozenset(expected)
    illegal = sources - sources_of(to)
    if illegal:
        raise ValueError(f"{', '.join(sorted(illegal))} → {to} is not an allowed transition")
    if not sources:
        raise ValueError(f"no state may move to {to}")
    values: dict[str, Any] = dict(fields)
    if to in FINAL_STATES:
        values.setdefault("finished_at", now)
        values["next_poll_at"] = None
    if to is JobState.DELIVERED:
        values.setdefault("announced_at", now)
    return sources, {"state": to.value, **values}


def usage_row(row: Row) -> UsageRow:
    """A usage report row (user_id, model, jobs, committed, reserved, released, cost_usd, usage_tokens)."""
    return UsageRow(
        user_id=row["user_id"],
        model=row["model"],
        jobs=row["jobs"],
        credits_committed=row["committed"],
        credits_reserved=row["reserved"],
        credits_released=row["released"],
        cost_usd=row["cost_usd"],
        usage_tokens=row["usage_tokens"],
    )


def reservation_row(row: Row) -> ReservationRow:
    """A `reservations` row."""
    return ReservationRow(
        job_id=row["job_id"],
        guild_id=row["guild_id"],
        user_id=row["user_id"],
        model=row["model"],
        credits=row["credits"],
        state=ReservationState(row["state"]),
        created_at=row["created_at"],
        settled_at=row["settled_at"],
    )
