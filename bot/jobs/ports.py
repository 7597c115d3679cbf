"""What the job layer needs from storage: protocols it owns, and the value types they speak.

The job layer (service, poller, quotas) programs against these; `bot.storage` implements them (SQLite today,
PostgreSQL next), and only the composition root knows which backend it built. Every backend passes the same
contract tests.

Ownership: a job is driven by one process at a time, the holder of its lease (`lease_owner`, valid until
`lease_expires_at`). Transitions made on a process's behalf name it as `owner`, and a backend applies them
only while that process still holds the lease, so two processes can never both drive one job.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal, Protocol

from bot.domain.models import (
    ImageInfo,
    Job,
    JobOrigin,
    JobState,
    Lineage,
    ProviderName,
    Requester,
    Resolution,
    ServiceTier,
    VideoRequest,
)
from bot.domain.quota import MemberLimits, Refusal, ServerRules, Usage


@dataclass(frozen=True)
class NewJob:
    """What is known of a job before the provider has seen it."""

    provider: ProviderName
    request: VideoRequest
    requester: Requester
    deadline_at: float
    first_frame: ImageInfo | None = None
    last_frame: ImageInfo | None = None
    status_message_id: int | None = None
    thread_id: int | None = None
    upload_limit_bytes: int | None = None
    credits: int | None = None  # the quota's price of the job, when a quota applies
    #: The process that creates the job holds its lease from the start (None: nobody, e.g. a test).
    lease_owner: str | None = None
    lease_expires_at: float | None = None
    #: An opaque handle a front end keeps to answer the requester privately later (Discord: the
    #: interaction's webhook token, valid 15 minutes), so a restart can still answer "thinking…".
    reply_handle: str | None = None
    #: The earlier job this one was made from with a button on its result.
    lineage: Lineage | None = None


class LimitScope(StrEnum):
    """Whom a set of limits applies to."""

    SERVER = "server"  # the default for every member of the server
    ROLE = "role"
    MEMBER = "member"


class ReservationState(StrEnum):
    """Where a job's credits stand."""

    RESERVED = "reserved"  # counted against the limits while the job runs
    COMMITTED = "committed"  # the video was delivered: spent for good
    RELEASED = "released"  # the job ended without a video: no longer counted


@dataclass(frozen=True)
class GuildQuotaConfig:
    """What moderators set for one server."""

    server_default: MemberLimits | None
    roles: Mapping[int, MemberLimits]  # by role id
    members: Mapping[int, MemberLimits]  # by user id
    rules: ServerRules


@dataclass(frozen=True)
class ReservationRow:
    """One job's reservation as stored."""

    job_id: int
    guild_id: int | None
    user_id: int | None
    model: str
    credits: int
    state: ReservationState
    created_at: float
    settled_at: float | None


@dataclass(frozen=True)
class UsageRow:
    """One member's use of one model over a report's period (reservations created in it)."""

    user_id: int | None
    model: str
    jobs: int
    credits_committed: int
    credits_reserved: int
    credits_released: int
    cost_usd: float | None  # the providers' own figures; None when none was reported
    usage_tokens: int | None


@dataclass(frozen=True)
class GenerationKey:
    """What makes two jobs take about as long: the same provider, model, resolution, duration and tier.

    A request without a tier runs in the provider's default tier, so it is keyed as DEFAULT.
    """

    provider: ProviderName
    model: str
    resolution: Resolution
    duration_s: int
    tier: ServiceTier = ServiceTier.DEFAULT

    @classmethod
    def of(cls, job: Job) -> GenerationKey:
        """The key of `job`."""
        request = job.request
        return cls(
            provider=job.provider,
            model=request.model,
            resolution=request.resolution,
            duration_s=request.duration_s,
            tier=request.service_tier or ServiceTier.DEFAULT,
        )


#: The states of a job whose video was made. Its generation time runs from `submitted_at` (the provider
#: accepted it) to `finished_at` (stamped when the job ends: in practice DELIVERED, the video posted).
GENERATED_STATES: frozenset[JobState] = frozenset(
    {JobState.SUCCEEDED, JobState.DELIVERING, JobState.DELIVERED}
)


class QuotaRefusedError(Exception):
    """The policy refused an admission; no job was created."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.message)
        self.refusal = refusal


class JobStore(Protocol):
    """Every job's row; state changes are single guarded updates that also settle the job's credits."""

    async def create(self, new: NewJob) -> Job:
        """Insert a job in state PENDING and return it."""
        ...

    async def get(self, job_id: int) -> Job | None:
        """The job with that id, or None."""
        ...

    async def transition(
        self,
        job_id: int,
        to: JobState,
        *,
        expected: Collection[JobState] | None = None,
        owner: str | None = None,
        **fields: Any,
    ) -> Job | None:
        """Move a job to `to` if it is still in one of `expected` (default: every allowed source state) and,
        with `owner`, only while that owner holds the job's lease.

        Entering a final state stamps `finished_at`, clears `next_poll_at` and settles the job's reservation
        as `bot.jobs.ledger.settlement_for` says, in the same transaction. Returns the updated job, or None
        when the guard failed (someone else moved or owns the job).
        """
        ...

    async def annotate(self, job_id: int, *, owner: str | None = None, **fields: Any) -> Job | None:
        """Set fields without changing state; None when the job is final (or, with `owner`, not ours)."""
        ...

    async def mark_removed(self, job_id: int) -> Job | None:
        """Record that a delivered job's video post was deleted; None when the job is not delivered."""
        ...

    async def mark_announced(self, job_id: int, *, owner: str | None = None) -> Job | None:
        """Record that a final job's outcome reached its requester; None when it was already recorded."""
        ...

    async def set_status_message(self, job_id: int, status_message_id: int) -> None:
        """Record the job's status card, in any state (a card found again after a crash)."""
        ...

    async def mark_card_final(self, job_id: int) -> None:
        """Record that the job's status card shows its final state (a front end's courtesy, kept durable)."""
        ...

    async def stale_cards(self, origin: JobOrigin, *, finished_since: float) -> list[Job]:
        """Final jobs since `finished_since` whose status card may not show their end yet (a crash)."""
        ...

    async def claim(
        self, job_ids: Sequence[int], owner: str, *, until: float, take_over: bool = False
    ) -> list[int]:
        """Take the lease of each open job that is free, expired or already `owner`'s; return their ids.

        `take_over` takes live leases too: for an operator who says "this job is mine now" (`wait`).
        """
        ...

    async def claim_due(
        self, owner: str, *, until: float, limit: int, origin: JobOrigin | None = None
    ) -> list[Job]:
        """Lease to `owner`, atomically, up to `limit` open jobs (of `origin`) whose lease is free or expired,
        soonest due first; return them as leased.

        How a process discovers work it did not start: jobs released by a clean stop, and those of a process
        that died. Two owners claiming at once never get the same job, and a live lease is never taken.
        """
        ...

    async def claim_stale_cards(
        self, origin: JobOrigin, owner: str, *, finished_since: float, until: float
    ) -> list[Job]:
        """Lease to `owner` the jobs `stale_cards` would list whose lease is free or expired; return them.

        So that one process, not every one that starts, repaints a card a crash left stale.
        """
        ...

    async def renew_leases(self, owner: str, *, until: float) -> int:
        """Extend every lease `owner` holds to `until`; return how many."""
        ...

    async def release_leases(self, owner: str, job_ids: Sequence[int] | None = None) -> int:
        """Give up `owner`'s leases (all, or those of `job_ids`), so another process may take the jobs."""
        ...

    async def open_jobs(self, origin: JobOrigin | None = None) -> list[Job]:
        """Every job that still needs work: not final, or final with its outcome not yet announced."""
        ...

    async def active_jobs(self, origin: JobOrigin | None = None, *, guild_id: int | None = None) -> list[Job]:
        """Every job that is not final, soonest due first; with `guild_id`, that server's only."""
        ...

    async def jobs_for_user(
        self,
        user_id: int,
        *,
        guild_id: int | None = None,
        limit: int = 10,
        offset: int = 0,
        states: Collection[JobState] | None = None,
    ) -> list[Job]:
        """A member's most recent jobs, newest first, optionally in one server or some states only."""
        ...

    async def find_by_provider_job(self, provider: ProviderName, provider_job_id: str) -> Job | None:
        """The job a provider knows by `provider_job_id` (for callbacks)."""
        ...

    async def find_by_reply_handle(self, reply_handle: str) -> Job | None:
        """The job created for the request with that reply handle, if one was."""
        ...

    async def generation_times(
        self, key: GenerationKey, *, guild_id: int | None = None, limit: int = 50
    ) -> list[float]:
        """Seconds from `submitted_at` to `finished_at` of the newest `limit` jobs of `key` whose video was
        made (a state in GENERATED_STATES, both times known, a positive difference), newest finished first.

        With `guild_id`, that server's jobs only; without it, every job of the bot (all servers and origins).
        """
        ...

    async def queued_ahead(self, job: Job) -> int:
        """How many of the bot's jobs at `job`'s provider are QUEUED and were submitted before `job`.

        "Before": an earlier `submitted_at`, or the same one and a smaller id; `job` itself never counts.
        A job not yet submitted is behind every queued job. Every origin counts: they share the account.
        """
        ...


class QuotaStore(Protocol):
    """Moderators' limits and rules, usage figures, and admissions that reserve credits atomically."""

    async def config(self, guild_id: int) -> GuildQuotaConfig:
        """Every limit and rule set for the server."""
        ...

    async def set_limits(
        self,
        guild_id: int,
        scope: LimitScope | Literal["server", "role", "member"],
        target_id: int,
        limits: MemberLimits | None,
        *,
        by: int | None,
    ) -> None:
        """Set the limits of the server default (target_id 0), a role or a member; None resets them."""
        ...

    async def set_rules(self, guild_id: int, rules: ServerRules, *, by: int | None) -> None:
        """Replace the server's rules."""
        ...

    async def update_rules(
        self, guild_id: int, change: Callable[[ServerRules], ServerRules], *, by: int | None
    ) -> ServerRules:
        """Apply `change` to the current rules and store the result in one transaction; return it (two
        moderators changing different rules at once both keep their change)."""
        ...

    async def update_limits(
        self,
        guild_id: int,
        scope: LimitScope | Literal["server", "role", "member"],
        target_id: int,
        change: Callable[[MemberLimits], MemberLimits],
        *,
        by: int | None,
    ) -> MemberLimits:
        """Apply `change` to the current limits at that level (none: the defaults) in one transaction."""
        ...

    async def usage(self, guild_id: int, user_id: int, *, now: float | None = None) -> Usage:
        """The member's and the server's usage at `now`, outside any admission."""
        ...

    async def admit(self, new: NewJob, *, credits: int, decide: Callable[[Usage], Refusal | None]) -> Job:
        """Create the job with a `reserved` reservation if `decide` accepts the usage, atomically.

        Raises QuotaRefusedError (and creates nothing) when `decide` refuses.
        """
        ...

    async def usage_report(self, guild_id: int, *, since: float, until: float) -> list[UsageRow]:
        """Per member and model, the jobs admitted in [since, until) and where their credits stand."""
        ...

    async def reservation(self, job_id: int) -> ReservationRow | None:
        """The job's reservation, or None when no quota admitted it."""
        ...


class StateStore(Protocol):
    """Small facts the bot keeps across restarts (the hash of the last synced command set)."""

    async def get(self, key: str) -> str | None:
        """The value stored under `key`, or None."""
        ...

    async def put(self, key: str, value: str) -> None:
        """Store `value` under `key`, replacing what was there."""
        ...

    async def put_if_absent(self, key: str, value: str) -> bool:
        """Store `value` under `key` only if nothing is there; True when this call stored it.

        Atomic across every process sharing the database: of many concurrent calls for one key, exactly one
        returns True (what "once" rests on, e.g. a budget alert).
        """
        ...

    async def delete(self, key: str) -> None:
        """Forget `key` (nothing happens when it is not there)."""
        ...

    async def items(self, prefix: str) -> list[tuple[str, str]]:
        """Every (key, value) whose key starts with `prefix`."""
        ...


#: Called with a job's id when something happened to it elsewhere (a provider callback reached another
#: process), or with None when jobs were freed (a clean stop released its leases) or events may have been
#: missed (the listening connection was lost): then look for work.
JobEventListener = Callable[[int | None], None]


class JobEvents(Protocol):
    """Wake-ups between the processes that share a database: cheap hints, never the source of truth.

    A lost event costs latency only: every process also polls its jobs and looks for free ones on its own
    schedule. SQLite (one process) delivers events in process; PostgreSQL over LISTEN/NOTIFY.
    """

    async def publish(self, job_id: int | None = None) -> None:
        """Tell every process (this one included): `job_id` wants a look now; None: jobs were freed."""
        ...

    def subscribe(self, listener: JobEventListener) -> Callable[[], None]:
        """Call `listener` on the event loop for every event from now on; return what unsubscribes it."""
        ...


@dataclass(frozen=True)
class Stores:
    """The stores of one backend, opened together; `close` closes the backend (events included)."""

    jobs: JobStore
    quota: QuotaStore
    state: StateStore
    events: JobEvents
    close: Callable[[], Awaitable[None]]
