"""Building and closing the Discord-free services, shared by the CLI and the Discord bot."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiosqlite
import httpx

from bot.domain.catalogue import Catalogue, default_catalogue
from bot.domain.errors import DomainError
from bot.domain.models import ProviderName
from bot.providers.base import VideoProvider
from bot.providers.runcomfy import RunComfyProvider
from bot.settings import ConfigurationError, Settings
from bot.storage.database import open_database
from bot.storage.jobs import JobStore

USER_AGENT = "seedance-bot/0.1"


@dataclass(frozen=True)
class Runtime:
    """The long-lived objects every front end needs, opened once and closed together."""

    settings: Settings
    http: httpx.AsyncClient
    db: aiosqlite.Connection
    store: JobStore
    catalogue: Catalogue
    providers: dict[ProviderName, VideoProvider]

    @property
    def provider(self) -> VideoProvider:
        """The provider selected by SEEDANCE_PROVIDER."""
        return self.providers[self.settings.seedance_provider]


def build_catalogue(settings: Settings) -> Catalogue:
    """The model catalogue with the configured credit weights, or ConfigurationError naming a bad model."""
    try:
        return default_catalogue().with_credit_weights(settings.credit_weights)
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
    if settings.runcomfy_api_key is not None and settings.runcomfy_api_key.get_secret_value():
        providers[ProviderName.RUNCOMFY] = RunComfyProvider(
            http, base_url=settings.runcomfy_base_url, api_key=settings.runcomfy_api_key
        )
    if settings.seedance_provider not in providers:
        raise ConfigurationError(f"SEEDANCE_PROVIDER={settings.seedance_provider.value} has no API key set.")
    return providers


@contextlib.asynccontextmanager
async def open_runtime(settings: Settings) -> AsyncIterator[Runtime]:
    """Open the HTTP client, the database and the providers; close them all on the way out."""
    async with contextlib.AsyncExitStack() as stack:
        http = build_http_client(settings)
        stack.push_async_callback(http.aclose)
        providers = build_providers(settings, http)
        db = await open_database(settings.database_path)
        stack.push_async_callback(db.close)
        yield Runtime(
            settings=settings,
            http=http,
            db=db,
            store=JobStore(db),
            catalogue=build_catalogue(settings),
            providers=providers,
        )
