"""The quota policy: what a video costs, whose limits win, and which limit refuses a request and until when.

Every test runs on a fixed clock (`Usage.now`); the store's counting is simulated by the usage figures given.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from bot.domain.catalogue import default_catalogue
from bot.domain.models import Ratio, Resolution, VideoRequest
from bot.domain.quota import (
    DAY_S,
    DEFAULT_MEMBER_LIMITS,
    HOUR_S,
    BudgetPeriod,
    LimitName,
    MemberLimits,
    QuotaCheck,
    Refusal,
    ServerRules,
    Usage,
    budget_alerts,
    check_quota,
    credits_for,
    day_start,
    describe_limits,
    effective_limits,
    job_cost,
    month_start,
    next_day_start,
    next_month_start,
)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> float:
    """Unix seconds of a UTC wall-clock time."""
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC).timestamp()


NOW = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC
NEXT_MIDNIGHT = 1_700_006_400  # 2023-11-15 00:00:00 UTC
USER = 111
OTHER_USER = 222
CHANNEL = 333
OTHER_CHANNEL = 444
MODEL = "seedance-1.5-pro"
OTHER_MODEL = "seedance-1.0-pro"

REQUEST = VideoRequest(
    model=MODEL,
    prompt="a cat turns its head",
    resolution=Resolution.P480,
    ratio=Ratio.ADAPTIVE,
    duration_s=5,
)


def make_check(
    *,
    request: VideoRequest = REQUEST,
    cost: int = 5,
    channel_id: int | None = CHANNEL,
    limits: MemberLimits | None = None,
    rules: ServerRules | None = None,
    usage: Usage | None = None,
) -> QuotaCheck:
    return QuotaCheck(
        request=request,
        cost_credits=cost,
        user_id=USER,
        channel_id=channel_id,
        limits=limits or MemberLimits(),
        rules=rules or ServerRules(),
        usage=usage or Usage(now=NOW),
    )


def refused(check: QuotaCheck) -> Refusal:
    refusal = check_quota(check)
    assert refusal is not None, "expected the request to be refused"
    return refusal


# --- cost -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resolution", "duration_s", "credits"),
    [
        (Resolution.P480, 5, 5),
        (Resolution.P720, 5, 10),
        (Resolution.P1080, 5, 20),
        (Resolution.P1080, 12, 48),
    ],
)
def test_cost_is_seconds_times_resolution_weight(
    resolution: Resolution, duration_s: int, credits: int
) -> None:
    request = replace(REQUEST, resolution=resolution, duration_s=duration_s)
    assert job_cost(request) == credits
    assert credits_for(default_catalogue().get(MODEL), request) == credits


@pytest.mark.parametrize(
    ("weights", "resolution", "credits"),
    [
        ({Resolution.P480: 3, Resolution.P720: 6}, Resolution.P720, 30),
        ({Resolution.P480: 3, Resolution.P720: 6}, Resolution.P480, 15),
        # A model that prices only some resolutions keeps the default weight for the rest.
        ({Resolution.P720: 5}, Resolution.P480, 5),
    ],
)
def test_a_model_can_set_its_own_weights(
    weights: dict[Resolution, int], resolution: Resolution, credits: int
) -> None:
    spec = replace(default_catalogue().get("seedance-2.0-pro"), credit_weights=weights)
    request = replace(REQUEST, model=spec.key, resolution=resolution, duration_s=5)
    assert credits_for(spec, request) == credits


def test_cost_refuses_to_guess_a_missing_weight_or_the_wrong_model() -> None:
    with pytest.raises(ValueError, match="1080p"):
        job_cost(replace(REQUEST, resolution=Resolution.P1080), {Resolution.P480: 1})
    with pytest.raises(ValueError, match="seedance-2.0-pro"):
        credits_for(default_catalogue().get("seedance-2.0-pro"), REQUEST)


# --- effective limits -------------------------------------------------------------------------------------

GENEROUS_ON_CREDITS = MemberLimits(
    credits_per_day=50,
    credits_per_30_days=300,
    concurrent_jobs=1,
    cooldown_s=120,
    allowed_models=frozenset({"a"}),
    max_resolution=Resolution.P720,
    max_duration_s=5,
    videos_per_hour=2,
)
GENEROUS_ON_THE_REST = MemberLimits(
    credits_per_day=30,
    credits_per_30_days=200,
    concurrent_jobs=4,
    cooldown_s=30,
    allowed_models=frozenset({"b"}),
    max_resolution=Resolution.P1080,
    max_duration_s=10,
    videos_per_hour=6,
)


def test_fresh_install_defaults_are_safe() -> None:
    limits = effective_limits(DEFAULT_MEMBER_LIMITS, None, [], None)
    assert limits == MemberLimits(credits_per_day=20, concurrent_jobs=3)


def test_a_field_set_nowhere_means_no_limit() -> None:
    assert effective_limits(MemberLimits(), None, [MemberLimits()], MemberLimits()) == MemberLimits()


def test_server_default_beats_bot_defaults_field_by_field() -> None:
    server = MemberLimits(credits_per_day=50, cooldown_s=30)
    limits = effective_limits(DEFAULT_MEMBER_LIMITS, server, [], None)
    assert limits == MemberLimits(credits_per_day=50, concurrent_jobs=3, cooldown_s=30)


@pytest.mark.parametrize(
    "roles",
    [[GENEROUS_ON_CREDITS, GENEROUS_ON_THE_REST], [GENEROUS_ON_THE_REST, GENEROUS_ON_CREDITS]],
    ids=["in-order", "reversed"],
)
def test_a_member_gets_the_most_generous_of_their_roles_per_field(roles: list[MemberLimits]) -> None:
    limits = effective_limits(DEFAULT_MEMBER_LIMITS, None, roles, None)
    assert limits == MemberLimits(
        credits_per_day=50,
        credits_per_30_days=300,
        concurrent_jobs=4,
        cooldown_s=30,  # the shorter wait is the more generous
        allowed_models=frozenset({"a", "b"}),
        max_resolution=Resolution.P1080,
        max_duration_s=10,
        videos_per_hour=6,
    )


def test_roles_beat_the_server_default_even_when_stricter() -> None:
    server = MemberLimits(credits_per_day=100, concurrent_jobs=5)
    restricted = MemberLimits(credits_per_day=10)
    limits = effective_limits(DEFAULT_MEMBER_LIMITS, server, [restricted], None)
    # The role sets credits; the concurrent limit it leaves unset comes from the server default.
    assert (limits.credits_per_day, limits.concurrent_jobs) == (10, 5)


def test_member_override_beats_every_role() -> None:
    override = MemberLimits(credits_per_day=5, cooldown_s=0)
    limits = effective_limits(
        DEFAULT_MEMBER_LIMITS, None, [GENEROUS_ON_CREDITS, GENEROUS_ON_THE_REST], override
    )
    assert (limits.credits_per_day, limits.cooldown_s) == (5, 0)
    assert limits.concurrent_jobs == 4  # not overridden: still the best role's value


def test_allowed_models_union_only_counts_roles_that_set_them() -> None:
    server = MemberLimits(allowed_models=frozenset({"c"}))
    roles = [MemberLimits(allowed_models=frozenset({"a"})), MemberLimits(credits_per_day=40)]
    limits = effective_limits(DEFAULT_MEMBER_LIMITS, server, roles, None)
    # A role that leaves models unset inherits; it does not open every model.
    assert limits.allowed_models == frozenset({"a"})


# --- periods ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "start", "next_start"),
    [
        (utc(2023, 11, 14, 22, 13, 20), utc(2023, 11, 14), utc(2023, 11, 15)),
        (utc(2023, 11, 14, 23, 59, 59), utc(2023, 11, 14), utc(2023, 11, 15)),
        (utc(2023, 11, 15), utc(2023, 11, 15), utc(2023, 11, 16)),
        (utc(2023, 12, 31, 23, 59, 59), utc(2023, 12, 31), utc(2024, 1, 1)),
    ],
    ids=["evening", "last-second", "midnight", "new-year"],
)
def test_days_run_midnight_to_midnight_utc(now: float, start: float, next_start: float) -> None:
    assert (day_start(now), next_day_start(now)) == (start, next_start)


@pytest.mark.parametrize(
    ("now", "start", "next_start"),
    [
        (utc(2023, 11, 14, 22), utc(2023, 11, 1), utc(2023, 12, 1)),
        (utc(2023, 12, 31, 23, 59, 59), utc(2023, 12, 1), utc(2024, 1, 1)),
        (utc(2024, 1, 1), utc(2024, 1, 1), utc(2024, 2, 1)),
        (utc(2024, 2, 29, 12), utc(2024, 2, 1), utc(2024, 3, 1)),
    ],
    ids=["november", "december-to-january", "first-instant", "leap-february"],
)
def test_months_are_calendar_months_utc(now: float, start: float, next_start: float) -> None:
    assert (month_start(now), next_month_start(now)) == (start, next_start)


# --- every limit at its boundary --------------------------------------------------------------------------

BOUNDARIES = [
    # (limits, rules, usage, request, channel, cost, expected)
    pytest.param(None, None, None, REQUEST, CHANNEL, 5, None, id="no-limits"),
    pytest.param(None, ServerRules(banned_user_ids=frozenset({OTHER_USER})), None, REQUEST, CHANNEL, 5, None,
                 id="someone-else-banned"),
    pytest.param(None, ServerRules(banned_user_ids=frozenset({USER})), None, REQUEST, CHANNEL, 5,
                 LimitName.BANNED, id="banned"),
    pytest.param(None, ServerRules(allowed_channel_ids=frozenset({CHANNEL})), None, REQUEST, CHANNEL, 5, None,
                 id="allowed-channel"),
    pytest.param(None, ServerRules(allowed_channel_ids=frozenset({OTHER_CHANNEL})), None, REQUEST, CHANNEL, 5,
                 LimitName.CHANNEL, id="other-channel"),
    pytest.param(None, ServerRules(allowed_channel_ids=frozenset({CHANNEL})), None, REQUEST, None, 5,
                 LimitName.CHANNEL, id="no-channel-when-channels-restricted"),
    pytest.param(MemberLimits(allowed_models=frozenset({MODEL})), None, None, REQUEST, CHANNEL, 5, None,
                 id="allowed-model"),
    pytest.param(MemberLimits(allowed_models=frozenset({OTHER_MODEL})), None, None, REQUEST, CHANNEL, 5,
                 LimitName.MODEL, id="other-model"),
    pytest.param(MemberLimits(allowed_models=frozenset()), None, None, REQUEST, CHANNEL, 5, LimitName.MODEL,
                 id="no-models"),
    pytest.param(MemberLimits(max_resolution=Resolution.P720), None, None,
                 replace(REQUEST, resolution=Resolution.P720), CHANNEL, 10, None, id="resolution-at-max"),
    pytest.param(MemberLimits(max_resolution=Resolution.P720), None, None,
                 replace(REQUEST, resolution=Resolution.P1080), CHANNEL, 20, LimitName.RESOLUTION,
                 id="resolution-over-max"),
    pytest.param(MemberLimits(max_duration_s=5), None, None, REQUEST, CHANNEL, 5, None, id="duration-at-max"),
    pytest.param(MemberLimits(max_duration_s=5), None, None, replace(REQUEST, duration_s=6), CHANNEL, 6,
                 LimitName.DURATION, id="duration-over-max"),
    pytest.param(None, ServerRules(max_credits_per_job=5), None, REQUEST, CHANNEL, 5, None,
                 id="job-cost-at-cap"),
    pytest.param(None, ServerRules(max_credits_per_job=4), None, REQUEST, CHANNEL, 5, LimitName.JOB_COST,
                 id="job-cost-over-cap"),
    pytest.param(MemberLimits(videos_per_hour=3), None, Usage(now=NOW, member_videos_last_hour=2), REQUEST,
                 CHANNEL, 5, None, id="one-below-hourly"),
    pytest.param(MemberLimits(videos_per_hour=3), None, Usage(now=NOW, member_videos_last_hour=3), REQUEST,
                 CHANNEL, 5, LimitName.MEMBER_HOUR, id="at-hourly"),
    pytest.param(MemberLimits(videos_per_hour=0), None, None, REQUEST, CHANNEL, 5, LimitName.MEMBER_HOUR,
                 id="hourly-zero"),
    pytest.param(MemberLimits(concurrent_jobs=3), None, Usage(now=NOW, member_active_jobs=2), REQUEST,
                 CHANNEL, 5, None, id="one-below-concurrent"),
    pytest.param(MemberLimits(concurrent_jobs=3), None, Usage(now=NOW, member_active_jobs=3), REQUEST,
                 CHANNEL, 5, LimitName.CONCURRENT, id="at-concurrent"),
    pytest.param(MemberLimits(concurrent_jobs=0), None, None, REQUEST, CHANNEL, 5, LimitName.CONCURRENT,
                 id="concurrent-zero"),
    pytest.param(MemberLimits(cooldown_s=60), None, Usage(now=NOW, member_last_submit_at=NOW - 60), REQUEST,
                 CHANNEL, 5, None, id="cooldown-just-over"),
    pytest.param(MemberLimits(cooldown_s=60), None, Usage(now=NOW, member_last_submit_at=NOW - 59), REQUEST,
                 CHANNEL, 5, LimitName.COOLDOWN, id="cooldown-one-second-short"),
    pytest.param(MemberLimits(cooldown_s=60), None, Usage(now=NOW), REQUEST, CHANNEL, 5, None,
                 id="cooldown-first-video"),
    pytest.param(MemberLimits(credits_per_day=20), None, Usage(now=NOW, member_credits_today=15), REQUEST,
                 CHANNEL, 5, None, id="member-day-exactly-full"),
    pytest.param(MemberLimits(credits_per_day=20), None, Usage(now=NOW, member_credits_today=16), REQUEST,
                 CHANNEL, 5, LimitName.MEMBER_DAY, id="member-day-one-over"),
    pytest.param(MemberLimits(credits_per_30_days=100), None, Usage(now=NOW, member_credits_30_days=95),
                 REQUEST, CHANNEL, 5, None, id="member-30-days-exactly-full"),
    pytest.param(MemberLimits(credits_per_30_days=100), None, Usage(now=NOW, member_credits_30_days=96),
                 REQUEST, CHANNEL, 5, LimitName.MEMBER_30_DAYS, id="member-30-days-one-over"),
    pytest.param(None, ServerRules(credits_per_day=500), Usage(now=NOW, server_credits_today=495), REQUEST,
                 CHANNEL, 5, None, id="server-day-exactly-full"),
    pytest.param(None, ServerRules(credits_per_day=500), Usage(now=NOW, server_credits_today=496), REQUEST,
                 CHANNEL, 5, LimitName.SERVER_DAY, id="server-day-one-over"),
    pytest.param(None, ServerRules(credits_per_month=9000), Usage(now=NOW, server_credits_this_month=8995),
                 REQUEST, CHANNEL, 5, None, id="server-month-exactly-full"),
    pytest.param(None, ServerRules(credits_per_month=9000), Usage(now=NOW, server_credits_this_month=8996),
                 REQUEST, CHANNEL, 5, LimitName.SERVER_MONTH, id="server-month-one-over"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("limits", "rules", "usage", "request_", "channel_id", "cost", "expected"), BOUNDARIES
)
def test_every_limit_allows_up_to_its_boundary_and_refuses_past_it(
    limits: MemberLimits | None,
    rules: ServerRules | None,
    usage: Usage | None,
    request_: VideoRequest,
    channel_id: int | None,
    cost: int,
    expected: LimitName | None,
) -> None:
    check = make_check(
        request=request_, cost=cost, channel_id=channel_id, limits=limits, rules=rules, usage=usage
    )
    refusal = check_quota(check)
    assert (refusal.limit if refusal else None) == expected


def test_limits_are_checked_in_order_the_first_blocking_one_is_reported() -> None:
    request = replace(REQUEST, resolution=Resolution.P720)  # costs 10
    check = make_check(
        request=request,
        cost=10,
        limits=MemberLimits(
            credits_per_day=20,
            credits_per_30_days=100,
            concurrent_jobs=1,
            cooldown_s=60,
            allowed_models=frozenset({OTHER_MODEL}),
            max_resolution=Resolution.P480,
            max_duration_s=4,
            videos_per_hour=1,
        ),
        rules=ServerRules(
            credits_per_day=500,
            credits_per_month=9000,
            allowed_channel_ids=frozenset({OTHER_CHANNEL}),
            banned_user_ids=frozenset({USER}),
            banned_words=("cat",),
            max_credits_per_job=9,
        ),
        usage=Usage(
            now=NOW,
            member_videos_last_hour=1,
            member_hour_oldest_at=NOW - 100,
            member_credits_today=20,
            member_credits_30_days=100,
            member_active_jobs=1,
            member_last_submit_at=NOW - 10,
            server_credits_today=500,
            server_credits_this_month=9000,
        ),
    )
    # Each step lifts the limit just reported; the next one in the documented order must surface.
    lift_in_order: list[tuple[LimitName, Callable[[QuotaCheck], QuotaCheck]]] = [
        (LimitName.BANNED, lambda c: replace(c, rules=replace(c.rules, banned_user_ids=frozenset()))),
        (LimitName.CHANNEL, lambda c: replace(c, rules=replace(c.rules, allowed_channel_ids=None))),
        (LimitName.MODEL, lambda c: replace(c, limits=replace(c.limits, allowed_models=None))),
        (LimitName.RESOLUTION, lambda c: replace(c, limits=replace(c.limits, max_resolution=None))),
        (LimitName.DURATION, lambda c: replace(c, limits=replace(c.limits, max_duration_s=None))),
        (LimitName.JOB_COST, lambda c: replace(c, rules=replace(c.rules, max_credits_per_job=None))),
        (LimitName.BANNED_WORD, lambda c: replace(c, rules=replace(c.rules, banned_words=()))),
        (LimitName.CONCURRENT, lambda c: replace(c, limits=replace(c.limits, concurrent_jobs=None))),
        (LimitName.COOLDOWN, lambda c: replace(c, limits=replace(c.limits, cooldown_s=None))),
        (LimitName.MEMBER_HOUR, lambda c: replace(c, limits=replace(c.limits, videos_per_hour=None))),
        (LimitName.MEMBER_DAY, lambda c: replace(c, limits=replace(c.limits, credits_per_day=None))),
        (LimitName.MEMBER_30_DAYS, lambda c: replace(c, limits=replace(c.limits, credits_per_30_days=None))),
        (LimitName.SERVER_DAY, lambda c: replace(c, rules=replace(c.rules, credits_per_day=None))),
        (LimitName.SERVER_MONTH, lambda c: replace(c, rules=replace(c.rules, credits_per_month=None))),
    ]
    assert [name for name, _ in lift_in_order] == list(LimitName)  # every limit is covered
    for expected, lift in lift_in_order:
        assert refused(check).limit == expected
        check = lift(check)
    assert check_quota(check) is None


# --- banned words -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("banned", "prompt", "blocked"),
    [
        (("ass",), "a class of students", False),
        (("ass",), "passing clouds", False),
        (("ass",), "what an ASS", True),
        (("ass",), "the donkey, an ass.", True),
        (("Ass",), "an ass!", True),
        (("cat",), "two cats play", False),
        (("cat",), "(cat) jumps", True),
        (("bad word",), "a Bad  Word here", True),
        (("bad word",), "bad-word", True),
        (("bad word",), "bad_word", True),
        (("bad word",), "badword", False),
        (("bad word",), "bad words", False),
        (("bad word",), "bad and word", False),
        (("f*ck",), "f*ck this", True),
        (("f*ck",), "fuck this", False),
        (("@everyone",), "ping @everyone now", True),  # an entry may start with punctuation
        (("@everyone",), "ping me@everyone.com", False),
        (("ass",), "ＡＳＳ", True),  # full-width letters are folded before matching
        (("", "   "), "anything at all", False),
    ],
)
def test_banned_words_match_whole_words_and_phrases_case_insensitively(
    banned: tuple[str, ...], prompt: str, blocked: bool
) -> None:
    check = make_check(request=replace(REQUEST, prompt=prompt), rules=ServerRules(banned_words=banned))
    refusal = check_quota(check)
    assert (refusal is not None and refusal.limit == LimitName.BANNED_WORD) == blocked


def test_banned_word_refusal_quotes_the_whole_offending_phrase() -> None:
    check = make_check(
        request=replace(REQUEST, prompt="a Bad Word appears"),
        rules=ServerRules(banned_words=("bad", "bad word")),
    )
    refusal = refused(check)
    assert "“Bad Word”" in refusal.message
    assert refusal.frees_at is None


# --- when limits free up ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "frees_at"),
    [
        (utc(2023, 11, 14, 23, 59, 59), utc(2023, 11, 15)),
        (utc(2023, 11, 15), utc(2023, 11, 16)),
    ],
    ids=["one-second-before-midnight", "at-midnight"],
)
def test_a_full_day_frees_at_the_next_midnight_utc(now: float, frees_at: float) -> None:
    for limits, rules, usage in [
        (MemberLimits(credits_per_day=20), None, Usage(now=now, member_credits_today=20)),
        (None, ServerRules(credits_per_day=500), Usage(now=now, server_credits_today=500)),
    ]:
        refusal = refused(make_check(limits=limits, rules=rules, usage=usage))
        assert refusal.frees_at == frees_at
        assert f"<t:{int(frees_at)}:R>" in refusal.message


def test_usage_counted_from_midnight_lets_the_member_in_again() -> None:
    limits = MemberLimits(credits_per_day=20)
    before = make_check(
        limits=limits, usage=Usage(now=utc(2023, 11, 14, 23, 59, 59), member_credits_today=20)
    )
    # At midnight the store starts a new day's count; the policy only sees the fresh figure.
    after = make_check(limits=limits, usage=Usage(now=utc(2023, 11, 15), member_credits_today=0))
    assert refused(before).limit == LimitName.MEMBER_DAY
    assert check_quota(after) is None


def test_a_full_server_month_in_december_frees_on_the_first_of_january() -> None:
    usage = Usage(now=utc(2023, 12, 31, 23, 59, 59), server_credits_this_month=9000)
    refusal = refused(make_check(rules=ServerRules(credits_per_month=9000), usage=usage))
    assert refusal.limit == LimitName.SERVER_MONTH
    assert refusal.frees_at == utc(2024, 1, 1)
    assert f"<t:{int(utc(2024, 1, 1))}:R>" in refusal.message


def test_the_30_day_window_frees_when_the_oldest_credits_are_30_days_old() -> None:
    oldest = NOW - 29 * DAY_S
    usage = Usage(now=NOW, member_credits_30_days=100, member_30_days_oldest_at=oldest)
    refusal = refused(make_check(limits=MemberLimits(credits_per_30_days=100), usage=usage))
    assert refusal.frees_at == oldest + 30 * DAY_S == NOW + DAY_S
    assert f"<t:{int(NOW + DAY_S)}:R>" in refusal.message


def test_the_30_day_window_without_a_known_oldest_job_gives_no_time() -> None:
    usage = Usage(now=NOW, member_credits_30_days=100)
    refusal = refused(make_check(limits=MemberLimits(credits_per_30_days=100), usage=usage))
    assert refusal.frees_at is None
    assert "<t:" not in refusal.message


def test_cooldown_frees_when_the_wait_since_the_last_video_is_over() -> None:
    usage = Usage(now=NOW, member_last_submit_at=NOW - 15)
    refusal = refused(make_check(limits=MemberLimits(cooldown_s=90), usage=usage))
    assert refusal.frees_at == NOW + 75
    assert "1 min 30 s" in refusal.message
    assert "15 s ago" in refusal.message
    assert f"<t:{int(NOW + 75)}:R>" in refusal.message


def test_concurrent_limit_frees_when_a_running_video_finishes_not_at_a_time() -> None:
    usage = Usage(now=NOW, member_active_jobs=3)
    refusal = refused(make_check(limits=MemberLimits(concurrent_jobs=3), usage=usage))
    assert refusal.frees_at is None
    assert "3 videos in progress" in refusal.message
    assert "finishes" in refusal.message


# --- messages ---------------------------------------------------------------------------------------------


def test_daily_refusal_reads_as_the_member_should_see_it() -> None:
    usage = Usage(now=NOW, member_credits_today=18)
    refusal = refused(make_check(limits=MemberLimits(credits_per_day=20), usage=usage))
    assert (refusal.limit, refusal.message, refusal.frees_at) == (
        LimitName.MEMBER_DAY,
        "You have used 18 of your 20 credits today; this video costs 5. "
        f"Your daily credits reset <t:{NEXT_MIDNIGHT}:R>.",
        NEXT_MIDNIGHT,
    )


@pytest.mark.parametrize(
    ("limits", "rules", "whose_limit"),
    [
        (MemberLimits(credits_per_day=20), None, "your daily limit of 20"),
        (MemberLimits(credits_per_30_days=20), None, "your 30-day limit of 20"),
        (None, ServerRules(credits_per_day=20), "this server's daily limit of 20"),
        (None, ServerRules(credits_per_month=20), "this server's monthly limit of 20"),
    ],
)
def test_a_video_dearer_than_the_whole_limit_says_so_and_that_waiting_will_not_help(
    limits: MemberLimits | None, rules: ServerRules | None, whose_limit: str
) -> None:
    request = replace(REQUEST, resolution=Resolution.P1080, duration_s=10)
    refusal = refused(make_check(request=request, cost=40, limits=limits, rules=rules))
    assert (
        f"This video costs 40 credits, more than {whose_limit} — "
        "choose a shorter duration or a lower resolution." in refusal.message
    )
    assert refusal.frees_at is None


@pytest.mark.parametrize(
    ("limits", "rules", "usage", "expected_text"),
    [
        (
            MemberLimits(credits_per_30_days=100),
            None,
            Usage(now=NOW, member_credits_30_days=98),
            "You have used 98 of your 100 credits in the last 30 days; this video costs 5.",
        ),
        (
            None,
            ServerRules(credits_per_day=500),
            Usage(now=NOW, server_credits_today=498),
            "This server has used 498 of its 500 credits today; this video costs 5. "
            f"The server's daily credits reset <t:{NEXT_MIDNIGHT}:R>.",
        ),
        (
            None,
            ServerRules(credits_per_month=9000),
            Usage(now=NOW, server_credits_this_month=8999),
            "This server has used 8999 of its 9000 credits this month; this video costs 5. "
            f"The server's monthly credits reset <t:{int(utc(2023, 12, 1))}:R>.",
        ),
    ],
)
def test_credit_refusals_give_usage_limit_and_cost(
    limits: MemberLimits | None, rules: ServerRules | None, usage: Usage, expected_text: str
) -> None:
    assert expected_text in refused(make_check(limits=limits, rules=rules, usage=usage)).message


@pytest.mark.parametrize(
    ("limits", "rules", "request_", "expected_texts"),
    [
        (None, ServerRules(allowed_channel_ids=frozenset({2, 1})), REQUEST, ["<#1>, <#2>"]),
        (MemberLimits(allowed_models=frozenset({"m-b", "m-a"})), None, REQUEST, [MODEL, "m-a, m-b"]),
        (
            MemberLimits(max_resolution=Resolution.P720),
            None,
            replace(REQUEST, resolution=Resolution.P1080),
            ["720p", "1080p"],
        ),
        (MemberLimits(max_duration_s=5), None, replace(REQUEST, duration_s=8), ["5 s", "8 s"]),
    ],
    ids=["channel", "model", "resolution", "duration"],
)
def test_option_refusals_name_what_was_asked_and_what_is_allowed(
    limits: MemberLimits | None, rules: ServerRules | None, request_: VideoRequest, expected_texts: list[str]
) -> None:
    refusal = refused(make_check(request=request_, limits=limits, rules=rules))
    assert refusal.frees_at is None  # waiting will not change these
    for text in expected_texts:
        assert text in refusal.message


# --- describing limits ------------------------------------------------------------------------------------


def test_describe_fresh_install_limits() -> None:
    assert describe_limits(DEFAULT_MEMBER_LIMITS) == [
        ("Credits per day", "20"),
        ("Credits per 30 days", "No limit"),
        ("Videos at once", "3"),
        ("Wait between videos", "No limit"),
        ("Models", "Any model"),
        ("Highest resolution", "No limit"),
        ("Longest video", "No limit"),
        ("Videos per hour", "No limit"),
    ]


def test_describe_every_limit_and_server_rule_without_revealing_banned_words() -> None:
    limits = MemberLimits(
        credits_per_day=40,
        credits_per_30_days=400,
        concurrent_jobs=2,
        cooldown_s=90,
        allowed_models=frozenset({"m-b", "m-a"}),
        max_resolution=Resolution.P720,
        max_duration_s=10,
        videos_per_hour=4,
    )
    rules = ServerRules(
        credits_per_day=500,
        allowed_channel_ids=frozenset({2, 1}),
        banned_user_ids=frozenset({7}),
        banned_words=("secretword", "other"),
        max_credits_per_job=20,
        audit_channel_id=9,
        alert_role_id=8,
    )
    described = describe_limits(limits, rules)
    assert dict(described) == {
        "Credits per day": "40",
        "Credits per 30 days": "400",
        "Videos at once": "2",
        "Wait between videos": "1 min 30 s",
        "Models": "m-a, m-b",
        "Highest resolution": "720p",
        "Longest video": "10 s",
        "Videos per hour": "4",
        "Server credits per day": "500",
        "Server credits per month": "No limit",
        "Most credits per video": "20",
        "Channels": "<#1>, <#2>",
        "Banned members": "1",
        "Banned words": "2",
        "Audit channel": "<#9>",
        "Budget alerts mention": "<@&8>",
    }
    assert "secretword" not in repr(described)


# --- spend controls: the per-job cap, the hourly burst limit, budget alerts -------------------------------


def test_the_per_job_cap_names_the_cost_and_the_cap_and_waiting_will_not_help() -> None:
    request = replace(REQUEST, resolution=Resolution.P720, duration_s=6)  # 12 credits
    refusal = refused(make_check(request=request, cost=12, rules=ServerRules(max_credits_per_job=10)))
    assert refusal.limit is LimitName.JOB_COST
    assert "costs 12 credits" in refusal.message and "at most 10 credits" in refusal.message
    assert refusal.frees_at is None


def test_the_hourly_limit_says_when_the_next_video_is_allowed() -> None:
    usage = Usage(now=NOW, member_videos_last_hour=3, member_hour_oldest_at=NOW - 1_000)
    refusal = refused(make_check(limits=MemberLimits(videos_per_hour=3), usage=usage))
    assert refusal.limit is LimitName.MEMBER_HOUR
    assert refusal.frees_at == NOW - 1_000 + HOUR_S
    assert "3 videos in the last hour" in refusal.message and "3 an hour" in refusal.message
    assert f"<t:{int(NOW - 1_000 + HOUR_S)}:R>" in refusal.message


def test_budget_alerts_are_the_thresholds_reached_in_each_period() -> None:
    rules = ServerRules(credits_per_day=100, credits_per_month=1_000)
    now = utc(2026, 11, 30, 13)
    assert budget_alerts(rules, day_used=49, month_used=499, now=now) == []
    reached = budget_alerts(rules, day_used=80, month_used=500, now=now)
    assert [(a.period, a.percent, a.period_key) for a in reached] == [
        (BudgetPeriod.DAY, 50, "2026-11-30"),
        (BudgetPeriod.DAY, 80, "2026-11-30"),
        (BudgetPeriod.MONTH, 50, "2026-11"),
    ]
    assert {a.key for a in reached} == {"day:2026-11-30:50", "day:2026-11-30:80", "month:2026-11:50"}
    over = budget_alerts(rules, day_used=130, month_used=0, now=now)
    assert [a.percent for a in over] == [50, 80, 100]


def test_budget_alerts_are_exact_on_small_budgets_and_absent_without_one() -> None:
    # 80 % of 5 credits is 4: reached at 4, not at 3.
    rules = ServerRules(credits_per_day=5)
    assert [a.percent for a in budget_alerts(rules, day_used=3, month_used=3, now=NOW)] == [50]
    assert [a.percent for a in budget_alerts(rules, day_used=4, month_used=4, now=NOW)] == [50, 80]
    assert budget_alerts(ServerRules(), day_used=10**6, month_used=10**6, now=NOW) == []
    assert budget_alerts(ServerRules(credits_per_day=0), day_used=0, month_used=0, now=NOW) == []
