"""A loopback Discord (REST + gateway + CDN) for end-to-end tests of a discord.py bot."""

from .components import ButtonStyle, ComponentType, ModalField, OpenedModal, TextInputStyle
from .faults import HeldRequest, is_message_create, is_message_delete, is_message_edit, is_route
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
    MessageType,
    RecordedRequest,
    StoredMessage,
    UploadedFile,
    UserSpec,
    new_snowflake,
)
from .ratelimits import ChannelRateLimitStats, RateLimitStats
from .server import DiscordDouble, GatewaySession

__all__ = [
    "DEFAULT_BOT_PERMISSIONS",
    "DEFAULT_EVERYONE_PERMISSIONS",
    "MIB",
    "ButtonStyle",
    "CallbackRejectedError",
    "CallbackType",
    "ChannelRateLimitStats",
    "ChannelSpec",
    "ChannelType",
    "ComponentType",
    "DiscordAPIError",
    "DiscordDouble",
    "GatewaySession",
    "GuildSpec",
    "HeldRequest",
    "HostedFile",
    "Intents",
    "InteractionHandle",
    "InteractionType",
    "MessageFlags",
    "MessageType",
    "ModalField",
    "OpenedModal",
    "OptionType",
    "RateLimitStats",
    "RecordedRequest",
    "StoredMessage",
    "TextInputStyle",
    "UploadedFile",
    "UserSpec",
    "is_message_create",
    "is_message_delete",
    "is_message_edit",
    "is_route",
    "new_snowflake",
]
