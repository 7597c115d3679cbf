"""The bot's configuration: one pydantic-settings class read from the environment and `.env`.

Built once in the composition root (`bot.cli`) and passed down; nothing else reads the environment.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict, SettingsError

from bot.domain.models import ProviderName, Resolution

DEFAULT_CDN_HOSTS = ("cdn.discordapp.com", "media.discordapp.net")

#: DATABASE_URL's schemes: PostgreSQL, or SQLite at the path after the prefix.
_POSTGRES_SCHEMES = ("postgresql://", "postgres://")
_SQLITE_PREFIX = "sqlite:///"

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


class ConfigurationError(Exception):
    """A setting is missing or malformed; the message is one line naming it."""


class Settings(BaseSettings):
    """Every setting, with the environment variable of the same name in upper case."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
    )

    # Discord
    discord_token: SecretStr | None = None
    discord_dev_guild_id: int | None = None
    discord_api_base_url: str = "https://discord.com/api/v10"
    discord_gateway_url: str = "wss://gateway.discord.gg/"
    discord_cdn_hosts: Annotated[tuple[str, ...], NoDecode] = DEFAULT_CDN_HOSTS
    #: The privileged Message Content intent (also switched on in the developer portal): lets a member reply
    #: to someone else's image with a mention of the bot. Off by default.
    discord_message_content_intent: bool = False
    #: Sharding (Discord requires it past 2,500 servers): the number of shards in all. Unset: one connection.
    discord_shard_count: int | None = Field(default=None, ge=1)
    #: The shards this process runs, e.g. "0,1" (each below DISCORD_SHARD_COUNT); unset: all of them. Only
    #: the process that runs shard 0 syncs the slash commands.
    discord_shard_ids: Annotated[tuple[int, ...] | None, NoDecode] = None

    # Providers. SEEDANCE_PROVIDER is the default; every provider with a key set serves the models the
    # default one lacks (RunComfy's 2.0 next to Novita's 1.5, say).
    seedance_provider: ProviderName = ProviderName.RUNCOMFY
    runcomfy_api_key: SecretStr | None = None
    runcomfy_base_url: str = "https://model-api.runcomfy.net"
    #: Model ids by catalogue key, as JSON, e.g. {"seedance-2.0-pro": "bytedance/seedance-v2/pro"}.
    runcomfy_model_ids: dict[str, str] = Field(default_factory=dict)
    #: Seedance 2.0's array fields: the seed says images/videos/audios, RunComfy's skill docs image_url/...
    runcomfy_v2_image_field: str = Field(default="images", min_length=1)
    runcomfy_v2_video_field: str = Field(default="videos", min_length=1)
    runcomfy_v2_audio_field: str = Field(default="audios", min_length=1)
    novita_api_key: SecretStr | None = None
    novita_base_url: str = "https://api.novita.ai"
    novita_model_ids: dict[str, str] = Field(default_factory=dict)
    ark_api_key: SecretStr | None = None
    #: BytePlus ModelArk; for Volcengine Ark use https://ark.cn-beijing.volces.com/api/v3 and doubao- ids.
    ark_base_url: str = "https://ark.ap-southeast.bytepluses.com/api/v3"
    ark_model_ids: dict[str, str] = Field(default_factory=dict)
    #: Where ModelArk can reach this bot's callback endpoint from the internet, e.g.
    #: https://bot.example.com/seedance/callback. Unset: no endpoint, jobs are polled only.
    public_callback_url: str | None = None

    #: The bot's one HTTP listener: /healthz, /metrics and the callback endpoint. Loopback by default (the
    #: Docker image sets 0.0.0.0). CALLBACK_LISTEN_HOST/PORT, their former names, still work.
    http_listen_host: str = Field(
        default="127.0.0.1", validation_alias=AliasChoices("http_listen_host", "callback_listen_host")
    )
    http_listen_port: int = Field(
        default=8080,
        ge=0,
        le=65535,
        validation_alias=AliasChoices("http_listen_port", "callback_listen_port"),
    )

    #: How long the bot keeps retrying a Discord call through 5xx answers and dropped connections before it
    #: tells the member Discord is having trouble (429s are always waited out).
    discord_retry_s: float = Field(default=20.0, gt=0, le=600)

    # Jobs and storage
    database_path: Path = Path("data/seedance-bot.sqlite3")
    #: Which database holds jobs, quotas and state: postgresql://user:password@host:5432/db (or
    #: postgres://) for PostgreSQL, which several bot processes can share; sqlite:///relative/path or
    #: sqlite:////absolute/path for SQLite at that file. Unset: SQLite at DATABASE_PATH. It may hold a
    #: password: the bot never logs it (only host and database).
    database_url: str | None = None
    poll_interval_s: float = Field(default=3.0, gt=0, le=600)
    job_timeout_s: float = Field(default=6 * 3600, gt=0)
    max_concurrent_polls: int = Field(default=8, ge=1, le=256)
    #: The most status checks a second this process makes in all: with many jobs in flight each job is
    #: checked less often (in flight / this), so providers are not flooded and every check is on time.
    max_status_checks_per_s: float = Field(default=50.0, gt=0, le=10_000)
    #: How long a process's claim on a job lasts without renewal (renewed every third of it). After a crash,
    #: another process (or the restarted one) takes the crashed process's jobs over once this has passed.
    job_lease_s: float = Field(default=30.0, ge=1, le=3600)
    max_video_bytes: int = Field(default=512 * 1024 * 1024, gt=0)
    #: Memory (decimal MB) members' files and image decoding may take at once; requests beyond it wait
    #: their turn. 240 keeps ten 30 MB photos sent at once under 400 MB for the whole bot
    #: (bench/bench_image_memory.py). 0: no limit.
    image_memory_mb: int = Field(default=240, ge=0)
    #: FOR TESTS ONLY. Let provider output downloads reach loopback addresses (127.0.0.1, ::1) over plain
    #: http too, as the tests' loopback doubles need. Off, the bot fetches provider output only over https
    #: from public addresses (no private, link-local, cloud metadata or loopback address, on any redirect).
    download_allow_loopback: bool = False
    http_timeout_s: float = Field(default=30.0, gt=0, le=600)
    log_level: LogLevel = "INFO"
    #: "json": one JSON object per log line (time, level, logger, message, job_id, guild_id, provider).
    log_format: Literal["text", "json"] = "text"

    # Quota defaults for every member of every server, until its moderators say otherwise. Safe by default:
    # a fresh install cannot run up a large bill. 0 forbids; leave a variable empty for "no limit".
    quota_credits_per_day: int | None = Field(default=20, ge=0)
    quota_credits_per_30_days: int | None = Field(default=None, ge=0)
    quota_concurrent_jobs: int | None = Field(default=3, ge=0)
    quota_cooldown_s: int | None = Field(default=10, ge=0)
    quota_server_credits_per_day: int | None = Field(default=200, ge=0)
    #: Credits per second of video by model and resolution, as JSON, e.g.
    #: {"seedance-2.0-pro": {"480p": 2, "720p": 4}}; unnamed models and resolutions keep 1/2/4.
    credit_weights: dict[str, dict[Resolution, int]] = Field(default_factory=dict)

    @field_validator("discord_cdn_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(host.strip().lower() for host in value.split(",") if host.strip())
        return value

    @field_validator("discord_shard_count", mode="before")
    @classmethod
    def _empty_count_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("discord_shard_ids", mode="before")
    @classmethod
    def _split_shard_ids(cls, value: object) -> object:
        if isinstance(value, str):
            # An empty variable means "unset"; "0,,1" or "," keeps its empty parts to be refused below.
            return None if not value.strip() else tuple(part.strip() for part in value.split(","))
        return value

    @field_validator("discord_shard_ids")
    @classmethod
    def _shard_ids_within_count(
        cls, value: tuple[int, ...] | None, info: ValidationInfo
    ) -> tuple[int, ...] | None:
        if value is None:
            return None
        count = info.data.get("discord_shard_count")
        if count is None:
            raise ValueError("needs DISCORD_SHARD_COUNT, the number of shards in all")
        if not value:
            raise ValueError("names no shard")
        outside = [shard for shard in value if not 0 <= shard < count]
        if outside:
            raise ValueError(f"shard ids must be from 0 to {count - 1} (DISCORD_SHARD_COUNT={count})")
        if len(set(value)) != len(value):
            raise ValueError("names a shard twice")
        return value

    @field_validator(
        "quota_credits_per_day",
        "quota_credits_per_30_days",
        "quota_concurrent_jobs",
        "quota_cooldown_s",
        "quota_server_credits_per_day",
        mode="before",
    )
    @classmethod
    def _empty_is_unlimited(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("credit_weights")
    @classmethod
    def _positive_weights(cls, value: dict[str, dict[Resolution, int]]) -> dict[str, dict[Resolution, int]]:
        for model, weights in value.items():
            for resolution, weight in weights.items():
                if weight < 0:
                    raise ValueError(f"{model} {resolution.value}: a weight cannot be negative")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower_format(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("public_callback_url", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("public_callback_url")
    @classmethod
    def _callback_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with https:// (or http:// behind a TLS proxy)")
        return value

    @field_validator("database_url", mode="before")
    @classmethod
    def _empty_url_is_none(cls, value: object) -> object:
        if isinstance(value, str):
            return value.strip() or None
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if value.startswith(_POSTGRES_SCHEMES):
            return value
        if value.startswith(_SQLITE_PREFIX) and value.removeprefix(_SQLITE_PREFIX):
            return value
        raise ValueError("must start with postgresql:// (or postgres://), or be sqlite:///path/to/file")

    @field_validator("discord_api_base_url", "runcomfy_base_url", "novita_base_url", "ark_base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("discord_gateway_url")
    @classmethod
    def _ws_url(cls, value: str) -> str:
        if not value.startswith(("ws://", "wss://")):
            raise ValueError("must start with ws:// or wss://")
        return value

    def provider_key(self, provider: ProviderName) -> SecretStr | None:
        """The API key set for `provider`, or None when it is unset or empty."""
        match provider:
            case ProviderName.RUNCOMFY:
                key = self.runcomfy_api_key
            case ProviderName.NOVITA:
                key = self.novita_api_key
            case ProviderName.ARK:
                key = self.ark_api_key
        return key if key is not None and key.get_secret_value() else None

    def require_provider_key(self) -> SecretStr:
        """The API key of the selected provider, or ConfigurationError naming the variable."""
        key = self.provider_key(self.seedance_provider)
        if key is None:
            name = f"{self.seedance_provider.value.upper()}_API_KEY"
            raise ConfigurationError(
                f"{name} is not set: it is needed when SEEDANCE_PROVIDER={self.seedance_provider.value}."
            )
        return key

    @property
    def configured_providers(self) -> tuple[ProviderName, ...]:
        """Providers with a key, the default first: the order in which they serve a shared model."""
        others = tuple(p for p in ProviderName if p is not self.seedance_provider and self.provider_key(p))
        return (self.seedance_provider, *others)

    def model_ids(self, provider: ProviderName) -> dict[str, str]:
        """The configured model id overrides of `provider`."""
        match provider:
            case ProviderName.RUNCOMFY:
                return self.runcomfy_model_ids
            case ProviderName.NOVITA:
                return self.novita_model_ids
            case ProviderName.ARK:
                return self.ark_model_ids

    @property
    def discord_shards(self) -> tuple[int, ...] | None:
        """The shards this process runs (all of them when no ids are named); None when unsharded."""
        if self.discord_shard_count is None:
            return None
        return self.discord_shard_ids or tuple(range(self.discord_shard_count))

    def require_discord_token(self) -> SecretStr:
        """The bot token, or ConfigurationError naming DISCORD_TOKEN."""
        if self.discord_token is None or not self.discord_token.get_secret_value():
            raise ConfigurationError("DISCORD_TOKEN is not set: the bot cannot log in to Discord without it.")
        return self.discord_token


def load_settings(env_file: Path | None = None, **overrides: object) -> Settings:
    """Read the settings, turning the first validation problem into one line that names the variable.

    `env_file` replaces `./.env` (`--env-file`); unlike the default, it must exist, and the error names it.
    """
    if env_file is not None:
        if not env_file.is_file():
            raise ConfigurationError(f"--env-file: no such file: {env_file.resolve()}")
        overrides = {"_env_file": env_file, **overrides}
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except SettingsError as error:
        # Raised before validation when a structured value (CREDIT_WEIGHTS) is not JSON.
        match = re.search(r'field "(\w+)"', str(error))
        name = match.group(1).upper() if match else "settings"
        raise ConfigurationError(f"{name}: is not valid JSON") from None
    except ValidationError as error:
        first = error.errors()[0]
        name = str(first["loc"][0]).upper() if first["loc"] else "settings"
        # DATABASE_URL may hold the database's password.
        secret = name.endswith(("_KEY", "_TOKEN")) or name == "DATABASE_URL"
        shown = "" if secret else f" (got {first.get('input')!r})"
        raise ConfigurationError(f"{name}: {first['msg']}{shown}") from None
