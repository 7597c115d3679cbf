"""The moderators' audit channel: one line per job started and ended, and the server budget alerts.

Discord-free: an `AuditSink` (the Discord adapter in cogs/support/audit.py) posts the text; this module
decides what is said, where and when. Nothing here may fail a job: every post is best effort, logged when it
fails.

"Exactly one line per outcome" rests on the job layer's durable steps, not on this module: the service calls
`job_started` once, after the one successful submit; the poller calls `job_ended` once, after the write that
records the outcome as announced (`mark_announced`, or the DELIVERED transition) returned the job — that write
succeeds once per job across every process and restart. A crash between that write and the post loses the
line (at most once, never twice).

"Once per budget alert" rests on `StateStore.put_if_absent`: the admission that finds a threshold reached
records it under a key naming the server, period and threshold; only the caller whose insert wins posts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from bot.domain.models import Job, JobState
from bot.domain.quota import BudgetAlert, BudgetPeriod, ServerRules, budget_alerts
from bot.domain.text import Text, Value
from bot.jobs.ports import StateStore
from bot.jobs.quota import Admission

log = logging.getLogger(__name__)

#: The key prefix of the durable once-only records of fired budget alerts (`StateStore`).
ALERT_KEY_PREFIX = "budget-alert:"


class AuditOutcome(StrEnum):
    """What an audit line reports. Expired, timed out and unknown jobs count as failed."""

    STARTED = "started"
    FINISHED = "finished"
    FAILED = "failed"
    CANCELLED = "cancelled"


def outcome_of(job: Job) -> AuditOutcome | None:
    """The ending a final job's audit line reports; None for a job still on its way."""
    match job.state:
        case JobState.DELIVERED:
            return AuditOutcome.FINISHED
        case JobState.CANCELLED:
            return AuditOutcome.CANCELLED
        case JobState.FAILED | JobState.EXPIRED | JobState.TIMED_OUT | JobState.UNKNOWN:
            return AuditOutcome.FAILED
        case _:
            return None


# --- texts (said in the server's language by the front end: see `AuditPost`) -----------------------------

_OUTCOME_LABELS: Mapping[AuditOutcome, Text] = {
    AuditOutcome.STARTED: Text("▶️ Started"),
    AuditOutcome.FINISHED: Text("✅ Finished"),
    AuditOutcome.FAILED: Text("❌ Failed"),
    AuditOutcome.CANCELLED: Text("🚫 Cancelled"),
}
#: A failed job's label when its state says more than "failed" (whole labels, each said in one piece).
_FAILED_LABELS: Mapping[JobState, Text] = {
    JobState.EXPIRED: Text("❌ Failed (expired)"),
    JobState.TIMED_OUT: Text("❌ Failed (timed out)"),
    JobState.UNKNOWN: Text("❌ Failed (outcome unknown)"),
}


def _joined(parts: Sequence[Text | str], separator: str) -> Text:
    """Fields side by side ("✅ Finished · #12 · …"): a line of fields, not a sentence, so each field is said
    on its own and the line itself is never looked up (its template is no literal)."""
    template = separator.join(f"{{part{index}}}" for index in range(len(parts)))
    return Text(template, **{f"part{index}": part for index, part in enumerate(parts)})


def _credits(count: int, *, returned: bool) -> Text:
    if returned:  # an ending without a video releases its reservation
        return Text("1 credit (returned)") if count == 1 else Text("{count} credits (returned)", count=count)
    return Text("1 credit") if count == 1 else Text("{count} credits", count=count)


def audit_text(outcome: AuditOutcome, job: Job, model_name: str) -> Text:
    """One audit line, in any language: "✅ Finished · #12 · <@1> · Seedance 1.0 Pro · 5 s · 720p ·
    10 credits · provider cost $0.1200"."""
    label = _OUTCOME_LABELS[outcome]
    if outcome is AuditOutcome.FAILED:
        label = _FAILED_LABELS.get(job.state, label)
    parts: list[Text | str] = [label, f"#{job.id}"]
    if job.requester.user_id is not None:
        parts.append(f"<@{job.requester.user_id}>")
    parts += [
        model_name,
        Text("{seconds} s", seconds=job.request.duration_s),
        job.request.resolution.value,
    ]
    if job.credits is not None:
        parts.append(_credits(job.credits, returned=outcome in {AuditOutcome.FAILED, AuditOutcome.CANCELLED}))
    if job.cost_usd is not None:
        # The provider's own figure in its own notation (US dollars), the same in every language.
        cost = f"${job.cost_usd:.4f}"
        parts.append(
            Text("provider cost {cost}", cost=cost)
            if job.usage_tokens is None
            else Text("provider cost {cost} ({tokens} tokens)", cost=cost, tokens=job.usage_tokens)
        )
    if outcome is AuditOutcome.FAILED and job.error_code:
        parts.append(job.error_code)
    return _joined(parts, " · ")


def audit_line(outcome: AuditOutcome, job: Job, model_name: str) -> str:
    """`audit_text` in English."""
    return str(audit_text(outcome, job, model_name))


def _alert_sentence(alert: BudgetAlert) -> Text:
    # One whole sentence per period and share: "all of its daily budget" reads differently from "80 %" in
    # most languages, so neither the share nor the period is a piece translated apart.
    values: dict[str, Value] = {"used": alert.used, "budget": alert.budget, "period": alert.period_key}
    daily = alert.period is BudgetPeriod.DAY
    if alert.percent >= 100:
        if daily:
            return Text(
                "⚠️ This server has used all of its daily budget: {used} of {budget} credits ({period}, UTC).",
                **values,
            )
        return Text(
            "⚠️ This server has used all of its monthly budget: {used} of {budget} credits ({period}, UTC).",
            **values,
        )
    if daily:
        return Text(
            "⚠️ This server has used {percent} % of its daily budget: {used} of {budget} credits "
            "({period}, UTC).",
            percent=alert.percent,
            **values,
        )
    return Text(
        "⚠️ This server has used {percent} % of its monthly budget: {used} of {budget} credits "
        "({period}, UTC).",
        percent=alert.percent,
        **values,
    )


def alert_sentence(alert: BudgetAlert, role_id: int | None) -> Text:
    """A budget alert in any language, after the role it mentions (if any)."""
    sentence = _alert_sentence(alert)
    return sentence if role_id is None else _joined([f"<@&{role_id}>", sentence], " ")


def alert_text(alert: BudgetAlert, role_id: int | None) -> str:
    """A budget alert: "<@&5> ⚠️ This server has used 80 % of its daily budget: 80 of 100 credits (…)"."""
    return str(alert_sentence(alert, role_id))


# --- ports ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditPost:
    """One message for an audit channel. Only `mention_role_id`, if any, may be pinged.

    `sentence` is said in the server's language by the sink (the server's language for public posts, see
    `bot.jobs.languages`); `text` is the English.
    """

    channel_id: int
    sentence: Text
    mention_role_id: int | None = None
    #: The server the channel is in (whose language the post is in); None when unknown.
    guild_id: int | None = None

    @property
    def text(self) -> str:
        """The post in English."""
        return str(self.sentence)


class AuditSink(Protocol):
    """Posts to a server's audit channel (the front end's side)."""

    async def post(self, post: AuditPost) -> None:
        """Post `post.sentence` in `post.channel_id`, in the language of `post.guild_id`'s public posts; raise
        on failure (the auditor logs it)."""
        ...


class JobAudit(Protocol):
    """What the job layer tells the audit channel; never raises."""

    async def job_started(self, job: Job) -> None:
        """The job's one paid submit was accepted (call once, after the QUEUED write)."""
        ...

    async def job_ended(self, job: Job) -> None:
        """The job's ending was recorded as announced (call once, after the write that did it)."""
        ...


# --- the auditor ------------------------------------------------------------------------------------------


class Auditor:
    """Posts audit lines and budget alerts to the channel each server's rules name."""

    def __init__(
        self,
        rules_for: Callable[[int], Awaitable[ServerRules]],
        state: StateStore,
        sink: AuditSink,
        *,
        model_names: Mapping[str, str] | None = None,
        timeout_s: float = 15.0,
    ) -> None:
        """`rules_for(guild_id)` gives the server's rules (its audit channel and alert role)."""
        self._rules_for = rules_for
        self._state = state
        self._sink = sink
        self._model_names = dict(model_names or {})
        self._timeout_s = timeout_s
        #: Alert keys known fired (by this process or another): skips the durable insert on later admissions.
        self._fired: set[str] = set()

    async def job_started(self, job: Job) -> None:
        """Post the "started" line of a submitted job."""
        await self._line(AuditOutcome.STARTED, job)

    async def job_ended(self, job: Job) -> None:
        """Post the line of a final job's ending."""
        outcome = outcome_of(job)
        if outcome is not None:
            await self._line(outcome, job)

    async def admitted(self, admission: Admission) -> None:
        """Post each budget alert the admission's server has reached and nobody has posted yet."""
        guild_id = admission.job.requester.guild_id
        channel_id = admission.rules.audit_channel_id
        if guild_id is None or channel_id is None:
            # Nothing is recorded without a channel: an alert reached meanwhile still fires once one is set.
            return
        alerts = budget_alerts(
            admission.rules,
            day_used=admission.server_credits_today,
            month_used=admission.server_credits_this_month,
            now=admission.usage.now,
        )
        for alert in alerts:
            key = f"{ALERT_KEY_PREFIX}{guild_id}:{alert.key}"
            if key in self._fired:
                continue
            try:
                won = await self._state.put_if_absent(key, str(admission.job.id))
            except Exception:
                log.exception("budget alert %s: could not record it; not posted", key)
                continue
            self._fired.add(key)
            if not won:
                continue  # another admission (here or in another process) fired it
            role_id = admission.rules.alert_role_id
            post = AuditPost(
                channel_id, alert_sentence(alert, role_id), mention_role_id=role_id, guild_id=guild_id
            )
            await self._post(post, f"alert {key}")

    async def _line(self, outcome: AuditOutcome, job: Job) -> None:
        guild_id = job.requester.guild_id
        if guild_id is None:
            return
        try:
            rules = await self._rules_for(guild_id)
        except Exception:
            log.exception("job %s: could not read the audit channel; %s line not posted", job.id, outcome)
            return
        if rules.audit_channel_id is None:
            return
        text = audit_text(outcome, job, self._model_names.get(job.model, job.model))
        await self._post(
            AuditPost(rules.audit_channel_id, text, guild_id=guild_id), f"job {job.id} {outcome}"
        )

    async def _post(self, post: AuditPost, what: str) -> None:
        # Bounded: a Discord outage must not hold up the poller or the member's request behind an audit line.
        try:
            async with asyncio.timeout(self._timeout_s):
                await self._sink.post(post)
        except Exception:
            log.warning("audit channel %s: could not post %s", post.channel_id, what, exc_info=True)
