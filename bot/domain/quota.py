"""Quotas: what a job costs in credits, the limits that apply to a member, and whether a request fits.

Pure and Discord-free: the store supplies usage figures, the policy decides, the caller renders the refusal.
(Refusal messages do use Discord's `<t:UNIX:R>` timestamp and `<#id>` channel markup, which other front ends
can show as-is.)
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from functools import lru_cache
from types import MappingProxyType
from typing import TypeVar

from bot.domain.catalogue import ModelSpec
from bot.domain.models import Resolution, VideoRequest

_T = TypeVar("_T")

#: Credits per second of video, by resolution (the default weighting; a model may override it).
#: Read-only so that no caller can change every model's prices by mutating a shared dict.
DEFAULT_RESOLUTION_WEIGHTS: Mapping[Resolution, int] = MappingProxyType(
    {Resolution.P480: 1, Resolution.P720: 2, Resolution.P1080: 4}
)

#: Resolutions from lowest to highest: what "maximum resolution" and "highest resolution" compare by.
RESOLUTION_ORDER: tuple[Resolution, ...] = (Resolution.P480, Resolution.P720, Resolution.P1080)

DAY_S = 86_400
ROLLING_WINDOW_S = 30 * DAY_S


class LimitName(StrEnum):
    """Every limit a refusal can name."""

    BANNED = "banned"
    CHANNEL = "channel"
    MODEL = "model"
    RESOLUTION = "resolution"
    DURATION = "duration"
    BANNED_WORD = "banned_word"
    CONCURRENT = "concurrent"
    COOLDOWN = "cooldown"
    MEMBER_DAY = "member_day"
    MEMBER_30_DAYS = "member_30_days"
    SERVER_DAY = "server_day"
    SERVER_MONTH = "server_month"


@dataclass(frozen=True)
class MemberLimits:
    """Limits on one member. None means "no limit" for that item.

    The same shape serves the server default, a role and a member override; `effective_limits` combines them.
    """

    credits_per_day: int | None = None
    credits_per_30_days: int | None = None
    concurrent_jobs: int | None = None
    cooldown_s: int | None = None
    allowed_models: frozenset[str] | None = None
    max_resolution: Resolution | None = None
    max_duration_s: int | None = None


@dataclass(frozen=True)
class ServerRules:
    """Server-wide rules: the server's budget, where the bot may be used, who may not, what not to say."""

    credits_per_day: int | None = None
    credits_per_month: int | None = None  # calendar month, UTC
    allowed_channel_ids: frozenset[int] | None = None  # None: every channel
    banned_user_ids: frozenset[int] = frozenset()
    banned_words: tuple[str, ...] = ()


@dataclass(frozen=True)
class Usage:
    """What is already spent or reserved, as the store counted it at `now` (unix seconds, UTC)."""

    now: float
    member_credits_today: int = 0  # since midnight UTC
    member_credits_30_days: int = 0  # rolling window ending now
    member_active_jobs: int = 0
    member_last_submit_at: float | None = None
    server_credits_today: int = 0
    server_credits_this_month: int = 0
    #: When the oldest credits in the member's 30-day window drop out (for the "frees up" message).
    member_30_days_oldest_at: float | None = None


@dataclass(frozen=True)
class Refusal:
    """Why a request may not go ahead, in the member's words, and when it would."""

    limit: LimitName
    message: str
    frees_at: float | None = None  # unix seconds; None when waiting will not help


@dataclass(frozen=True)
class QuotaCheck:
    """Everything the policy needs for one request."""

    request: VideoRequest
    cost_credits: int
    user_id: int
    channel_id: int | None
    limits: MemberLimits
    rules: ServerRules
    usage: Usage
    resolution_order: tuple[Resolution, ...] = RESOLUTION_ORDER
    #: Display names by model key, so refusals name models as members chose them ("Seedance 1.5 Pro").
    model_names: Mapping[str, str] = field(default_factory=dict)

    def model_name(self, key: str) -> str:
        """A model's display name, or its key when none was given."""
        return self.model_names.get(key, key)


#: The fresh-install limits: safe without any configuration. The settings layer passes its own values to
#: `effective_limits`; this is what it should fall back to.
DEFAULT_MEMBER_LIMITS = MemberLimits(credits_per_day=20, concurrent_jobs=3)


# --- cost -------------------------------------------------------------------------------------------------


def job_cost(request: VideoRequest, weights: Mapping[Resolution, int] = DEFAULT_RESOLUTION_WEIGHTS) -> int:
    """Credits for `request`: seconds of video times the weight of its resolution.

    Raises ValueError when `weights` has no entry for the request's resolution, rather than pricing it at 0.
    """
    try:
        weight = weights[request.resolution]
    except KeyError:
        raise ValueError(f"no credit weight for resolution {request.resolution.value}") from None
    return request.duration_s * weight


def credits_for(spec: ModelSpec, request: VideoRequest) -> int:
    """Credits for `request` on `spec`: the model's own weights where it sets them, the defaults elsewhere."""
    if spec.key != request.model:
        raise ValueError(f"request is for model {request.model!r}, not {spec.key!r}")
    weights = {**DEFAULT_RESOLUTION_WEIGHTS, **(spec.credit_weights or {})}
    return job_cost(request, weights)


# --- combining limits -------------------------------------------------------------------------------------


def effective_limits(
    bot_defaults: MemberLimits,
    server_default: MemberLimits | None,
    roles: Sequence[MemberLimits],
    member_override: MemberLimits | None,
) -> MemberLimits:
    """The limits that apply to one member, field by field.

    In every input, None in a field means "not set here, inherit from the level below". For each field:

    1. the member override, if it sets the field;
    2. else the most generous value among the member's roles that set it: the larger credits, concurrent
       jobs and maximum duration; the smaller cooldown; the highest maximum resolution; the union of
       allowed models;
    3. else the server default, if it sets the field;
    4. else `bot_defaults` (from settings; see `DEFAULT_MEMBER_LIMITS`).

    A field still None after all four means "no limit". A role can therefore loosen the server default but
    cannot lift a limit to "none"; give it a large number instead. Roles beat the server default even when
    stricter, so a "restricted" role works; a member override beats everything.
    """
    layers = _Layers(bot_defaults, server_default, tuple(roles), member_override)
    rank = {resolution: index for index, resolution in enumerate(RESOLUTION_ORDER)}
    return MemberLimits(
        credits_per_day=layers.resolve(lambda limits: limits.credits_per_day, max),
        credits_per_30_days=layers.resolve(lambda limits: limits.credits_per_30_days, max),
        concurrent_jobs=layers.resolve(lambda limits: limits.concurrent_jobs, max),
        cooldown_s=layers.resolve(lambda limits: limits.cooldown_s, min),
        allowed_models=layers.resolve(
            lambda limits: limits.allowed_models, lambda sets: frozenset[str]().union(*sets)
        ),
        max_resolution=layers.resolve(
            lambda limits: limits.max_resolution, lambda values: max(values, key=rank.__getitem__)
        ),
        max_duration_s=layers.resolve(lambda limits: limits.max_duration_s, max),
    )


@dataclass(frozen=True)
class _Layers:
    bot_defaults: MemberLimits
    server_default: MemberLimits | None
    roles: tuple[MemberLimits, ...]
    member_override: MemberLimits | None

    def resolve(
        self, read: Callable[[MemberLimits], _T | None], most_generous: Callable[[list[_T]], _T]
    ) -> _T | None:
        if self.member_override is not None and (value := read(self.member_override)) is not None:
            return value
        from_roles = [value for role in self.roles if (value := read(role)) is not None]
        if from_roles:
            return most_generous(from_roles)
        if self.server_default is not None and (value := read(self.server_default)) is not None:
            return value
        return read(self.bot_defaults)


# --- periods (UTC) ----------------------------------------------------------------------------------------


def day_start(now: float) -> float:
    """Unix seconds of the last midnight UTC at or before `now`."""
    # Unix time has no leap seconds and UTC no daylight saving, so every UTC day is exactly DAY_S long.
    return float(math.floor(now / DAY_S) * DAY_S)


def next_day_start(now: float) -> float:
    """Unix seconds of the first midnight UTC after `now` (when daily credits reset)."""
    return day_start(now) + DAY_S


def month_start(now: float) -> float:
    """Unix seconds of 00:00 UTC on the first of the calendar month containing `now`."""
    moment = datetime.fromtimestamp(now, tz=UTC)
    return datetime(moment.year, moment.month, 1, tzinfo=UTC).timestamp()


def next_month_start(now: float) -> float:
    """Unix seconds of 00:00 UTC on the first of the next calendar month (December rolls over to January)."""
    moment = datetime.fromtimestamp(now, tz=UTC)
    year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
    return datetime(year, month, 1, tzinfo=UTC).timestamp()


# --- the check --------------------------------------------------------------------------------------------


def check_quota(check: QuotaCheck) -> Refusal | None:
    """The first limit that blocks `check.request`, or None when it may go ahead.

    Checked in this order, so the member hears about the limit waiting cannot fix before one it can: banned
    member, channel, model, resolution, duration, banned word, concurrent jobs, cooldown, member credits
    today, member credits over 30 days, server credits today, server credits this month.
    """
    for rule in _RULES:
        refusal = rule(check)
        if refusal is not None:
            return refusal
    return None


def _banned(check: QuotaCheck) -> Refusal | None:
    if check.user_id not in check.rules.banned_user_ids:
        return None
    return Refusal(LimitName.BANNED, "You are not allowed to make videos on this server.")


def _channel(check: QuotaCheck) -> Refusal | None:
    allowed = check.rules.allowed_channel_ids
    if allowed is None or check.channel_id in allowed:
        return None
    if not allowed:
        return Refusal(LimitName.CHANNEL, "Videos cannot be made in any channel on this server.")
    channels = ", ".join(f"<#{channel_id}>" for channel_id in sorted(allowed))
    return Refusal(LimitName.CHANNEL, f"Videos can't be made here. Use one of these channels: {channels}.")


def _model(check: QuotaCheck) -> Refusal | None:
    allowed = check.limits.allowed_models
    if allowed is None or check.request.model in allowed:
        return None
    if not allowed:
        return Refusal(
            LimitName.MODEL, f"You may not use {check.model_name(check.request.model)}, or any other model."
        )
    return Refusal(
        LimitName.MODEL,
        f"You may not use {check.model_name(check.request.model)}. "
        f"Models you may use: {', '.join(sorted(check.model_name(key) for key in allowed))}.",
    )


def _resolution(check: QuotaCheck) -> Refusal | None:
    highest = check.limits.max_resolution
    if highest is None:
        return None
    rank = {resolution: index for index, resolution in enumerate(check.resolution_order)}
    if rank[check.request.resolution] <= rank[highest]:
        return None
    return Refusal(
        LimitName.RESOLUTION,
        f"Your highest resolution is {highest.value}; you asked for {check.request.resolution.value}. "
        "Choose a lower resolution.",
    )


def _duration(check: QuotaCheck) -> Refusal | None:
    longest = check.limits.max_duration_s
    if longest is None or check.request.duration_s <= longest:
        return None
    return Refusal(
        LimitName.DURATION,
        f"Your longest video is {longest} s; you asked for {check.request.duration_s} s. "
        "Choose a shorter duration.",
    )


def _banned_word(check: QuotaCheck) -> Refusal | None:
    pattern = _banned_words_pattern(check.rules.banned_words)
    if pattern is None:
        return None
    found = pattern.search(_normalise(check.request.prompt))
    if found is None:
        return None
    return Refusal(
        LimitName.BANNED_WORD,
        f"Your prompt contains “{found.group(0)}”, which this server does not allow. "
        "Change the prompt and try again.",
    )


def _normalise(text: str) -> str:
    # NFKC folds look-alike forms (full-width letters, ligatures) into plain ones, so they cannot slip past.
    return unicodedata.normalize("NFKC", text)


@lru_cache(maxsize=64)
def _banned_words_pattern(banned_words: tuple[str, ...]) -> re.Pattern[str] | None:
    """One case-insensitive regex for every banned word or phrase, matching whole words only.

    Lookarounds on word characters rather than `\\b`, so an entry that starts or ends with punctuation
    still only matches on its own. The words of a phrase may be separated by any run of spaces or
    punctuation ("bad word" also catches "bad-word" and "Bad,  word"), but never by nothing.
    """
    alternatives = [
        r"[\W_]+".join(re.escape(word) for word in words)
        for entry in banned_words
        if (words := _normalise(entry).split())
    ]
    if not alternatives:
        return None
    # Longest first, so the message quotes a whole phrase when the phrase and one of its words are banned.
    alternatives.sort(key=len, reverse=True)
    return re.compile(rf"(?<!\w)(?:{'|'.join(alternatives)})(?!\w)", re.IGNORECASE)


def _concurrent(check: QuotaCheck) -> Refusal | None:
    limit = check.limits.concurrent_jobs
    active = check.usage.member_active_jobs
    if limit is None or active < limit:
        return None
    if limit == 0:
        return Refusal(
            LimitName.CONCURRENT, "You may not make videos at the moment (your limit is 0 at once)."
        )
    return Refusal(
        LimitName.CONCURRENT,
        f"You have {_videos(active)} in progress and may have {limit} at once. "
        "You can start another when one of your running videos finishes.",
    )


def _cooldown(check: QuotaCheck) -> Refusal | None:
    cooldown = check.limits.cooldown_s
    last = check.usage.member_last_submit_at
    if cooldown is None or last is None:
        return None
    frees_at = last + cooldown
    if check.usage.now >= frees_at:
        return None
    ago = max(0, math.floor(check.usage.now - last))
    return Refusal(
        LimitName.COOLDOWN,
        f"You can start one video every {_seconds(cooldown)}; your last one was {_seconds(ago)} ago. "
        f"You can start another {_when(frees_at)}.",
        frees_at,
    )


@dataclass(frozen=True)
class _Budget:
    """One credit allowance as a refusal describes it; the four credit limits differ only in wording."""

    limit_name: LimitName
    limit: int | None
    used: int
    usage: str  # "You have used 18 of your 20 credits today", a full clause naming the limit
    whose_limit: str  # "your daily limit", for a video dearer than the whole allowance
    frees_at: float | None
    reset: str  # "Your daily credits reset", followed by the time when frees_at is known


def _over_budget(budget: _Budget, cost: int) -> Refusal | None:
    if budget.limit is None or budget.used + cost <= budget.limit:
        return None
    if cost > budget.limit:
        # Waiting cannot help when one video is dearer than the whole allowance, so there is no frees_at.
        return Refusal(
            budget.limit_name,
            f"This video costs {_credits(cost)}, more than {budget.whose_limit} of {budget.limit} — "
            f"choose a shorter duration or a lower resolution. ({budget.usage}.)",
        )
    message = f"{budget.usage}; this video costs {cost}."
    if budget.frees_at is None:
        return Refusal(budget.limit_name, message)
    return Refusal(budget.limit_name, f"{message} {budget.reset} {_when(budget.frees_at)}.", budget.frees_at)


def _member_day(check: QuotaCheck) -> Refusal | None:
    limit, used = check.limits.credits_per_day, check.usage.member_credits_today
    budget = _Budget(
        LimitName.MEMBER_DAY,
        limit,
        used,
        f"You have used {used} of your {_credits(limit or 0)} today",
        "your daily limit",
        next_day_start(check.usage.now),
        "Your daily credits reset",
    )
    return _over_budget(budget, check.cost_credits)


def _member_30_days(check: QuotaCheck) -> Refusal | None:
    limit, used = check.limits.credits_per_30_days, check.usage.member_credits_30_days
    oldest = check.usage.member_30_days_oldest_at
    # Credits leave the rolling window job by job, 30 days after they were spent; the oldest job's credits
    # come back first, though they may not be enough on their own.
    budget = _Budget(
        LimitName.MEMBER_30_DAYS,
        limit,
        used,
        f"You have used {used} of your {_credits(limit or 0)} in the last 30 days",
        "your 30-day limit",
        None if oldest is None else oldest + ROLLING_WINDOW_S,
        "Credits come back 30 days after they were spent; your oldest come back",
    )
    return _over_budget(budget, check.cost_credits)


def _server_day(check: QuotaCheck) -> Refusal | None:
    limit, used = check.rules.credits_per_day, check.usage.server_credits_today
    budget = _Budget(
        LimitName.SERVER_DAY,
        limit,
        used,
        f"This server has used {used} of its {_credits(limit or 0)} today",
        "this server's daily limit",
        next_day_start(check.usage.now),
        "The server's daily credits reset",
    )
    return _over_budget(budget, check.cost_credits)


def _server_month(check: QuotaCheck) -> Refusal | None:
    limit, used = check.rules.credits_per_month, check.usage.server_credits_this_month
    budget = _Budget(
        LimitName.SERVER_MONTH,
        limit,
        used,
        f"This server has used {used} of its {_credits(limit or 0)} this month",
        "this server's monthly limit",
        next_month_start(check.usage.now),
        "The server's monthly credits reset",
    )
    return _over_budget(budget, check.cost_credits)


_RULES: tuple[Callable[[QuotaCheck], Refusal | None], ...] = (
    _banned,
    _channel,
    _model,
    _resolution,
    _duration,
    _banned_word,
    _concurrent,
    _cooldown,
    _member_day,
    _member_30_days,
    _server_day,
    _server_month,
)


# --- wording ----------------------------------------------------------------------------------------------


def _when(moment: float) -> str:
    # Rounded up: a relative timestamp that says "now" a moment before the limit frees would mislead.
    return f"<t:{math.ceil(moment)}:R>"


def _credits(count: int) -> str:
    return f"{count} credit" if count == 1 else f"{count} credits"


def _videos(count: int) -> str:
    return f"{count} video" if count == 1 else f"{count} videos"


def _seconds(total: int) -> str:
    """A short human duration: "45 s", "2 min", "1 h 30 min"."""
    hours, rest = divmod(total, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [
        f"{hours} h" if hours else "",
        f"{minutes} min" if minutes else "",
        f"{seconds} s" if seconds else "",
    ]
    return " ".join(part for part in parts if part) or "0 s"


NO_LIMIT = "No limit"


def describe_limits(limits: MemberLimits, rules: ServerRules | None = None) -> list[tuple[str, str]]:
    """Human (name, value) pairs for showing limits to members and moderators; "No limit" where unset.

    With `rules`, the server-wide rules follow the member's. Banned members and words are shown as counts,
    never listed, so that showing the limits to a member does not repeat the words back.
    """

    def number(value: int | None, unit: str = "") -> str:
        return NO_LIMIT if value is None else f"{value}{unit}"

    pairs = [
        ("Credits per day", number(limits.credits_per_day)),
        ("Credits per 30 days", number(limits.credits_per_30_days)),
        ("Videos at once", number(limits.concurrent_jobs)),
        ("Wait between videos", NO_LIMIT if limits.cooldown_s is None else _seconds(limits.cooldown_s)),
        (
            "Models",
            "Any model"
            if limits.allowed_models is None
            else ", ".join(sorted(limits.allowed_models)) or "None",
        ),
        ("Highest resolution", NO_LIMIT if limits.max_resolution is None else limits.max_resolution.value),
        ("Longest video", number(limits.max_duration_s, " s")),
    ]
    return pairs if rules is None else pairs + describe_rules(rules)


def describe_rules(rules: ServerRules) -> list[tuple[str, str]]:
    """Human (name, value) pairs for a server's own rules; banned members and words only as counts."""
    channels = rules.allowed_channel_ids
    return [
        ("Server credits per day", NO_LIMIT if rules.credits_per_day is None else str(rules.credits_per_day)),
        (
            "Server credits per month",
            NO_LIMIT if rules.credits_per_month is None else str(rules.credits_per_month),
        ),
        (
            "Channels",
            "Any channel" if channels is None else ", ".join(f"<#{c}>" for c in sorted(channels)) or "None",
        ),
        ("Banned members", str(len(rules.banned_user_ids))),
        ("Banned words", str(len(rules.banned_words))),
    ]
