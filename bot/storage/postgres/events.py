"""Job events between processes over PostgreSQL's LISTEN/NOTIFY.

Publishing is one `pg_notify` on the pool. Listening holds one dedicated connection (a pooled one would be
handed to other work), opened on the first subscription and reopened after any loss with a capped backoff.
Notifications sent while no connection listened are gone, so every (re)connection first tells the
listeners "look for work" (None): a lost event costs a discovery round, never a job.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import asyncpg

from bot.jobs.ports import JobEventListener
from bot.storage.postgres.database import CONNECT_TIMEOUT_S, PostgresDatabase, describe_url

log = logging.getLogger(__name__)

#: The NOTIFY channel every process of one database listens on.
CHANNEL = "seedance_jobs"
#: Reconnection waits double from the first to the last.
RECONNECT_FIRST_S = 0.2
RECONNECT_MAX_S = 10.0


class PostgresJobEvents:
    """LISTEN/NOTIFY on the channel `CHANNEL`: payload a job id, or "" for "jobs were freed"."""

    def __init__(self, db: PostgresDatabase, url: str) -> None:
        """Publish through `db`'s pool; listen on a connection of its own to `url`."""
        self._db = db
        self._url = url
        self._listeners: list[JobEventListener] = []
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        #: Set while a connection listens (tests wait on it: a NOTIFY before LISTEN is lost).
        self.listening = asyncio.Event()

    async def publish(self, job_id: int | None = None) -> None:
        """NOTIFY every process listening on the database (this one included)."""
        await self._db.execute("SELECT pg_notify($1, $2)", CHANNEL, "" if job_id is None else str(job_id))

    def subscribe(self, listener: JobEventListener) -> Callable[[], None]:
        """Call `listener` for every event from now on (listening starts with the first subscriber)."""
        self._listeners.append(listener)
        if self._task is None and not self._closed:
            self._task = asyncio.create_task(self._listen(), name="job-events")

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(listener)

        return unsubscribe

    async def close(self) -> None:
        """Stop listening and close the dedicated connection."""
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def _dispatch(self, job_id: int | None) -> None:
        for listener in list(self._listeners):
            try:
                listener(job_id)
            except Exception:  # one listener's bug must not silence the others
                log.exception("a job event listener failed")

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: object) -> None:
        if isinstance(payload, str) and payload.isdigit():
            self._dispatch(int(payload))
        else:
            self._dispatch(None)

    async def _listen(self) -> None:
        delay = RECONNECT_FIRST_S
        while True:
            conn: asyncpg.Connection[asyncpg.Record] | None = None
            try:
                conn = await asyncpg.connect(self._url, timeout=CONNECT_TIMEOUT_S)
                lost = asyncio.Event()
                conn.add_termination_listener(_setter(lost))
                await conn.add_listener(CHANNEL, self._on_notify)
                self.listening.set()
                delay = RECONNECT_FIRST_S
                # Anything published while nobody listened is lost: look for work once.
                self._dispatch(None)
                # A dead peer is noticed by the next query, so ask a cheap one now and then.
                while not lost.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(lost.wait(), RECONNECT_MAX_S)
                    if not lost.is_set():
                        await conn.execute("SELECT 1")
                log.warning("job events: the listening connection to %s was lost", describe_url(self._url))
            except asyncio.CancelledError:
                raise
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                log.warning(
                    "job events: cannot listen on %s (%s); retrying in %.1f s",
                    describe_url(self._url),
                    type(error).__name__,
                    delay,
                )
            finally:
                self.listening.clear()
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.shield(conn.close(timeout=2))
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_MAX_S)


def _setter(event: asyncio.Event) -> Callable[[object], None]:
    """A termination listener that sets `event`."""

    def on_terminated(_conn: object) -> None:
        event.set()

    return on_terminated
