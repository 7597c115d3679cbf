"""The provider callback endpoint: a small HTTP server that wakes a job as soon as its provider says it moved.

ModelArk POSTs a task's JSON to the `callback_url` given at submit on every status change. Those POSTs are
unsigned, so the body is never trusted: it only names a task, whose job is then polled at once, and the
poll re-fetches the task from the provider. Polling on its own schedule stays the fallback, so a callback
that never arrives (a firewall, a restart) costs only latency.

Two cheap guards keep strangers from making the bot poll: the URL carries a key derived from the provider's
API key (without it: 403, before the body is read), and bodies are capped at `MAX_BODY_BYTES`. Answers are
the same for a known and an unknown task, so the endpoint reveals nothing about jobs.

With several processes on one database, the callback may reach a process that does not drive the job: the
endpoint then also publishes the job's id as a job event (`bot.jobs.ports.JobEvents`), and the process
holding the job's lease polls it at once.

The endpoint is a route on the bot's one HTTP listener (`bot.listener.HttpListener`, next to `/healthz` and
`/metrics`), on the aiohttp that discord.py already depends on.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from aiohttp import web

from bot.domain.models import Job, ProviderName
from bot.jobs.ports import JobEvents

log = logging.getLogger(__name__)

#: A task's JSON is about a kilobyte; anything far larger is not a callback.
MAX_BODY_BYTES = 64 * 1024
KEY_PARAMETER = "key"
_KEY_CONTEXT = b"seedance-bot provider callback v1"


class CallbackTarget(Protocol):
    """What the endpoint needs from the poller."""

    def poll_now(self, job_id: int) -> None:
        """Look at a job at once."""
        ...


#: Finds the job a provider knows by its task id (JobStore.find_by_provider_job).
JobFinder = Callable[[ProviderName, str], Awaitable[Job | None]]


def callback_key(provider_api_key: str) -> str:
    """The key callback URLs carry: stable across restarts, useless for anything but this endpoint."""
    return hmac.new(provider_api_key.encode(), _KEY_CONTEXT, hashlib.sha256).hexdigest()[:32]


def callback_url_with_key(public_url: str, key: str) -> str:
    """`public_url` with the key added to its query, keeping any query it already has."""
    parts = urlsplit(public_url)
    query = [(name, value) for name, value in parse_qsl(parts.query) if name != KEY_PARAMETER]
    query.append((KEY_PARAMETER, key))
    return urlunsplit(parts._replace(query=urlencode(query)))


class CallbackServer:
    """Serves POST callbacks for one provider at the path of its public callback URL.

    It listens nowhere itself: `add_routes` mounts it on an aiohttp application (the shared listener's).
    """

    def __init__(
        self,
        *,
        public_url: str,
        key: str,
        provider: ProviderName,
        find_job: JobFinder,
        target: CallbackTarget,
        events: JobEvents | None = None,
        owner: str | None = None,
    ) -> None:
        """Serve callbacks at `public_url`'s path; wake `target` (this process) and, through `events`, the
        process that holds the job's lease wherever it runs (not for jobs `owner`, this process, holds)."""
        self._path = urlsplit(public_url).path or "/"
        self._key = key
        self._provider = provider
        self._find_job = find_job
        self._target = target
        self._events = events
        self._owner = owner
        self.woken = 0  # callbacks that woke a job, for logs and tests

    @property
    def path(self) -> str:
        """The path callbacks are POSTed to (that of the public callback URL)."""
        return self._path

    def add_routes(self, app: web.Application) -> None:
        """Serve the callbacks on `app` (whose `client_max_size` should be at most `MAX_BODY_BYTES`)."""
        app.router.add_post(self._path, self._handle)

    async def _handle(self, request: web.Request) -> web.Response:
        given = request.query.get(KEY_PARAMETER, "")
        if not hmac.compare_digest(given.encode(), self._key.encode()):
            return web.json_response({"error": "forbidden"}, status=403)
        if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
            return web.json_response({"error": "body too large"}, status=413)
        try:
            payload = json.loads(await request.read())
        except web.HTTPRequestEntityTooLarge:
            return web.json_response({"error": "body too large"}, status=413)
        except ValueError:
            return web.json_response({"error": "body is not JSON"}, status=400)
        task_id = payload.get("id") if isinstance(payload, dict) else None
        if not isinstance(task_id, str) or not task_id.strip():
            return web.json_response({"error": "no task id"}, status=400)
        job = await self._find_job(self._provider, task_id.strip())
        if job is not None and job.state.is_active:
            # The body's status is not trusted: the poll re-reads the task from the provider.
            self._target.poll_now(job.id)
            if self._events is not None and (self._owner is None or job.lease_owner != self._owner):
                try:
                    await self._events.publish(job.id)
                except Exception:  # the holder polls on its own schedule anyway: only latency is lost
                    log.warning(
                        "job %s: could not pass the callback on to its process", job.id, exc_info=True
                    )
            self.woken += 1
            log.info("job %s: callback for %s; polling now", job.id, task_id)
        return web.json_response({"ok": True})
