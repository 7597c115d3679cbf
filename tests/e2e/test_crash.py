"""Exactly-once under crashes: the real bot process is SIGKILLed at random moments and at the narrow windows
of delivery, restarted on the same database each time, and the run is audited (see `crash_harness.audit`):
0 duplicate posts, 0 lost requests, 0 duplicate submits, every quota reservation settled, no stale card.

Reduced form (the default run): 24 members, 12 kills, about 45 s. Full form (50 jobs, 30 kills, ~2 min)::

    CRASH_JOBS=50 CRASH_KILLS=30 .venv/bin/python -m pytest tests/e2e/test_crash.py -s

`CRASH_SEED` picks another sequence of lifecycles, kill moments and kinds (the seed is printed). Each run's
bot logs stay in pytest's tmp_path (printed). `CRASH_BOT_SRC=DIR` runs the bot of another checkout (e.g.
`git archive HEAD | tar -x -C DIR`) with these tests and doubles, to compare versions.

The deterministic tests below kill the bot once, with one job, at each targeted window, so that a regression
names its window: the video upload held by Discord, the video message just created (before the bot could
record it), the status card just posted, and the final status edit.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from tests.doubles.discord_double import StoredMessage
from tests.doubles.runcomfy import Lifecycle
from tests.e2e.crash_harness import (
    Audit,
    CrashRig,
    Hold,
    is_final_card_edit,
    is_status_card,
    is_video_message,
    is_video_upload,
    plug_native_faults,
)

CRASH_JOBS = int(os.environ.get("CRASH_JOBS", "24"))
CRASH_KILLS = int(os.environ.get("CRASH_KILLS", "12"))
CRASH_SEED = int(os.environ.get("CRASH_SEED", "1729"))
#: The bot polls every 0.1 s here, so a lifecycle of a few steps lasts about as long as a round between kills.
POLL_INTERVAL_S = 0.1
#: How long a targeted kill waits for its window before killing anyway (counted as "<kind>-missed").
TARGET_WAIT_S = 10.0
#: A round: the bot starts, members send commands, the bot is killed (at random, or at a window).
RANDOM_KILL_AFTER_S = (0.3, 3.0)
TARGETED_KINDS = ("upload_held", "video_created", "card_posted", "final_edit")
#: About 4 s per round (restart included), then the settling; generous for a shared 2-core machine.
RANDOM_RUN_TIMEOUT_S = 90 + 8 * CRASH_KILLS + CRASH_JOBS


def report(result: Audit) -> None:
    """Print the figures (CI logs keep them) and fail with every finding when the run was not clean."""
    print()
    print(result.report())
    assert result.ok, result.report()


# --- Random kills ------------------------------------------------------------------------------------------


def random_lifecycle(rng: random.Random) -> Lifecycle:
    """Varied short lives: queue positions counting down, running, then a video; a few failures."""
    queued, running = rng.randint(1, 8), rng.randint(1, 5)
    roll = rng.random()
    if roll < 0.10:
        return Lifecycle.queued(queued).running(running).fails("The generation failed.")
    if roll < 0.16:
        return Lifecycle.queued(queued).fails("The input was flagged.", code="content_flagged")
    if roll < 0.30:
        return Lifecycle.queued(rng.randint(10, 30)).running(running, progress=50).completes()
    return Lifecycle.queued(queued).running(running).completes()


@dataclass
class Round:
    """One life of the bot process: commands sent `delay` s after it is ready, then a kill of `kind`."""

    number: int
    kind: str | None  # None: the last round, no kill
    kill_after_s: float = 0.0
    commands: list[tuple[int, float]] = field(default_factory=list)  # (tag, delay)


def plan(rng: random.Random, jobs: int, kills: int) -> list[Round]:
    """`kills` rounds ending in a kill, then a last one; targeted kinds spread over the middle rounds."""
    rounds = [Round(n, "random", rng.uniform(*RANDOM_KILL_AFTER_S)) for n in range(kills)]
    rounds.append(Round(kills, None))
    targeted = min(max(0, kills - 2), len(TARGETED_KINDS) * max(1, kills // 10))
    slots = sorted(rng.sample(range(1, kills - 1), targeted)) if targeted else []
    for index, slot in enumerate(slots):
        rounds[slot].kind = TARGETED_KINDS[index % len(TARGETED_KINDS)]
    # Most commands come before the kills end; a card_posted round always gets one early.
    last_share = max(1, jobs // 10)
    tags = list(range(1, jobs + 1))
    for tag in tags[: jobs - last_share]:
        rounds[rng.randrange(kills)].commands.append((tag, 0.0))
    for tag in tags[jobs - last_share :]:
        rounds[-1].commands.append((tag, 0.0))
    for current in rounds:
        if current.kind == "card_posted" and not current.commands:
            donor = max(rounds[:-1], key=lambda r: len(r.commands))
            current.commands.append(donor.commands.pop())
        window = current.kill_after_s * 0.9 if current.kind == "random" else 2.0
        current.commands = [(tag, rng.uniform(0.0, max(window, 0.05))) for tag, _ in current.commands]
        current.commands.sort(key=lambda item: item[1])
    return rounds


class KillSwitch:
    """Arms one targeted kill on the rig for a round, and fires (or gives up) once."""

    def __init__(self, rig: CrashRig, kind: str, *, drop_held: bool = False) -> None:
        self.rig = rig
        self.kind = kind
        self.drop_held = drop_held
        self.fired = asyncio.Event()
        self.hold: Hold | None = None
        self._remove_hook: Callable[[], None] | None = None

    def arm(self) -> None:
        """Set the hold or the hook that kills at this kind's window."""
        discord = self.rig.discord
        if self.kind == "upload_held":
            self.hold = discord.crash_hold(is_video_upload, self.kind)
        elif self.kind == "final_edit":
            self.hold = discord.crash_hold(is_final_card_edit, self.kind)
        elif self.kind == "video_created":
            self._remove_hook = discord.crash_on_message_created(self._on_created(is_video_message))
        elif self.kind == "card_posted":
            self._remove_hook = discord.crash_on_message_created(
                self._on_created(lambda message: is_status_card(message, discord))
            )
        else:
            raise ValueError(self.kind)

    def _on_created(self, matches: Callable[[StoredMessage], bool]) -> Callable[[StoredMessage], None]:
        def hook(message: StoredMessage) -> None:
            if not self.fired.is_set() and matches(message):
                # Inside the double's handler: the message exists, the bot will never read the answer.
                self.rig.kill_now(self.kind)
                self.fired.set()

        return hook

    async def wait_and_kill(self, timeout: float) -> None:
        """Kill at the window, or after `timeout` anyway; then let a held request finish at Discord."""
        if self.hold is not None:
            with contextlib.suppress(TimeoutError):
                await self.hold.arrived(timeout)
            self.rig.kill_now(self.kind if self.hold.has_arrived else f"{self.kind}-missed")
        else:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.fired.wait(), timeout)
            if not self.fired.is_set():
                self.rig.kill_now(f"{self.kind}-missed")
        await self.rig.process.wait_exit()
        self.disarm()

    def disarm(self) -> None:
        """Remove the hook; release the hold: Discord completes what it received from the dead process
        (with `drop_held`, it discards it instead: the request never reached Discord's API)."""
        if self._remove_hook is not None:
            self._remove_hook()
        if self.hold is not None and not self.hold.dropped:
            if self.drop_held and self.hold.has_arrived:
                self.hold.drop()
            else:
                self.hold.release()


async def run_round(rig: CrashRig, current: Round, carried: list[int]) -> list[int]:
    """One bot life: send its commands while the bot is up, kill it; returns commands it could not send."""
    unsent: list[int] = []
    switch = KillSwitch(rig, current.kind) if current.kind not in (None, "random") else None
    if switch is not None:
        switch.arm()

    async def send_later(tag: int, delay: float) -> None:
        await asyncio.sleep(delay)
        if not rig.ready:
            unsent.append(tag)  # the bot is down: send it in the next round instead
            return
        await rig.animate(tag, round_number=current.number)

    schedule = [(tag, 0.0) for tag in carried] + current.commands
    senders = [asyncio.create_task(send_later(tag, delay)) for tag, delay in schedule]
    try:
        if current.kind == "random":
            await asyncio.sleep(current.kill_after_s)
            await rig.kill_bot("random")
        elif switch is not None:
            await switch.wait_and_kill(TARGET_WAIT_S)
        await asyncio.gather(*senders)
    finally:
        if switch is not None:
            switch.disarm()
        for task in senders:
            task.cancel()
    return unsent


@pytest.mark.timeout(RANDOM_RUN_TIMEOUT_S)
async def test_random_kills_lose_nothing_and_post_nothing_twice(tmp_path):
    assert CRASH_JOBS >= 1 and CRASH_KILLS >= 3
    rng = random.Random(CRASH_SEED)
    rounds = plan(rng, CRASH_JOBS, CRASH_KILLS)
    async with CrashRig(tmp_path, members=CRASH_JOBS, channels=4, poll_interval_s=POLL_INTERVAL_S) as rig:
        for _ in range(CRASH_JOBS):
            rig.runcomfy.script(random_lifecycle(rng))
        carried: list[int] = []
        for current in rounds:
            await rig.start_bot()
            carried = await run_round(rig, current, carried)
        assert not carried, f"commands never sent: {carried}"
        result = await rig.finish(settle_timeout=45.0)
    print(f"\nseed={CRASH_SEED} rounds={len(rounds)} native double faults: {plug_native_faults(rig.discord)}")
    print(f"bot logs: {tmp_path}")
    assert result.kills >= CRASH_KILLS
    report(result)


# --- One kill at each targeted window --------------------------------------------------------------------


async def _one_job_killed_at(
    tmp_path, kind: str, lifecycle: Lifecycle, *, drop_held: bool = False, settle_timeout: float = 25.0
) -> Audit:
    async with CrashRig(tmp_path, members=1, channels=1, poll_interval_s=POLL_INTERVAL_S) as rig:
        rig.runcomfy.script(lifecycle)
        await rig.start_bot()
        switch = KillSwitch(rig, kind, drop_held=drop_held)
        switch.arm()
        await rig.animate(1)
        await switch.wait_and_kill(timeout=30.0)
        assert rig.process.kill_reasons == [kind], f"the window {kind!r} was never reached"
        if switch.hold is not None and not drop_held:
            # Discord finishes the request it received from the process that died: wait until it has.
            await rig.discord.wait_until(lambda: switch.hold and switch.hold.record.status, timeout=10)
        await rig.start_bot()
        return await rig.finish(settle_timeout=settle_timeout)


async def test_kill_while_discord_holds_the_video_upload(tmp_path):
    report(await _one_job_killed_at(tmp_path, "upload_held", Lifecycle.queued(2).running(1).completes()))


async def test_kill_right_after_the_video_message_is_created(tmp_path):
    report(await _one_job_killed_at(tmp_path, "video_created", Lifecycle.queued(2).running(1).completes()))


async def test_kill_right_after_the_status_card_is_posted(tmp_path):
    report(await _one_job_killed_at(tmp_path, "card_posted", Lifecycle.queued(2).running(1).completes()))


@pytest.mark.parametrize("edit", ["applied", "lost"])
@pytest.mark.parametrize(
    "ending",
    [
        pytest.param(Lifecycle.queued(2).running(1).completes(), id="delivered"),
        pytest.param(Lifecycle.queued(2).running(1).fails("The generation failed."), id="failed"),
    ],
)
async def test_kill_during_the_final_status_edit(tmp_path, ending, edit):
    # "applied": Discord had the whole edit and applies it; "lost": it never reached Discord (the card must
    # still end up showing the end, repainted after the restart).
    report(await _one_job_killed_at(tmp_path, "final_edit", ending, drop_held=edit == "lost"))
