"""Builders of the Discord JSON objects (channels, members, roles, guilds) discord.py parses."""

from __future__ import annotations

from typing import Any

from .model import ADMINISTRATOR, ALL_PERMISSIONS, ChannelSpec, ChannelType, GuildSpec, HostedFile, UserSpec


def channel_payload(channel: ChannelSpec, *, bot: UserSpec | None = None) -> dict[str, Any]:
    """A channel/thread/DM object; ``bot`` is needed for the bot's permission overwrite."""
    if channel.type == ChannelType.DM:
        return {
            "id": str(channel.id),
            "type": ChannelType.DM,
            "last_message_id": None,
            "recipients": [user.payload() for user in channel.recipients],
            "flags": 0,
        }
    if channel.is_thread:
        return thread_payload(channel)
    overwrites = []
    if channel.bot_denied_permissions and bot is not None:
        overwrites.append(
            {"id": str(bot.id), "type": 1, "allow": "0", "deny": str(channel.bot_denied_permissions)}
        )
    payload: dict[str, Any] = {
        "id": str(channel.id),
        "type": channel.type,
        "guild_id": str(channel.guild_id),
        "name": channel.name,
        "position": channel.position,
        "permission_overwrites": overwrites,
        "parent_id": None,
        "nsfw": channel.nsfw,
        "topic": channel.topic,
        "rate_limit_per_user": 0,
        "last_message_id": None,
        "flags": 0,
    }
    if channel.type in (ChannelType.FORUM, ChannelType.MEDIA):
        payload |= {
            "available_tags": [],
            "default_reaction_emoji": None,
            "default_thread_rate_limit_per_user": 0,
            "default_sort_order": None,
            "default_forum_layout": 0,
            "default_auto_archive_duration": 1440,
        }
    if channel.type == ChannelType.VOICE:
        payload |= {"bitrate": 64000, "user_limit": 0, "rtc_region": None}
    return payload


def thread_payload(thread: ChannelSpec) -> dict[str, Any]:
    """A thread channel object."""
    return {
        "id": str(thread.id),
        "type": thread.type,
        "guild_id": str(thread.guild_id),
        "parent_id": str(thread.parent_id),
        "owner_id": str(thread.owner_id),
        "name": thread.name,
        "last_message_id": None,
        "message_count": 0,
        "member_count": 1,
        "total_message_sent": 0,
        "rate_limit_per_user": 0,
        "flags": 0,
        "applied_tags": [],
        "thread_metadata": {
            "archived": False,
            "auto_archive_duration": thread.auto_archive_duration,
            "archive_timestamp": thread.created_at,
            "locked": False,
            "invitable": True,
            "create_timestamp": thread.created_at,
        },
        "member": {
            "id": str(thread.id),
            "user_id": str(thread.owner_id),
            "join_timestamp": thread.created_at,
            "flags": 0,
        },
    }


def role_payload(role_id: int, name: str, permissions: int, position: int, **extra: Any) -> dict[str, Any]:
    """A role object."""
    return {
        "id": str(role_id),
        "name": name,
        "color": 0,
        "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
        "hoist": False,
        "icon": None,
        "unicode_emoji": None,
        "position": position,
        "permissions": str(permissions),
        "managed": False,
        "mentionable": False,
        "flags": 0,
        **extra,
    }


def member_payload(user: UserSpec, role_ids: list[int], *, permissions: int | None = None) -> dict[str, Any]:
    """A guild member object (``permissions`` is included in interaction payloads only)."""
    payload: dict[str, Any] = {
        "user": user.payload(),
        "roles": [str(role_id) for role_id in role_ids],
        "joined_at": "2024-01-01T00:00:00+00:00",
        "nick": None,
        "avatar": None,
        "banner": None,
        "premium_since": None,
        "deaf": False,
        "mute": False,
        "pending": False,
        "flags": 0,
        "communication_disabled_until": None,
    }
    if permissions is not None:
        payload["permissions"] = str(permissions)
    return payload


def guild_permissions(guild: GuildSpec) -> int:
    """The bot's guild-level permissions: @everyone's and its role's, all of them with Administrator."""
    value = guild.everyone_permissions | guild.bot_permissions
    return ALL_PERMISSIONS if value & ADMINISTRATOR else value


def guild_roles(guild: GuildSpec, bot: UserSpec) -> list[dict[str, Any]]:
    """@everyone, the bot's managed role and one personal role per member."""
    roles = [
        role_payload(guild.id, "@everyone", guild.everyone_permissions, 0),
        role_payload(
            guild.bot_role_id,
            bot.username,
            guild.bot_permissions,
            1,
            managed=True,
            tags={"bot_id": str(bot.id)},
        ),
    ]
    roles.extend(
        role_payload(member.role_id, f"{member.username}-role", member.permissions, 2 + index)
        for index, member in enumerate(guild.members)
    )
    return roles


def bot_member_payload(guild: GuildSpec, bot: UserSpec) -> dict[str, Any]:
    """The bot's own member object in ``guild``."""
    return member_payload(bot, [guild.bot_role_id])


def guild_create_payload(guild: GuildSpec, bot: UserSpec, threads: list[ChannelSpec]) -> dict[str, Any]:
    """The GUILD_CREATE payload: channels, active threads, roles, members (incl. the bot)."""
    members = [bot_member_payload(guild, bot)]
    members.extend(member_payload(member, [member.role_id]) for member in guild.members)
    return {
        "id": str(guild.id),
        "name": guild.name,
        "icon": None,
        "splash": None,
        "discovery_splash": None,
        "banner": None,
        "description": None,
        "owner_id": str(guild.owner.id),
        "afk_channel_id": None,
        "afk_timeout": 300,
        "verification_level": 0,
        "default_message_notifications": 1,
        "explicit_content_filter": 0,
        "mfa_level": 0,
        "nsfw_level": 0,
        "premium_tier": guild.premium_tier,
        "premium_subscription_count": 0,
        "premium_progress_bar_enabled": False,
        "preferred_locale": guild.locale,
        "features": [],
        "system_channel_id": None,
        "system_channel_flags": 0,
        "rules_channel_id": None,
        "public_updates_channel_id": None,
        "safety_alerts_channel_id": None,
        "vanity_url_code": None,
        "application_id": None,
        "max_members": 500000,
        "max_video_channel_users": 25,
        "max_stage_video_channel_users": 50,
        "joined_at": "2024-01-01T00:00:00+00:00",
        "large": False,
        "unavailable": False,
        "member_count": len(members),
        "lazy": True,
        "roles": guild_roles(guild, bot),
        "emojis": [],
        "stickers": [],
        "channels": [channel_payload(channel, bot=bot) for channel in guild.channels],
        "threads": [thread_payload(thread) for thread in threads],
        "members": members,
        "voice_states": [],
        "presences": [],
        "stage_instances": [],
        "guild_scheduled_events": [],
        "soundboard_sounds": [],
        "embedded_activities": [],
        "incidents_data": None,
        "version": 1,
    }


def bot_channel_permissions(guild: GuildSpec, channel: ChannelSpec, parent: ChannelSpec | None) -> int:
    """The bot's effective permissions in ``channel`` (threads inherit their parent's overwrites)."""
    permissions = guild.everyone_permissions | guild.bot_permissions
    if permissions & ADMINISTRATOR:
        return ALL_PERMISSIONS
    denied = channel.bot_denied_permissions | (parent.bot_denied_permissions if parent else 0)
    return permissions & ~denied


def application_payload(bot: UserSpec, owner: UserSpec) -> dict[str, Any]:
    """GET /oauth2/applications/@me."""
    return {
        "id": str(bot.id),
        "name": bot.username,
        "icon": None,
        "description": "",
        "summary": "",
        "type": None,
        "bot_public": True,
        "bot_require_code_grant": False,
        "verify_key": "0" * 64,
        "owner": owner.payload(),
        "team": None,
        "flags": 0,
        "bot": bot.payload(),
        "interactions_endpoint_url": None,
        "redirect_uris": [],
        "tags": [],
        "integration_types_config": {"0": {}},
        "approximate_guild_count": 1,
    }


def image_embed(image: HostedFile, *, link: bool = True) -> dict[str, Any]:
    """An embed showing ``image``: an unfurled image link (type "image", picture in ``thumbnail``) or,
    with ``link=False``, a rich embed with the picture in ``image``."""
    picture: dict[str, Any] = {"url": image.url, "proxy_url": image.url}
    attachment = image.payload()
    if "width" in attachment:
        picture |= {"width": attachment["width"], "height": attachment["height"]}
    if link:
        return {"type": "image", "url": image.url, "thumbnail": picture}
    return {"type": "rich", "image": picture}
