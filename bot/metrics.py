"""The bot's Prometheus metrics: one registry, the metric objects, and one-line helpers for the places that
count.

The registry is a `CollectorRegistry` of its own (not prometheus-client's global one), so nothing else in the
process (a library's own metrics) leaks into `/metrics`, and tests read exactly these samples. Counters are
process-wide and only ever grow: tests compare a sample before and after, never an absolute value.

Labels are closed sets only (state, model, provider, outcome, route kind, status class): never a job id, a
guild id or a URL, so the number of series stays bounded however many jobs and servers there are.

Discord requests are counted through discord.py's `http_trace` (an aiohttp `TraceConfig` handed to the
client): it sees every REST request discord.py sends, including the ones its own rate limiter retries after a
429, which no wrapper around a cog's call could see.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace
from typing import Final, Protocol

import aiohttp
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from bot.domain.models import Job, JobState

#: The registry `/metrics` serves.
REGISTRY: Final = CollectorRegistry(auto_describe=True)
#: The Content-Type of `render()`'s text.
CONTENT_TYPE: Final = CONTENT_TYPE_LATEST

JOBS_BY_STATE: Final = Gauge(
    "seedance_jobs",
    "Jobs not yet over, by state (read from the database at each scrape).",
    ["state"],
    registry=REGISTRY,
)
JOBS_STARTED: Final = Counter(
    "seedance_jobs_started",
    "Jobs the provider accepted (paid submits), by model and provider.",
    ["model", "provider"],
    registry=REGISTRY,
)
JOBS_FINISHED: Final = Counter(
    "seedance_jobs_finished",
    "Jobs that ended, by model, provider and outcome (the final state: delivered, failed, ...).",
    ["model", "provider", "outcome"],
    registry=REGISTRY,
)
CREDITS_RESERVED: Final = Counter(
    "seedance_credits_reserved", "Quota credits reserved for admitted jobs.", registry=REGISTRY
)
CREDITS_SPENT: Final = Counter(
    "seedance_credits_spent", "Quota credits committed by delivered videos.", registry=REGISTRY
)
PROVIDER_REQUESTS: Final = Counter(
    "seedance_provider_requests",
    "Provider API requests, by provider, route kind and status class (2xx, 4xx, 5xx, transport).",
    ["provider", "route", "status_class"],
    registry=REGISTRY,
)
PROVIDER_LATENCY: Final = Histogram(
    "seedance_provider_request_seconds",
    "Provider API request latency, by provider and route kind.",
    ["provider", "route"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
    registry=REGISTRY,
)
DISCORD_REQUESTS: Final = Counter(
    "seedance_discord_requests",
    "HTTP requests discord.py sent, by method and status class (429s included, each retry counted).",
    ["method", "status_class"],
    registry=REGISTRY,
)
DISCORD_RATE_LIMITED: Final = Counter(
    "seedance_discord_rate_limited", "Discord answers with HTTP 429 (rate limited).", registry=REGISTRY
)
POLL_LAG: Final = Histogram(
    "seedance_poll_lag_seconds",
    "How late a job's status check started compared with when it was planned.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0),
    registry=REGISTRY,
)

#: A status class for a request that got no HTTP answer at all.
TRANSPORT: Final = "transport"
_ACTIVE_STATES: Final = tuple(state for state in JobState if state.is_active)
#: HTTP methods by the kind of provider route they stand for (each provider uses POST to submit, GET to read).
_ROUTE_KINDS: Final = {"POST": "submit", "GET": "status", "DELETE": "cancel"}
_METHODS: Final = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})


class ActiveJobSource(Protocol):
    """What the state gauge reads: the jobs not yet over (JobStore.active_jobs)."""

    async def active_jobs(self) -> Sequence[Job]:
        """Every job not in a final state."""
        ...


def status_class(status_code: int | None) -> str:
    """`2xx`, `4xx`, `5xx`... for an HTTP status; `transport` when no answer came."""
    return TRANSPORT if status_code is None else f"{status_code // 100}xx"


def route_kind(method: str) -> str:
    """The kind of provider route a request is (`submit`, `status`, `cancel`, `other`), from its method."""
    return _ROUTE_KINDS.get(method.upper(), "other")


def provider_request(provider: str, method: str, status_code: int | None, seconds: float) -> None:
    """Count one provider request and its latency (`status_code` None: no HTTP answer)."""
    route = route_kind(method)
    PROVIDER_REQUESTS.labels(provider=provider, route=route, status_class=status_class(status_code)).inc()
    PROVIDER_LATENCY.labels(provider=provider, route=route).observe(seconds)


def job_started(job: Job) -> None:
    """Count a job its provider accepted."""
    JOBS_STARTED.labels(model=job.model, provider=job.provider.value).inc()


def credits_reserved(job: Job) -> None:
    """Count the credits reserved for a job just admitted (none when no quota applied)."""
    if job.credits:
        CREDITS_RESERVED.inc(job.credits)


def job_finished(job: Job) -> None:
    """Count a job that reached its final state; a delivered one spends its reserved credits."""
    JOBS_FINISHED.labels(model=job.model, provider=job.provider.value, outcome=job.state.value).inc()
    if job.state is JobState.DELIVERED and job.credits:
        CREDITS_SPENT.inc(job.credits)


def poll_lag(seconds: float) -> None:
    """Record how late a status check started (never negative: an early start counts as on time)."""
    POLL_LAG.observe(max(0.0, seconds))


async def refresh_job_states(source: ActiveJobSource) -> None:
    """Set the state gauge from the database: every active state, zero when no job is in it."""
    counts = dict.fromkeys(_ACTIVE_STATES, 0)
    for job in await source.active_jobs():
        counts[job.state] = counts.get(job.state, 0) + 1
    for state, count in counts.items():
        JOBS_BY_STATE.labels(state=state.value).set(count)


def render() -> bytes:
    """The registry in Prometheus text format."""
    return generate_latest(REGISTRY)


async def _on_discord_request_end(
    _session: aiohttp.ClientSession, _context: SimpleNamespace, params: aiohttp.TraceRequestEndParams
) -> None:
    status = params.response.status
    method = params.method.upper() if params.method.upper() in _METHODS else "OTHER"
    DISCORD_REQUESTS.labels(method=method, status_class=status_class(status)).inc()
    if status == 429:
        DISCORD_RATE_LIMITED.inc()


async def _on_discord_request_exception(
    _session: aiohttp.ClientSession, _context: SimpleNamespace, params: aiohttp.TraceRequestExceptionParams
) -> None:
    method = params.method.upper() if params.method.upper() in _METHODS else "OTHER"
    DISCORD_REQUESTS.labels(method=method, status_class=TRANSPORT).inc()


def discord_trace() -> aiohttp.TraceConfig:
    """A trace for discord.py's HTTP session (`Client(http_trace=...)`) counting every request it sends."""
    trace = aiohttp.TraceConfig()
    trace.on_request_end.append(_on_discord_request_end)
    trace.on_request_exception.append(_on_discord_request_exception)
    return trace
