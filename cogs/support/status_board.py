"""StatusBoard: status-card edits that never slow the work and stay inside Discord's per-channel limits.

A status card is a courtesy. With thousands of jobs in flight every queue-position change wants an edit, but
Discord allows about 5 message creates and edits per 5 s per channel, shared by both. So the board:

- coalesces: only the latest state of each card waits to be written; intermediate states are dropped;
- budgets each channel on its own (`edits_per_window` per `window_s`, leaving room in Discord's budget for
  the creates that matter more: videos and new status cards), so a busy channel never delays another;
- writes final states first, then the card that has waited longest;
- never makes the caller wait: `show()` only records the state, and one worker task per channel with
  something to write does the editing, started when needed and gone when idle.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import discord

from bot.domain.models import Job
from cogs.support.retry import is_transient

log = logging.getLogger(__name__)

#: How many cards shown final are remembered, so that a progress update racing in after the end is ignored.
#: A constant: memory must not grow with every job the bot has ever run.
REMEMBERED_FINALS = 10_000


@dataclass(slots=True)
class _Channel:
    """What one channel has waiting, and when its recent edits ended."""

    edits_per_window: int
    # Card id → latest state. OrderedDict keeps the order in which each card *started* waiting: replacing a
    # waiting card's state keeps its place, so a card that changes every second is not starved.
    finals: OrderedDict[int, Job] = field(default_factory=OrderedDict)
    updates: OrderedDict[int, Job] = field(default_factory=OrderedDict)
    # When the last `edits_per_window` edits ended (ended, not started: see StatusBoard._wait_s).
    edits: deque[float] = field(init=False)
    worker: asyncio.Task[None] | None = None

    def __post_init__(self) -> None:
        self.edits = deque(maxlen=self.edits_per_window)

    @property
    def pending(self) -> int:
        return len(self.finals) + len(self.updates)

    def take(self) -> Job | None:
        """The next card to write: a final one first, then the one that has waited longest."""
        if self.finals:
            return self.finals.popitem(last=False)[1]
        if self.updates:
            return self.updates.popitem(last=False)[1]
        return None


class StatusBoard:
    """Writes the latest state of each status card, within a per-channel edit budget, off the caller's path.

    `edit(job)` writes one card (the job's status message in `job.requester.channel_id`). A job without a
    status message or channel is ignored. An edit that raises is logged and dropped: the card catches up with
    the job's next state. Memory holds the cards with something pending, the channels edited within the last
    `window_s`, and a fixed number of recently finished card ids.
    """

    def __init__(
        self,
        edit: Callable[[Job], Awaitable[None]],
        *,
        edits_per_window: int = 3,
        window_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if edits_per_window < 1:
            raise ValueError(f"edits_per_window must be at least 1; got {edits_per_window}")
        if window_s <= 0:
            raise ValueError(f"window_s must be positive; got {window_s}")
        self._edit = edit
        self._edits_per_window = edits_per_window
        self._window_s = window_s
        self._clock = clock
        self._sleep = sleep
        self._channels: dict[int, _Channel] = {}
        # Channels whose worker has exited → when their edit history stops mattering, in the order they went
        # idle. Until then the channel is kept, so that a new worker still honours the edits just made.
        self._idle: OrderedDict[int, float] = OrderedDict()
        self._finished: OrderedDict[int, None] = OrderedDict()
        self._closing = False

    @property
    def pending(self) -> int:
        """How many cards have a state waiting to be written (an edit in flight is not counted)."""
        return sum(channel.pending for channel in self._channels.values())

    def show(self, job: Job, *, final: bool = False) -> None:
        """Have `job`'s status card show this state soon; returns at once and never waits for Discord.

        `final` (implied by a final job state) puts the card ahead of progress updates, and a card shown final
        ignores any progress update that arrives after it (a poll that raced the ending). Call it from the
        event loop's thread: it may start the channel's worker task.
        """
        channel_id = job.requester.channel_id
        if self._closing or job.status_message_id is None or channel_id is None:
            return
        final = final or job.state.is_final
        if final:
            self._remember_final(job.id)
        elif job.id in self._finished:
            return
        self._forget_idle_channels()
        channel = self._channels.get(channel_id)
        if channel is None:
            channel = self._channels[channel_id] = _Channel(self._edits_per_window)
        self._idle.pop(channel_id, None)
        if final:
            channel.updates.pop(job.id, None)
            channel.finals[job.id] = job
        else:
            channel.updates[job.id] = job
        if channel.worker is None:
            channel.worker = asyncio.get_running_loop().create_task(
                self._work(channel_id, channel), name=f"status-board-{channel_id}"
            )

    async def close(self, *, flush_timeout_s: float = 5.0) -> None:
        """Write out the pending final cards, for at most `flush_timeout_s`; drop everything else.

        Progress updates are dropped at once (a restart shows the job's state again). Finals still go through
        the channel budget; the ones the timeout leaves unwritten, and an edit in flight, are cancelled.
        """
        self._closing = True
        dropped = 0
        for channel_id, channel in self._channels.items():
            dropped += len(channel.updates)
            channel.updates.clear()
            if channel.finals and channel.worker is None:
                # Its worker was cancelled from outside; the finals still deserve their try.
                channel.worker = asyncio.get_running_loop().create_task(
                    self._work(channel_id, channel), name=f"status-board-{channel_id}"
                )
        workers = [channel.worker for channel in self._channels.values() if channel.worker is not None]
        try:
            if workers:
                await asyncio.wait(workers, timeout=flush_timeout_s)
        finally:
            late = [worker for worker in workers if not worker.done()]
            for worker in late:
                worker.cancel()
            if late:
                await asyncio.gather(*late, return_exceptions=True)
            unwritten = sum(len(channel.finals) for channel in self._channels.values())
            if dropped or unwritten or late:
                log.info(
                    "status board closed: %d progress updates dropped, %d final cards not written, "
                    "%d channels cut short",
                    dropped,
                    unwritten,
                    len(late),
                )
            self._channels.clear()
            self._idle.clear()

    # --- internals ------------------------------------------------------------------------------------

    def _remember_final(self, card_id: int) -> None:
        self._finished[card_id] = None
        self._finished.move_to_end(card_id)
        if len(self._finished) > REMEMBERED_FINALS:
            self._finished.popitem(last=False)

    def _forget_idle_channels(self) -> None:
        """Drop idle channels whose last edit has left the window (amortised O(1): each goes once)."""
        now = self._clock()
        while self._idle:
            channel_id, expires_at = next(iter(self._idle.items()))
            if expires_at > now:
                break
            del self._idle[channel_id]
            channel = self._channels.get(channel_id)
            if channel is not None and channel.worker is None and not channel.pending:
                del self._channels[channel_id]

    def _wait_s(self, channel: _Channel) -> float:
        """Seconds until `channel` may be edited again without more than the budget in any window.

        Edits are timed from when they ended: Discord counts a request when it arrives, which is somewhere
        between the start and the end of the call, so spacing a start `window_s` after the end of the edit
        `edits_per_window` back keeps every window within budget in Discord's own view too, even when
        discord.py held a request back in its own queue.
        """
        if len(channel.edits) < self._edits_per_window:
            return 0.0
        return channel.edits[0] + self._window_s - self._clock()

    async def _work(self, channel_id: int, channel: _Channel) -> None:
        """Write `channel`'s cards one at a time within its budget; return when nothing is left."""
        try:
            while channel.pending:
                wait_s = self._wait_s(channel)
                if wait_s > 0:
                    await self._sleep(wait_s)
                    continue  # newer states may have come in meanwhile: choose again
                job = channel.take()
                if job is None:
                    break
                try:
                    await self._edit(job)
                except Exception as error:
                    # A status card is a courtesy: the job goes on, and its next state will be shown.
                    if isinstance(error, discord.HTTPException) or is_transient(error):
                        log.warning("job %s: could not edit its status card: %s", job.id, error)
                    else:
                        log.exception("job %s: editing its status card failed unexpectedly", job.id)
                finally:
                    # Counted even when it failed or was cancelled: the request may have reached Discord.
                    channel.edits.append(self._clock())
        finally:
            channel.worker = None
            if not channel.pending:
                last = channel.edits[-1] if channel.edits else self._clock()
                self._idle.pop(channel_id, None)
                self._idle[channel_id] = last + self._window_s
