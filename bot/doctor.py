"""`seedance-bot doctor`: check the setup before members find out, one line per check.

Each check says what it found and, when it failed, what to do. Nothing is paid for: the database is opened
(and migrated), Discord is asked who the token belongs to, and each provider is asked for the status of a
task that does not exist — an answer of "not found" proves the key was accepted.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import httpx

from bot.domain.models import ProviderName
from bot.providers.errors import (
    ProviderAuthError,
    ProviderError,
    ProviderInvalidRequestError,
    ProviderNotFoundError,
    ProviderServerError,
)
from bot.runtime import build_catalogue, build_http_client, build_providers
from bot.settings import ConfigurationError, Settings
from bot.storage import open_stores, sqlite_path
from bot.storage.errors import StorageError
from bot.storage.postgres.database import describe_url

#: A task id no provider has: asking for it costs nothing and tells an accepted key from a refused one.
PROBE_TASK_ID = "seedance-bot-doctor-probe"


class Outcome(StrEnum):
    """How a check ended; the order is the severity."""

    OK = "ok"
    UNREACHABLE = "unreachable"  # not the settings' fault (network, service down): exit 1
    BAD = "FAIL"  # a setting must change: exit 2


@dataclass(frozen=True)
class Check:
    """One check's result: its subject, outcome and one line saying what was found or what to do."""

    name: str
    outcome: Outcome
    detail: str
    #: What the check found that a later check needs (the bot's user id); not printed.
    ref: str | None = None

    def line(self) -> str:
        """`ok   discord: ...` / `FAIL discord: ...`."""
        return f"{self.outcome.value:<4} {self.name}: {self.detail}"


def check_database_path(path: Path) -> None:
    """Refuse, in one line naming DATABASE_PATH, a database the process could not create or write.

    Checked before anything starts: otherwise the first write ends in a raw OSError or sqlite3 traceback.
    """
    if path.is_dir():
        raise ConfigurationError(
            f"DATABASE_PATH: {path} is a folder; give a file name, e.g. {path / 'bot.sqlite3'}."
        )
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise ConfigurationError(f"DATABASE_PATH: {folder} is a file, not a folder.") from None
    except OSError as error:
        raise ConfigurationError(
            f"DATABASE_PATH: cannot create the folder {folder}: {error.strerror or error}."
        ) from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigurationError(f"DATABASE_PATH: the folder {folder} is not writable by this user.")
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        raise ConfigurationError(f"DATABASE_PATH: {path} is not readable and writable by this user.")


def exit_code(checks: list[Check]) -> int:
    """0 when every check passed; 2 when a setting must change; 1 when only a service was unreachable."""
    outcomes = {check.outcome for check in checks}
    if Outcome.BAD in outcomes:
        return 2
    return 1 if Outcome.UNREACHABLE in outcomes else 0


def _check_settings(settings: Settings) -> Check:
    try:
        settings.require_discord_token()
        settings.require_provider_key()
        catalogue = build_catalogue(settings)
    except ConfigurationError as error:
        return Check("settings", Outcome.BAD, str(error))
    providers = ", ".join(name.value for name in settings.configured_providers)
    return Check("settings", Outcome.OK, f"{len(catalogue.every_spec)} model(s) via {providers}")


async def _check_database(settings: Settings) -> Check:
    url = settings.database_url
    path = sqlite_path(settings.database_path, url)
    if path is None:
        try:
            stores = await open_stores(settings.database_path, database_url=url)
            await stores.close()
        except (StorageError, OSError) as error:
            # The error names host and database only: the URL may hold a password.
            return Check("database", Outcome.BAD, f"DATABASE_URL: {error}")
        return Check("database", Outcome.OK, f"PostgreSQL at {describe_url(url or '')} is up to date")
    try:
        check_database_path(path)
        stores = await open_stores(path)
        await stores.close()
    except ConfigurationError as error:
        return Check("database", Outcome.BAD, str(error))
    except (StorageError, OSError, sqlite3.Error) as error:
        return Check("database", Outcome.BAD, f"DATABASE_PATH: {path}: {error}")
    return Check("database", Outcome.OK, f"{path.resolve()} is writable and up to date")


#: The permissions the README's invite link grants, by Discord's bit, in the README's order.
REQUIRED_GUILD_PERMISSIONS: tuple[tuple[str, int], ...] = (
    ("View Channel", 1 << 10),
    ("Send Messages", 1 << 11),
    ("Send Messages in Threads", 1 << 38),
    ("Create Public Threads", 1 << 35),
    ("Embed Links", 1 << 14),
    ("Attach Files", 1 << 15),
    ("Read Message History", 1 << 16),
    ("Add Reactions", 1 << 6),
)
INVITE_PERMISSIONS = sum(bit for _, bit in REQUIRED_GUILD_PERMISSIONS)  # 309237763136, as in the README
_ADMINISTRATOR = 1 << 3
#: Discord's page size for GET /users/@me/guilds.
_GUILD_PAGE = 200


def invite_url(application_id: str, guild_id: str | None = None) -> str:
    """The README's invite link for this bot (its user id is its application id), pre-set to a server."""
    url = (
        f"https://discord.com/oauth2/authorize?client_id={application_id}"
        f"&scope=bot+applications.commands&permissions={INVITE_PERMISSIONS}"
    )
    return url if guild_id is None else f"{url}&guild_id={guild_id}&disable_guild_select=true"


def missing_permissions(permissions: int) -> list[str]:
    """The required permissions `permissions` lacks, by name (none with Administrator)."""
    if permissions & _ADMINISTRATOR:
        return []
    return [name for name, bit in REQUIRED_GUILD_PERMISSIONS if not permissions & bit]


async def _check_servers(settings: Settings, http: httpx.AsyncClient, token: str, bot_id: str) -> list[Check]:
    """One check per server the bot is in, from its guild-level permissions (channel overwrites aside).

    GET /users/@me/guilds carries, per server, the bot's permissions from its roles there, so one request
    (a page per 200 servers) covers every server; a channel's overwrites may still take a permission away.
    """
    headers = {"Authorization": f"Bot {token}"}
    guilds: list[dict[str, object]] = []
    after = "0"
    while True:
        try:
            reply = await http.get(
                f"{settings.discord_api_base_url}/users/@me/guilds",
                params={"limit": str(_GUILD_PAGE), "after": after},
                headers=headers,
            )
        except httpx.HTTPError as error:
            return [Check("servers", Outcome.UNREACHABLE, f"cannot list the servers ({error}): try again.")]
        if reply.status_code != 200:
            return [
                Check(
                    "servers", Outcome.UNREACHABLE, f"Discord answered {reply.status_code}; try again later."
                )
            ]
        page = reply.json()
        guilds.extend(page)
        if len(page) < _GUILD_PAGE:
            break
        after = str(page[-1]["id"])
    if not guilds:
        return [
            Check(
                "servers",
                Outcome.OK,  # nothing is wrong yet: the bot simply has no server to serve
                f"the bot is in no server yet: invite it with {invite_url(bot_id)}",
            )
        ]
    checks: list[Check] = []
    for guild in guilds:
        label = f"server {guild.get('name')}"
        missing = missing_permissions(int(str(guild.get("permissions", "0"))))
        if not missing:
            checks.append(Check(label, Outcome.OK, "the bot has every permission it needs"))
            continue
        url = invite_url(bot_id, str(guild.get("id")))
        checks.append(
            Check(
                label,
                Outcome.BAD,
                f"missing {', '.join(missing)} — re-invite with {url} "
                "or grant them in Server Settings → Roles",
            )
        )
    return checks


async def _check_discord(settings: Settings, http: httpx.AsyncClient) -> Check:
    token = settings.discord_token.get_secret_value() if settings.discord_token else ""
    if not token:
        return Check(
            "discord", Outcome.BAD, "DISCORD_TOKEN is not set: copy the bot token from the Developer Portal."
        )
    try:
        reply = await http.get(
            f"{settings.discord_api_base_url}/users/@me", headers={"Authorization": f"Bot {token}"}
        )
    except httpx.HTTPError as error:
        return Check(
            "discord",
            Outcome.UNREACHABLE,
            f"cannot reach {settings.discord_api_base_url} ({error or type(error).__name__}): "
            "check the network.",
        )
    if reply.status_code == 401:
        return Check(
            "discord",
            Outcome.BAD,
            "DISCORD_TOKEN was refused: reset the token in the Developer Portal (Bot tab) and update it.",
        )
    if reply.status_code != 200:
        return Check(
            "discord", Outcome.UNREACHABLE, f"Discord answered {reply.status_code}; try again later."
        )
    me = reply.json()
    return Check(
        "discord",
        Outcome.OK,
        f"the token belongs to {me.get('username')} (id {me.get('id')})",
        ref=me.get("id"),
    )


async def _check_provider(settings: Settings, name: ProviderName, http: httpx.AsyncClient) -> Check:
    variable = f"{name.value.upper()}_API_KEY"
    label = f"provider {name.value}"
    try:
        provider = build_providers(settings, http)[name]
        spec = next(spec for spec in build_catalogue(settings).every_spec if spec.provider is name)
        await provider.status(PROBE_TASK_ID, spec)
    except (ProviderNotFoundError, ProviderInvalidRequestError):
        pass  # the key was accepted; the made-up task id was not
    except ProviderAuthError:
        return Check(
            label, Outcome.BAD, f"{variable} was refused: check the key in the {name.value} console."
        )
    except ProviderServerError as error:
        return Check(label, Outcome.UNREACHABLE, f"{name.value} is having trouble: {error}")
    except ProviderError as error:
        return Check(label, Outcome.UNREACHABLE, f"{name.value} could not be asked: {error}")
    except ConfigurationError as error:
        return Check(label, Outcome.BAD, str(error))
    return Check(label, Outcome.OK, f"{variable} accepted")


async def run_checks(settings: Settings) -> list[Check]:
    """Every check, in order; none stops the others."""
    checks = [_check_settings(settings), await _check_database(settings)]
    async with build_http_client(settings) as http:
        discord = await _check_discord(settings, http)
        checks.append(discord)
        if discord.outcome is Outcome.OK and discord.ref is not None and settings.discord_token is not None:
            token = settings.discord_token.get_secret_value()
            checks.extend(await _check_servers(settings, http, token, discord.ref))
        if settings.provider_key(settings.seedance_provider) is not None:
            for name in settings.configured_providers:
                checks.append(await _check_provider(settings, name, http))
    return checks
