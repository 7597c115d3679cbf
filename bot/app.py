"""The discord.py bot: wiring the Discord-free services to Discord.

`run_bot` is the composition root behind `seedance-bot run`: settings → HTTP client → store → providers →
services → bot, all closed again on shutdown (SIGTERM included) without losing a job: every job lives in
the store, and the next start resumes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp
import discord
import yarl
from discord import app_commands
from discord.ext import commands

from bot import metrics
from bot.domain.catalogue import Catalogue
from bot.domain.errors import DomainError
from bot.domain.models import JobOrigin, ProviderName
from bot.domain.quota import MemberLimits, ServerRules
from bot.i18n import Language
from bot.jobs.audit import Auditor
from bot.jobs.callbacks import CallbackServer, callback_key, callback_url_with_key
from bot.jobs.defaults import DefaultsService
from bot.jobs.eta import EtaService
from bot.jobs.languages import MemberLanguages
from bot.jobs.poller import JobPoller
from bot.jobs.ports import QuotaStore
from bot.jobs.quota import QuotaService
from bot.listener import HealthChecks, HttpListener
from bot.runtime import Runtime, build_job_engine, open_runtime
from bot.settings import ConfigurationError, Settings
from bot.storage import describe_database
from cogs.support.audit import DiscordAuditSink
from cogs.support.command_translator import CommandTranslator
from cogs.support.errors import answer_failure
from cogs.support.intake import Intake
from cogs.support.notifier import STALE_CARD_WINDOW_S, DiscordNotifier

log = logging.getLogger(__name__)


class StartupError(Exception):
    """The bot cannot start for a reason outside its settings (Discord unreachable); one line of message."""


#: The cogs, loaded in this order. An explicit list: nothing is loaded by scanning folders.
EXTENSIONS: tuple[str, ...] = (
    "cogs.animate",
    "cogs.animate_image",
    "cogs.mentions",
    "cogs.results",
    "cogs.jobs",
    "cogs.history",
    "cogs.quota",
    "cogs.settings",
)


def build_quota_service(settings: Settings, store: QuotaStore, catalogue: Catalogue) -> QuotaService:
    """Quotas with the bot-wide defaults from settings (what applies until moderators say otherwise)."""
    return QuotaService(
        store,
        model_names={spec.key: spec.display_name for spec in catalogue},
        member_defaults=MemberLimits(
            credits_per_day=settings.quota_credits_per_day,
            credits_per_30_days=settings.quota_credits_per_30_days,
            concurrent_jobs=settings.quota_concurrent_jobs,
            cooldown_s=settings.quota_cooldown_s,
        ),
        server_defaults=ServerRules(credits_per_day=settings.quota_server_credits_per_day),
    )


def build_auditor(client: discord.Client, runtime: Runtime, quota: QuotaService | None) -> Auditor:
    """The moderators' audit channel: job lines through the poller and service, budget alerts on admission."""

    async def rules_for(guild_id: int) -> ServerRules:
        return (await runtime.quota_store.config(guild_id)).rules

    auditor = Auditor(
        rules_for,
        runtime.state_store,
        DiscordAuditSink(client),
        model_names={spec.key: spec.display_name for spec in runtime.catalogue},
    )
    if quota is not None:
        quota.add_admission_listener(auditor.admitted)
    return auditor


def configure_endpoints(settings: Settings) -> None:
    """Point discord.py's REST and gateway at the configured URLs (a proxy, or a loopback test server)."""
    discord.http.Route.BASE = settings.discord_api_base_url
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.discord_gateway_url)


@dataclass(frozen=True)
class Callbacks:
    """The callback endpoint and the URL (with its key) that submits hand to the provider."""

    server: CallbackServer
    url: str


def _callback_key(settings: Settings) -> str | None:
    ark_key = settings.provider_key(ProviderName.ARK)
    if settings.public_callback_url is None or ark_key is None:
        return None
    return callback_key(ark_key.get_secret_value())


def callback_url_for(settings: Settings) -> str | None:
    """The callback URL (with its key) submits hand to ModelArk, when callbacks are configured."""
    key = _callback_key(settings)
    if key is None or settings.public_callback_url is None:
        return None
    return callback_url_with_key(settings.public_callback_url, key)


#: The key /healthz reads to see that the database answers (it need not exist).
HEALTH_PROBE_KEY = "health_probe"


def build_http_listener(bot: SeedanceBot) -> HttpListener:
    """The one HTTP listener: /healthz and /metrics always, the callback endpoint when configured."""
    runtime = bot.runtime
    checks = HealthChecks(
        discord_connected=lambda: bot.is_ready() and bot.gateway_open(),
        database_ping=lambda: runtime.state_store.get(HEALTH_PROBE_KEY),
    )
    return HttpListener(
        host=runtime.settings.http_listen_host,
        port=runtime.settings.http_listen_port,
        checks=checks,
        refresh_metrics=lambda: metrics.refresh_job_states(runtime.store),
        callbacks=bot.callbacks.server if bot.callbacks is not None else None,
    )


def build_callback_server(runtime: Runtime, poller: JobPoller) -> Callbacks | None:
    """The ModelArk callback endpoint, when PUBLIC_CALLBACK_URL is set and ModelArk is configured."""
    settings = runtime.settings
    key = _callback_key(settings)
    if key is None or settings.public_callback_url is None:
        return None
    server = CallbackServer(
        public_url=settings.public_callback_url,
        key=key,
        provider=ProviderName.ARK,
        find_job=runtime.store.find_by_provider_job,
        target=poller,
        events=runtime.events,
        owner=poller.owner,
    )
    return Callbacks(server=server, url=callback_url_with_key(settings.public_callback_url, key))


class SeedanceBot(commands.Bot):
    """The Seedance bot: slash commands in cogs, jobs driven by the poller, videos posted by the notifier."""

    def __init__(self, runtime: Runtime, quota: QuotaService | None = None) -> None:
        settings = runtime.settings
        intents = discord.Intents.none()
        intents.guilds = True  # channels, threads and the guild's upload limit; nothing privileged
        # Messages that mention the bot (not privileged: Discord shows the bot a mention's content anyway).
        intents.guild_messages = True
        # Privileged, off unless the owner switched it on: it lets a mention use the image it replies to.
        intents.message_content = runtime.settings.discord_message_content_intent
        # The bot never joins voice: without this, discord.py warns that PyNaCl and davey are missing.
        discord.VoiceClient.warn_nacl = False
        discord.VoiceClient.warn_dave = False
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents,
            help_command=None,
            allowed_mentions=discord.AllowedMentions.none(),
            max_messages=None,
            http_trace=metrics.discord_trace(),  # counts Discord requests and 429s for /metrics
            shard_count=settings.discord_shard_count,
        )
        self.runtime = runtime
        self.eta = EtaService(runtime.store)
        self.notifier = DiscordNotifier(self, retry_deadline_s=settings.discord_retry_s)
        self.intake = Intake(self)
        self.member_defaults = DefaultsService(runtime.state_store, runtime.catalogue)
        #: Each member's last known language, for the posts that are not answers to an interaction.
        self.languages = MemberLanguages(runtime.state_store)
        self.auditor = build_auditor(self, runtime, quota)
        self.jobs, self.poller = build_job_engine(
            runtime,
            self.notifier,
            job_filter=lambda job: job.requester.origin is JobOrigin.DISCORD,
            quota=quota,
            callback_url=callback_url_for(settings),
            defaults=self.member_defaults,
            discover=JobOrigin.DISCORD,
            audit=self.auditor,
        )
        self.callbacks = build_callback_server(runtime, self.poller)
        self.listener = build_http_listener(self)
        self.state_store = runtime.state_store
        self.tree.error(self.on_app_command_error)
        #: What setup_hook did, for the one "ready" line.
        self.commands_synced: bool | None = None
        self.resumed_jobs = 0
        self._said_ready = False
        self._card_sweep: asyncio.Task[None] | None = None

    @property
    def runs_shard_zero(self) -> bool:
        """Whether this process runs shard 0 (an unsharded one does): the one that syncs commands."""
        shards = self.runtime.settings.discord_shards
        return shards is None or 0 in shards

    def gateway_open(self) -> bool:
        """Whether the gateway connection is open (every shard's, for a sharded bot)."""
        return self.ws is not None and self.ws.open

    def shards_note(self) -> str:
        """The shards this process runs, for the ready line ("" when unsharded)."""
        shards = self.runtime.settings.discord_shards
        if shards is None:
            return ""
        return f"shard(s) {','.join(map(str, shards))} of {self.runtime.settings.discord_shard_count}; "

    async def on_message(self, message: discord.Message, /) -> None:
        """No text commands: a message that mentions the bot is a video request (cogs/mentions.py), not a
        command to look up (commands.Bot would log a CommandNotFound for every one)."""

    async def on_interaction(self, interaction: discord.Interaction, /) -> None:
        """Remember the member's language (Discord reports it with every interaction) for later posts."""
        try:
            await self.languages.remember(interaction.user.id, interaction.locale)
        except Exception:  # a courtesy: the posts fall back to the server's language
            log.exception("could not remember the language of member %s", interaction.user.id)

    async def post_language(self, user_id: int | None, guild_id: int | None) -> Language:
        """The language of a post outside an interaction (about a member's request, or none: `user_id`
        None): the member's last known one, else the one a moderator set for the server
        (/seedance-admin language), else the server's preferred locale, else English. Why in that order:
        `bot.jobs.languages`."""
        guild = self.get_guild(guild_id) if guild_id is not None else None
        return await self.languages.for_post(
            user_id, guild.preferred_locale if guild is not None else None, guild_id=guild_id
        )

    def model_name(self, model_key: str) -> str:
        """A model's display name, or its key when it is no longer in the catalogue."""
        try:
            return self.runtime.catalogue.get(model_key).display_name
        except DomainError:
            return model_key

    async def setup_hook(self) -> None:
        """Load the cogs, resume every job, and sync commands when they changed."""
        # Before the sync (it asks for the localizations) and on every process (autocomplete asks too).
        await self.tree.set_translator(CommandTranslator())
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        interrupted = (
            await self.intake.answer_interrupted()
        )  # before the poller: stored jobs answer themselves
        if interrupted:
            log.info("told %d member(s) their request was cut short by a restart", interrupted)
        self.resumed_jobs = await self.poller.start()
        log.debug("resumed %d job(s) from the store", self.resumed_jobs)
        repainted = await self.repaint_stale_cards()
        if repainted:
            log.info("repainting %d status card(s) left stale by a crash", repainted)
        self._card_sweep = asyncio.create_task(self._sweep_stale_cards(), name="stale-cards")
        settings = self.runtime.settings
        try:
            await self.listener.start()
        except OSError as error:
            raise StartupError(
                f"cannot listen on {settings.http_listen_host}:{settings.http_listen_port} ({error}): "
                "set HTTP_LISTEN_PORT to a free port."
            ) from error
        if self.runs_shard_zero:
            self.commands_synced = await self.sync_commands()
        else:
            # Commands are per application, not per shard: one sync (shard 0's process) serves every shard,
            # and N processes syncing would spend Discord's daily command-create budget N times.
            log.info("commands: leaving the sync to the process that runs shard 0")

    async def repaint_stale_cards(self) -> int:
        """Repaint the cards a crash left stale, of the jobs whose lease this process could take: with
        several processes on one database, each card is repainted by one of them, not by every one that
        starts; the cards of a live process's jobs are its own to paint."""
        stale = await self.runtime.store.claim_stale_cards(
            JobOrigin.DISCORD,
            self.poller.owner,
            finished_since=time.time() - STALE_CARD_WINDOW_S,
            until=self.poller.lease_until(),
        )
        for job in stale:
            self.notifier.show_status(job, final=True)
        return len(stale)

    async def _sweep_stale_cards(self) -> None:
        # A card whose job's lease was still live at start (the previous run of this process, killed
        # seconds ago; another process that dies later) is claimable once that lease expires.
        while True:
            await asyncio.sleep(self.poller.lease_s)
            try:
                repainted = await self.repaint_stale_cards()
            except Exception:  # a courtesy: the next round tries again
                log.exception("could not look for stale status cards")
                continue
            if repainted:
                log.info("repainting %d status card(s) left stale by a stopped process", repainted)

    async def on_ready(self) -> None:
        """Say once, in one line, that the bot is up and with what (reconnections fire this again: quiet)."""
        if self._said_ready:
            log.debug("ready again after a reconnection")
            return
        self._said_ready = True
        log.info("%s", self.ready_line())

    def ready_line(self) -> str:
        """Who the bot is, where, and with which commands, providers and database."""
        settings = self.runtime.settings
        commands_note = {True: "synced", False: "unchanged", None: "not synced"}[self.commands_synced]
        if not self.runs_shard_zero:
            commands_note = "left to shard 0"
        providers = ", ".join(
            f"{name.value} (default)" if name is settings.seedance_provider else name.value
            for name in self.runtime.providers
        )
        return (
            f"ready: logged in as {self.user} in {len(self.guilds)} server(s); {self.shards_note()}"
            f"commands {commands_note}; "
            f"provider(s) {providers}; "
            f"database {describe_database(settings.database_path, settings.database_url)}; "
            f"{self.resumed_jobs} job(s) resumed"
        )

    async def sync_commands(self) -> bool:
        """Sync the command set to Discord only when it differs from the last sync; True when it synced.

        Discord allows 200 command creates per guild a day, so a bot that restarts often must not re-sync
        on every start. With DISCORD_DEV_GUILD_ID the commands go to that guild (instant); otherwise
        globally.
        """
        dev_guild_id = self.runtime.settings.discord_dev_guild_id
        guild = discord.Object(id=dev_guild_id) if dev_guild_id else None
        if guild is not None:
            self.tree.copy_global_to(guild=guild)
        # What tree.sync will send, localizations included: a changed translation is a changed command.
        translator = self.tree.translator
        payload = [
            await command.get_translated_payload(self.tree, translator)
            if translator is not None
            else command.to_dict(self.tree)
            for command in self.tree.get_commands(guild=guild)
        ]
        digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
        key = f"command_hash:{self.application_id}:{guild.id if guild else 'global'}"
        if await self.state_store.get(key) == digest:
            log.debug("commands unchanged since the last sync; not syncing")
            return False
        synced = await self.tree.sync(guild=guild)
        await self.state_store.put(key, digest)
        log.debug("synced %d command(s) %s", len(synced), f"to guild {guild.id}" if guild else "globally")
        return True

    async def close(self) -> None:
        """Stop the HTTP listener and polling (letting steps in flight finish), flush edits, disconnect."""
        await self.listener.stop()
        if self._card_sweep is not None:
            self._card_sweep.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._card_sweep
        await self.poller.stop()
        await self.notifier.close()
        await super().close()

    async def on_app_command_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        """Command errors become answers through the one mapping (modals and buttons use it too)."""
        await answer_failure(interaction, error)


class ShardedSeedanceBot(SeedanceBot, commands.AutoShardedBot):
    """The Seedance bot on the shards DISCORD_SHARD_COUNT / DISCORD_SHARD_IDS name (discord.py's
    AutoShardedBot: one gateway connection per shard, one process)."""

    def __init__(self, runtime: Runtime, quota: QuotaService | None = None) -> None:
        super().__init__(runtime, quota)
        # AutoShardedClient reads shard_ids when it launches the shards; settings already checked them.
        self.shard_ids = list(runtime.settings.discord_shards or ())

    def gateway_open(self) -> bool:
        """Whether every shard's connection is open."""
        return bool(self.shards) and all(not shard.is_closed() for shard in self.shards.values())


def build_bot(runtime: Runtime, quota: QuotaService | None = None) -> SeedanceBot:
    """The bot: sharded when DISCORD_SHARD_COUNT is set, else today's single connection."""
    if runtime.settings.discord_shard_count is None:
        return SeedanceBot(runtime, quota)
    return ShardedSeedanceBot(runtime, quota)


#: Gateway close codes that mean the shard settings do not fit the application.
SHARD_CLOSE_CODES = {
    4010: "invalid shard, the count differs from Discord's or an id is not below it",
    4011: "sharding required, too many servers for this number of shards",
}


async def run_bot(
    settings: Settings,
    *,
    on_bot: Callable[[SeedanceBot], None] | None = None,
    handle_signals: bool = True,
) -> None:
    """Run the bot until it is closed (SIGTERM, SIGINT, or `bot.close()`); `on_bot` sees it once built."""
    token = settings.require_discord_token().get_secret_value()
    configure_endpoints(settings)
    async with open_runtime(settings) as runtime:
        bot = build_bot(runtime, build_quota_service(settings, runtime.quota_store, runtime.catalogue))
        if on_bot is not None:
            on_bot(bot)
        loop = asyncio.get_running_loop()
        closing: set[asyncio.Task[None]] = set()
        if handle_signals:
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, lambda: closing.add(loop.create_task(bot.close())))
        try:
            async with bot:
                await bot.start(token)
        except discord.LoginFailure as error:
            raise ConfigurationError("DISCORD_TOKEN was refused by Discord: check the bot token.") from error
        except aiohttp.ClientError as error:
            # No network, DNS or TLS trouble: aiohttp's message names the host; no traceback for this.
            raise StartupError(
                f"cannot reach Discord ({error}): check the network connection and DISCORD_API_BASE_URL."
            ) from error
        except discord.ConnectionClosed as error:
            if error.code not in SHARD_CLOSE_CODES:
                raise
            # 4010 "Invalid shard" / 4011 "Sharding required": the owner's settings, not a crash.
            raise StartupError(
                f"Discord refused the gateway connection ({error.code}: {SHARD_CLOSE_CODES[error.code]}): "
                "check DISCORD_SHARD_COUNT and DISCORD_SHARD_IDS."
            ) from error
        except discord.DiscordServerError as error:
            raise StartupError(
                f"Discord is having trouble ({error.status}); try again in a few minutes."
            ) from error
        finally:
            if handle_signals:
                for signum in (signal.SIGTERM, signal.SIGINT):
                    with contextlib.suppress(ValueError, RuntimeError):
                        loop.remove_signal_handler(signum)
            if closing:
                await asyncio.gather(*closing, return_exceptions=True)
