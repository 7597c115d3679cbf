"""A loopback Discord (REST + gateway + CDN) for end-to-end tests of a discord.py bot."""

from .interactions import CallbackRejectedError, CallbackType, InteractionHandle, InteractionType, OptionType
from .model import (
    DEFAULT_BOT_PERMISSIONS,
    DEFAULT_EVERYONE_PERMISSIONS,
    MIB,
    ChannelSpec,
    ChannelType,
    DiscordAPIError,
    GuildSpec,
    HostedFile,
    Intents,
    MessageFlags,
    RecordedRequest,
    StoredMessage,
    UploadedFile,
    UserSpec,
    new_snowflake,
)
from .server import DiscordDouble, GatewaySession

__all__ = [
    "DEFAULT_BOT_PERMISSIONS",
    "DEFAULT_EVERYONE_PERMISSIONS",
    "MIB",
    "CallbackRejectedError",
    "CallbackType",
    "ChannelSpec",
    "ChannelType",
    "DiscordAPIError",
    "DiscordDouble",
    "GatewaySession",
    "GuildSpec",
    "HostedFile",
    "Intents",
    "InteractionHandle",
    "InteractionType",
    "MessageFlags",
    "OptionType",
    "RecordedRequest",
    "StoredMessage",
    "UploadedFile",
    "UserSpec",
    "new_snowflake",
]
