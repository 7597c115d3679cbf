"""The double's REST handlers: messages, threads, users/guilds/channels, commands, interaction responses.

Mixed into ``DiscordDouble``; every handler takes the ``RecordedRequest`` (route params, query, JSON or
``payload_json``, uploaded files) and returns ``(status, body)`` or raises ``DiscordAPIError``.
"""

from __future__ import annotations

import copy
import re
import time
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import discord

from .commands import duplicate_localized_command_names, localization_errors_of_command
from .components import validate_modal, with_component_ids
from .interactions import (
    CallbackType,
    InteractionHandle,
    InteractionType,
)
from .model import (
    MIB,
    ChannelSpec,
    ChannelType,
    DiscordAPIError,
    GuildSpec,
    HostedFile,
    Intents,
    MessageFlags,
    MessageType,
    RecordedRequest,
    StoredMessage,
    UploadedFile,
    UserSpec,
    field_error,
    invalid_form_body,
    iso_now,
    new_snowflake,
    snowflake_time,
)
from .payloads import (
    application_payload,
    bot_channel_permissions,
    channel_payload,
    guild_create_payload,
    guild_permissions,
    member_payload,
    thread_payload,
)
from .rules import (
    MAX_REACTIONS,
    effective_mentions,
    is_empty_message,
    reaction_payload,
    validate_autocomplete_choices,
    validate_message,
    validate_reaction_emoji,
    validate_thread_name_and_duration,
)

Reply = tuple[int, Any]

DM_UPLOAD_LIMIT = 10 * MIB
_COMMAND_NAME = re.compile(r"^[-_\w]{1,32}$")
_PERMISSION = discord.Permissions

# Which initial responses Discord accepts for which interaction type.
_ALLOWED_CALLBACKS = {
    InteractionType.APPLICATION_COMMAND: {
        CallbackType.CHANNEL_MESSAGE,
        CallbackType.DEFERRED_CHANNEL_MESSAGE,
        CallbackType.MODAL,
    },
    InteractionType.MESSAGE_COMPONENT: {
        CallbackType.CHANNEL_MESSAGE,
        CallbackType.DEFERRED_CHANNEL_MESSAGE,
        CallbackType.DEFERRED_UPDATE_MESSAGE,
        CallbackType.UPDATE_MESSAGE,
        CallbackType.MODAL,
    },
    InteractionType.AUTOCOMPLETE: {CallbackType.AUTOCOMPLETE_RESULT},
    InteractionType.MODAL_SUBMIT: {
        CallbackType.CHANNEL_MESSAGE,
        CallbackType.DEFERRED_CHANNEL_MESSAGE,
        CallbackType.DEFERRED_UPDATE_MESSAGE,
        CallbackType.UPDATE_MESSAGE,
    },
}


def _has(permissions: int, **flags: bool) -> bool:
    needed = _PERMISSION(**flags).value
    return permissions & needed == needed


def _missing_permissions() -> DiscordAPIError:
    return DiscordAPIError(403, 50013, "Missing Permissions")


def _unknown_channel() -> DiscordAPIError:
    return DiscordAPIError(404, 10003, "Unknown Channel")


def _unknown_message() -> DiscordAPIError:
    return DiscordAPIError(404, 10008, "Unknown Message")


def _unknown_webhook() -> DiscordAPIError:
    return DiscordAPIError(404, 10015, "Unknown Webhook")


def _wrong_channel_type() -> DiscordAPIError:
    return DiscordAPIError(400, 50024, "Cannot execute action on this channel type")


def _unknown_reference() -> DiscordAPIError:
    return invalid_form_body(
        {"message_reference": field_error("MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "Unknown message")}
    )


# What Discord empties in a message object for an app without the Message Content intent.
_CONTENT_FIELDS_BLANKED: dict[str, Any] = {"content": "", "embeds": [], "attachments": [], "components": []}


class RestApi:
    """REST handlers of ``DiscordDouble`` (state lives on the double)."""

    if TYPE_CHECKING:
        # What the handlers use of ``DiscordDouble``: its configuration, state and helpers.
        guilds: list[GuildSpec]
        bot_user: UserSpec
        ack_deadline_s: float
        token_lifetime_s: float
        allowed_privileged_intents: int
        daily_command_create_cap: int
        nonce_window_s: float
        shard_count: int
        _channels: dict[int, ChannelSpec]
        _guild_by_id: dict[int, GuildSpec]
        _threads: list[ChannelSpec]
        _messages: dict[int, StoredMessage]
        _channel_messages: defaultdict[int, list[StoredMessage]]
        _commands: defaultdict[int | None, dict[int, dict[str, Any]]]
        _command_creates: Counter[int | None]
        _interactions_by_id: dict[int, InteractionHandle]
        _interactions_by_token: dict[str, InteractionHandle]

        @property
        def application_id(self) -> int: ...

        @property
        def gateway_url(self) -> str: ...

        def messages(self, channel: ChannelSpec | int) -> list[StoredMessage]: ...

        def dm_channel(self, user: UserSpec) -> ChannelSpec: ...

        def _upload_limit(self, guild: GuildSpec | None) -> int: ...

        def _parent(self, channel: ChannelSpec) -> ChannelSpec | None: ...

        def _host(
            self,
            data: bytes,
            filename: str,
            content_type: str,
            channel_id: int,
            *,
            ephemeral: bool = False,
            description: str | None = None,
        ) -> HostedFile: ...

        def _notify_message_created(self, message: StoredMessage) -> None: ...

        async def _announce_message(self, message: StoredMessage) -> None: ...

        async def dispatch_event(
            self, event: str, data: dict[str, Any], *, intent: int | None = None
        ) -> None: ...

    # ------------------------------------------------------------------ messages

    def _lookup_channel(self, record: RecordedRequest) -> ChannelSpec:
        try:
            return self._channels[int(record.params["channel_id"])]
        except (KeyError, ValueError):
            raise _unknown_channel() from None

    def _guild_of(self, channel: ChannelSpec) -> GuildSpec | None:
        return self._guild_by_id.get(channel.guild_id) if channel.guild_id else None

    def _bot_permissions(self, channel: ChannelSpec) -> int:
        guild = self._guild_of(channel)
        if guild is None:
            return _PERMISSION(
                view_channel=True,
                send_messages=True,
                attach_files=True,
                embed_links=True,
                read_message_history=True,
                add_reactions=True,
            ).value
        return bot_channel_permissions(guild, channel, self._parent(channel))

    def _host_uploads(
        self, files: Sequence[UploadedFile], body: Mapping[str, Any], channel_id: int
    ) -> list[HostedFile]:
        listed = {str(entry.get("id")): entry for entry in body.get("attachments") or []}
        hosted = []
        for upload in files:
            entry = listed.get(str(upload.index), {})
            hosted.append(
                self._host(
                    upload.data,
                    entry.get("filename") or upload.filename,
                    upload.content_type,
                    channel_id,
                    description=entry.get("description"),
                )
            )
        return hosted

    def _mentions(
        self,
        content: str,
        allowed: dict[str, Any] | None,
        guild: GuildSpec | None,
        replied_author: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """``mention_everyone``/``mentions``/``mention_roles``; ``replied_author`` is a pinged reply's."""
        everyone, user_ids, role_ids = effective_mentions(content, allowed)
        known = {member.id: member for member in (guild.members if guild else [])}
        known[self.bot_user.id] = self.bot_user
        mentions = [known[user_id].payload() for user_id in dict.fromkeys(user_ids) if user_id in known]
        if replied_author is not None and all(m["id"] != replied_author["id"] for m in mentions):
            mentions.append(copy.deepcopy(replied_author))
        return {
            "mention_everyone": everyone,
            "mentions": mentions,
            "mention_roles": [str(role_id) for role_id in role_ids],
        }

    def _reference(
        self, body: Mapping[str, Any], channel: ChannelSpec, guild: GuildSpec | None
    ) -> tuple[dict[str, Any] | None, StoredMessage | None]:
        """The stored ``message_reference`` of a new message and, for a reply, the message replied to."""
        reference = body.get("message_reference")
        if not reference or reference.get("message_id") is None:
            return None, None
        reference_type = int(reference.get("type") or 0)
        stored: dict[str, Any] = {
            "type": reference_type,
            "message_id": str(reference["message_id"]),
            "channel_id": str(reference.get("channel_id") or channel.id),
        }
        if guild is not None:
            stored["guild_id"] = str(reference.get("guild_id") or guild.id)
        replied = self._messages.get(int(reference["message_id"])) if reference_type == 0 else None
        return stored, replied

    def _create_message(
        self,
        *,
        channel: ChannelSpec,
        author: UserSpec,
        body: dict[str, Any],
        files: Sequence[UploadedFile],
        source: str,
        handle: InteractionHandle | None = None,
        flags: int = 0,
        message_type: int = 0,
        message_id: int | None = None,
        hosted: Sequence[HostedFile] = (),
        reply_ping: bool | None = None,
    ) -> StoredMessage:
        """Store (and hook-notify) a new message; the caller announces it.

        A ``message_reference`` of type 0 makes it a reply (type 19) that pings the replied-to author
        unless ``reply_ping`` is False (None: as ``allowed_mentions.replied_user`` says; Discord's
        default without ``allowed_mentions`` is to ping).
        """
        message_id = message_id or new_snowflake()
        guild = self._guild_of(channel)
        content = body.get("content") or ""
        allowed = body.get("allowed_mentions")
        attachments = [*hosted, *self._host_uploads(files, body, channel.id)]
        reference, replied = self._reference(body, channel, guild)
        if reply_ping is None:
            reply_ping = allowed is None or bool(allowed.get("replied_user"))
        replied_author = None
        if replied is not None and reply_ping and replied.author_id != author.id:
            replied_author = replied.payload["author"]
        if reference is not None and reference["type"] == 0 and message_type == MessageType.DEFAULT:
            message_type = MessageType.REPLY
        payload: dict[str, Any] = {
            "id": str(message_id),
            "channel_id": str(channel.id),
            "author": author.payload(),
            "content": content,
            "timestamp": snowflake_time(message_id).isoformat(),
            "edited_timestamp": None,
            "tts": bool(body.get("tts")),
            **self._mentions(content, allowed, guild, replied_author),
            "attachments": [hosted.payload() for hosted in attachments],
            "embeds": [{"type": "rich", **embed} for embed in body.get("embeds") or []],
            "components": with_component_ids(body.get("components") or []),
            "pinned": False,
            "type": message_type,
            "flags": flags | (int(body.get("flags") or 0) & ~MessageFlags.EPHEMERAL),
        }
        if guild is not None:
            payload["guild_id"] = str(guild.id)
        if reference is not None:
            payload["message_reference"] = reference
        if handle is not None:
            payload["webhook_id"] = str(self.application_id)
            payload["application_id"] = str(self.application_id)
            metadata: dict[str, Any] = {
                "id": str(handle.id),
                "type": handle.type,
                "user": handle.user.payload(),
                "authorizing_integration_owners": handle.payload["authorizing_integration_owners"],
            }
            payload["interaction_metadata"] = metadata
            if handle.type == InteractionType.APPLICATION_COMMAND:
                payload["interaction"] = {
                    "id": str(handle.id),
                    "type": handle.type,
                    "name": handle.payload["data"]["name"],
                    "user": handle.user.payload(),
                }
        message = StoredMessage(
            payload=payload,
            attachments=attachments,
            allowed_mentions=allowed,
            source=source,
            interaction_id=handle.id if handle else None,
            ephemeral=bool(flags & MessageFlags.EPHEMERAL),
            nonce=body.get("nonce"),
        )
        self._messages[message_id] = message
        self._channel_messages[channel.id].append(message)
        self._notify_message_created(message)
        return message

    def _edit_message(
        self, message: StoredMessage, body: dict[str, Any], files: Sequence[UploadedFile], upload_limit: int
    ) -> None:
        """Apply an edit with Discord's semantics: absent fields are kept, ``attachments`` lists survivors."""
        if body.get("attachments") is not None:
            listed_ids = {str(entry.get("id")) for entry in body["attachments"]}
            kept = [hosted for hosted in message.attachments if str(hosted.id) in listed_ids]
        else:
            kept = list(message.attachments)
        validate_message(body, files, upload_limit=upload_limit, kept_attachments=len(kept), partial=True)
        merged = {key: body.get(key, message.payload[key]) for key in ("content", "embeds", "components")}
        if is_empty_message(merged, attachment_count=len(kept) + len(files)):
            raise DiscordAPIError(400, 50006, "Cannot send an empty message")
        message.edits.append(copy.deepcopy(message.payload))
        channel = self._channels[message.channel_id]
        new_files = self._host_uploads(files, body, channel.id)
        message.attachments = kept + new_files
        allowed = body.get("allowed_mentions", message.allowed_mentions)
        message.allowed_mentions = allowed
        content = merged["content"] or ""
        was_loading = message.is_loading
        components = merged["components"] or []
        if "components" in body:
            components = with_component_ids(components)
        # An edit re-parses the content's mentions; a reply keeps pinging whom it pinged.
        replied = self._messages.get(message.reference_id) if message.reference_id is not None else None
        replied_author = None
        if replied is not None and replied.author_id in message.pinged_user_ids:
            replied_author = replied.payload["author"]
        message.payload |= {
            "content": content,
            "embeds": [{"type": "rich", **embed} for embed in merged["embeds"] or []],
            "components": components,
            "attachments": [hosted.payload() for hosted in message.attachments],
            "flags": message.flags & ~MessageFlags.LOADING,
            **self._mentions(content, allowed, self._guild_of(channel), replied_author),
        }
        if not was_loading:
            message.payload["edited_timestamp"] = iso_now()

    def _message_in_channel(self, channel: ChannelSpec, record: RecordedRequest) -> StoredMessage:
        try:
            message = self._messages[int(record.params["message_id"])]
        except (KeyError, ValueError):
            raise _unknown_message() from None
        if message.channel_id != channel.id or message.deleted or message.ephemeral:
            raise _unknown_message()
        return message

    def _require_view(self, channel: ChannelSpec) -> int:
        permissions = self._bot_permissions(channel)
        if not _has(permissions, view_channel=True):
            raise DiscordAPIError(403, 50001, "Missing Access")
        return permissions

    async def _create_channel_message(self, record: RecordedRequest) -> Reply:
        channel = self._lookup_channel(record)
        if channel.type not in ChannelType.MESSAGEABLE:
            raise DiscordAPIError(400, 50008, "Cannot send messages in a non-text channel")
        permissions = self._require_view(channel)
        can_send = (
            _has(permissions, send_messages_in_threads=True)
            if channel.is_thread
            else _has(permissions, send_messages=True)
        )
        if not can_send or (record.files and not _has(permissions, attach_files=True)):
            raise _missing_permissions()
        body = dict(record.json or {})
        validate_message(body, record.files, upload_limit=self._upload_limit(self._guild_of(channel)))
        reference = body.get("message_reference")
        if reference and reference.get("message_id"):
            if not _has(permissions, read_message_history=True):
                # Replying needs Read Message History (Discord: 50013).
                raise _missing_permissions()
            referenced = self._messages.get(int(reference["message_id"]))
            reply = int(reference.get("type") or 0) == 0
            if referenced is None or referenced.deleted or (reply and referenced.channel_id != channel.id):
                if reference.get("fail_if_not_exists", True):
                    raise _unknown_reference()
                del body["message_reference"]  # Discord sends it as a plain message
        if body.get("enforce_nonce") and body.get("nonce") is not None:
            earlier = self._message_with_nonce(channel, body["nonce"])
            if earlier is not None:
                return 200, self._message_object(earlier, with_nonce=True)
        message = self._create_message(
            channel=channel, author=self.bot_user, body=body, files=record.files, source="bot"
        )
        await self._announce_message(message)
        return 200, self._message_object(message, with_nonce=True)

    def _message_with_nonce(self, channel: ChannelSpec, nonce: str | int) -> StoredMessage | None:
        """The bot's message in ``channel`` created with ``nonce`` within the dedup window, if any.

        Discord: "checked for uniqueness in the past few minutes. If another message was created by the
        same author with the same nonce, that message will be returned and no new message will be
        created". The window runs from the earlier message's creation (``nonce_window_s``).
        """
        now = time.monotonic()
        for earlier in reversed(self._channel_messages[channel.id]):
            if now - earlier.created_at >= self.nonce_window_s:
                break
            if earlier.source == "bot" and earlier.nonce == nonce and not earlier.deleted:
                return earlier
        return None

    def _content_visible(self, message: StoredMessage, *, intent: bool) -> bool:
        """Whether an app sees ``message``'s content, embeds, attachments and components.

        With the Message Content intent always; without it only in DMs, in its own messages and in
        messages that mention it (a content mention or a reply that pings it).
        """
        if intent:
            return True
        channel = self._channels.get(message.channel_id)
        return (
            (channel is not None and channel.type == ChannelType.DM)
            or message.author_id == self.bot_user.id
            or self.bot_user.id in message.pinged_user_ids
        )

    @property
    def _rest_content_intent(self) -> bool:
        """Whether REST reads show other members' message content: the app has the intent granted."""
        return bool(self.allowed_privileged_intents & Intents.MESSAGE_CONTENT)

    def _message_object(
        self, message: StoredMessage, *, content_intent: bool = True, with_nonce: bool = False
    ) -> dict[str, Any]:
        """The message object Discord serves: a reply's ``referenced_message`` (None once deleted), the
        bot's ``reactions``, the nonce in a create response/MESSAGE_CREATE (``with_nonce``), and the
        content fields blanked where an app without the intent (``content_intent=False``) may not see
        them - for the message itself and, separately, for the message it replies to.
        """
        payload = dict(message.payload)
        if with_nonce and message.nonce is not None:
            payload["nonce"] = message.nonce
        if message.reactions:
            payload["reactions"] = [reaction_payload(emoji) for emoji in message.reactions]
        reference = payload.get("message_reference")
        if reference is not None and reference.get("type", 0) == 0 and message.reference_id is not None:
            replied = self._messages.get(message.reference_id)
            if replied is None or replied.deleted:
                payload["referenced_message"] = None
            else:
                inner = dict(replied.payload)
                if not self._content_visible(replied, intent=content_intent):
                    inner |= _CONTENT_FIELDS_BLANKED
                payload["referenced_message"] = inner
        if not self._content_visible(message, intent=content_intent):
            payload |= _CONTENT_FIELDS_BLANKED
        return copy.deepcopy(payload)

    async def _list_messages(self, record: RecordedRequest) -> Reply:
        """``GET /channels/{id}/messages``: newest first, like Discord, with ``limit`` (1-100, default 50)
        and one of ``before``, ``after`` (the ``limit`` messages right after it) or ``around``."""
        channel = self._lookup_channel(record)
        permissions = self._require_view(channel)
        query = record.query
        errors: dict[str, Any] = {}
        limit_text = query.get("limit", "50")
        if not limit_text.isdigit() or not 1 <= int(limit_text) <= 100:
            errors["limit"] = field_error("NUMBER_TYPE_MAX", "int value should be between 1 and 100.")
        anchors: dict[str, int] = {}
        for key in ("before", "after", "around"):
            if key in query:
                if not query[key].isdigit():
                    errors[key] = field_error("NUMBER_TYPE_COERCE", f'Value "{query[key]}" is not snowflake.')
                else:
                    anchors[key] = int(query[key])
        if errors:
            raise invalid_form_body(errors)
        # Without Read Message History Discord answers with an empty list, not an error.
        if not _has(permissions, read_message_history=True):
            return 200, []
        limit = int(limit_text)
        oldest_first = self.messages(channel)
        # Discord honours one anchor, in this order of precedence.
        if "around" in anchors:
            pivot = anchors["around"]
            newer = [m for m in oldest_first if m.id > pivot][: limit // 2]
            rest = [m for m in oldest_first if m.id <= pivot][-(limit - len(newer)) :]
            page = rest + newer
        elif "before" in anchors:
            page = [m for m in oldest_first if m.id < anchors["before"]][-limit:]
        elif "after" in anchors:
            page = [m for m in oldest_first if m.id > anchors["after"]][:limit]
        else:
            page = oldest_first[-limit:]
        intent = self._rest_content_intent
        return 200, [self._message_object(message, content_intent=intent) for message in reversed(page)]

    async def _get_message(self, record: RecordedRequest) -> Reply:
        channel = self._lookup_channel(record)
        permissions = self._require_view(channel)
        # Fetching one message needs Read Message History too (else 50001 Missing Access).
        if not _has(permissions, read_message_history=True):
            raise DiscordAPIError(403, 50001, "Missing Access")
        message = self._message_in_channel(channel, record)
        return 200, self._message_object(message, content_intent=self._rest_content_intent)

    async def _edit_channel_message(self, record: RecordedRequest) -> Reply:
        channel = self._lookup_channel(record)
        self._require_view(channel)
        message = self._message_in_channel(channel, record)
        if int(message.payload["author"]["id"]) != self.bot_user.id:
            raise DiscordAPIError(403, 50005, "Cannot edit a message authored by another user")
        self._edit_message(
            message, record.json or {}, record.files, self._upload_limit(self._guild_of(channel))
        )
        return 200, self._message_object(message)

    async def _delete_channel_message(self, record: RecordedRequest) -> Reply:
        channel = self._lookup_channel(record)
        permissions = self._require_view(channel)
        message = self._message_in_channel(channel, record)
        is_own = message.author_id == self.bot_user.id
        if not is_own and not _has(permissions, manage_messages=True):
            raise _missing_permissions()
        await self._delete_message(message)
        return 204, None

    async def _delete_message(self, message: StoredMessage) -> None:
        """Mark ``message`` deleted and announce MESSAGE_DELETE to clients with the messages intent."""
        message.deleted = True
        channel = self._channels[message.channel_id]
        event: dict[str, Any] = {"id": str(message.id), "channel_id": str(channel.id)}
        if channel.guild_id is not None:
            event["guild_id"] = str(channel.guild_id)
        intent = Intents.DIRECT_MESSAGES if channel.type == ChannelType.DM else Intents.GUILD_MESSAGES
        if not message.ephemeral:
            await self.dispatch_event("MESSAGE_DELETE", event, intent=intent)

    async def _react(self, record: RecordedRequest) -> Reply:
        """PUT a reaction of the bot: idempotent; needs Read Message History and Add Reactions."""
        channel = self._lookup_channel(record)
        if not _has(self._require_view(channel), add_reactions=True, read_message_history=True):
            raise _missing_permissions()
        message = self._message_in_channel(channel, record)
        emoji = record.params["emoji"]
        validate_reaction_emoji(emoji)
        if emoji not in message.reactions:
            if len(message.reactions) >= MAX_REACTIONS:
                raise DiscordAPIError(400, 30010, f"Maximum number of reactions reached ({MAX_REACTIONS})")
            message.reactions.append(emoji)
        return 204, None

    async def _unreact(self, record: RecordedRequest) -> Reply:
        """DELETE a reaction of the bot: idempotent (204 whether or not it was there)."""
        channel = self._lookup_channel(record)
        self._require_view(channel)
        message = self._message_in_channel(channel, record)
        emoji = record.params["emoji"]
        validate_reaction_emoji(emoji)
        if emoji in message.reactions:
            message.reactions.remove(emoji)
        return 204, None

    async def _typing(self, record: RecordedRequest) -> Reply:
        self._require_view(self._lookup_channel(record))
        return 204, None

    # ------------------------------------------------------------------ threads

    def _new_thread(
        self, parent: ChannelSpec, body: dict[str, Any], thread_type: int, thread_id: int
    ) -> ChannelSpec:
        thread = ChannelSpec(
            name=body["name"],
            type=thread_type,
            id=thread_id,
            guild_id=parent.guild_id,
            parent_id=parent.id,
            owner_id=self.bot_user.id,
            auto_archive_duration=body.get("auto_archive_duration") or 1440,
        )
        self._threads.append(thread)
        self._channels[thread.id] = thread
        return thread

    async def _announce_thread(self, thread: ChannelSpec) -> None:
        await self.dispatch_event(
            "THREAD_CREATE", thread_payload(thread) | {"newly_created": True}, intent=Intents.GUILDS
        )

    async def _thread_from_message(self, record: RecordedRequest) -> Reply:
        channel = self._lookup_channel(record)
        # Forum/media channels, DMs and threads cannot hold message threads.
        if channel.type not in (ChannelType.TEXT, ChannelType.NEWS):
            raise _wrong_channel_type()
        permissions = self._require_view(channel)
        if not _has(permissions, create_public_threads=True):
            raise _missing_permissions()
        body = record.json or {}
        validate_thread_name_and_duration(body)
        message = self._message_in_channel(channel, record)
        if message.thread_id is not None or message.id in self._channels:
            raise DiscordAPIError(400, 160004, "A thread has already been created for this message")
        thread_type = (
            ChannelType.NEWS_THREAD if channel.type == ChannelType.NEWS else ChannelType.PUBLIC_THREAD
        )
        thread = self._new_thread(channel, body, thread_type, thread_id=message.id)
        message.payload["thread"] = thread_payload(thread)
        message.payload["flags"] = message.flags | MessageFlags.HAS_THREAD
        await self._announce_thread(thread)
        return 200, thread_payload(thread)

    async def _thread_without_message(self, record: RecordedRequest) -> Reply:
        channel = self._lookup_channel(record)
        body = record.json or {}
        permissions = self._require_view(channel)
        if channel.type in (ChannelType.FORUM, ChannelType.MEDIA):
            if not _has(permissions, send_messages=True):
                raise _missing_permissions()
            starter = body.get("message")
            if not isinstance(starter, dict):
                raise invalid_form_body(
                    {"message": field_error("BASE_TYPE_REQUIRED", "This field is required")}
                )
            validate_thread_name_and_duration(body)
            validate_message(starter, record.files, upload_limit=self._upload_limit(self._guild_of(channel)))
            thread = self._new_thread(channel, body, ChannelType.PUBLIC_THREAD, thread_id=new_snowflake())
            message = self._create_message(
                channel=thread,
                author=self.bot_user,
                body=starter,
                files=record.files,
                source="bot",
                message_id=thread.id,
            )
            await self._announce_thread(thread)
            await self._announce_message(message)
            return 200, thread_payload(thread) | {"message": self._message_object(message)}
        if channel.type not in (ChannelType.TEXT, ChannelType.NEWS):
            raise _wrong_channel_type()
        thread_type = int(body.get("type") or ChannelType.PRIVATE_THREAD)
        needed = (
            {"create_private_threads": True}
            if thread_type == ChannelType.PRIVATE_THREAD
            else {"create_public_threads": True}
        )
        if not _has(permissions, **needed):
            raise _missing_permissions()
        validate_thread_name_and_duration(body)
        thread = self._new_thread(channel, body, thread_type, thread_id=new_snowflake())
        await self._announce_thread(thread)
        return 200, thread_payload(thread)

    # ------------------------------------------------------------------ users, guilds, channels

    async def _get_me(self, record: RecordedRequest) -> Reply:
        return 200, self.bot_user.payload() | {
            "verified": True,
            "mfa_enabled": False,
            "email": None,
            "locale": "en-US",
        }

    async def _list_my_guilds(self, record: RecordedRequest) -> Reply:
        """GET /users/@me/guilds: partial guilds with the bot's guild-level permissions, by id, paged."""
        limit = int(record.query.get("limit", "200"))
        after = int(record.query.get("after", "0"))
        if not 1 <= limit <= 200:
            raise invalid_form_body({"limit": field_error("NUMBER_TYPE_MAX", "Must be between 1 and 200.")})
        chosen = sorted((guild for guild in self.guilds if guild.id > after), key=lambda guild: guild.id)
        return 200, [
            {
                "id": str(guild.id),
                "name": guild.name,
                "icon": None,
                "banner": None,
                "owner": False,
                "permissions": str(guild_permissions(guild)),
                "features": [],
            }
            for guild in chosen[:limit]
        ]

    async def _get_user(self, record: RecordedRequest) -> Reply:
        users = {self.bot_user.id: self.bot_user}
        users |= {member.id: member for guild in self.guilds for member in guild.members}
        user = users.get(int(record.params["user_id"])) if record.params["user_id"].isdigit() else None
        if user is None:
            raise DiscordAPIError(404, 10013, "Unknown User")
        return 200, user.payload()

    async def _create_dm(self, record: RecordedRequest) -> Reply:
        recipient_id = int((record.json or {}).get("recipient_id", 0))
        for guild in self.guilds:
            member = guild.member(recipient_id)
            if member is not None:
                return 200, channel_payload(self.dm_channel(member))
        raise invalid_form_body({"recipient_id": field_error("NUMBER_TYPE_COERCE", "Unknown user")})

    async def _get_application(self, record: RecordedRequest) -> Reply:
        return 200, application_payload(self.bot_user, self.guilds[0].owner)

    async def _get_gateway(self, record: RecordedRequest) -> Reply:
        return 200, {"url": self.gateway_url.rstrip("/")}

    async def _get_gateway_bot(self, record: RecordedRequest) -> Reply:
        limit = {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1}
        url = self.gateway_url.rstrip("/")
        return 200, {"url": url, "shards": self.shard_count, "session_start_limit": limit}

    def _lookup_guild(self, record: RecordedRequest) -> GuildSpec:
        guild_id = record.params["guild_id"]
        guild = self._guild_by_id.get(int(guild_id)) if guild_id.isdigit() else None
        if guild is None:
            raise DiscordAPIError(403, 50001, "Missing Access")
        return guild

    async def _get_guild(self, record: RecordedRequest) -> Reply:
        guild = self._lookup_guild(record)
        payload = guild_create_payload(guild, self.bot_user, [])
        for key in ("channels", "threads", "members", "voice_states", "presences"):
            payload.pop(key)
        return 200, payload

    async def _get_guild_channels(self, record: RecordedRequest) -> Reply:
        guild = self._lookup_guild(record)
        return 200, [channel_payload(channel, bot=self.bot_user) for channel in guild.channels]

    async def _get_member(self, record: RecordedRequest) -> Reply:
        guild = self._lookup_guild(record)
        user_id = int(record.params["user_id"]) if record.params["user_id"].isdigit() else 0
        if user_id == self.bot_user.id:
            return 200, member_payload(self.bot_user, [guild.bot_role_id])
        member = guild.member(user_id)
        if member is None:
            raise DiscordAPIError(404, 10007, "Unknown Member")
        return 200, member_payload(member, [member.role_id])

    async def _get_channel(self, record: RecordedRequest) -> Reply:
        channel = self._lookup_channel(record)
        self._require_view(channel)
        return 200, channel_payload(channel, bot=self.bot_user)

    # ------------------------------------------------------------------ application commands

    def _command_scope(self, record: RecordedRequest) -> int | None:
        if record.params["application_id"] != str(self.application_id):
            raise DiscordAPIError(403, 50001, "Missing Access")
        if "guild_id" in record.params:
            return self._lookup_guild(record).id
        return None

    @staticmethod
    def _validate_command(command: dict[str, Any], index: int | None = None) -> None:
        errors: dict[str, Any] = {}
        command_type = command.get("type", 1)
        name = command.get("name", "")
        # Slash command names are lowercase words; context-menu names may hold spaces and capitals.
        name_ok = (
            bool(_COMMAND_NAME.match(name)) and name == name.lower()
            if command_type == 1
            else 1 <= len(name) <= 32
        )
        if not name_ok:
            errors["name"] = field_error("APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid")
        description = command.get("description", "")
        if command_type == 1 and not 1 <= len(description) <= 100:
            errors["description"] = field_error(
                "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length."
            )
        if command_type != 1 and description:
            errors["description"] = field_error(
                "APPLICATION_COMMAND_INVALID_DESCRIPTION", "Context menu commands cannot have description"
            )
        if len(command.get("options") or []) > 25:
            errors["options"] = field_error("BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
        # name_localizations / description_localizations: Discord locale keys, values valid as the defaults.
        errors = localization_errors_of_command(command) | errors
        if errors:
            raise invalid_form_body({str(index): errors} if index is not None else errors)

    def _store_command(
        self, scope: int | None, command: dict[str, Any], existing: dict[str, Any] | None
    ) -> dict[str, Any]:
        stored = copy.deepcopy(command)
        stored.setdefault("type", 1)
        stored.setdefault("description", "")
        stored |= {
            "id": existing["id"] if existing else str(new_snowflake()),
            "application_id": str(self.application_id),
            "version": str(new_snowflake())
            if existing is None or self._differs(existing, command)
            else existing["version"],
            "default_member_permissions": command.get("default_member_permissions"),
            "nsfw": bool(command.get("nsfw", False)),
        }
        if scope is not None:
            stored["guild_id"] = str(scope)
        return stored

    @staticmethod
    def _differs(existing: dict[str, Any], command: dict[str, Any]) -> bool:
        return any(existing.get(key) != value for key, value in command.items())

    def _check_create_cap(self, scope: int | None, new_commands: int) -> None:
        if scope is not None and self._command_creates[scope] + new_commands > self.daily_command_create_cap:
            # Without a Via header discord.py raises at once instead of sleeping for the day.
            raise DiscordAPIError(
                429,
                30034,
                f"Max number of daily application command creates has been reached "
                f"({self.daily_command_create_cap})",
            )

    async def _bulk_upsert_commands(self, record: RecordedRequest) -> Reply:
        scope = self._command_scope(record)
        commands = record.json or []
        names = [(command.get("name"), command.get("type", 1)) for command in commands]
        if len(set(names)) != len(names):
            raise invalid_form_body(
                {
                    "_errors": [
                        {
                            "code": "APPLICATION_COMMANDS_DUPLICATE_NAME",
                            "message": "Application command names must be unique",
                        }
                    ]
                }
            )
        for index, command in enumerate(commands):
            self._validate_command(command, index)
        clashes = duplicate_localized_command_names(commands)
        if clashes:
            raise invalid_form_body(
                {
                    "_errors": [
                        {
                            "code": "APPLICATION_COMMANDS_DUPLICATE_NAME",
                            "message": f"Application command names must be unique ({', '.join(clashes)})",
                        }
                    ]
                }
            )
        current = {(c["name"], c["type"]): c for c in self._commands[scope].values()}
        new_count = sum(1 for key in names if key not in current)
        self._check_create_cap(scope, new_count)
        self._command_creates[scope] += new_count
        stored = [self._store_command(scope, c, current.get((c["name"], c.get("type", 1)))) for c in commands]
        self._commands[scope] = {int(command["id"]): command for command in stored}
        return 200, stored

    async def _upsert_command(self, record: RecordedRequest) -> Reply:
        scope = self._command_scope(record)
        command = record.json or {}
        self._validate_command(command)
        key = (command.get("name"), command.get("type", 1))
        existing = next((c for c in self._commands[scope].values() if (c["name"], c["type"]) == key), None)
        if existing is None:
            self._check_create_cap(scope, 1)
            self._command_creates[scope] += 1
        stored = self._store_command(scope, command, existing)
        self._commands[scope][int(stored["id"])] = stored
        return (200 if existing else 201), stored

    def _lookup_command(self, record: RecordedRequest) -> tuple[int | None, dict[str, Any]]:
        scope = self._command_scope(record)
        command_id = record.params["command_id"]
        command = self._commands[scope].get(int(command_id)) if command_id.isdigit() else None
        if command is None:
            raise DiscordAPIError(404, 10063, "Unknown application command")
        return scope, command

    async def _list_commands(self, record: RecordedRequest) -> Reply:
        return 200, list(self._commands[self._command_scope(record)].values())

    async def _get_command(self, record: RecordedRequest) -> Reply:
        return 200, self._lookup_command(record)[1]

    async def _edit_command(self, record: RecordedRequest) -> Reply:
        scope, command = self._lookup_command(record)
        updated = self._store_command(scope, command | (record.json or {}), command)
        self._commands[scope][int(updated["id"])] = updated
        return 200, updated

    async def _delete_command(self, record: RecordedRequest) -> Reply:
        scope, command = self._lookup_command(record)
        del self._commands[scope][int(command["id"])]
        return 204, None

    # ------------------------------------------------------------------ interaction responses

    async def _interaction_callback(self, record: RecordedRequest) -> Reply:
        interaction_id = record.params["interaction_id"]
        handle = self._interactions_by_id.get(int(interaction_id)) if interaction_id.isdigit() else None
        if handle is None or handle.token != record.params["token"]:
            raise DiscordAPIError(404, 10062, "Unknown interaction")
        record.interaction_id = handle.id
        if handle.acknowledged:
            raise DiscordAPIError(400, 40060, "Interaction has already been acknowledged.")
        if time.monotonic() - handle.dispatched_at > self.ack_deadline_s:
            raise DiscordAPIError(404, 10062, "Unknown interaction")
        body = record.json or {}
        callback_type = body.get("type")
        data = body.get("data") or {}
        if callback_type not in _ALLOWED_CALLBACKS.get(handle.type, set()):
            raise invalid_form_body(
                {
                    "type": field_error(
                        "INTERACTION_RESPONSE_TYPE_INVALID", "Interaction response type is invalid"
                    )
                }
            )
        ephemeral = bool(int(data.get("flags") or 0) & MessageFlags.EPHEMERAL)
        message = await self._apply_callback(handle, callback_type, data, record.files, ephemeral)
        handle.acknowledged_at = time.monotonic()
        handle.response_type = callback_type
        handle.response_data = data
        resource: dict[str, Any] = {"type": callback_type}
        interaction: dict[str, Any] = {"id": str(handle.id), "type": handle.type}
        if message is not None:
            resource["message"] = self._message_object(message)
            interaction |= {
                "response_message_id": str(message.id),
                "response_message_loading": message.is_loading,
                "response_message_ephemeral": message.ephemeral,
            }
        return 200, {"interaction": interaction, "resource": resource}

    def _response_message_type(self, handle: InteractionHandle) -> int:
        if handle.type != InteractionType.APPLICATION_COMMAND:
            return 0
        return 20 if handle.payload["data"].get("type", 1) == 1 else 23

    async def _apply_callback(
        self,
        handle: InteractionHandle,
        callback_type: int,
        data: dict[str, Any],
        files: Sequence[UploadedFile],
        ephemeral: bool,
    ) -> StoredMessage | None:
        ephemeral_flag = MessageFlags.EPHEMERAL if ephemeral else 0
        if callback_type == CallbackType.CHANNEL_MESSAGE:
            validate_message(data, files, upload_limit=self._upload_limit(handle.guild))
            handle.original = self._create_message(
                channel=handle.channel,
                author=self.bot_user,
                body=data,
                files=files,
                source="interaction",
                handle=handle,
                flags=ephemeral_flag,
                message_type=self._response_message_type(handle),
            )
            await self._announce_message(handle.original)
            return handle.original
        if callback_type == CallbackType.DEFERRED_CHANNEL_MESSAGE:
            handle.deferred_ephemeral = ephemeral
            handle.original = self._create_message(
                channel=handle.channel,
                author=self.bot_user,
                body={},
                files=[],
                source="interaction",
                handle=handle,
                flags=ephemeral_flag | MessageFlags.LOADING,
                message_type=self._response_message_type(handle),
            )
            await self._announce_message(handle.original)
            return handle.original
        if callback_type == CallbackType.DEFERRED_UPDATE_MESSAGE:
            handle.original = handle.message
            return None
        if callback_type == CallbackType.UPDATE_MESSAGE:
            if handle.message is None:
                raise _unknown_message()
            self._edit_message(handle.message, data, files, self._upload_limit(handle.guild))
            handle.original = handle.message
            return handle.message
        if callback_type == CallbackType.AUTOCOMPLETE_RESULT:
            handle.autocomplete_choices = validate_autocomplete_choices(data)
            return None
        # MODAL: only ever a first response (a second one is 40060, checked by the caller).
        handle.modal = validate_modal(data)
        return None

    def _webhook_handle(self, record: RecordedRequest) -> InteractionHandle:
        handle = self._interactions_by_token.get(record.params["token"])
        if handle is None or record.params["application_id"] != str(self.application_id):
            raise _unknown_webhook()
        record.interaction_id = handle.id
        if time.monotonic() - handle.dispatched_at > self.token_lifetime_s:
            raise DiscordAPIError(401, 50027, "Invalid Webhook Token")
        if not handle.acknowledged:
            raise _unknown_webhook()
        return handle

    def _webhook_message(self, handle: InteractionHandle, record: RecordedRequest) -> StoredMessage:
        message_id = record.params["message_id"]
        if message_id == "@original":
            message = handle.original
        else:
            candidates = [m for m in [handle.original, *handle.followups] if m is not None]
            message = next((m for m in candidates if str(m.id) == message_id), None)
        if message is None or message.deleted:
            raise _unknown_message()
        return message

    async def _webhook_execute(self, record: RecordedRequest) -> Reply:
        handle = self._webhook_handle(record)
        body = record.json or {}
        upload_limit = self._upload_limit(handle.guild)
        validate_message(body, record.files, upload_limit=upload_limit)
        original = handle.original
        if handle.response_type == CallbackType.DEFERRED_CHANNEL_MESSAGE and original and original.is_loading:
            # The first followup after a deferral fills in the "thinking" message.
            self._edit_message(original, body, record.files, upload_limit)
            message = original
        else:
            flags = MessageFlags.EPHEMERAL if int(body.get("flags") or 0) & MessageFlags.EPHEMERAL else 0
            message = self._create_message(
                channel=handle.channel,
                author=self.bot_user,
                body=body,
                files=record.files,
                source="interaction",
                handle=handle,
                flags=flags,
                message_type=self._response_message_type(handle),
            )
            await self._announce_message(message)
        handle.followups.append(message)
        if record.query.get("wait", "false").lower() in ("1", "true"):
            return 200, self._message_object(message)
        return 204, None

    async def _webhook_get(self, record: RecordedRequest) -> Reply:
        handle = self._webhook_handle(record)
        return 200, self._message_object(self._webhook_message(handle, record))

    async def _webhook_edit(self, record: RecordedRequest) -> Reply:
        handle = self._webhook_handle(record)
        message = self._webhook_message(handle, record)
        self._edit_message(message, record.json or {}, record.files, self._upload_limit(handle.guild))
        return 200, self._message_object(message)

    async def _webhook_delete(self, record: RecordedRequest) -> Reply:
        handle = self._webhook_handle(record)
        await self._delete_message(self._webhook_message(handle, record))
        return 204, None
