"""Faults a test injects into the Discord double: failed, dropped and held requests.

Each rule takes a predicate over the ``RecordedRequest`` (method, route template, params, JSON body,
uploaded files); ``is_message_create`` and friends build the common ones.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .model import ChannelSpec, RecordedRequest, StoredMessage

Predicate = Callable[[RecordedRequest], bool]


def _any(record: RecordedRequest) -> bool:
    return True


MESSAGES_ROUTE = "/channels/{channel_id}/messages"
MESSAGE_ROUTE = "/channels/{channel_id}/messages/{message_id}"

# What Discord's edge (Envoy behind Cloudflare) answers when the API behind it is unreachable.
UPSTREAM_CONNECT_ERROR = (
    "upstream connect error or disconnect/reset before headers. reset reason: connection termination"
)
_REASONS = {
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def _id(value: ChannelSpec | StoredMessage | int | str | None) -> str | None:
    if value is None:
        return None
    return str(getattr(value, "id", value))


def _matches(
    record: RecordedRequest,
    method: str,
    route: str,
    channel: ChannelSpec | int | str | None,
    message: StoredMessage | int | str | None = None,
) -> bool:
    if record.method != method or record.route != route:
        return False
    if channel is not None and record.params.get("channel_id") != _id(channel):
        return False
    return message is None or record.params.get("message_id") == _id(message)


def is_message_create(
    channel: ChannelSpec | int | None = None, *, with_files: bool | None = None
) -> Predicate:
    """``POST /channels/{id}/messages`` (in ``channel``, if given; with/without uploads, if given)."""

    def predicate(record: RecordedRequest) -> bool:
        if not _matches(record, "POST", MESSAGES_ROUTE, channel):
            return False
        return with_files is None or bool(record.files) == with_files

    return predicate


def is_message_edit(
    channel: ChannelSpec | int | None = None, message: StoredMessage | int | None = None
) -> Predicate:
    """``PATCH /channels/{id}/messages/{mid}`` (of ``channel``/``message``, if given)."""
    return lambda record: _matches(record, "PATCH", MESSAGE_ROUTE, channel, message)


def is_message_delete(
    channel: ChannelSpec | int | None = None, message: StoredMessage | int | None = None
) -> Predicate:
    """``DELETE /channels/{id}/messages/{mid}`` (of ``channel``/``message``, if given)."""
    return lambda record: _matches(record, "DELETE", MESSAGE_ROUTE, channel, message)


def is_route(method: str, route: str) -> Predicate:
    """Any request on the route template ``route`` (e.g. ``/channels/{channel_id}/typing``)."""
    return lambda record: record.matches(method, route)


def failure_response(status: int, body: str | dict[str, Any] | None) -> tuple[Any, web.Response]:
    """The recorded body and the HTTP response of an injected server failure."""
    if body is None:
        if status == 503:
            body = UPSTREAM_CONNECT_ERROR
        else:
            body = {"message": f"{status}: {_REASONS.get(status, 'Internal Server Error')}", "code": 0}
    if isinstance(body, str):
        return body, web.Response(status=status, text=body, content_type="text/plain")
    raw = json.dumps(body).encode()
    return body, web.Response(status=status, body=raw, headers={"Content-Type": "application/json"})


class HeldRequest:
    """A request the double holds before applying it (``DiscordDouble.hold_next``).

    ``await arrived()`` returns once a matching request is held; then ``release()`` lets the double
    apply it and answer as usual, while ``drop()`` discards it unapplied and closes the connection
    without an answer, as if the upload never completed. If the client died meanwhile, ``release()``
    still applies it: Discord had the whole request.
    """

    def __init__(self, predicate: Predicate) -> None:
        self.predicate = predicate
        self.request: RecordedRequest | None = None
        self._arrived = asyncio.Event()
        self._decided = asyncio.Event()
        self._apply = True
        self._transport: asyncio.BaseTransport | None = None

    async def arrived(self, timeout: float = 5.0) -> RecordedRequest:
        """Await the request being held; return it."""
        await asyncio.wait_for(self._arrived.wait(), timeout)
        assert self.request is not None
        return self.request

    def release(self) -> None:
        """Let the held request (or the next matching one, if none arrived yet) go through."""
        self._decided.set()

    def drop(self) -> None:
        """Discard the held request unapplied and close its connection without a response."""
        self._apply = False
        self._decided.set()

    @property
    def held(self) -> bool:
        """Whether a request arrived and is still waiting for ``release``/``drop``."""
        return self._arrived.is_set() and not self._decided.is_set()

    @property
    def client_disconnected(self) -> bool:
        """Whether the held request's client has closed its connection (e.g. the bot process died)."""
        if self.request is None:
            return False
        return self._transport is None or self._transport.is_closing()

    async def client_gone(self, timeout: float = 5.0) -> None:
        """Await ``client_disconnected`` (polled: aiohttp signals a lost connection to no awaitable)."""
        await self.arrived(timeout)
        async with asyncio.timeout(timeout):
            # aiohttp's RequestHandler has __slots__ and no disconnect hook: nothing to wait on but this.
            while not self.client_disconnected:  # noqa: ASYNC110
                await asyncio.sleep(0.01)

    async def hold(self, record: RecordedRequest, transport: asyncio.BaseTransport | None) -> bool:
        """(For the double) hold ``record`` until released (True) or dropped (False)."""
        self.request, self._transport = record, transport
        self._arrived.set()
        await self._decided.wait()
        return self._apply

    def __repr__(self) -> str:
        state = "held" if self.held else ("done" if self._decided.is_set() else "waiting")
        return f"<HeldRequest {state} {self.request!r}>"


@dataclass(eq=False)
class _Rule:
    predicate: Predicate
    remaining: int
    status: int = 0
    body: str | dict[str, Any] | None = None
    hold: HeldRequest | None = None


class Faults:
    """The pending fault rules; each matching request consumes one use of the first matching rule."""

    def __init__(self) -> None:
        self.failures: list[_Rule] = []
        self.drops: list[_Rule] = []
        self.holds: list[_Rule] = []
        self.handles: list[HeldRequest] = []

    def add_failure(self, predicate: Predicate | None, status: int, count: int, body: Any) -> None:
        """Answer the next ``count`` matching requests with ``status`` without applying them."""
        self.failures.append(_Rule(predicate or _any, count, status=status, body=body))

    def add_drop(self, predicate: Predicate | None, count: int) -> None:
        """Apply the next ``count`` matching requests, then close their connections unanswered."""
        self.drops.append(_Rule(predicate or _any, count))

    def add_hold(self, predicate: Predicate | None) -> HeldRequest:
        """Hold the next matching request; return its handle."""
        handle = HeldRequest(predicate or _any)
        self.holds.append(_Rule(handle.predicate, 1, hold=handle))
        self.handles.append(handle)
        return handle

    @staticmethod
    def take(rules: list[_Rule], record: RecordedRequest) -> _Rule | None:
        """Consume one use of the first rule in ``rules`` matching ``record``."""
        for rule in rules:
            if rule.remaining > 0 and rule.predicate(record):
                rule.remaining -= 1
                if rule.remaining == 0:
                    rules.remove(rule)
                return rule
        return None

    def release_all(self) -> None:
        """Drop every pending or held request (the double is closing)."""
        for handle in self.handles:
            if not handle._decided.is_set():
                handle.drop()
        self.holds.clear()


class InjectedFailure(Exception):
    """Raised inside the double to answer a request with an injected server error."""

    def __init__(self, rule: _Rule) -> None:
        super().__init__(f"injected {rule.status}")
        self.rule = rule
