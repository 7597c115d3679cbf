"""Quotas, moderators' answers and the audit channel in every language (catalogue domain "admin"): every
sentence the quota policy, the audit channel and the moderators' cog write is in every language with the
same placeholders and numbers; each quota refusal is one whole sentence said with the same numbers in each
language; audit lines go out in the server's language; and which language a public post uses, in order."""

from __future__ import annotations

import re
import string
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract
from babel.messages.pofile import read_po

from bot.domain.models import Ratio, Resolution, VideoRequest
from bot.domain.quota import (
    BudgetAlert,
    BudgetPeriod,
    LimitName,
    MemberLimits,
    QuotaCheck,
    Refusal,
    ServerRules,
    Usage,
    check_quota,
    limit_fields,
)
from bot.domain.text import Text
from bot.i18n import LOCALES_DIR, Language, translator
from bot.jobs.audit import AuditPost, alert_sentence
from bot.jobs.languages import SERVER_CACHE_S, MemberLanguages
from bot.jobs.quota import QuotaExceededError
from cogs.support.audit import DiscordAuditSink
from cogs.support.errors import describe_failure

ROOT = Path(__file__).resolve().parents[2]
#: Where the admin domain's sentences are written, as `Text("…")`.
SOURCES = (ROOT / "bot/domain/quota.py", ROOT / "bot/jobs/audit.py", ROOT / "cogs/quota.py")
TRANSLATED = [language for language in Language if language is not Language.ENGLISH]
PLACEHOLDER = re.compile(r"\{[a-z_]+\}")
NOW = 1_700_000_000.0


def admin_catalogue(language: Language) -> Catalog:
    with (LOCALES_DIR / language.folder / "LC_MESSAGES" / "admin.po").open("rb") as source:
        return read_po(source, locale=language.babel, abort_invalid=True)


def templates() -> dict[str, str]:
    """Every `Text("…")` template of the admin sources, with where it is written."""
    found: dict[str, str] = {}
    for path in SOURCES:
        with path.open("rb") as source:
            for line, message, _, _ in extract("python", source, keywords={"Text": None}):
                template = message[0] if isinstance(message, tuple) else message
                if template:
                    found.setdefault(template, f"{path.relative_to(ROOT)}:{line}")
    return found


def placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


# --- the catalogues ---------------------------------------------------------------------------------------


def test_the_sources_have_admin_sentences_to_check() -> None:
    found = templates()
    assert "You have used {used} of your {credits} today; this video costs {cost}. " in "".join(found)
    assert "Nutzung" not in "".join(found)  # English sources
    assert len(found) > 80


@pytest.mark.parametrize("language", TRANSLATED, ids=str)
def test_every_admin_sentence_is_in_the_admin_catalogue_of_every_language(language: Language) -> None:
    catalogue = admin_catalogue(language)
    ids = {message.id for message in catalogue if message.id}
    missing = {template: where for template, where in templates().items() if template not in ids}
    assert missing == {}
    assert ids <= set(templates()), "stale entries: sentences no source writes any more"


@pytest.mark.parametrize("language", TRANSLATED, ids=str)
def test_each_entry_keeps_every_placeholder_and_number_and_is_flagged(language: Language) -> None:
    for message in admin_catalogue(language):
        if not message.id:
            continue
        english, said = str(message.id), str(message.string)
        assert said and not message.fuzzy, english
        assert placeholders(said) == placeholders(english), (english, said)
        assert ("python-brace-format" in message.flags) == bool(PLACEHOLDER.search(english)), english
        for number in re.findall(r"\d+", PLACEHOLDER.sub("", english)):
            assert number in said, (english, said, number)  # "30 days", "0 an hour", "1 credit"


@pytest.mark.parametrize("language", TRANSLATED, ids=str)
def test_the_header_names_the_language_and_the_classic_plural_rule(language: Language) -> None:
    text = (LOCALES_DIR / language.folder / "LC_MESSAGES" / "admin.po").read_text(encoding="utf-8")
    rule = {
        "fr": "nplurals=2; plural=(n > 1);",
        "pt_BR": "nplurals=2; plural=(n > 1);",
        "ja": "nplurals=1; plural=0;",
        "zh_CN": "nplurals=1; plural=0;",
    }.get(language.folder, "nplurals=2; plural=(n != 1);")
    assert f'"Language: {language.folder}\\n"' in text
    assert f'"Plural-Forms: {rule}\\n"' in text


@pytest.mark.parametrize("language", [Language.GERMAN, Language.FRENCH, Language.ITALIAN, Language.SPANISH])
def test_the_polite_form_is_used(language: Language) -> None:
    informal = {
        Language.GERMAN: r"\b(du|dein|deine|dich|dir)\b",
        Language.FRENCH: r"\b(tu|ton|ta|tes|toi)\b",
        Language.ITALIAN: r"\b(tuo|tua|tuoi|ti)\b",
        Language.SPANISH: r"\b(tu|tus|tienes|has)\b",
    }[language]
    for message in admin_catalogue(language):
        if message.id:
            assert not re.search(informal, PLACEHOLDER.sub("", str(message.string)), re.IGNORECASE), (
                message.string
            )


# --- quota refusals: whole sentences, the same numbers in every language ----------------------------------


def check(
    *,
    limits: MemberLimits | None = None,
    rules: ServerRules | None = None,
    usage: Usage | None = None,
    cost: int = 5,
) -> QuotaCheck:
    return QuotaCheck(
        request=VideoRequest(
            model="seedance-1.5-pro",
            prompt="a bad word here",
            duration_s=5,
            resolution=Resolution.P1080,
            ratio=Ratio.ADAPTIVE,
        ),
        cost_credits=cost,
        user_id=7,
        channel_id=3,
        limits=limits or MemberLimits(),
        rules=rules or ServerRules(),
        usage=usage or Usage(now=NOW),
        model_names={"seedance-1.5-pro": "Seedance 1.5 Pro", "other": "Other"},
    )


#: One check per refusal the policy can give (each shape of each limit), and the refusal it must give.
CASES: dict[str, tuple[QuotaCheck, LimitName]] = {
    "banned": (check(rules=ServerRules(banned_user_ids=frozenset({7}))), LimitName.BANNED),
    "no channel": (check(rules=ServerRules(allowed_channel_ids=frozenset())), LimitName.CHANNEL),
    "other channel": (check(rules=ServerRules(allowed_channel_ids=frozenset({4}))), LimitName.CHANNEL),
    "no model": (check(limits=MemberLimits(allowed_models=frozenset())), LimitName.MODEL),
    "other model": (check(limits=MemberLimits(allowed_models=frozenset({"other"}))), LimitName.MODEL),
    "resolution": (check(limits=MemberLimits(max_resolution=Resolution.P720)), LimitName.RESOLUTION),
    "duration": (check(limits=MemberLimits(max_duration_s=4)), LimitName.DURATION),
    "job cost": (check(rules=ServerRules(max_credits_per_job=3)), LimitName.JOB_COST),
    "banned word": (check(rules=ServerRules(banned_words=("bad word",))), LimitName.BANNED_WORD),
    "none at once": (check(limits=MemberLimits(concurrent_jobs=0)), LimitName.CONCURRENT),
    "at once": (
        check(limits=MemberLimits(concurrent_jobs=2), usage=Usage(now=NOW, member_active_jobs=2)),
        LimitName.CONCURRENT,
    ),
    "cooldown": (
        check(limits=MemberLimits(cooldown_s=90), usage=Usage(now=NOW, member_last_submit_at=NOW - 15)),
        LimitName.COOLDOWN,
    ),
    "none an hour": (check(limits=MemberLimits(videos_per_hour=0)), LimitName.MEMBER_HOUR),
    "hour": (
        check(
            limits=MemberLimits(videos_per_hour=3),
            usage=Usage(now=NOW, member_videos_last_hour=3, member_hour_oldest_at=NOW - 1_000),
        ),
        LimitName.MEMBER_HOUR,
    ),
    "hour, oldest unknown": (
        check(limits=MemberLimits(videos_per_hour=3), usage=Usage(now=NOW, member_videos_last_hour=3)),
        LimitName.MEMBER_HOUR,
    ),
    "day": (
        check(limits=MemberLimits(credits_per_day=20), usage=Usage(now=NOW, member_credits_today=18)),
        LimitName.MEMBER_DAY,
    ),
    "day, dearer than all": (check(limits=MemberLimits(credits_per_day=4)), LimitName.MEMBER_DAY),
    "30 days": (
        check(
            limits=MemberLimits(credits_per_30_days=40),
            usage=Usage(now=NOW, member_credits_30_days=38, member_30_days_oldest_at=NOW - 86_400),
        ),
        LimitName.MEMBER_30_DAYS,
    ),
    "30 days, oldest unknown": (
        check(limits=MemberLimits(credits_per_30_days=40), usage=Usage(now=NOW, member_credits_30_days=38)),
        LimitName.MEMBER_30_DAYS,
    ),
    "30 days, dearer than all": (check(limits=MemberLimits(credits_per_30_days=1)), LimitName.MEMBER_30_DAYS),
    "server day": (
        check(rules=ServerRules(credits_per_day=100), usage=Usage(now=NOW, server_credits_today=99)),
        LimitName.SERVER_DAY,
    ),
    "server day, dearer than all": (check(rules=ServerRules(credits_per_day=4)), LimitName.SERVER_DAY),
    "server month": (
        check(rules=ServerRules(credits_per_month=900), usage=Usage(now=NOW, server_credits_this_month=899)),
        LimitName.SERVER_MONTH,
    ),
    "server month, dearer than all": (check(rules=ServerRules(credits_per_month=2)), LimitName.SERVER_MONTH),
}


def refusal_of(name: str) -> Refusal:
    quota_check, limit = CASES[name]
    refusal = check_quota(quota_check)
    assert refusal is not None and refusal.limit is limit, name
    return refusal


def sentences_of(text: Text) -> list[Text]:
    """`text` and every sentence among its values."""
    return [
        text,
        *(
            inner
            for value in text.values.values()
            if isinstance(value, Text)
            for inner in sentences_of(value)
        ),
    ]


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_quota_refusal_is_one_whole_sentence_with_the_same_numbers_in_every_language(name: str) -> None:
    refusal = refusal_of(name)
    english = refusal.message
    # One sentence, not clauses glued together: no value of the refusal is itself a clause of a sentence.
    assert all(len(str(value)) < 40 for value in refusal.text.values.values()), refusal.text.values
    for language in TRANSLATED:
        tr = translator(language)
        said = tr.text(refusal.text)
        for sentence in sentences_of(refusal.text):
            assert tr.lookup(sentence.template) is not None, (language, sentence.template)
        assert said != english, language
        # Every number of the English, each as often (the timestamp too); a language may add its own ("1 日",
        # "1 時間": "daily", "an hour").
        numbers = Counter(re.findall(r"\d+", said))
        assert numbers >= Counter(re.findall(r"\d+", english)), (language, said)


def test_the_refusals_english_is_what_the_policy_always_said() -> None:
    assert refusal_of("day").message == (
        "You have used 18 of your 20 credits today; this video costs 5. "
        "Your daily credits reset <t:1700006400:R>."
    )
    assert refusal_of("day, dearer than all").message == (
        "This video costs 5 credits, more than your daily limit of 4 — choose a shorter duration or a lower "
        "resolution. (You have used 0 of your 4 credits today.)"
    )
    assert refusal_of("30 days, dearer than all").message.endswith(
        "(You have used 0 of your 1 credit in the last 30 days.)"
    )
    assert refusal_of("at once").message.startswith("You have 2 videos in progress and may have 2 at once.")


def test_a_quota_error_carries_the_refusal_as_its_sentence_for_the_members_language() -> None:
    error = QuotaExceededError(refusal_of("day"))
    assert error.text is refusal_of("day").text or error.text == refusal_of("day").text
    french = describe_failure(error, action="/animate", translator=translator(Language.FRENCH))
    assert french == (
        "Vous avez utilisé 18 de vos 20 crédits aujourd'hui ; cette vidéo en coûte 5. "
        "Vos crédits quotidiens se renouvellent <t:1700006400:R>."
    )
    assert describe_failure(error, action="/animate") == error.message


def test_limits_are_shown_in_the_readers_language_with_its_numbers() -> None:
    german = translator(Language.GERMAN)
    shown = {
        german.text(name): german.text(value)
        for name, value in limit_fields(MemberLimits(credits_per_day=12_000, max_duration_s=10))
    }
    assert shown["Credits pro Tag"] == "12.000"
    assert shown["Längstes Video"] == "10 s"
    assert shown["Credits pro 30 Tage"] == "Kein Limit"


# --- the audit channel in the server's language ----------------------------------------------------------


@dataclass
class SentMessage:
    content: str


@dataclass
class FakeChannel:
    sent: list[str] = field(default_factory=list)

    async def send(self, content: str, **_: object) -> SentMessage:
        self.sent.append(content)
        return SentMessage(content)


@dataclass
class FakeBot:
    """What the sink needs of the bot: a channel to post in and the language of the server's posts."""

    languages: dict[int, Language]
    channel: FakeChannel = field(default_factory=FakeChannel)

    def get_partial_messageable(self, channel_id: int) -> FakeChannel:
        return self.channel

    async def post_language(self, user_id: int | None, guild_id: int | None) -> Language:
        assert user_id is None  # the audit channel is the server's, whoever asked for the video
        return self.languages.get(guild_id or 0, Language.ENGLISH)


async def test_the_audit_sink_posts_in_the_servers_language() -> None:
    bot = FakeBot({1: Language.JAPANESE})
    sink = DiscordAuditSink(bot)  # type: ignore[arg-type]
    alert = BudgetAlert(BudgetPeriod.MONTH, 80, 800, 1_000, "2026-11")
    await sink.post(AuditPost(9, alert_sentence(alert, 5), mention_role_id=5, guild_id=1))
    await sink.post(AuditPost(9, alert_sentence(alert, None), guild_id=2))
    assert bot.channel.sent == [
        "<@&5> ⚠️ このサーバーは月間予算の 80 % を使用しました："
        "1000 クレジット中 800 クレジット（2026-11、UTC）。",
        "⚠️ This server has used 80 % of its monthly budget: 800 of 1000 credits (2026-11, UTC).",
    ]


# --- which language a public post uses -------------------------------------------------------------------


class MemoryState:
    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    async def get(self, key: str) -> str | None:
        return self.values.get(key)

    async def put(self, key: str, value: str) -> None:
        self.values[key] = value

    async def put_if_absent(self, key: str, value: str) -> bool:  # pragma: no cover - unused here
        raise NotImplementedError

    async def delete(self, key: str) -> None:
        self.values.pop(key, None)

    async def items(self, prefix: str) -> list[tuple[str, str]]:  # pragma: no cover - unused here
        raise NotImplementedError


async def test_a_post_is_in_the_members_language_then_the_moderators_choice_then_discords_then_english() -> (
    None
):
    languages = MemberLanguages(MemoryState())
    await languages.remember(1, "ja")
    await languages.set_server(10, Language.GERMAN)
    assert await languages.for_post(1, "fr", guild_id=10) is Language.JAPANESE  # the member's own, first
    assert await languages.for_post(2, "fr", guild_id=10) is Language.GERMAN  # unknown member: the choice
    assert await languages.for_post(None, "fr", guild_id=10) is Language.GERMAN  # an audit line
    assert await languages.for_post(2, "fr", guild_id=11) is Language.FRENCH  # no choice: Discord's locale
    assert await languages.for_post(2, None, guild_id=11) is Language.ENGLISH
    await languages.set_server(10, None)  # "automatic"
    assert await languages.for_post(2, "fr", guild_id=10) is Language.FRENCH


async def test_a_choice_made_through_another_process_is_seen_once_the_cache_expires() -> None:
    state, now = MemoryState(), [0.0]
    here = MemberLanguages(state, clock=lambda: now[0])
    there = MemberLanguages(state, clock=lambda: now[0])  # another bot process on the same database
    assert await here.of_server(10) is None
    await there.set_server(10, Language.ITALIAN)
    assert await here.of_server(10) is None  # cached: no read per post
    now[0] += SERVER_CACHE_S + 1
    assert await here.of_server(10) is Language.ITALIAN
