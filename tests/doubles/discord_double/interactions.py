"""Interactions the double dispatches: option encoding and the handle a test holds on to."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .components import OpenedModal
from .model import ChannelSpec, GuildSpec, HostedFile, RecordedRequest, StoredMessage, UserSpec
from .payloads import channel_payload, member_payload

if TYPE_CHECKING:
    from .server import DiscordDouble


class InteractionType:
    """Interaction type numbers."""

    PING = 1
    APPLICATION_COMMAND = 2
    MESSAGE_COMPONENT = 3
    AUTOCOMPLETE = 4
    MODAL_SUBMIT = 5


class CallbackType:
    """Interaction callback (response) type numbers."""

    PONG = 1
    CHANNEL_MESSAGE = 4
    DEFERRED_CHANNEL_MESSAGE = 5
    DEFERRED_UPDATE_MESSAGE = 6
    UPDATE_MESSAGE = 7
    AUTOCOMPLETE_RESULT = 8
    MODAL = 9


class OptionType:
    """Application command option type numbers."""

    SUB_COMMAND = 1
    SUB_COMMAND_GROUP = 2
    STRING = 3
    INTEGER = 4
    BOOLEAN = 5
    USER = 6
    CHANNEL = 7
    ROLE = 8
    MENTIONABLE = 9
    NUMBER = 10
    ATTACHMENT = 11


class CallbackRejectedError(AssertionError):
    """The bot's first interaction response was refused by the double."""


class InteractionHandle:
    """What a test holds after dispatching an interaction: its payload and everything the bot did with it.

    ``original`` is the interaction's response message; ``followups`` are the messages returned to
    followup calls (the first followup after a deferral edits the original, so it is that message).
    ``modal`` is the modal the bot opened in answer (callback type 9), ``modal_submits`` the MODAL_SUBMIT
    interactions ``DiscordDouble.submit_modal`` sent for it; a submit's ``modal_source`` is the
    interaction that opened the modal, and its ``submitted_modal`` the modal submitted.
    """

    def __init__(
        self,
        double: DiscordDouble,
        *,
        payload: dict[str, Any],
        guild: GuildSpec | None,
        channel: ChannelSpec,
        user: UserSpec,
        dispatched_at: float,
        message: StoredMessage | None = None,
    ) -> None:
        self._double = double
        self.payload = payload
        self.id = int(payload["id"])
        self.token: str = payload["token"]
        self.type: int = payload["type"]
        self.guild = guild
        self.channel = channel
        self.user = user
        self.message = message
        self.dispatched_at = dispatched_at
        self.acknowledged_at: float | None = None
        self.response_type: int | None = None
        self.response_data: dict[str, Any] | None = None
        self.original: StoredMessage | None = None
        self.followups: list[StoredMessage] = []
        self.autocomplete_choices: list[dict[str, Any]] | None = None
        self.deferred_ephemeral = False
        self.modal: OpenedModal | None = None
        self.modal_submits: list[InteractionHandle] = []
        self.modal_source: InteractionHandle | None = None
        self.submitted_modal: OpenedModal | None = None

    @property
    def acknowledged(self) -> bool:
        """Whether an initial response was accepted."""
        return self.acknowledged_at is not None

    @property
    def acknowledged_after(self) -> float | None:
        """Seconds between dispatch and the accepted initial response."""
        if self.acknowledged_at is None:
            return None
        return self.acknowledged_at - self.dispatched_at

    @property
    def responses(self) -> list[RecordedRequest]:
        """Every callback request for this interaction, accepted or not."""
        return [request for request in self._double.requests if self._is_callback(request)]

    @property
    def webhook_requests(self) -> list[RecordedRequest]:
        """Every interaction-token webhook request (followups, @original) for this interaction."""
        return [
            request
            for request in self._double.requests
            if request.interaction_id == self.id and not self._is_callback(request)
        ]

    def _is_callback(self, request: RecordedRequest) -> bool:
        return (
            request.interaction_id == self.id
            and request.route == "/interactions/{interaction_id}/{token}/callback"
        )

    async def wait_callback(self, timeout: float = 5.0) -> RecordedRequest:
        """Await the first callback request, whatever the double answered."""
        return await self._double.wait_for(self._is_callback, timeout=timeout)

    async def wait_acknowledged(self, timeout: float = 5.0) -> RecordedRequest:
        """Await the first callback and fail if the double refused it (late, invalid...)."""
        request = await self.wait_callback(timeout=timeout)
        if not request.ok:
            raise CallbackRejectedError(f"interaction callback refused: {request.status} {request.response}")
        return request

    async def wait_followup(self, count: int = 1, timeout: float = 5.0) -> StoredMessage:
        """Await the ``count``-th followup message and return it."""
        await self._double.wait_until(lambda: len(self.followups) >= count or None, timeout=timeout)
        return self.followups[count - 1]

    async def wait_original(self, timeout: float = 5.0) -> StoredMessage:
        """Await a response message that is no longer 'thinking' and return it."""

        def settled() -> StoredMessage | None:
            original = self.original
            return original if original is not None and not original.is_loading else None

        return await self._double.wait_until(settled, timeout=timeout)

    async def wait_modal(self, timeout: float = 5.0) -> OpenedModal:
        """Await the bot's first response and return the modal it opened.

        Raises ``CallbackRejectedError`` if the double refused the response or it was not a modal.
        """
        request = await self.wait_acknowledged(timeout=timeout)
        if self.modal is None:
            raise CallbackRejectedError(
                f"the bot answered with callback type {request.json.get('type')}, not a modal"
            )
        return self.modal

    async def wait_autocomplete(self, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Await the bot's autocomplete choices."""
        return await self._double.wait_until(lambda: self.autocomplete_choices, timeout=timeout)

    async def ack_deadline_passed(self) -> None:
        """Return once the initial-response deadline of this interaction is over."""
        # The deadline is wall-clock time by definition: nothing else to await.
        await asyncio.sleep(max(0.0, self.dispatched_at + self._double.ack_deadline_s - time.monotonic()))

    async def token_expired(self) -> None:
        """Return once this interaction's token is no longer valid for webhooks."""
        await asyncio.sleep(max(0.0, self.dispatched_at + self._double.token_lifetime_s - time.monotonic()))

    def __repr__(self) -> str:
        return f"<InteractionHandle id={self.id} type={self.type} acknowledged={self.acknowledged}>"


def find_option(options: list[dict[str, Any]], name: str) -> dict[str, Any]:
    """The option schema called ``name``."""
    for option in options:
        if option["name"] == name:
            return option
    known = ", ".join(option["name"] for option in options) or "none"
    raise ValueError(f"the command has no option {name!r} (options: {known})")


class OptionEncoder:
    """Turns test-friendly option values into interaction options plus ``resolved`` data."""

    def __init__(self, guild: GuildSpec | None, bot: UserSpec, *, focused: str | None = None) -> None:
        self.guild = guild
        self.bot = bot
        self.focused = focused
        self.resolved: dict[str, dict[str, Any]] = {}

    def encode(
        self, schema: list[dict[str, Any]], path: list[str], values: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        """Options for the subcommand ``path`` (possibly empty) with ``values`` checked against ``schema``."""
        if path:
            sub = find_option(schema, path[0])
            if sub["type"] not in (OptionType.SUB_COMMAND, OptionType.SUB_COMMAND_GROUP):
                raise ValueError(f"{path[0]!r} is not a subcommand or group")
            return [
                {
                    "name": sub["name"],
                    "type": sub["type"],
                    "options": self.encode(sub.get("options") or [], path[1:], values),
                }
            ]
        if any(option["type"] in (OptionType.SUB_COMMAND, OptionType.SUB_COMMAND_GROUP) for option in schema):
            raise ValueError("this command has subcommands: name one, e.g. 'group sub'")
        encoded = []
        for name, value in values.items():
            option = find_option(schema, name)
            encoded.append(self._encode_one(option, value))
        if self.focused is None:
            missing = [o["name"] for o in schema if o.get("required") and o["name"] not in values]
            if missing:
                raise ValueError(f"Discord would not send the command without required options {missing}")
        elif self.focused not in values:
            raise ValueError(f"the focused option {self.focused!r} needs a (partial) value")
        return encoded

    def _encode_one(self, option: dict[str, Any], value: Any) -> dict[str, Any]:
        option_type = option["type"]
        name = option["name"]
        if name == self.focused:
            # Autocomplete sends whatever the user has typed so far, as typed.
            return {"name": name, "type": option_type, "value": str(value), "focused": True}
        self._check_constraints(option, value)
        encoded_value: Any
        if option_type == OptionType.ATTACHMENT:
            if not isinstance(value, HostedFile):
                raise TypeError(f"option {name!r} needs a HostedFile from DiscordDouble.add_attachment")
            attachment = value.payload()
            attachment["ephemeral"] = True
            self.resolved.setdefault("attachments", {})[str(value.id)] = attachment
            encoded_value = str(value.id)
        elif option_type in (OptionType.USER, OptionType.MENTIONABLE) and isinstance(value, UserSpec):
            self.resolved.setdefault("users", {})[str(value.id)] = value.payload()
            if self.guild is not None and self.guild.member(value.id) is not None:
                member = member_payload(
                    value, [value.role_id], permissions=self.guild.member_permissions(value)
                )
                del member["user"]
                self.resolved.setdefault("members", {})[str(value.id)] = member
            encoded_value = str(value.id)
        elif option_type == OptionType.CHANNEL and isinstance(value, ChannelSpec):
            channel = channel_payload(value, bot=self.bot)
            channel["permissions"] = str(0)
            self.resolved.setdefault("channels", {})[str(value.id)] = channel
            encoded_value = str(value.id)
        elif option_type == OptionType.STRING:
            encoded_value = str(value)
        elif option_type == OptionType.INTEGER:
            encoded_value = int(value)
        elif option_type == OptionType.BOOLEAN:
            encoded_value = bool(value)
        elif option_type == OptionType.NUMBER:
            encoded_value = float(value)
        else:
            raise TypeError(f"cannot encode {value!r} for option {name!r} of type {option_type}")
        return {"name": name, "type": option_type, "value": encoded_value}

    @staticmethod
    def _check_constraints(option: dict[str, Any], value: Any) -> None:
        """The Discord client refuses values outside the declared choices/bounds: so does the double."""
        name = option["name"]
        choices = option.get("choices")
        if choices and value not in [choice["value"] for choice in choices]:
            raise ValueError(f"{value!r} is not one of the choices of {name!r}")
        if isinstance(value, str):
            if len(value) < option.get("min_length", 0) or len(value) > option.get("max_length", 6000):
                raise ValueError(f"{name!r}: length {len(value)} is outside the declared bounds")
        elif isinstance(value, int | float) and not isinstance(value, bool):
            low, high = option.get("min_value"), option.get("max_value")
            if (low is not None and value < low) or (high is not None and value > high):
                raise ValueError(f"{name!r}: {value} is outside [{low}, {high}]")
