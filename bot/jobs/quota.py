"""QuotaService: admission control for one member's request in one server.

An early check (before anything is downloaded or posted) tells the member at once which limit blocks them;
the authoritative check runs again inside the transaction that creates the job and reserves its credits,
so fifty members pressing the button in the same second can never push usage over a limit.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from bot.domain.catalogue import ModelSpec
from bot.domain.models import Job, VideoRequest
from bot.domain.quota import (
    MemberLimits,
    QuotaCheck,
    Refusal,
    ServerRules,
    Usage,
    check_quota,
    credits_for,
    effective_limits,
)
from bot.jobs.errors import JobError
from bot.jobs.ports import NewJob, QuotaRefusedError, QuotaStore

log = logging.getLogger(__name__)


class QuotaExceededError(JobError):
    """A limit blocks the request; `refusal` says which, and when it frees up."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.text)  # the whole sentence, said in the member's language by the front end
        self.refusal = refusal


@dataclass(frozen=True)
class Member:
    """Who asks, with what roles, where."""

    guild_id: int
    user_id: int
    role_ids: tuple[int, ...] = ()
    channel_id: int | None = None


@dataclass(frozen=True)
class QuotaOverview:
    """What /quota shows: the limits that apply, what is used, and the cost of a default video."""

    limits: MemberLimits
    rules: ServerRules
    usage: Usage


@dataclass(frozen=True)
class Admission:
    """One admitted job, with what its server had spent just before it (counted inside the admission)."""

    job: Job
    cost: int
    #: The server's rules, defaults filled in (its budget, audit channel and alert role).
    rules: ServerRules
    usage: Usage

    @property
    def server_credits_today(self) -> int:
        """The server's credits today, this job's included."""
        return self.usage.server_credits_today + self.cost

    @property
    def server_credits_this_month(self) -> int:
        """The server's credits this month, this job's included."""
        return self.usage.server_credits_this_month + self.cost


#: Told of every admission after its transaction committed (budget alerts); must not raise.
AdmissionListener = Callable[[Admission], Awaitable[None]]


class QuotaService:
    """Effective limits, the early check and the atomic admission."""

    def __init__(
        self,
        store: QuotaStore,
        *,
        member_defaults: MemberLimits,
        model_names: Mapping[str, str] | None = None,
        server_defaults: ServerRules,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._model_names = dict(model_names or {})
        self._member_defaults = member_defaults
        self._server_defaults = server_defaults
        self._clock = clock
        self._listeners: list[AdmissionListener] = []

    def add_admission_listener(self, listener: AdmissionListener) -> None:
        """Tell `listener` of every admission from now on (the front end wires its budget alerts here)."""
        self._listeners.append(listener)

    @property
    def store(self) -> QuotaStore:
        """The quota store (moderator commands edit limits through it)."""
        return self._store

    async def limits_for(self, member: Member) -> tuple[MemberLimits, ServerRules]:
        """The member's effective limits and the server's rules, defaults filled in."""
        config = await self._store.config(member.guild_id)
        roles = [config.roles[role_id] for role_id in member.role_ids if role_id in config.roles]
        limits = effective_limits(
            self._member_defaults, config.server_default, roles, config.members.get(member.user_id)
        )
        rules = config.rules
        # A server budget the moderators never set falls back to the bot's default, like member limits do.
        if rules.credits_per_day is None:
            rules = dataclasses.replace(rules, credits_per_day=self._server_defaults.credits_per_day)
        if rules.credits_per_month is None:
            rules = dataclasses.replace(rules, credits_per_month=self._server_defaults.credits_per_month)
        return limits, rules

    async def precheck(self, member: Member, spec: ModelSpec, request: VideoRequest) -> int:
        """Check before any work is done; return the cost in credits or raise QuotaExceededError."""
        limits, rules = await self.limits_for(member)
        cost = credits_for(spec, request)
        usage = await self._store.usage(member.guild_id, member.user_id, now=self._clock())
        refusal = check_quota(self._check(member, request, cost, limits=limits, rules=rules, usage=usage))
        if refusal is not None:
            raise QuotaExceededError(refusal)
        return cost

    async def admit(self, new: NewJob, member: Member, spec: ModelSpec) -> Job:
        """Create the job and reserve its credits in one transaction, if every limit still allows it."""
        limits, rules = await self.limits_for(member)
        cost = credits_for(spec, new.request)

        counted: list[Usage] = []

        def decide(usage: Usage) -> Refusal | None:
            counted.append(usage)  # the usage the admission decided on, for the budget alerts
            return check_quota(
                self._check(member, new.request, cost, limits=limits, rules=rules, usage=usage)
            )

        try:
            job = await self._store.admit(new, credits=cost, decide=decide)
        except QuotaRefusedError as error:
            raise QuotaExceededError(error.refusal) from None
        if self._listeners and counted:
            admission = Admission(job=job, cost=cost, rules=rules, usage=counted[-1])
            for listener in self._listeners:
                try:
                    await listener(admission)
                except Exception:  # the job is admitted; what a listener does is a courtesy
                    log.exception("job %s: an admission listener failed", job.id)
        return job

    async def overview(self, member: Member) -> QuotaOverview:
        """The member's limits and usage now."""
        limits, rules = await self.limits_for(member)
        usage = await self._store.usage(member.guild_id, member.user_id, now=self._clock())
        return QuotaOverview(limits=limits, rules=rules, usage=usage)

    def _check(
        self,
        member: Member,
        request: VideoRequest,
        cost: int,
        *,
        limits: MemberLimits,
        rules: ServerRules,
        usage: Usage,
    ) -> QuotaCheck:
        return QuotaCheck(
            request=request,
            cost_credits=cost,
            user_id=member.user_id,
            channel_id=member.channel_id,
            limits=limits,
            rules=rules,
            usage=usage,
            model_names=self._model_names,
        )
