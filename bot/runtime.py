"""Building and closing the Discord-free services, shared by the CLI and the Discord bot."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import httpx

from bot.domain.catalogue import Catalogue, catalogue_for
from bot.domain.errors import DomainError
from bot.domain.images import MEGABYTE
from bot.domain.models import Job, JobOrigin, ProviderName
from bot.jobs.audit import JobAudit
from bot.jobs.download import download_policy
from bot.jobs.memory import MediaMemory
from bot.jobs.notifier import Notifier
from bot.jobs.poller import JobPoller
from bot.jobs.ports import JobEvents, JobStore, QuotaStore, StateStore
from bot.jobs.quota import QuotaService
from bot.jobs.service import JobService, OptionDefaults
from bot.providers.ark import ArkProvider
from bot.providers.base import VideoProvider
from bot.providers.novita import NovitaProvider
from bot.providers.runcomfy import RunComfyProvider
from bot.settings import ConfigurationError, Settings
from bot.storage import open_stores

USER_AGENT = "seedance-bot/0.1"


@dataclass(frozen=True)
class Runtime:
    """The long-lived objects every front end needs, opened once and closed together."""

    settings: Settings
    http: httpx.AsyncClient
    store: JobStore
    quota_store: QuotaStore
    state_store: StateStore
    catalogue: Catalogue
    providers: dict[ProviderName, VideoProvider]
    #: Wake-ups between the processes sharing the database (in process for SQLite).
    events: JobEvents

    @property
    def provider(self) -> VideoProvider:
        """The provider selected by SEEDANCE_PROVIDER."""
        return self.providers[self.settings.seedance_provider]


def build_catalogue(settings: Settings) -> Catalogue:
    """The models of every configured provider, with the configured ids and credit weights.

    Raises ConfigurationError naming the setting when a model id override or a credit weight names a model
    that provider does not serve.
    """
    catalogue = catalogue_for(settings.configured_providers)
    for provider in settings.configured_providers:
        try:
            catalogue = catalogue.with_model_ids(provider, settings.model_ids(provider))
        except DomainError as error:
            raise ConfigurationError(f"{provider.value.upper()}_MODEL_IDS: {error.message}") from None
    try:
        return catalogue.with_credit_weights(settings.credit_weights)
    except DomainError as error:
        raise ConfigurationError(f"CREDIT_WEIGHTS: {error.message}") from None


def build_http_client(settings: Settings) -> httpx.AsyncClient:
    """One pooled HTTP client for every provider call and download."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(settings.http_timeout_s, connect=10.0),
        limits=httpx.Limits(max_connections=32, max_keepalive_connections=16),
        headers={"User-Agent": USER_AGENT},
    )


def build_providers(settings: Settings, http: httpx.AsyncClient) -> dict[ProviderName, VideoProvider]:
    """Every provider with a key configured; the selected one must be among them."""
    settings.require_provider_key()
    providers: dict[ProviderName, VideoProvider] = {}
    for name in settings.configured_providers:
        key = settings.provider_key(name)
        if key is None:  # pragma: no cover - configured_providers only lists providers with a key
            continue
        match name:
            case ProviderName.RUNCOMFY:
                providers[name] = RunComfyProvider(
                    http,
                    base_url=settings.runcomfy_base_url,
                    api_key=key,
                    v2_image_field=settings.runcomfy_v2_image_field,
                    v2_video_field=settings.runcomfy_v2_video_field,
                    v2_audio_field=settings.runcomfy_v2_audio_field,
                )
            case ProviderName.NOVITA:
                providers[name] = NovitaProvider(http, base_url=settings.novita_base_url, api_key=key)
            case ProviderName.ARK:
                providers[name] = ArkProvider(http, base_url=settings.ark_base_url, api_key=key)
    return providers


def build_job_engine(
    runtime: Runtime,
    notifier: Notifier,
    *,
    job_filter: Callable[[Job], bool] | None = None,
    quota: QuotaService | None = None,
    callback_url: str | None = None,
    defaults: OptionDefaults | None = None,
    discover: JobOrigin | None = None,
    audit: JobAudit | None = None,
) -> tuple[JobService, JobPoller]:
    """The poller and the service every front end drives jobs with, sharing one lease owner.

    The poller drives the jobs `job_filter` accepts (each front end its own) and tells `notifier`; the
    service creates jobs leased to the same owner, so the process that starts a job also drives it. With
    `discover`, the poller also takes over free or expired jobs of that origin while it runs. `audit` hears
    of every job started and ended (the moderators' audit channel).
    """
    settings = runtime.settings
    poller = JobPoller(
        runtime.store,
        runtime.providers,
        runtime.catalogue,
        notifier,
        runtime.http,
        poll_interval_s=settings.poll_interval_s,
        max_concurrency=settings.max_concurrent_polls,
        max_status_checks_per_s=settings.max_status_checks_per_s,
        max_video_bytes=settings.max_video_bytes,
        job_filter=job_filter,
        lease_s=settings.job_lease_s,
        download_policy=download_policy(settings),
        events=runtime.events,
        discover=discover,
        audit=audit,
    )
    service = JobService(
        runtime.store,
        runtime.providers,
        runtime.catalogue,
        tracker=poller,
        job_timeout_s=settings.job_timeout_s,
        quota=quota,
        callback_url=callback_url,
        owner=poller.owner,
        lease_s=poller.lease_s,
        defaults=defaults,
        memory=MediaMemory.within(settings.image_memory_mb * MEGABYTE or None),
        audit=audit,
    )
    return service, poller


@contextlib.asynccontextmanager
async def open_runtime(settings: Settings) -> AsyncIterator[Runtime]:
    """Open the HTTP client, the database and the providers; close them all on the way out."""
    async with contextlib.AsyncExitStack() as stack:
        http = build_http_client(settings)
        stack.push_async_callback(http.aclose)
        providers = build_providers(settings, http)
        stores = await open_stores(settings.database_path, database_url=settings.database_url)
        stack.push_async_callback(stores.close)
        yield Runtime(
            settings=settings,
            http=http,
            store=stores.jobs,
            quota_store=stores.quota,
            state_store=stores.state,
            catalogue=build_catalogue(settings),
            providers=providers,
            events=stores.events,
        )
