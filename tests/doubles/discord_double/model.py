"""Data the Discord double keeps: snowflakes, guild/channel/user specs, messages, recorded requests.

The specs double as the double's live state: a test builds ``GuildSpec``/``ChannelSpec``/``UserSpec``
objects (ids are real-time snowflakes assigned at construction), hands them to ``DiscordDouble`` and
then refers to the very same objects when it dispatches interactions or inspects what the bot posted.
"""

from __future__ import annotations

import datetime as dt
import io
import time
from dataclasses import dataclass, field
from typing import Any

import discord

DISCORD_EPOCH_MS = 1_420_070_400_000

MIB = 1024 * 1024
# Per-file upload limit by boost tier (Discord changed the default to 10 MiB on 2025-01-16).
UPLOAD_LIMIT_BY_PREMIUM_TIER = {0: 10 * MIB, 1: 10 * MIB, 2: 50 * MIB, 3: 100 * MIB}


class ChannelType:
    """Discord channel type numbers the double knows about."""

    TEXT = 0
    DM = 1
    VOICE = 2
    CATEGORY = 4
    NEWS = 5
    NEWS_THREAD = 10
    PUBLIC_THREAD = 11
    PRIVATE_THREAD = 12
    FORUM = 15
    MEDIA = 16

    THREADS = frozenset({NEWS_THREAD, PUBLIC_THREAD, PRIVATE_THREAD})
    # Channels where plain messages can be posted by the bot.
    MESSAGEABLE = frozenset({TEXT, DM, VOICE, NEWS, NEWS_THREAD, PUBLIC_THREAD, PRIVATE_THREAD})


class MessageFlags:
    """Message flag bits the double sets or reads."""

    HAS_THREAD = 1 << 5
    EPHEMERAL = 1 << 6
    LOADING = 1 << 7
    IS_COMPONENTS_V2 = 1 << 15


class MessageType:
    """Message type numbers the double produces."""

    DEFAULT = 0
    REPLY = 19
    CHAT_INPUT_COMMAND = 20
    CONTEXT_MENU_COMMAND = 23


class Intents:
    """Gateway intent bits the double filters events by."""

    GUILDS = 1 << 0
    GUILD_MEMBERS = 1 << 1
    GUILD_PRESENCES = 1 << 8
    GUILD_MESSAGES = 1 << 9
    GUILD_MESSAGE_REACTIONS = 1 << 10
    DIRECT_MESSAGES = 1 << 12
    DIRECT_MESSAGE_REACTIONS = 1 << 13
    MESSAGE_CONTENT = 1 << 15
    PRIVILEGED = GUILD_MEMBERS | GUILD_PRESENCES | MESSAGE_CONTENT


ALL_PERMISSIONS = discord.Permissions.all().value
ADMINISTRATOR = discord.Permissions(administrator=True).value

DEFAULT_BOT_PERMISSIONS = discord.Permissions(
    view_channel=True,
    send_messages=True,
    send_messages_in_threads=True,
    create_public_threads=True,
    embed_links=True,
    attach_files=True,
    read_message_history=True,
    add_reactions=True,
    use_application_commands=True,
).value

DEFAULT_EVERYONE_PERMISSIONS = discord.Permissions(
    view_channel=True,
    send_messages=True,
    send_messages_in_threads=True,
    create_public_threads=True,
    embed_links=True,
    attach_files=True,
    read_message_history=True,
    add_reactions=True,
    use_application_commands=True,
).value


class _SnowflakeClock:
    """Real-time, strictly increasing snowflakes: discord.py derives interaction expiry from them."""

    def __init__(self) -> None:
        self._last = 0

    def next(self) -> int:
        candidate = (int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22
        self._last = max(candidate, self._last + 1)
        return self._last

    def next_on_shard(self, shard_id: int, shard_count: int) -> int:
        """The next snowflake whose guild would live on ``shard_id`` of ``shard_count``.

        Discord routes a guild to shard ``(guild_id >> 22) % shard_count``: the timestamp part decides, so
        the timestamp is moved ahead by at most ``shard_count - 1`` ms (and later snowflakes stay above it).
        """
        if not 0 <= shard_id < shard_count:
            raise ValueError(f"shard {shard_id} is not below the shard count {shard_count}")
        snowflake = self.next()
        timestamp = snowflake >> 22
        shifted = timestamp + (shard_id - timestamp) % shard_count
        if shifted != timestamp:
            snowflake = shifted << 22
            self._last = max(self._last, snowflake)
        return snowflake


_clock = _SnowflakeClock()


def new_snowflake() -> int:
    """Return a fresh snowflake whose timestamp is now."""
    return _clock.next()


def snowflake_on_shard(shard_id: int, shard_count: int) -> int:
    """A fresh snowflake that, as ``GuildSpec(id=...)``, lands on ``shard_id`` of ``shard_count``."""
    return _clock.next_on_shard(shard_id, shard_count)


def shard_of(guild_id: int, shard_count: int) -> int:
    """The shard Discord sends ``guild_id``'s events on: ``(guild_id >> 22) % shard_count``."""
    return (guild_id >> 22) % shard_count


def snowflake_time(snowflake: int) -> dt.datetime:
    """Return the creation time encoded in ``snowflake``."""
    ms = (snowflake >> 22) + DISCORD_EPOCH_MS
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)


def iso_now() -> str:
    """Current time in the ISO-8601 form Discord uses."""
    return dt.datetime.now(tz=dt.UTC).isoformat()


@dataclass(eq=False)
class UserSpec:
    """A Discord user; in a guild also a member with ``permissions`` granted by a personal role."""

    username: str = "member"
    id: int = field(default_factory=new_snowflake)
    global_name: str | None = None
    bot: bool = False
    locale: str = "en-US"
    permissions: int = 0
    role_id: int = field(default_factory=new_snowflake)

    def payload(self) -> dict[str, Any]:
        """The user object as Discord serialises it."""
        return {
            "id": str(self.id),
            "username": self.username,
            "discriminator": "0",
            "global_name": self.global_name,
            "avatar": None,
            "bot": self.bot,
            "system": False,
            "public_flags": 0,
            "flags": 0,
            "banner": None,
            "accent_color": None,
            "avatar_decoration_data": None,
        }


@dataclass(eq=False)
class ChannelSpec:
    """A guild channel, thread or DM channel.

    ``bot_denied_permissions`` becomes a member overwrite denying the bot those permissions here, so a
    test can model a channel the bot cannot post in.
    """

    name: str = "general"
    type: int = ChannelType.TEXT
    id: int = field(default_factory=new_snowflake)
    topic: str | None = None
    nsfw: bool = False
    position: int = 0
    bot_denied_permissions: int = 0
    # Filled in by the double: the owning guild, and for threads their parent/owner/metadata.
    guild_id: int | None = None
    parent_id: int | None = None
    owner_id: int | None = None
    auto_archive_duration: int = 1440
    created_at: str = field(default_factory=iso_now)
    recipients: list[UserSpec] = field(default_factory=list)

    @property
    def is_thread(self) -> bool:
        """Whether this channel is a thread."""
        return self.type in ChannelType.THREADS


def _default_channels() -> list[ChannelSpec]:
    return [
        ChannelSpec("general", ChannelType.TEXT, position=0),
        ChannelSpec("showcase", ChannelType.FORUM, position=1),
    ]


def _default_members() -> list[UserSpec]:
    return [UserSpec("alice")]


@dataclass(eq=False)
class GuildSpec:
    """A guild the bot is in. The first member is the owner.

    ``upload_limit_bytes`` overrides the per-file limit the boost tier implies; the double enforces it
    and puts it in interactions' ``attachment_size_limit``. discord.py's ``Guild.filesize_limit`` is
    computed from ``premium_tier`` alone, so it does not see the override.
    """

    name: str = "Test Guild"
    id: int = field(default_factory=new_snowflake)
    premium_tier: int = 0
    upload_limit_bytes: int | None = None
    channels: list[ChannelSpec] = field(default_factory=_default_channels)
    members: list[UserSpec] = field(default_factory=_default_members)
    bot_permissions: int = DEFAULT_BOT_PERMISSIONS
    everyone_permissions: int = DEFAULT_EVERYONE_PERMISSIONS
    locale: str = "en-US"
    bot_role_id: int = field(default_factory=new_snowflake)

    def __post_init__(self) -> None:
        for channel in self.channels:
            channel.guild_id = self.id

    @property
    def owner(self) -> UserSpec:
        """The guild owner (the first member)."""
        return self.members[0]

    @property
    def upload_limit(self) -> int:
        """The effective per-file upload limit in bytes."""
        if self.upload_limit_bytes is not None:
            return self.upload_limit_bytes
        return UPLOAD_LIMIT_BY_PREMIUM_TIER[self.premium_tier]

    def channel(self, name: str) -> ChannelSpec:
        """The configured channel called ``name``."""
        for channel in self.channels:
            if channel.name == name:
                return channel
        raise KeyError(f"guild {self.name!r} has no channel {name!r}")

    def first_channel_of_type(self, channel_type: int) -> ChannelSpec:
        """The first configured channel of ``channel_type``."""
        for channel in self.channels:
            if channel.type == channel_type:
                return channel
        raise KeyError(f"guild {self.name!r} has no channel of type {channel_type}")

    @property
    def text_channel(self) -> ChannelSpec:
        """The first text channel."""
        return self.first_channel_of_type(ChannelType.TEXT)

    @property
    def forum_channel(self) -> ChannelSpec:
        """The first forum channel."""
        return self.first_channel_of_type(ChannelType.FORUM)

    def member(self, user_id: int) -> UserSpec | None:
        """The member with ``user_id``, if any."""
        return next((member for member in self.members if member.id == user_id), None)

    def member_permissions(self, user: UserSpec) -> int:
        """Guild-level permissions of ``user`` (the owner has all of them)."""
        if user is self.owner:
            return ALL_PERMISSIONS
        permissions = self.everyone_permissions | user.permissions
        return ALL_PERMISSIONS if permissions & ADMINISTRATOR else permissions


@dataclass(eq=False)
class HostedFile:
    """A file served by the double's CDN: an uploaded attachment or one added by a test."""

    id: int
    filename: str
    content_type: str
    data: bytes
    url: str
    channel_id: int
    ephemeral: bool = False
    description: str | None = None
    removed: bool = False

    @property
    def size(self) -> int:
        """Size in bytes."""
        return len(self.data)

    def payload(self) -> dict[str, Any]:
        """The attachment object as Discord serialises it."""
        payload: dict[str, Any] = {
            "id": str(self.id),
            "filename": self.filename,
            "size": self.size,
            "url": self.url,
            "proxy_url": self.url,
            "content_type": self.content_type,
            "flags": 0,
        }
        if self.ephemeral:
            payload["ephemeral"] = True
        if self.description is not None:
            payload["description"] = self.description
        dimensions = _image_dimensions(self.data) if self.content_type.startswith("image/") else None
        if dimensions is not None:
            payload["width"], payload["height"] = dimensions
        return payload


def _image_dimensions(data: bytes) -> tuple[int, int] | None:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except (UnidentifiedImageError, OSError, ValueError):
        return None


@dataclass(frozen=True)
class UploadedFile:
    """One ``files[n]`` part of a multipart request."""

    field_name: str
    filename: str
    content_type: str
    data: bytes

    @property
    def index(self) -> int | None:
        """``n`` of ``files[n]``, or None for another field name."""
        name = self.field_name
        if name.startswith("files[") and name.endswith("]"):
            try:
                return int(name[6:-1])
            except ValueError:
                return None
        return None


@dataclass(eq=False)
class RecordedRequest:
    """One REST request the double received and what it answered.

    ``route`` is the template (``/channels/{channel_id}/messages``) or None for an unknown route;
    ``json`` is the JSON body or the parsed ``payload_json`` of a multipart body.
    """

    method: str
    path: str
    route: str | None
    params: dict[str, str]
    query: dict[str, str]
    json: Any
    files: list[UploadedFile]
    authorization: str | None
    at: float
    status: int = 0
    response: Any = None
    interaction_id: int | None = None
    # Headers the double answered with beyond Content-Type (rate-limit headers, Retry-After, Via).
    response_headers: dict[str, str] = field(default_factory=dict)
    # Held by ``hold_next`` before being applied; answered with no response at all (connection closed).
    held: bool = False
    dropped: bool = False

    @property
    def ok(self) -> bool:
        """Whether the double answered with a 2xx status."""
        return 200 <= self.status < 300

    @property
    def error_code(self) -> int | None:
        """Discord's JSON error ``code`` of a failed request."""
        if self.ok or not isinstance(self.response, dict):
            return None
        return self.response.get("code")

    def matches(self, method: str, route: str) -> bool:
        """Whether this request is ``method`` on the route template ``route``."""
        return self.method == method and self.route == route

    def __repr__(self) -> str:
        dropped = " dropped" if self.dropped else ""
        return f"<RecordedRequest {self.method} {self.path} -> {self.status} code={self.error_code}{dropped}>"


@dataclass(eq=False)
class StoredMessage:
    """A message as the double holds it; ``payload`` is the current Discord message object."""

    payload: dict[str, Any]
    attachments: list[HostedFile]
    allowed_mentions: dict[str, Any] | None
    source: str  # "bot" (bot token), "interaction" (callback/webhook) or "user" (seeded by a test)
    interaction_id: int | None = None
    ephemeral: bool = False
    deleted: bool = False
    edits: list[dict[str, Any]] = field(default_factory=list)
    # The bot's own reactions, as the emoji strings of the route: "👍" or "name:id", oldest first.
    reactions: list[str] = field(default_factory=list)
    # Discord echoes a nonce only in the create response and MESSAGE_CREATE, never when fetched later.
    nonce: str | int | None = None
    created_at: float = field(default_factory=time.monotonic)

    @property
    def id(self) -> int:
        """Message id."""
        return int(self.payload["id"])

    @property
    def channel_id(self) -> int:
        """Id of the channel or thread it is in."""
        return int(self.payload["channel_id"])

    @property
    def content(self) -> str:
        """Current content."""
        return str(self.payload["content"])

    @property
    def embeds(self) -> list[dict[str, Any]]:
        """Current embeds."""
        return list(self.payload["embeds"])

    @property
    def flags(self) -> int:
        """Current message flags."""
        return int(self.payload.get("flags", 0))

    @property
    def is_loading(self) -> bool:
        """Whether this is a deferred interaction response still 'thinking'."""
        return bool(self.flags & MessageFlags.LOADING)

    @property
    def pings_everyone(self) -> bool:
        """Whether Discord would have pinged @everyone/@here with this message."""
        return bool(self.payload.get("mention_everyone"))

    @property
    def pinged_user_ids(self) -> list[int]:
        """Users Discord would have pinged."""
        return [int(user["id"]) for user in self.payload.get("mentions", [])]

    @property
    def author_id(self) -> int:
        """Id of the author."""
        return int(self.payload["author"]["id"])

    @property
    def reference_id(self) -> int | None:
        """Id of the message this one replies to, if it is a reply."""
        reference = self.payload.get("message_reference")
        if not reference or reference.get("message_id") is None:
            return None
        return int(reference["message_id"])

    @property
    def components(self) -> list[dict[str, Any]]:
        """Current components (with the ids Discord assigned)."""
        return list(self.payload.get("components") or [])

    @property
    def thread_id(self) -> int | None:
        """Id of the thread started from this message, if any."""
        thread = self.payload.get("thread")
        return int(thread["id"]) if thread else None

    def __repr__(self) -> str:
        return f"<StoredMessage id={self.id} channel={self.channel_id} content={self.content[:40]!r}>"


class DiscordAPIError(Exception):
    """An error the double answers with: HTTP ``status`` and Discord's JSON ``{"code", "message"}``."""

    def __init__(self, status: int, code: int, message: str, errors: dict[str, Any] | None = None) -> None:
        super().__init__(f"{status} {code} {message}")
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors

    def body(self) -> dict[str, Any]:
        """The JSON error body."""
        body: dict[str, Any] = {"message": self.message, "code": self.code}
        if self.errors:
            body["errors"] = self.errors
        return body


def invalid_form_body(errors: dict[str, Any]) -> DiscordAPIError:
    """400 / 50035 with Discord's nested ``errors`` object."""
    return DiscordAPIError(400, 50035, "Invalid Form Body", errors)


def field_error(code: str, message: str) -> dict[str, Any]:
    """One leaf of a 50035 ``errors`` object."""
    return {"_errors": [{"code": code, "message": message}]}
