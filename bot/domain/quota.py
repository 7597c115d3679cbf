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
from bot.domain.text import Text, Value

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
HOUR_S = 3_600


class LimitName(StrEnum):
    """Every limit a refusal can name."""

    BANNED = "banned"
    CHANNEL = "channel"
    MODEL = "model"
    RESOLUTION = "resolution"
    DURATION = "duration"
    JOB_COST = "job_cost"
    BANNED_WORD = "banned_word"
    CONCURRENT = "concurrent"
    COOLDOWN = "cooldown"
    MEMBER_HOUR = "member_hour"
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
    #: Videos a member may start in any rolling hour (a burst limit, counted by admissions).
    videos_per_hour: int | None = None


@dataclass(frozen=True)
class ServerRules:
    """Server-wide rules: the server's budget, where the bot may be used, who may not, what not to say."""

    credits_per_day: int | None = None
    credits_per_month: int | None = None  # calendar month, UTC
    allowed_channel_ids: frozenset[int] | None = None  # None: every channel
    banned_user_ids: frozenset[int] = frozenset()
    banned_words: tuple[str, ...] = ()
    #: The most credits one request may cost (None: no cap).
    max_credits_per_job: int | None = None
    #: Where one line per job start and ending, and the budget alerts, are posted (None: nowhere).
    audit_channel_id: int | None = None
    #: The role budget alerts mention (None: no mention).
    alert_role_id: int | None = None


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
    #: Videos the member started in the rolling hour ending now, and when the oldest of them was admitted.
    member_videos_last_hour: int = 0
    member_hour_oldest_at: float | None = None


@dataclass(frozen=True)
class Refusal:
    """Why a request may not go ahead, in the member's words, and when it would.

    `text` is one whole sentence per case (its numbers as values), so each language says it in its own
    word order; `message` is the English.
    """

    limit: LimitName
    text: Text
    frees_at: float | None = None  # unix seconds; None when waiting will not help

    @property
    def message(self) -> str:
        """The refusal in English."""
        return str(self.text)


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
       jobs, maximum duration and videos per hour; the smaller cooldown; the highest maximum resolution;
       the union of allowed models;
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
        videos_per_hour=layers.resolve(lambda limits: limits.videos_per_hour, max),
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


# --- budget alerts ----------------------------------------------------------------------------------------

#: The shares of a server budget (in percent) at which moderators hear that it is being spent.
BUDGET_ALERT_PERCENTS: tuple[int, ...] = (50, 80, 100)


class BudgetPeriod(StrEnum):
    """The server budgets an alert can be about."""

    DAY = "day"
    MONTH = "month"


@dataclass(frozen=True)
class BudgetAlert:
    """A server budget has reached `percent` of itself in the period named by `period_key`."""

    period: BudgetPeriod
    percent: int
    used: int
    budget: int
    #: "2026-11-30" for a UTC day, "2026-11" for a UTC month: an alert fires once per period.
    period_key: str

    @property
    def key(self) -> str:
        """What identifies this alert for good (the once-only record is kept under it)."""
        return f"{self.period.value}:{self.period_key}:{self.percent}"


def budget_alerts(rules: ServerRules, *, day_used: int, month_used: int, now: float) -> list[BudgetAlert]:
    """Every alert threshold the server's usage has reached in the current UTC day and month.

    Reached, not crossed just now: which of them already fired is the caller's (durable) record, so an alert
    missed while no audit channel was set, or under a budget lowered mid-period, still fires once.
    """
    moment = datetime.fromtimestamp(now, tz=UTC)
    alerts: list[BudgetAlert] = []
    for period, budget, used, period_key in (
        (BudgetPeriod.DAY, rules.credits_per_day, day_used, moment.strftime("%Y-%m-%d")),
        (BudgetPeriod.MONTH, rules.credits_per_month, month_used, moment.strftime("%Y-%m")),
    ):
        if budget is None or budget <= 0:  # a budget of 0 admits nothing, so there is nothing to warn about
            continue
        alerts.extend(
            BudgetAlert(period, percent, used, budget, period_key)
            for percent in BUDGET_ALERT_PERCENTS
            # Integers only: 80 % of 5 credits is reached at 4, never missed by a float rounding down.
            if used * 100 >= budget * percent
        )
    return alerts


# --- the check --------------------------------------------------------------------------------------------


def check_quota(check: QuotaCheck) -> Refusal | None:
    """The first limit that blocks `check.request`, or None when it may go ahead.

    Checked in this order, so the member hears about the limit waiting cannot fix before one it can: banned
    member, channel, model, resolution, duration, cost of one video, banned word, concurrent jobs, cooldown,
    videos this hour, member credits today, member credits over 30 days, server credits today, server
    credits this month.
    """
    for rule in _RULES:
        refusal = rule(check)
        if refusal is not None:
            return refusal
    return None


def _banned(check: QuotaCheck) -> Refusal | None:
    if check.user_id not in check.rules.banned_user_ids:
        return None
    return Refusal(LimitName.BANNED, Text("You are not allowed to make videos on this server."))


def _channel(check: QuotaCheck) -> Refusal | None:
    allowed = check.rules.allowed_channel_ids
    if allowed is None or check.channel_id in allowed:
        return None
    if not allowed:
        return Refusal(LimitName.CHANNEL, Text("Videos cannot be made in any channel on this server."))
    channels = ", ".join(f"<#{channel_id}>" for channel_id in sorted(allowed))
    return Refusal(
        LimitName.CHANNEL,
        Text("Videos can't be made here. Use one of these channels: {channels}.", channels=channels),
    )


def _model(check: QuotaCheck) -> Refusal | None:
    allowed = check.limits.allowed_models
    if allowed is None or check.request.model in allowed:
        return None
    model = check.model_name(check.request.model)
    if not allowed:
        return Refusal(LimitName.MODEL, Text("You may not use {model}, or any other model.", model=model))
    return Refusal(
        LimitName.MODEL,
        Text(
            "You may not use {model}. Models you may use: {models}.",
            model=model,
            models=", ".join(sorted(check.model_name(key) for key in allowed)),
        ),
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
        Text(
            "Your highest resolution is {highest}; you asked for {asked}. Choose a lower resolution.",
            highest=highest.value,
            asked=check.request.resolution.value,
        ),
    )


def _duration(check: QuotaCheck) -> Refusal | None:
    longest = check.limits.max_duration_s
    if longest is None or check.request.duration_s <= longest:
        return None
    return Refusal(
        LimitName.DURATION,
        Text(
            "Your longest video is {longest} s; you asked for {asked} s. Choose a shorter duration.",
            longest=longest,
            asked=check.request.duration_s,
        ),
    )


def _job_cost(check: QuotaCheck) -> Refusal | None:
    cap = check.rules.max_credits_per_job
    if cap is None or check.cost_credits <= cap:
        return None
    return Refusal(
        LimitName.JOB_COST,
        Text(
            "This video costs {cost}; one video may cost at most {cap} on this server. "
            "Choose a shorter duration or a lower resolution.",
            cost=_credits(check.cost_credits),
            cap=_credits(cap),
        ),
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
        Text(
            "Your prompt contains “{word}”, which this server does not allow. "
            "Change the prompt and try again.",
            word=found.group(0),
        ),
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
            LimitName.CONCURRENT, Text("You may not make videos at the moment (your limit is 0 at once).")
        )
    return Refusal(
        LimitName.CONCURRENT,
        Text(
            "You have {videos} in progress and may have {limit} at once. "
            "You can start another when one of your running videos finishes.",
            videos=_videos(active),
            limit=limit,
        ),
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
        Text(
            "You can start one video every {every}; your last one was {ago} ago. "
            "You can start another {when}.",
            every=_seconds(cooldown),
            ago=_seconds(ago),
            when=_when(frees_at),
        ),
        frees_at,
    )


def _member_hour(check: QuotaCheck) -> Refusal | None:
    limit = check.limits.videos_per_hour
    started = check.usage.member_videos_last_hour
    if limit is None or started < limit:
        return None
    if limit == 0:
        return Refusal(
            LimitName.MEMBER_HOUR, Text("You may not make videos at the moment (your limit is 0 an hour).")
        )
    oldest = check.usage.member_hour_oldest_at
    # The oldest video in the hour leaves it first; with the limit just lowered, more may have to leave.
    if oldest is None:
        return Refusal(
            LimitName.MEMBER_HOUR,
            Text(
                "You have started {videos} in the last hour and may start {limit} an hour.",
                videos=_videos(started),
                limit=limit,
            ),
        )
    frees_at = oldest + HOUR_S
    return Refusal(
        LimitName.MEMBER_HOUR,
        Text(
            "You have started {videos} in the last hour and may start {limit} an hour. "
            "You can start another {when}.",
            videos=_videos(started),
            limit=limit,
            when=_when(frees_at),
        ),
        frees_at,
    )


# The four credit allowances each say their refusals in whole sentences of their own (no clause is translated
# apart and glued on), in the same three shapes: one video dearer than the whole allowance (waiting cannot
# help, so no `frees_at`); over the allowance, with when it frees up; over it, when that is unknown.


def _member_day(check: QuotaCheck) -> Refusal | None:
    limit, used, cost = check.limits.credits_per_day, check.usage.member_credits_today, check.cost_credits
    if limit is None or used + cost <= limit:
        return None
    values: dict[str, Value] = {"used": used, "credits": _credits(limit), "limit": limit}
    if cost > limit:
        return Refusal(
            LimitName.MEMBER_DAY,
            Text(
                "This video costs {cost}, more than your daily limit of {limit} — choose a shorter "
                "duration or a lower resolution. (You have used {used} of your {credits} today.)",
                cost=_credits(cost),
                **values,
            ),
        )
    frees_at = next_day_start(check.usage.now)
    return Refusal(
        LimitName.MEMBER_DAY,
        Text(
            "You have used {used} of your {credits} today; this video costs {cost}. "
            "Your daily credits reset {when}.",
            cost=cost,
            when=_when(frees_at),
            **values,
        ),
        frees_at,
    )


def _member_30_days(check: QuotaCheck) -> Refusal | None:
    limit, used, cost = (
        check.limits.credits_per_30_days,
        check.usage.member_credits_30_days,
        check.cost_credits,
    )
    if limit is None or used + cost <= limit:
        return None
    values: dict[str, Value] = {"used": used, "credits": _credits(limit), "limit": limit}
    if cost > limit:
        return Refusal(
            LimitName.MEMBER_30_DAYS,
            Text(
                "This video costs {cost}, more than your 30-day limit of {limit} — choose a shorter "
                "duration or a lower resolution. "
                "(You have used {used} of your {credits} in the last 30 days.)",
                cost=_credits(cost),
                **values,
            ),
        )
    oldest = check.usage.member_30_days_oldest_at
    if oldest is None:
        return Refusal(
            LimitName.MEMBER_30_DAYS,
            Text(
                "You have used {used} of your {credits} in the last 30 days; this video costs {cost}.",
                cost=cost,
                **values,
            ),
        )
    # Credits leave the rolling window job by job, 30 days after they were spent; the oldest job's credits
    # come back first, though they may not be enough on their own.
    frees_at = oldest + ROLLING_WINDOW_S
    return Refusal(
        LimitName.MEMBER_30_DAYS,
        Text(
            "You have used {used} of your {credits} in the last 30 days; this video costs {cost}. "
            "Credits come back 30 days after they were spent; your oldest come back {when}.",
            cost=cost,
            when=_when(frees_at),
            **values,
        ),
        frees_at,
    )


def _server_day(check: QuotaCheck) -> Refusal | None:
    limit, used, cost = check.rules.credits_per_day, check.usage.server_credits_today, check.cost_credits
    if limit is None or used + cost <= limit:
        return None
    values: dict[str, Value] = {"used": used, "credits": _credits(limit), "limit": limit}
    if cost > limit:
        return Refusal(
            LimitName.SERVER_DAY,
            Text(
                "This video costs {cost}, more than this server's daily limit of {limit} — choose a shorter "
                "duration or a lower resolution. (This server has used {used} of its {credits} today.)",
                cost=_credits(cost),
                **values,
            ),
        )
    frees_at = next_day_start(check.usage.now)
    return Refusal(
        LimitName.SERVER_DAY,
        Text(
            "This server has used {used} of its {credits} today; this video costs {cost}. "
            "The server's daily credits reset {when}.",
            cost=cost,
            when=_when(frees_at),
            **values,
        ),
        frees_at,
    )


def _server_month(check: QuotaCheck) -> Refusal | None:
    limit, used, cost = (
        check.rules.credits_per_month,
        check.usage.server_credits_this_month,
        check.cost_credits,
    )
    if limit is None or used + cost <= limit:
        return None
    values: dict[str, Value] = {"used": used, "credits": _credits(limit), "limit": limit}
    if cost > limit:
        return Refusal(
            LimitName.SERVER_MONTH,
            Text(
                "This video costs {cost}, more than this server's monthly limit of {limit} — choose a "
                "shorter duration or a lower resolution. "
                "(This server has used {used} of its {credits} this month.)",
                cost=_credits(cost),
                **values,
            ),
        )
    frees_at = next_month_start(check.usage.now)
    return Refusal(
        LimitName.SERVER_MONTH,
        Text(
            "This server has used {used} of its {credits} this month; this video costs {cost}. "
            "The server's monthly credits reset {when}.",
            cost=cost,
            when=_when(frees_at),
            **values,
        ),
        frees_at,
    )


_RULES: tuple[Callable[[QuotaCheck], Refusal | None], ...] = (
    _banned,
    _channel,
    _model,
    _resolution,
    _duration,
    _job_cost,
    _banned_word,
    _concurrent,
    _cooldown,
    _member_hour,
    _member_day,
    _member_30_days,
    _server_day,
    _server_month,
)


# --- wording ----------------------------------------------------------------------------------------------


def _when(moment: float) -> str:
    # Rounded up: a relative timestamp that says "now" a moment before the limit frees would mislead.
    return f"<t:{math.ceil(moment)}:R>"


def _credits(count: int) -> Text:
    # A phrase of its own, translated in turn: "1 credit", "20 credits" (the count said in the reader's way).
    return Text("1 credit") if count == 1 else Text("{count} credits", count=count)


def _videos(count: int) -> Text:
    return Text("1 video") if count == 1 else Text("{count} videos", count=count)


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

#: A field value that is a bare number or name: not a sentence to look up, but its number is still written
#: the reader's way (a template that is no literal, so no catalogue is asked for it).
_BARE = "{value}"


def _bare(value: int | str) -> Text:
    return Text(_BARE, value=value)


def limit_fields(limits: MemberLimits, rules: ServerRules | None = None) -> list[tuple[Text, Text]]:
    """(name, value) pairs for showing limits to members and moderators, in any language; "No limit" where
    unset. With `rules`, the server-wide rules follow the member's (see `rule_fields`)."""

    def number(value: int | None) -> Text:
        return Text("No limit") if value is None else _bare(value)

    pairs = [
        (Text("Credits per day"), number(limits.credits_per_day)),
        (Text("Credits per 30 days"), number(limits.credits_per_30_days)),
        (Text("Videos at once"), number(limits.concurrent_jobs)),
        (
            Text("Wait between videos"),
            Text("No limit") if limits.cooldown_s is None else _bare(_seconds(limits.cooldown_s)),
        ),
        (
            Text("Models"),
            Text("Any model")
            if limits.allowed_models is None
            else _bare(", ".join(sorted(limits.allowed_models)))
            if limits.allowed_models
            else Text("None"),
        ),
        (
            Text("Highest resolution"),
            Text("No limit") if limits.max_resolution is None else _bare(limits.max_resolution.value),
        ),
        (
            Text("Longest video"),
            Text("No limit")
            if limits.max_duration_s is None
            else Text("{seconds} s", seconds=limits.max_duration_s),
        ),
        (Text("Videos per hour"), number(limits.videos_per_hour)),
    ]
    return pairs if rules is None else pairs + rule_fields(rules)


def rule_fields(rules: ServerRules) -> list[tuple[Text, Text]]:
    """(name, value) pairs for a server's own rules, in any language; banned members and words only as counts,
    never listed, so that showing the rules does not repeat the words back."""
    channels = rules.allowed_channel_ids

    def number(value: int | None) -> Text:
        return Text("No limit") if value is None else _bare(value)

    return [
        (Text("Server credits per day"), number(rules.credits_per_day)),
        (Text("Server credits per month"), number(rules.credits_per_month)),
        (Text("Most credits per video"), number(rules.max_credits_per_job)),
        (
            Text("Channels"),
            Text("Any channel")
            if channels is None
            else _bare(", ".join(f"<#{c}>" for c in sorted(channels)))
            if channels
            else Text("None"),
        ),
        (Text("Banned members"), _bare(len(rules.banned_user_ids))),
        (Text("Banned words"), _bare(len(rules.banned_words))),
        (
            Text("Audit channel"),
            Text("None") if rules.audit_channel_id is None else _bare(f"<#{rules.audit_channel_id}>"),
        ),
        (
            Text("Budget alerts mention"),
            Text("Nobody") if rules.alert_role_id is None else _bare(f"<@&{rules.alert_role_id}>"),
        ),
    ]


def describe_limits(limits: MemberLimits, rules: ServerRules | None = None) -> list[tuple[str, str]]:
    """`limit_fields` in English."""
    return [(str(name), str(value)) for name, value in limit_fields(limits, rules)]


def describe_rules(rules: ServerRules) -> list[tuple[str, str]]:
    """`rule_fields` in English."""
    return [(str(name), str(value)) for name, value in rule_fields(rules)]
