"""A loopback Discord: REST (``/api/v10``), gateway (websocket at ``/``) and CDN (``/attachments``).

A real discord.py client runs against it unmodified once ``Route.BASE`` and
``DiscordWebSocket.DEFAULT_GATEWAY`` point here (see ``DiscordDouble.patch_client_endpoints``). Every
REST request is recorded with what the double answered; Discord's rules (interaction deadlines, message
limits, upload limits, threads, components, modals, reactions, the Message Content intent, rate limits)
are enforced with Discord's real status codes and bodies. Message creates, edits and deletes share a
per-channel bucket (5 per 5 s by default) with Discord's rate-limit headers; the bot's reactions have a
stricter per-channel bucket of their own (1 per 0.25 s). Tests can inject faults: 429s
(``rate_limit_next``), server errors (``fail_next``), responses lost after the request was applied
(``drop_after_accept_next``), requests held in flight (``hold_next``) and hooks on message creation
(``on_message_created``).

Sharding works as on Discord: ``GET /gateway/bot`` recommends ``shard_count`` shards; an IDENTIFY may carry
``shard: [id, count]`` and then gets only the guilds with ``(guild_id >> 22) % count == id`` (READY,
GUILD_CREATE and every later guild event); DMs go to shard 0. Several sessions (one per shard, from one
client or several processes) may be connected at once. See ``DiscordDouble`` for the IDENTIFY rules.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import mimetypes
import re
import secrets
import time
import traceback
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

import discord
import discord.gateway
import discord.http
import yarl
from aiohttp import WSMsgType, web
from aiohttp.web_request import FileField

from .components import component_interaction_data, modal_submission_components
from .faults import Faults, HeldRequest, InjectedFailure, failure_response
from .interactions import (
    InteractionHandle,
    InteractionType,
    OptionEncoder,
    OptionType,
)
from .model import (
    MIB,
    ChannelSpec,
    ChannelType,
    DiscordAPIError,
    GuildSpec,
    HostedFile,
    Intents,
    RecordedRequest,
    StoredMessage,
    UploadedFile,
    UserSpec,
    new_snowflake,
    shard_of,
)
from .payloads import (
    bot_channel_permissions,
    channel_payload,
    guild_create_payload,
    image_embed,
    member_payload,
)
from .ratelimits import (
    MESSAGE_BUCKET_ROUTES,
    REACTION_BUCKET_HASH,
    REACTION_BUCKET_ROUTES,
    ChannelBuckets,
    RateLimitStats,
    rate_limit_reply,
)
from .rest import DM_UPLOAD_LIMIT, Reply, RestApi

T = TypeVar("T")
Handler = Callable[[RecordedRequest], Awaitable[Reply]]
_API_PREFIX = re.compile(r"^(?:/api(?:/v\d+)?)+")
_CALLBACK_ROUTE = "/interactions/{interaction_id}/{token}/callback"


@dataclass(eq=False)
class _RateLimitRule:
    predicate: Callable[[RecordedRequest], bool]
    retry_after: float
    is_global: bool
    remaining: int


class _RateLimitedError(Exception):
    def __init__(self, rule: _RateLimitRule) -> None:
        super().__init__("rate limited")
        self.rule = rule


class _BucketLimitedError(Exception):
    def __init__(self, body: dict[str, Any], headers: dict[str, str]) -> None:
        super().__init__("channel bucket exhausted")
        self.body = body
        self.headers = headers


class GatewaySession:
    """One websocket connection of a client to the double's gateway."""

    def __init__(self, websocket: web.WebSocketResponse, query: Mapping[str, str]) -> None:
        self.websocket = websocket
        self.query = dict(query)
        self.token: str | None = None
        self.intents: int | None = None
        self.identify_payload: dict[str, Any] | None = None
        self.session_id: str | None = None
        self.sequence = 0
        self.heartbeats = 0
        self.resumed = False
        self.presence_updates: list[dict[str, Any]] = []
        self.dispatched: list[tuple[str, dict[str, Any]]] = []
        self.closed = asyncio.Event()
        self._send_lock = asyncio.Lock()

    @property
    def ready(self) -> bool:
        """Identified (or resumed) and still open."""
        return self.session_id is not None and not self.closed.is_set()

    @property
    def shard(self) -> tuple[int, int]:
        """``(shard_id, shard_count)`` from the IDENTIFY; an unsharded session is shard 0 of 1."""
        shard = (self.identify_payload or {}).get("shard")
        return (int(shard[0]), int(shard[1])) if shard else (0, 1)

    def receives(self, guild_id: int | None) -> bool:
        """Whether Discord sends this session the events of ``guild_id`` (None: a DM, shard 0's)."""
        shard_id, shard_count = self.shard
        if guild_id is None:
            return shard_id == 0
        return shard_of(guild_id, shard_count) == shard_id

    async def send(self, payload: dict[str, Any]) -> None:
        """Send one TEXT frame; dispatches get the next sequence number."""
        async with self._send_lock:
            if payload["op"] == 0:
                self.sequence += 1
                payload["s"] = self.sequence
                self.dispatched.append((payload["t"], payload["d"]))
            await self.websocket.send_str(json.dumps(payload))

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        """Send a DISPATCH (op 0) event."""
        await self.send({"op": 0, "t": event, "d": data})


class DiscordDouble(RestApi):
    """A Discord REST + gateway + CDN server on 127.0.0.1 for end-to-end tests of a discord.py bot.

    Usage::

        async with DiscordDouble(guilds=[GuildSpec()]) as discord_double:
            with discord_double.patch_client_endpoints():
                ...  # start the bot with discord_double.token
                image = discord_double.add_attachment(png_bytes, "cat.png", "image/png")
                inter = await discord_double.send_slash_command("animate", {"image": image})
                await inter.wait_acknowledged()

    ``allowed_privileged_intents`` are the privileged intents enabled for the app in the developer portal
    (``message_content_intent_granted=True`` adds MESSAGE_CONTENT): identifying with any other closes
    the gateway with 4014, and REST reads of other members' messages are blanked unless MESSAGE_CONTENT
    is granted.

    Sharding: ``shard_count`` is what ``GET /gateway/bot`` recommends (1: today's single connection). An
    IDENTIFY's ``shard: [id, count]`` is checked like Discord does, kept simple: ``0 <= id < count`` and
    ``count == shard_count``, else the gateway closes with 4010 "Invalid shard"; a session (an unsharded
    one counts as ``[0, 1]``) that would hold more than ``max_guilds_per_shard`` guilds (2,500 on Discord)
    is closed with 4011 "Sharding required". Each session then gets only its own guilds' events.
    """

    def __init__(
        self,
        guilds: Sequence[GuildSpec] | None = None,
        *,
        bot_user: UserSpec | None = None,
        token: str = "test-bot-token",
        ack_deadline_s: float = 3.0,
        token_lifetime_s: float = 15 * 60.0,
        heartbeat_interval_ms: int = 41_250,
        allowed_privileged_intents: int = 0,
        strict_commands: bool = True,
        daily_command_create_cap: int = 200,
        channel_rate_limit: tuple[int, float] | None = (5, 5.0),
        nonce_window_s: float = 5 * 60.0,
        message_content_intent_granted: bool = False,
        reaction_rate_limit: tuple[int, float] | None = (1, 0.25),
        shard_count: int = 1,
        max_guilds_per_shard: int = 2500,
    ) -> None:
        self.guilds: list[GuildSpec] = list(guilds) if guilds is not None else [GuildSpec()]
        self.bot_user = bot_user or UserSpec("seedance-bot", bot=True)
        self.token = token
        self.ack_deadline_s = ack_deadline_s
        self.token_lifetime_s = token_lifetime_s
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.allowed_privileged_intents = allowed_privileged_intents | (
            Intents.MESSAGE_CONTENT if message_content_intent_granted else 0
        )
        self.strict_commands = strict_commands
        self.daily_command_create_cap = daily_command_create_cap
        # (requests, seconds) per channel shared by message create/edit/delete; None = no such limit.
        self.channel_rate_limit = channel_rate_limit
        # How long a create with ``enforce_nonce`` returns the earlier message sent with the same nonce.
        self.nonce_window_s = nonce_window_s
        # (requests, seconds) per channel for the bot's reaction adds/removes; None = no such limit.
        self.reaction_rate_limit = reaction_rate_limit
        if shard_count < 1 or max_guilds_per_shard < 1:
            raise ValueError("shard_count and max_guilds_per_shard must be at least 1")
        # The recommended shard count (GET /gateway/bot) and the one a sharded IDENTIFY must use.
        self.shard_count = shard_count
        # More guilds than this on one session closes it with 4011 "Sharding required".
        self.max_guilds_per_shard = max_guilds_per_shard

        self.requests: list[RecordedRequest] = []
        self.identifies: list[dict[str, Any]] = []
        self.sessions: list[GatewaySession] = []
        self.interactions: list[InteractionHandle] = []
        # Tracebacks of requests the double failed to process (answered 400): should stay empty.
        self.internal_errors: list[str] = []

        self._channels: dict[int, ChannelSpec] = {}
        self._guild_by_id = {guild.id: guild for guild in self.guilds}
        for guild in self.guilds:
            for channel in guild.channels:
                self._channels[channel.id] = channel
        self._threads: list[ChannelSpec] = []
        self._dm_channels: dict[int, ChannelSpec] = {}
        self._messages: dict[int, StoredMessage] = {}
        self._channel_messages: defaultdict[int, list[StoredMessage]] = defaultdict(list)
        self._files: dict[int, HostedFile] = {}
        #: Every file the CDN served, in order (a test can prove a refused request downloaded nothing).
        self.cdn_downloads: list[HostedFile] = []
        self._commands: defaultdict[int | None, dict[int, dict[str, Any]]] = defaultdict(dict)
        self._command_creates: Counter[int | None] = Counter()
        self._interactions_by_id: dict[int, InteractionHandle] = {}
        self._interactions_by_token: dict[str, InteractionHandle] = {}
        self._rate_limits: list[_RateLimitRule] = []
        self._injected_429s = 0
        self._buckets = ChannelBuckets(*channel_rate_limit) if channel_rate_limit is not None else None
        self._reaction_buckets = (
            ChannelBuckets(*reaction_rate_limit, bucket_hash=REACTION_BUCKET_HASH)
            if reaction_rate_limit is not None
            else None
        )
        self._faults = Faults()
        self._created_hooks: list[
            tuple[Callable[[StoredMessage], bool], Callable[[StoredMessage], object]]
        ] = []
        self._waiters: list[tuple[Callable[[], Any], asyncio.Future[Any]]] = []
        self._resumable: dict[str, GatewaySession] = {}
        self._cdn_key = secrets.token_bytes(16)
        self._routes = self._build_routes()
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start serving on 127.0.0.1 with an OS-assigned port."""
        app = web.Application(client_max_size=512 * MIB)
        app.router.add_get("/", self._handle_gateway)
        app.router.add_get("/attachments/{channel_id}/{file_id}/{filename}", self._handle_cdn)
        app.router.add_route("*", "/api/{tail:.*}", self._handle_api)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.base_url = f"http://{host}:{port}"

    async def close(self) -> None:
        """Close open gateway connections and stop the server (held requests are dropped)."""
        self._faults.release_all()
        for session in list(self.sessions):
            with contextlib.suppress(ConnectionError, RuntimeError):
                await session.websocket.close(code=1001, message=b"double shutting down")
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        for _, future in self._waiters:
            if not future.done():
                future.cancel()

    async def __aenter__(self) -> DiscordDouble:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def api_base(self) -> str:
        """Value for ``discord.http.Route.BASE``."""
        return f"{self.base_url}/api/v10"

    @property
    def gateway_url(self) -> str:
        """Value for ``DiscordWebSocket.DEFAULT_GATEWAY`` (discord.py appends ``?v=10&encoding=...``)."""
        return self.base_url.replace("http://", "ws://", 1) + "/"

    @property
    def cdn(self) -> str:
        """Base URL attachments are served from."""
        return self.base_url

    @property
    def message_content_intent_granted(self) -> bool:
        """Whether the app has the privileged Message Content intent enabled in the developer portal."""
        return bool(self.allowed_privileged_intents & Intents.MESSAGE_CONTENT)

    @message_content_intent_granted.setter
    def message_content_intent_granted(self, granted: bool) -> None:
        if granted:
            self.allowed_privileged_intents |= Intents.MESSAGE_CONTENT
        else:
            self.allowed_privileged_intents &= ~Intents.MESSAGE_CONTENT

    @property
    def application_id(self) -> int:
        """The bot's application id (equal to the bot user id, as for modern apps)."""
        return self.bot_user.id

    @contextlib.contextmanager
    def patch_client_endpoints(self) -> Iterator[None]:
        """Point discord.py's REST base and gateway at this double for the duration of the block."""
        old_base = discord.http.Route.BASE
        old_gateway = discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
        discord.http.Route.BASE = self.api_base
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(self.gateway_url)
        try:
            yield
        finally:
            discord.http.Route.BASE = old_base
            discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = old_gateway

    # ------------------------------------------------------------------ waiting

    def _wake(self) -> None:
        for entry in list(self._waiters):
            condition, future = entry
            if future.done():
                self._waiters.remove(entry)
                continue
            try:
                result = condition()
            except Exception as error:
                future.set_exception(error)
                self._waiters.remove(entry)
                continue
            if result is not None and result is not False:
                future.set_result(result)
                self._waiters.remove(entry)

    async def wait_until(self, condition: Callable[[], T | bool | None], timeout: float = 5.0) -> T:
        """Await the first non-None, non-False value of ``condition`` (re-checked on every change)."""
        result = condition()
        if result is not None and result is not False:
            return result  # type: ignore[return-value]
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        entry = (condition, future)
        self._waiters.append(entry)
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            recent = "\n  ".join(repr(request) for request in self.requests[-8:])
            raise TimeoutError(f"condition not met within {timeout}s; last requests:\n  {recent}") from None
        finally:
            if entry in self._waiters:
                self._waiters.remove(entry)

    async def wait_for(
        self, predicate: Callable[[RecordedRequest], bool], timeout: float = 5.0
    ) -> RecordedRequest:
        """Await the first recorded REST request (past or future) matching ``predicate``."""
        return await self.wait_until(lambda: next((r for r in self.requests if predicate(r)), None), timeout)

    async def wait_until_connected(
        self, timeout: float = 5.0, *, shard_id: int | None = None
    ) -> GatewaySession:
        """Await a client that has identified on the gateway (on shard ``shard_id``, if given)."""
        return await self.wait_until(
            lambda: next(
                (s for s in self.sessions if s.ready and shard_id in (None, s.shard[0])),
                None,
            ),
            timeout,
        )

    async def _wait_for_receiver(self, guild_id: int | None, timeout: float = 5.0) -> GatewaySession:
        """Await a session that receives ``guild_id``'s events (a DM's, for None)."""
        return await self.wait_until(
            lambda: next((s for s in self.sessions if s.ready and s.receives(guild_id)), None), timeout
        )

    def shard_of(self, guild: GuildSpec | int) -> int:
        """The shard (of ``shard_count``) that receives ``guild``'s events."""
        return shard_of(guild.id if isinstance(guild, GuildSpec) else guild, self.shard_count)

    def sessions_on_shard(self, shard_id: int) -> list[GatewaySession]:
        """Open, identified sessions that run shard ``shard_id``."""
        return [s for s in self.sessions if s.ready and s.shard[0] == shard_id]

    # ------------------------------------------------------------------ state for tests

    @property
    def unknown_requests(self) -> list[RecordedRequest]:
        """Requests to routes the double does not know (answered 404)."""
        return [request for request in self.requests if request.route is None]

    @property
    def threads(self) -> list[ChannelSpec]:
        """Threads created so far."""
        return list(self._threads)

    def guild(self, key: int | str) -> GuildSpec:
        """A configured guild by id or name."""
        for guild in self.guilds:
            if key in (guild.id, guild.name):
                return guild
        raise KeyError(f"no guild {key!r}")

    def channel(self, channel_id: int) -> ChannelSpec:
        """Any known channel, thread or DM by id."""
        return self._channels[channel_id]

    def messages(self, channel: ChannelSpec | int) -> list[StoredMessage]:
        """Visible (not deleted, not ephemeral) messages of a channel or thread, oldest first."""
        channel_id = channel.id if isinstance(channel, ChannelSpec) else channel
        return [m for m in self._channel_messages[channel_id] if not m.deleted and not m.ephemeral]

    def message(self, message_id: int) -> StoredMessage:
        """Any stored message by id (including ephemeral and deleted ones)."""
        return self._messages[message_id]

    def all_messages(self) -> list[StoredMessage]:
        """Every stored message in creation order."""
        return list(self._messages.values())

    def commands(self, guild: GuildSpec | int | None = None) -> list[dict[str, Any]]:
        """Registered commands: global ones, or those of ``guild``."""
        return list(self._commands[self._guild_key(guild)].values())

    def command_creates(self, guild: GuildSpec | int | None = None) -> int:
        """Commands created today (new names) globally or in ``guild`` - Discord caps guilds at 200/day."""
        return self._command_creates[self._guild_key(guild)]

    def command_sync_requests(self) -> list[RecordedRequest]:
        """Every request that wrote application commands."""
        return [r for r in self.requests if r.route and "/commands" in r.route and r.method != "GET"]

    @staticmethod
    def _guild_key(guild: GuildSpec | int | None) -> int | None:
        return guild.id if isinstance(guild, GuildSpec) else guild

    def add_attachment(
        self,
        data: bytes,
        filename: str,
        content_type: str | None = None,
        *,
        channel: ChannelSpec | None = None,
        ephemeral: bool = True,
    ) -> HostedFile:
        """Host ``data`` on the CDN (as a user's upload for a command option, by default)."""
        channel_id = channel.id if channel is not None else self.guilds[0].text_channel.id
        content_type = content_type or mimetypes.guess_type(filename)[0] or "application/octet-stream"
        return self._host(data, filename, content_type, channel_id, ephemeral=ephemeral)

    def remove_attachment(self, hosted: HostedFile) -> None:
        """Make the CDN forget a file, as Discord does with ephemeral attachments after a while."""
        hosted.removed = True

    def hosted_file(self, url_or_id: str | int) -> HostedFile:
        """The hosted file for a CDN URL or attachment id."""
        if isinstance(url_or_id, str):
            url_or_id = int(yarl.URL(url_or_id).path.split("/")[3])
        return self._files[url_or_id]

    def dm_channel(self, user: UserSpec) -> ChannelSpec:
        """The DM channel between the bot and ``user`` (created on first use)."""
        channel = self._dm_channels.get(user.id)
        if channel is None:
            channel = ChannelSpec(name="", type=ChannelType.DM, recipients=[user])
            self._dm_channels[user.id] = channel
            self._channels[channel.id] = channel
        return channel

    async def post_user_message(
        self,
        channel: ChannelSpec,
        content: str = "",
        *,
        user: UserSpec | None = None,
        attachments: Sequence[HostedFile] = (),
        reference: StoredMessage | None = None,
        embeds: Sequence[Mapping[str, Any]] = (),
        ping_replied_author: bool = True,
    ) -> StoredMessage:
        """A member posts a message (e.g. a target for a message context-menu command).

        ``content`` may mention the bot (``f"<@{double.bot_user.id}> ..."``): mentions are parsed as
        Discord does. ``reference`` makes it a reply (type 19) to that message in the same channel: the
        stored message gets ``message_reference`` and MESSAGE_CREATE carries ``referenced_message``.
        ``ping_replied_author`` is the client's reply "@ mention" toggle (on by default): it puts the
        replied-to author in ``mentions``. ``embeds`` are stored as given (see ``image_embed``).
        """
        guild = self._guild_by_id.get(channel.guild_id) if channel.guild_id else None
        author = user or (guild.members[0] if guild else channel.recipients[0])
        body: dict[str, Any] = {"content": content, "embeds": [dict(embed) for embed in embeds]}
        if reference is not None:
            if reference.deleted or reference.channel_id != channel.id:
                raise ValueError("a member can reply only to a visible message of the same channel")
            body["message_reference"] = {"type": 0, "message_id": str(reference.id)}
        message = self._create_message(
            channel=channel,
            author=author,
            body=body,
            files=[],
            source="user",
            hosted=attachments,
            reply_ping=ping_replied_author,
        )
        await self._announce_message(message)
        self._wake()
        return message

    def image_embed(self, image: HostedFile, *, link: bool = True) -> dict[str, Any]:
        """An embed showing ``image`` (hosted on the double's CDN), for ``post_user_message(embeds=...)``.

        ``link=True`` is what Discord unfurls from a pasted image link (type "image", the picture in
        ``thumbnail``); ``link=False`` a rich embed with the picture in ``image``.
        """
        return image_embed(image, link=link)

    async def wait_reaction(
        self, message: StoredMessage, emoji: str | None = None, timeout: float = 5.0
    ) -> str:
        """Await the bot's reaction ``emoji`` (any, if None) on ``message``; return the emoji string."""

        def reacted() -> str | None:
            if emoji is None:
                return message.reactions[0] if message.reactions else None
            return emoji if emoji in message.reactions else None

        return await self.wait_until(reacted, timeout=timeout)

    def rate_limit_next(
        self,
        predicate: Callable[[RecordedRequest], bool] | None = None,
        *,
        retry_after: float = 0.1,
        is_global: bool = False,
        count: int = 1,
    ) -> None:
        """Answer the next ``count`` requests matching ``predicate`` (any, if None) with a 429."""
        self._rate_limits.append(_RateLimitRule(predicate or (lambda _: True), retry_after, is_global, count))

    def rate_limit_stats(self) -> RateLimitStats:
        """What rate limiting did so far: per channel the peak accepted per window and the 429s served."""
        limit, period_s = self.channel_rate_limit or (None, None)
        channels = self._buckets.stats() if self._buckets is not None else {}
        reactions = self._reaction_buckets.stats() if self._reaction_buckets is not None else {}
        return RateLimitStats(
            limit=limit,
            period_s=period_s,
            channels=channels,
            rate_limited=sum(stats.rate_limited for stats in channels.values()),
            injected_rate_limited=self._injected_429s,
            reaction_channels=reactions,
            reaction_rate_limited=sum(stats.rate_limited for stats in reactions.values()),
        )

    def fail_next(
        self,
        predicate: Callable[[RecordedRequest], bool] | None = None,
        *,
        status: int = 503,
        count: int = 1,
        body: str | dict[str, Any] | None = None,
    ) -> None:
        """Answer the next ``count`` requests matching ``predicate`` (any, if None) with ``status``.

        Nothing is applied (no message is created). The body is what Discord's edge sends: for 503 the
        text/plain "upstream connect error ..." of its proxy, otherwise ``{"message": "500: Internal
        Server Error", "code": 0}``-style JSON; ``body`` overrides it (a str is sent as text/plain).
        discord.py raises ``discord.DiscordServerError`` at once for a 503, but retries a 500, 502 or 504
        up to four times (sleeping 1, 3, 5, 7 s): ``count=1`` of those is absorbed after a 1 s wait.
        """
        self._faults.add_failure(predicate, status, count, body)

    def drop_after_accept_next(
        self, predicate: Callable[[RecordedRequest], bool] | None = None, *, count: int = 1
    ) -> None:
        """Apply the next ``count`` matching requests, then close the connection without answering.

        The message IS created, stored and announced on the gateway (``on_message_created`` hooks run)
        and the request is recorded with ``dropped=True``, but the client never gets the response:
        discord.py's call raises ``aiohttp.ServerDisconnectedError`` (not a ``discord.HTTPException``,
        and not retried for POST/PATCH; aiohttp itself resends a DELETE once on a reused connection).
        """
        self._faults.add_drop(predicate, count)

    def hold_next(self, predicate: Callable[[RecordedRequest], bool] | None = None) -> HeldRequest:
        """Hold the next matching request (body fully received) before the double applies it.

        ``await handle.arrived()`` returns once it is held; ``handle.release()`` applies and answers it
        (rate limit included, judged at that moment), ``handle.drop()`` discards it and closes the
        connection. Meant for crash tests that kill the bot while its request is in flight.
        """
        return self._faults.add_hold(predicate)

    def on_message_created(
        self,
        callback: Callable[[StoredMessage], object],
        predicate: Callable[[StoredMessage], bool] | None = None,
    ) -> Callable[[], None]:
        """Call ``callback(message)`` synchronously whenever a matching message is created.

        It runs as soon as the message is stored - before MESSAGE_CREATE goes out on the gateway and
        before the HTTP response is written - so a crash test can kill the bot right there. Returns a
        function that removes the hook.
        """
        entry = (predicate or (lambda _: True), callback)
        self._created_hooks.append(entry)

        def remove() -> None:
            if entry in self._created_hooks:
                self._created_hooks.remove(entry)

        return remove

    def _notify_message_created(self, message: StoredMessage) -> None:
        for predicate, callback in list(self._created_hooks):
            if predicate(message):
                callback(message)

    async def nonce_window_over(self, message: StoredMessage) -> None:
        """Return once a resend with ``message``'s nonce would create a new message."""
        # Wall-clock time by definition: nothing else to await.
        await asyncio.sleep(max(0.0, message.created_at + self.nonce_window_s - time.monotonic()))

    async def dispatch_event(self, event: str, data: dict[str, Any], *, intent: int | None = None) -> None:
        """Send a gateway DISPATCH to every connected client (with ``intent``, if given).

        With shards, only the sessions whose shard holds ``data["guild_id"]`` get it (shard 0 without one).
        """
        guild_id = int(data["guild_id"]) if data.get("guild_id") else None
        for session in [s for s in self.sessions if s.ready and s.receives(guild_id)]:
            if intent is not None and not (session.intents or 0) & intent:
                continue
            with contextlib.suppress(ConnectionError, RuntimeError):
                await session.dispatch(event, data)

    async def disconnect_gateway(self, code: int = 4000) -> None:
        """Close every gateway connection with ``code`` (4000 lets discord.py reconnect and RESUME)."""
        for session in list(self.sessions):
            await session.websocket.close(code=code, message=b"double-initiated disconnect")

    # ------------------------------------------------------------------ interactions

    def _resolve_target(
        self, guild: GuildSpec | None, channel: ChannelSpec | None, user: UserSpec | None, dm: bool
    ) -> tuple[GuildSpec | None, ChannelSpec, UserSpec]:
        if dm:
            user = user or self.guilds[0].members[0]
            return None, channel or self.dm_channel(user), user
        if guild is None:
            guild = self._guild_by_id[channel.guild_id] if channel and channel.guild_id else self.guilds[0]
        channel = channel or guild.text_channel
        user = user or guild.members[0]
        if guild.member(user.id) is None:
            raise ValueError(f"{user.username} is not a member of {guild.name}")
        return guild, channel, user

    def _find_command(self, name: str, command_type: int, guild: GuildSpec | None) -> dict[str, Any] | None:
        scopes: list[int | None] = [guild.id] if guild is not None else []
        scopes.append(None)
        for scope in scopes:
            for command in self._commands[scope].values():
                if command["name"] == name and command.get("type", 1) == command_type:
                    return command
        if self.strict_commands:
            synced = sorted(command["name"] for scope in scopes for command in self._commands[scope].values())
            raise LookupError(f"command {name!r} (type {command_type}) is not synced; synced: {synced}")
        return None

    @staticmethod
    def _inferred_schema(values: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Option schema guessed from Python values, for commands the bot did not sync (non-strict mode)."""

        def option_type(value: Any) -> int:
            if isinstance(value, HostedFile):
                return OptionType.ATTACHMENT
            if isinstance(value, bool):
                return OptionType.BOOLEAN
            if isinstance(value, int):
                return OptionType.INTEGER
            if isinstance(value, float):
                return OptionType.NUMBER
            if isinstance(value, UserSpec):
                return OptionType.USER
            if isinstance(value, ChannelSpec):
                return OptionType.CHANNEL
            return OptionType.STRING

        return [
            {"name": name, "type": option_type(value), "description": "-"} for name, value in values.items()
        ]

    def _command_data(
        self, name: str, command_type: int, guild: GuildSpec | None
    ) -> tuple[dict[str, Any], Any]:
        command = self._find_command(name, command_type, guild)
        data: dict[str, Any] = {"name": name, "type": command_type}
        data["id"] = command["id"] if command else str(new_snowflake())
        if command and command.get("guild_id"):
            data["guild_id"] = command["guild_id"]
        return data, command

    async def send_slash_command(
        self,
        name: str,
        options: Mapping[str, Any] | None = None,
        *,
        user: UserSpec | None = None,
        channel: ChannelSpec | None = None,
        guild: GuildSpec | None = None,
        dm: bool = False,
    ) -> InteractionHandle:
        """A member runs ``/name`` (``"group sub"`` for subcommands) with ``options``.

        Option values: str/int/float/bool, a ``HostedFile`` for attachments, ``UserSpec``/``ChannelSpec``.
        """
        return await self._send_chat_input(name, options or {}, user, channel, guild, dm, focused=None)

    async def send_autocomplete(
        self,
        name: str,
        options: Mapping[str, Any],
        *,
        focused: str,
        user: UserSpec | None = None,
        channel: ChannelSpec | None = None,
        guild: GuildSpec | None = None,
        dm: bool = False,
    ) -> InteractionHandle:
        """A member types into option ``focused`` of ``/name``: an autocomplete interaction (type 4)."""
        return await self._send_chat_input(name, options, user, channel, guild, dm, focused=focused)

    async def _send_chat_input(
        self,
        name: str,
        options: Mapping[str, Any],
        user: UserSpec | None,
        channel: ChannelSpec | None,
        guild: GuildSpec | None,
        dm: bool,
        *,
        focused: str | None,
    ) -> InteractionHandle:
        guild, channel, user = self._resolve_target(guild, channel, user, dm)
        root, *path = name.split()
        data, command = self._command_data(root, 1, guild)
        schema = (command.get("options") or []) if command else self._inferred_schema(options)
        encoder = OptionEncoder(guild, self.bot_user, focused=focused)
        data["options"] = encoder.encode(schema, path, options)
        if encoder.resolved:
            data["resolved"] = encoder.resolved
        kind = InteractionType.APPLICATION_COMMAND if focused is None else InteractionType.AUTOCOMPLETE
        return await self._dispatch_interaction(kind, data, guild, channel, user)

    async def send_message_command(
        self,
        name: str,
        message: StoredMessage,
        *,
        user: UserSpec | None = None,
    ) -> InteractionHandle:
        """A member uses the message context-menu command ``name`` on ``message``."""
        channel = self._channels[message.channel_id]
        guild, channel, user = self._resolve_target(None, channel, user, dm=channel.type == ChannelType.DM)
        data, _ = self._command_data(name, 3, guild)
        data["target_id"] = str(message.id)
        # Message commands see the whole message, Message Content intent or not.
        data["resolved"] = {"messages": {str(message.id): self._message_object(message)}}
        return await self._dispatch_interaction(
            InteractionType.APPLICATION_COMMAND, data, guild, channel, user
        )

    async def send_user_command(
        self, name: str, target: UserSpec, *, user: UserSpec | None = None, guild: GuildSpec | None = None
    ) -> InteractionHandle:
        """A member uses the user context-menu command ``name`` on ``target``."""
        guild, channel, user = self._resolve_target(guild, None, user, dm=False)
        data, _ = self._command_data(name, 2, guild)
        data["target_id"] = str(target.id)
        encoder = OptionEncoder(guild, self.bot_user)
        encoder.encode([{"name": "target", "type": OptionType.USER}], [], {"target": target})
        data["resolved"] = encoder.resolved
        return await self._dispatch_interaction(
            InteractionType.APPLICATION_COMMAND, data, guild, channel, user
        )

    async def send_component(
        self,
        message: StoredMessage,
        custom_id: str,
        *,
        component_type: int | None = None,
        values: Sequence[str] | None = None,
        user: UserSpec | None = None,
    ) -> InteractionHandle:
        """A member clicks a button (or picks ``values`` in a string select) on ``message``.

        Like a Discord client, refuses (ValueError) what a member cannot do: a custom id that is not on
        the message's current components, a disabled component, values for a button, select values
        outside its options or outside ``min_values..max_values``, a deleted message.
        ``component_type`` (inferred when None) must match the component's type if given.
        """
        if message.deleted:
            raise ValueError("the message was deleted: nothing on it can be clicked")
        data = component_interaction_data(message.components, custom_id, values, component_type)
        channel = self._channels[message.channel_id]
        guild, channel, user = self._resolve_target(None, channel, user, dm=channel.type == ChannelType.DM)
        return await self._dispatch_interaction(
            InteractionType.MESSAGE_COMPONENT, data, guild, channel, user, message=message
        )

    async def submit_modal(
        self,
        handle: InteractionHandle,
        values: Mapping[str, str | Sequence[str]],
        *,
        user: UserSpec | None = None,
    ) -> InteractionHandle:
        """The member submits the modal the bot opened in answer to ``handle``: a MODAL_SUBMIT (type 5).

        ``values`` maps input custom ids to a str (text inputs) or a list of option values (string
        selects); inputs left out keep their pre-filled value. The submit is a new interaction with its
        own id, token, 3 s deadline and 15-minute token; ``data`` is ``{custom_id, components}`` shaped
        as Discord sends it for the modal's form (action rows or Labels, with component ids), and it
        carries ``message`` when the modal was opened from a component interaction.

        ValueError, as the Discord client would not submit: no modal was opened, a value breaks the
        input's required/min/max rules or is not among a select's options, an unknown custom id, another
        user than the one the modal was shown to, or a modal already closed by an acknowledged submit
        (an unanswered submit leaves the modal open with an error, so it can be submitted again).
        """
        modal = handle.modal
        if modal is None:
            raise ValueError(f"the bot opened no modal in answer to {handle!r}")
        if user is not None and user.id != handle.user.id:
            raise ValueError(f"the modal was shown to {handle.user.username}, not to {user.username}")
        if any(submit.acknowledged for submit in handle.modal_submits):
            raise ValueError("the modal was already submitted and closed")
        data = {"custom_id": modal.custom_id, "components": modal_submission_components(modal, values)}
        source_message = handle.message if handle.type == InteractionType.MESSAGE_COMPONENT else None
        submit = await self._dispatch_interaction(
            InteractionType.MODAL_SUBMIT,
            data,
            handle.guild,
            handle.channel,
            handle.user,
            message=source_message,
        )
        submit.modal_source = handle
        submit.submitted_modal = modal
        handle.modal_submits.append(submit)
        self._wake()
        return submit

    def _upload_limit(self, guild: GuildSpec | None) -> int:
        return guild.upload_limit if guild is not None else DM_UPLOAD_LIMIT

    def _parent(self, channel: ChannelSpec) -> ChannelSpec | None:
        return self._channels.get(channel.parent_id) if channel.parent_id else None

    async def _dispatch_interaction(
        self,
        kind: int,
        data: dict[str, Any],
        guild: GuildSpec | None,
        channel: ChannelSpec,
        user: UserSpec,
        *,
        message: StoredMessage | None = None,
    ) -> InteractionHandle:
        await self._wait_for_receiver(guild.id if guild is not None else None)
        interaction_id = new_snowflake()
        channel_object = channel_payload(channel, bot=self.bot_user)
        payload: dict[str, Any] = {
            "id": str(interaction_id),
            "application_id": str(self.application_id),
            "type": kind,
            "data": data,
            "token": f"dbl.{secrets.token_urlsafe(40)}",
            "version": 1,
            "locale": user.locale,
            "entitlements": [],
            "entitlement_sku_ids": [],
            "attachment_size_limit": self._upload_limit(guild),
            "channel_id": str(channel.id),
            "channel": channel_object,
        }
        if guild is not None:
            member_permissions = guild.member_permissions(user)
            channel_object["permissions"] = str(member_permissions)
            payload |= {
                "guild_id": str(guild.id),
                "guild": {"id": str(guild.id), "locale": guild.locale, "features": []},
                "guild_locale": guild.locale,
                "member": member_payload(user, [user.role_id], permissions=member_permissions),
                "app_permissions": str(bot_channel_permissions(guild, channel, self._parent(channel))),
                "authorizing_integration_owners": {"0": str(guild.id)},
                "context": 0,
            }
        else:
            payload |= {
                "user": user.payload(),
                "app_permissions": str(
                    discord.Permissions(send_messages=True, attach_files=True, embed_links=True).value
                ),
                "authorizing_integration_owners": {"0": "0"},
                "context": 1,
            }
        if message is not None:
            payload["message"] = self._message_object(message)
        handle = InteractionHandle(
            self,
            payload=payload,
            guild=guild,
            channel=channel,
            user=user,
            dispatched_at=time.monotonic(),
            message=message,
        )
        self._interactions_by_id[handle.id] = handle
        self._interactions_by_token[handle.token] = handle
        self.interactions.append(handle)
        await self.dispatch_event("INTERACTION_CREATE", payload)
        return handle

    # ------------------------------------------------------------------ HTTP plumbing

    def _build_routes(self) -> list[tuple[str, re.Pattern[str], str, Handler, bool]]:
        app_commands = "/applications/{application_id}/commands"
        guild_commands = "/applications/{application_id}/guilds/{guild_id}/commands"
        table: list[tuple[str, str, Handler, bool]] = [
            ("GET", "/users/@me", self._get_me, True),
            ("POST", "/users/@me/channels", self._create_dm, True),
            ("GET", "/users/@me/guilds", self._list_my_guilds, True),
            ("GET", "/users/{user_id}", self._get_user, True),
            ("GET", "/oauth2/applications/@me", self._get_application, True),
            ("GET", "/applications/@me", self._get_application, True),
            ("GET", "/gateway", self._get_gateway, False),
            ("GET", "/gateway/bot", self._get_gateway_bot, True),
            ("GET", app_commands, self._list_commands, True),
            ("PUT", app_commands, self._bulk_upsert_commands, True),
            ("POST", app_commands, self._upsert_command, True),
            ("GET", app_commands + "/{command_id}", self._get_command, True),
            ("PATCH", app_commands + "/{command_id}", self._edit_command, True),
            ("DELETE", app_commands + "/{command_id}", self._delete_command, True),
            ("GET", guild_commands, self._list_commands, True),
            ("PUT", guild_commands, self._bulk_upsert_commands, True),
            ("POST", guild_commands, self._upsert_command, True),
            ("GET", guild_commands + "/{command_id}", self._get_command, True),
            ("PATCH", guild_commands + "/{command_id}", self._edit_command, True),
            ("DELETE", guild_commands + "/{command_id}", self._delete_command, True),
            ("POST", _CALLBACK_ROUTE, self._interaction_callback, False),
            ("POST", "/webhooks/{application_id}/{token}", self._webhook_execute, False),
            ("GET", "/webhooks/{application_id}/{token}/messages/{message_id}", self._webhook_get, False),
            ("PATCH", "/webhooks/{application_id}/{token}/messages/{message_id}", self._webhook_edit, False),
            (
                "DELETE",
                "/webhooks/{application_id}/{token}/messages/{message_id}",
                self._webhook_delete,
                False,
            ),
            ("GET", "/guilds/{guild_id}", self._get_guild, True),
            ("GET", "/guilds/{guild_id}/channels", self._get_guild_channels, True),
            ("GET", "/guilds/{guild_id}/members/{user_id}", self._get_member, True),
            ("GET", "/channels/{channel_id}", self._get_channel, True),
            ("POST", "/channels/{channel_id}/typing", self._typing, True),
            ("GET", "/channels/{channel_id}/messages", self._list_messages, True),
            ("POST", "/channels/{channel_id}/messages", self._create_channel_message, True),
            ("GET", "/channels/{channel_id}/messages/{message_id}", self._get_message, True),
            ("PATCH", "/channels/{channel_id}/messages/{message_id}", self._edit_channel_message, True),
            ("DELETE", "/channels/{channel_id}/messages/{message_id}", self._delete_channel_message, True),
            ("POST", "/channels/{channel_id}/messages/{message_id}/threads", self._thread_from_message, True),
            ("POST", "/channels/{channel_id}/threads", self._thread_without_message, True),
            ("PUT", "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me", self._react, True),
            (
                "DELETE",
                "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me",
                self._unreact,
                True,
            ),
        ]
        compiled = []
        for method, template, handler, needs_bot_auth in table:
            pattern = re.compile("^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template)) + "$")
            compiled.append((method, pattern, template, handler, needs_bot_auth))
        return compiled

    @staticmethod
    def _json_response(status: int, body: Any, headers: Mapping[str, str] | None = None) -> web.Response:
        if status == 204:
            return web.Response(status=204, headers=headers)
        # Exactly "application/json": discord.py treats "application/json; charset=..." as text.
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        return web.Response(status=status, body=json.dumps(body).encode(), headers=all_headers)

    @staticmethod
    async def _read_body(request: web.Request) -> tuple[Any, list[UploadedFile]]:
        if request.content_type == "multipart/form-data":
            form = await request.post()
            payload: Any = None
            files = []
            for field_name, value in form.items():
                if isinstance(value, FileField):
                    content_type = value.content_type
                    if content_type == "application/octet-stream":
                        content_type = mimetypes.guess_type(value.filename)[0] or content_type
                    files.append(UploadedFile(field_name, value.filename, content_type, value.file.read()))
                elif field_name == "payload_json":
                    payload = json.loads(value)
            return payload, files
        raw = await request.read()
        return (json.loads(raw) if raw else None), []

    async def _handle_api(self, request: web.Request) -> web.Response:
        path = _API_PREFIX.sub("", request.path) or "/"
        record = RecordedRequest(
            method=request.method,
            path=path,
            route=None,
            params={},
            query=dict(request.query),
            json=None,
            files=[],
            authorization=request.headers.get("Authorization"),
            at=time.monotonic(),
        )
        headers: dict[str, str] = {}
        response: web.Response | None = None
        drop = False
        try:
            try:
                record.json, record.files = await self._read_body(request)
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise DiscordAPIError(400, 50109, "The request body contains invalid JSON.") from None
            handler, needs_bot_auth = self._route(record)
            if needs_bot_auth and record.authorization != f"Bot {self.token}":
                raise DiscordAPIError(401, 0, "401: Unauthorized")
            self._apply_injected_rate_limit(record)
            failure = Faults.take(self._faults.failures, record)
            if failure is not None:
                raise InjectedFailure(failure)
            hold = Faults.take(self._faults.holds, record)
            if hold is not None and hold.hold is not None:
                record.held = True
                if not await hold.hold.hold(record, request.transport):
                    return self._drop_connection(request, record)
            headers = self._admit_to_channel_bucket(record)
            drop = Faults.take(self._faults.drops, record) is not None
            status, body = await handler(record)
        except DiscordAPIError as error:
            status, body = error.status, error.body()
        except _RateLimitedError as limited:
            self._injected_429s += 1
            status, body, headers = 429, *self._rate_limit_reply(limited.rule)
        except _BucketLimitedError as limited:
            status, body, headers = 429, limited.body, limited.headers
        except InjectedFailure as injected:
            body, response = failure_response(injected.rule.status, injected.rule.body)
            status = injected.rule.status
        except Exception as error:
            # A body the double cannot digest. Answering 500 would make discord.py retry for ~25 s,
            # so answer like Discord does for malformed bodies and keep the traceback for the test.
            self.internal_errors.append(traceback.format_exc())
            status, body = 400, {"code": 50035, "message": f"Invalid Form Body (double: {error!r})"}
        record.status, record.response, record.response_headers = status, body, headers
        if drop:
            return self._drop_connection(request, record)
        self.requests.append(record)
        self._wake()
        return response or self._json_response(status, body, headers)

    def _drop_connection(self, request: web.Request, record: RecordedRequest) -> web.Response:
        """Record ``record`` as dropped and close its connection: the client gets no response at all."""
        record.dropped = True
        self.requests.append(record)
        self._wake()
        if request.transport is not None:
            request.transport.abort()
        # aiohttp cannot write this to the aborted transport; the client sees the connection close.
        return web.Response(status=204)

    def _admit_to_channel_bucket(self, record: RecordedRequest) -> dict[str, str]:
        """Count a message create/edit/delete or a reaction against its channel's bucket; its headers,
        or a 429."""
        key = (record.method, record.route)
        if key in MESSAGE_BUCKET_ROUTES:
            buckets = self._buckets
        elif key in REACTION_BUCKET_ROUTES:
            buckets = self._reaction_buckets
        else:
            return {}
        if buckets is None:
            return {}
        admission = buckets.admit(record.params["channel_id"])
        if not admission.allowed:
            body, headers = rate_limit_reply(admission.retry_after, bucket_headers=admission.headers)
            raise _BucketLimitedError(body, headers)
        return admission.headers

    def _route(self, record: RecordedRequest) -> tuple[Handler, bool]:
        path_known = False
        for method, pattern, template, handler, needs_bot_auth in self._routes:
            match = pattern.match(record.path)
            if match is None:
                continue
            path_known = True
            if method == record.method:
                record.route, record.params = template, match.groupdict()
                return handler, needs_bot_auth
        if path_known:
            raise DiscordAPIError(405, 0, "405: Method Not Allowed")
        raise DiscordAPIError(404, 0, "404: Not Found")

    def _apply_injected_rate_limit(self, record: RecordedRequest) -> None:
        for rule in self._rate_limits:
            if rule.remaining > 0 and rule.predicate(record):
                rule.remaining -= 1
                if rule.remaining == 0:
                    self._rate_limits.remove(rule)
                raise _RateLimitedError(rule)

    @staticmethod
    def _rate_limit_reply(rule: _RateLimitRule) -> tuple[dict[str, Any], dict[str, str]]:
        return rate_limit_reply(rule.retry_after, is_global=rule.is_global)

    # ------------------------------------------------------------------ CDN

    def _signature(self, channel_id: int, file_id: int, expires: int, issued: int) -> str:
        message = f"{channel_id}/{file_id}|{expires:x}|{issued:x}".encode()
        return hmac.new(self._cdn_key, message, hashlib.sha256).hexdigest()

    def _host(
        self,
        data: bytes,
        filename: str,
        content_type: str,
        channel_id: int,
        *,
        ephemeral: bool = False,
        description: str | None = None,
    ) -> HostedFile:
        file_id = new_snowflake()
        issued = int(time.time())
        expires = issued + 24 * 3600
        signature = self._signature(channel_id, file_id, expires, issued)
        url = (
            f"{self.base_url}/attachments/{channel_id}/{file_id}/{quote(filename)}"
            f"?ex={expires:x}&is={issued:x}&hm={signature}&"
        )
        hosted = HostedFile(file_id, filename, content_type, data, url, channel_id, ephemeral, description)
        self._files[file_id] = hosted
        return hosted

    async def _handle_cdn(self, request: web.Request) -> web.Response:
        not_found = web.Response(status=404, text="This content is no longer available.")
        try:
            channel_id = int(request.match_info["channel_id"])
            file_id = int(request.match_info["file_id"])
            expires = int(request.query["ex"], 16)
            issued = int(request.query["is"], 16)
        except (KeyError, ValueError):
            return not_found
        hosted = self._files.get(file_id)
        signature_ok = hmac.compare_digest(
            request.query.get("hm", ""), self._signature(channel_id, file_id, expires, issued)
        )
        if (
            hosted is None
            or hosted.removed
            or not signature_ok
            or expires < time.time()
            or hosted.channel_id != channel_id
            or hosted.filename != request.match_info["filename"]
        ):
            return not_found
        self.cdn_downloads.append(hosted)
        return web.Response(body=hosted.data, headers={"Content-Type": hosted.content_type})

    # ------------------------------------------------------------------ gateway

    async def _handle_gateway(self, request: web.Request) -> web.WebSocketResponse:
        websocket = web.WebSocketResponse(max_msg_size=16 * MIB, timeout=2.0)
        await websocket.prepare(request)
        session = GatewaySession(websocket, request.query)
        self.sessions.append(session)
        try:
            if request.query.get("encoding", "json") != "json":
                await websocket.close(code=4002, message=b"Error while decoding payload.")
                return websocket
            await session.send({"op": 10, "d": {"heartbeat_interval": self.heartbeat_interval_ms}})
            async for frame in websocket:
                if frame.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                    continue
                try:
                    payload = json.loads(frame.data)
                except (json.JSONDecodeError, UnicodeDecodeError):
                    await websocket.close(code=4002, message=b"Error while decoding payload.")
                    break
                await self._on_gateway_payload(session, payload)
        except (ConnectionError, RuntimeError):
            pass  # the client went away mid-send; nothing to clean up beyond the finally block
        finally:
            session.closed.set()
            self.sessions.remove(session)
            self._wake()
        return websocket

    async def _on_gateway_payload(self, session: GatewaySession, payload: dict[str, Any]) -> None:
        op = payload.get("op")
        data = payload.get("d")
        if op == 1:
            session.heartbeats += 1
            await session.send({"op": 11})
        elif op == 2:
            await self._identify(session, data or {})
        elif op == 6:
            await self._resume(session, data or {})
        elif op == 3:
            session.presence_updates.append(data or {})
        elif op == 8:
            await self._send_member_chunk(session, data or {})
        elif op == 4:
            pass  # voice state updates: the bot never joins voice
        else:
            await session.websocket.close(code=4001, message=b"Unknown opcode.")

    async def _identify(self, session: GatewaySession, data: dict[str, Any]) -> None:
        if session.session_id is not None:
            await session.websocket.close(code=4005, message=b"Already authenticated.")
            return
        if data.get("token") != self.token:
            await session.websocket.close(code=4004, message=b"Authentication failed.")
            return
        intents = int(data.get("intents", 0))
        if intents & Intents.PRIVILEGED & ~self.allowed_privileged_intents:
            await session.websocket.close(code=4014, message=b"Disallowed intent(s).")
            return
        shard = self._shard_refusal(data)
        if isinstance(shard, tuple):
            code, reason = shard
            await session.websocket.close(code=code, message=reason.encode())
            return
        session.token = data["token"]
        session.intents = intents
        session.identify_payload = data
        session.session_id = secrets.token_hex(16)
        self.identifies.append(data)
        self._resumable[session.session_id] = session
        guilds = [guild for guild in self.guilds if session.receives(guild.id)]
        ready = {
            "v": 10,
            "user": self.bot_user.payload() | {"verified": True, "mfa_enabled": False, "email": None},
            "guilds": [{"id": str(guild.id), "unavailable": True} for guild in guilds],
            "session_id": session.session_id,
            "session_type": "normal",
            "resume_gateway_url": self.gateway_url,
            "application": {"id": str(self.application_id), "flags": 0},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "geo_ordered_rtc_regions": [],
            "user_settings": {},
            "_trace": ["discord-double"],
        }
        if "shard" in data:
            ready["shard"] = data["shard"]
        await session.dispatch("READY", ready)
        for guild in guilds:
            threads = [thread for thread in self._threads if thread.guild_id == guild.id]
            await session.dispatch("GUILD_CREATE", guild_create_payload(guild, self.bot_user, threads))
        self._wake()

    def _shard_refusal(self, data: dict[str, Any]) -> tuple[int, str] | None:
        """The close code and reason for an IDENTIFY's ``shard`` field, or None when it is acceptable."""
        shard = data.get("shard")
        if shard is None:
            shard_id, shard_count = 0, 1
        else:
            valid_shape = (
                isinstance(shard, list) and len(shard) == 2 and all(type(part) is int for part in shard)
            )
            if not valid_shape or not 0 <= shard[0] < shard[1] or shard[1] != self.shard_count:
                return 4010, "Invalid shard."
            shard_id, shard_count = shard
        held = sum(1 for guild in self.guilds if shard_of(guild.id, shard_count) == shard_id)
        if held > self.max_guilds_per_shard:
            return 4011, "Sharding required."
        return None

    async def _resume(self, session: GatewaySession, data: dict[str, Any]) -> None:
        previous = self._resumable.get(str(data.get("session_id")))
        if previous is None or data.get("token") != self.token:
            await session.send({"op": 9, "d": False})
            return
        session.token, session.intents = previous.token, previous.intents
        session.identify_payload = previous.identify_payload
        session.session_id, session.sequence = previous.session_id, previous.sequence
        session.resumed = True
        self._resumable[str(session.session_id)] = session
        await session.dispatch("RESUMED", {"_trace": ["discord-double"]})
        self._wake()

    async def _send_member_chunk(self, session: GatewaySession, data: dict[str, Any]) -> None:
        guild = self._guild_by_id.get(int(data.get("guild_id", 0)))
        if guild is None or not session.receives(guild.id):
            return
        members = [member_payload(self.bot_user, [guild.bot_role_id])]
        members.extend(member_payload(member, [member.role_id]) for member in guild.members)
        chunk: dict[str, Any] = {
            "guild_id": str(guild.id),
            "members": members,
            "chunk_index": 0,
            "chunk_count": 1,
        }
        if data.get("nonce"):
            chunk["nonce"] = data["nonce"]
        await session.dispatch("GUILD_MEMBERS_CHUNK", chunk)

    async def _announce_message(self, message: StoredMessage) -> None:
        """MESSAGE_CREATE to clients with GUILD_MESSAGES (DIRECT_MESSAGES in DMs).

        Without MESSAGE_CONTENT in the session's intents, content/embeds/attachments/components are
        blanked unless the message is a DM, the bot's own or mentions the bot - and a reply's
        ``referenced_message`` is blanked by the same rule applied to the message replied to.
        """
        if message.ephemeral:
            return
        channel = self._channels[message.channel_id]
        intent = Intents.DIRECT_MESSAGES if channel.type == ChannelType.DM else Intents.GUILD_MESSAGES
        guild = self._guild_of(channel)
        member = guild.member(message.author_id) if guild is not None else None
        receivers = [s for s in self.sessions if s.ready and s.receives(channel.guild_id)]
        for session in [s for s in receivers if (s.intents or 0) & intent]:
            content_intent = bool((session.intents or 0) & Intents.MESSAGE_CONTENT)
            event = self._message_object(message, content_intent=content_intent, with_nonce=True)
            if member is not None and message.source == "user":
                # Guild MESSAGE_CREATEs carry the author's member object (without its user).
                event["member"] = {
                    k: v for k, v in member_payload(member, [member.role_id]).items() if k != "user"
                }
            with contextlib.suppress(ConnectionError, RuntimeError):
                await session.dispatch("MESSAGE_CREATE", event)
