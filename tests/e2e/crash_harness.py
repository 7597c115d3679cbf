"""What the crash test (`test_crash.py`) and the load benchmark (`bench/bench_load.py`) share: the real bot as
a subprocess that can be SIGKILLed and restarted on the same database, holds and message hooks on the Discord
double, and an audit that reads the double, the RunComfy double and the SQLite file to tell whether every
request ended exactly once.

The audit is written for the behaviour the design promises ("Delivery and ownership", "Invariants" in
`shared/docs/design.md`), not for today's code:

- a finished video is posted at most once per job (no duplicates), and every acknowledged request ends with
  exactly one outcome its member can see: the video, one ending message under the request, or a private
  answer saying it did not start (nothing lost);
- a paid submit is sent at most once per job;
- every reservation is settled: committed for a delivered job, released for any other final job;
- no status card is left showing a state that is not final.

Holds and hooks on the Discord double: `CrashDiscordDouble.crash_hold(predicate)` pauses one matching REST
request until released (or dropped), `crash_on_message_created(hook)` calls `hook` synchronously when the
double stores a message, before it answers. Both use the double's own `hold_next` / `on_message_created`
when it has them, and otherwise hook into its message handlers (so the same tests run on an older double,
e.g. against an older checkout of the bot with CRASH_BOT_SRC).

Knobs the bot under test is given (see `bot_environment`): POLL_INTERVAL_S small, JOB_LEASE_S=3 (a dead
process's jobs are taken over after 3 s, where the bot has leases), generous QUOTA_*; and, for a bot without
leases, the poller's PENDING_GRACE_S shortened to 3 s (`DEFAULT_OVERRIDES`, set by a two-line launcher before
`bot.cli.main(["run"])`; skipped with a note in the bot's log when the constant no longer exists).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import sqlite3
import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from tests.doubles.discord_double import (
    ChannelSpec,
    DiscordAPIError,
    DiscordDouble,
    GuildSpec,
    InteractionHandle,
    RecordedRequest,
    StoredMessage,
    UserSpec,
)
from tests.doubles.media import make_image
from tests.doubles.runcomfy import RunComfyDouble

REPO = Path(__file__).resolve().parents[2]
#: The checkout whose bot is run (its `bot` and `cogs`): this one, or CRASH_BOT_SRC, e.g. a `git archive` of
#: another commit, to run the same tests and doubles against another version of the bot.
BOT_SRC = Path(os.environ.get("CRASH_BOT_SRC") or REPO).resolve()
RUNCOMFY_KEY = "crash-runcomfy-key"

#: What the member sees: bot/presentation.py (`delivered_message`, `too_large_message`, `ended_message`),
#: cogs/animate.py (the private answers) and the Discord notifier (the video's file name).
VIDEO_FILE_RE = re.compile(r"^seedance-(\d+)\.mp4$")
READY_RE = re.compile(r"\byour video #(\d+) is ready\b")
ENDING_RE = re.compile(r"\bvideo #(\d+) (?:did not work out|was cancelled|is (?!ready\b)[a-z ]+\.)")
STARTED_RE = re.compile(r"\bStarted video #(\d+)")
NOT_STARTED_RE = re.compile(r"\b[Vv]ideo #(\d+) did not start\b")
CARD_TITLE_RE = re.compile(r"^Video(?: #(\d+))? · (.+)$")
#: `state_label` of the final states: a card showing anything else at the end is stale.
FINAL_CARD_LABELS = frozenset({"Done", "Failed", "Cancelled", "Expired", "Timed out", "Unconfirmed"})
#: Prompts carry a tag, so that job rows, provider submits and interactions can be matched up.
TAG_RE = re.compile(r"\b(?:crash|load)-(\d+)\b")

_MESSAGES_ROUTE = "/channels/{channel_id}/messages"
_MESSAGE_ROUTE = "/channels/{channel_id}/messages/{message_id}"


def final_states() -> frozenset[str]:
    """The final job states of the code under test (its own `FINAL_STATES`, so a new state is honoured)."""
    try:
        from bot.domain.models import FINAL_STATES

        return frozenset(str(state.value) for state in FINAL_STATES)
    except ImportError:  # pragma: no cover - the rewrite moved it
        return frozenset({"delivered", "failed", "cancelled", "expired", "timed_out", "unknown"})


# --- The bot as a process --------------------------------------------------------------------------------

#: Runs `bot.cli.main(["run"])` (what `python -m bot.cli run` runs) after setting module constants named in
#: argv[1] (JSON {"module.NAME": value}); a constant the code no longer has is reported and skipped.
_LAUNCHER = """\
import importlib, json, sys
for target, value in json.loads(sys.argv[1]).items():
    module_name, _, name = target.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        module = None
    if module is None or not hasattr(module, name):
        print(f"crash harness: {target} does not exist; not overridden", file=sys.stderr, flush=True)
        continue
    setattr(module, name, value)
from bot.cli import main
sys.exit(main(["run"]))
"""

#: Test-only shortenings of the bot's waits. The poller turns a PENDING job left by a dead process into
#: UNKNOWN only after PENDING_GRACE_S (120 s), which no test can wait for; the process that owned it is dead.
DEFAULT_OVERRIDES: dict[str, object] = {"bot.jobs.poller.PENDING_GRACE_S": 3.0}


def bot_environment(
    discord: DiscordDouble,
    runcomfy_base_url: str,
    database: Path,
    *,
    poll_interval_s: float = 0.05,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment of `seedance-bot run` against the doubles (as in test_process.py), quotas generous."""
    environment = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(
            ("DISCORD_", "RUNCOMFY_", "SEEDANCE_", "NOVITA_", "ARK_", "QUOTA_", "HTTP_", "CALLBACK_")
        )
    }
    environment.update(
        PYTHONPATH=str(BOT_SRC),
        PYTHONUNBUFFERED="1",
        DISCORD_TOKEN=discord.token,
        DISCORD_API_BASE_URL=discord.api_base,
        DISCORD_GATEWAY_URL=discord.gateway_url,
        DISCORD_CDN_HOSTS="127.0.0.1",
        RUNCOMFY_API_KEY=RUNCOMFY_KEY,
        RUNCOMFY_BASE_URL=runcomfy_base_url,
        DATABASE_PATH=str(database),
        # The doubles serve videos from 127.0.0.1 over http; older bot versions ignore the variable.
        DOWNLOAD_ALLOW_LOOPBACK="true",
        POLL_INTERVAL_S=str(poll_interval_s),
        LOG_LEVEL="INFO",
        # A dead process's jobs are taken over when their lease expires (JOB_LEASE_S, where the bot has
        # leases; older versions ignore the variable). Short, so restarts resume jobs within seconds.
        JOB_LEASE_S="3",
        # One request per member; the server budget must not refuse the later ones.
        QUOTA_COOLDOWN_S="0",
        QUOTA_CREDITS_PER_DAY="100000",
        QUOTA_SERVER_CREDITS_PER_DAY="10000000",
        # Several bots run at once: each one's /healthz listener takes a free port, never 8080.
        HTTP_LISTEN_PORT="0",
    )
    environment.update(extra or {})
    return environment


class BotDiedError(AssertionError):
    """The bot process exited when it was not asked to."""


@dataclass
class BotProcess:
    """`seedance-bot run` as a subprocess; each start logs to its own file under `log_dir`."""

    environment: dict[str, str]
    log_dir: Path
    cwd: Path = BOT_SRC
    overrides: Mapping[str, object] = field(default_factory=lambda: dict(DEFAULT_OVERRIDES))
    process: asyncio.subprocess.Process | None = None
    starts: int = 0
    kills: int = 0
    kill_reasons: list[str] = field(default_factory=list)
    log_paths: list[Path] = field(default_factory=list)
    _log_file: IO[bytes] | None = None
    _identifies_before: int = 0
    _expected_exit: bool = False

    @property
    def pid(self) -> int | None:
        """The running process's id."""
        return self.process.pid if self.process is not None else None

    @property
    def alive(self) -> bool:
        """Started and not yet exited."""
        return self.process is not None and self.process.returncode is None

    async def start(self, discord: DiscordDouble | None = None) -> None:
        """Start a new process on the same database (`discord`: to tell its log-in from earlier ones)."""
        if self.alive:
            raise RuntimeError("the bot is already running")
        self.starts += 1
        self._expected_exit = False
        path = self.log_dir / f"bot-{self.starts:02d}.log"
        self.log_paths.append(path)
        self._log_file = path.open("wb")
        self._identifies_before = len(discord.identifies) if discord is not None else 0
        if self.overrides:
            command = [sys.executable, "-c", _LAUNCHER, json.dumps(dict(self.overrides))]
        else:
            command = [sys.executable, "-m", "bot.cli", "run"]
        self.process = await asyncio.create_subprocess_exec(
            *command,
            env=self.environment,
            cwd=self.cwd,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=asyncio.subprocess.STDOUT,
        )

    async def wait_ready(self, discord: DiscordDouble, timeout: float = 30.0) -> None:
        """Return once this process has identified on the gateway and been sent every guild.

        Interactions sent from then on reach a bot that has the guilds in its cache (the gateway is ordered).
        """
        assert self.process is not None

        def ready() -> bool:
            if len(discord.identifies) <= self._identifies_before:
                return False
            payload = discord.identifies[self._identifies_before]
            session = next((s for s in discord.sessions if s.identify_payload is payload and s.ready), None)
            if session is None:
                return False
            guild_creates = sum(1 for event, _ in session.dispatched if event == "GUILD_CREATE")
            # A sharded session is sent only its shard's guilds.
            receives = getattr(session, "receives", lambda _guild_id: True)
            return guild_creates >= sum(1 for guild in discord.guilds if receives(guild.id))

        waiter = asyncio.ensure_future(discord.wait_until(ready, timeout=timeout))
        exited = asyncio.ensure_future(self.process.wait())
        try:
            done, _ = await asyncio.wait({waiter, exited}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            exited.cancel()
        if waiter not in done:
            waiter.cancel()
            code = self.process.returncode
            raise BotDiedError(f"the bot exited while starting (code {code}):\n{self.tail()}")
        waiter.result()

    def kill(self, reason: str = "") -> bool:
        """SIGKILL now (synchronous: safe inside a double's handler); False when it was not running."""
        if not self.alive or self._expected_exit:
            return False  # not running, or already told to go
        assert self.process is not None
        self._expected_exit = True
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.process.pid, signal.SIGKILL)
        self.kills += 1
        self.kill_reasons.append(reason or "random")
        return True

    async def wait_exit(self, timeout: float = 20.0) -> int:
        """The exit code, once the process is gone."""
        assert self.process is not None
        code = await asyncio.wait_for(self.process.wait(), timeout)
        self._close_log()
        return code

    async def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait: the bot's own clean shutdown."""
        if not self.alive:
            self._close_log()
            return self.process.returncode if self.process and self.process.returncode is not None else 0
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        self._expected_exit = True
        try:
            return await self.wait_exit(timeout)
        except TimeoutError:
            self._expected_exit = False  # so that kill() sends its SIGKILL
            self.kill("did not stop on SIGTERM")
            await self.wait_exit(10)
            raise

    def check_alive(self) -> None:
        """Raise BotDiedError when the process exited on its own."""
        if self.process is not None and self.process.returncode is not None and not self._expected_exit:
            raise BotDiedError(f"the bot exited on its own (code {self.process.returncode}):\n{self.tail()}")

    def _close_log(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def log_text(self) -> str:
        """Everything every start wrote, in order."""
        parts = []
        for number, path in enumerate(self.log_paths, 1):
            text = path.read_text(errors="replace") if path.exists() else ""
            parts.append(f"===== start {number} ({path.name}) =====\n{text}")
        return "\n".join(parts)

    def tail(self, lines: int = 40) -> str:
        """The last lines of the current start's log."""
        if not self.log_paths or not self.log_paths[-1].exists():
            return "(no log)"
        return "\n".join(self.log_paths[-1].read_text(errors="replace").splitlines()[-lines:])


# --- Holds and hooks on the Discord double -----------------------------------------------------------------


@dataclass(eq=False)
class Hold:
    """One REST request paused by the double until `release()`; `await arrived()` returns it.

    Wraps the double's own `HeldRequest` (`hold_next`) when it has one, else the harness's fallback.
    """

    predicate: Callable[[RecordedRequest], bool]
    name: str = ""
    native: Any = None  # the double's HeldRequest
    _record: RecordedRequest | None = None
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)
    _released: asyncio.Event = field(default_factory=asyncio.Event)
    dropped: bool = False

    @property
    def record(self) -> RecordedRequest | None:
        """The held request, once one matched."""
        return self.native.request if self.native is not None else self._record

    @property
    def has_arrived(self) -> bool:
        """Whether a request is (or was) held."""
        return self.record is not None

    @property
    def armed(self) -> bool:
        """Still waiting for a matching request."""
        return self.record is None and not self._released.is_set()

    async def arrived(self, timeout: float | None = None) -> RecordedRequest:
        """The held request, once one matched (TimeoutError after `timeout`)."""
        if self.native is not None:
            return await self.native.arrived(timeout=timeout if timeout is not None else 3600.0)  # type: ignore[no-any-return]
        await asyncio.wait_for(self._arrived.wait(), timeout)
        assert self._record is not None
        return self._record

    def release(self) -> None:
        """Let the held request go on: Discord applies what it fully received, even from a dead client.

        Before any request arrived, this disarms the hold instead (the double's own `hold_next` would
        let the next matching request through unheld, which is the same thing).
        """
        self._released.set()
        if self.native is not None:
            self.native.release()

    def drop(self) -> None:
        """Discard the held request unapplied (it never reached Discord's API)."""
        self.dropped = True
        self._released.set()
        if self.native is not None:
            self.native.drop()


class CrashDiscordDouble(DiscordDouble):
    """The Discord double plus request holds and message-created hooks (see the module docstring).

    Uses the double's `hold_next` / `on_message_created` when it has them; otherwise (an older double)
    holds in its message handlers and hooks into `_create_message`.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._crash_holds: list[Hold] = []
        self._crash_created_hooks: list[Callable[[StoredMessage], None]] = []
        self.activity = 0  # bumped on every REST request handled, for "wait for anything to happen"

    @property
    def native_faults(self) -> bool:
        """Whether the double itself offers `hold_next` and `on_message_created`."""
        return callable(getattr(DiscordDouble, "hold_next", None)) and callable(
            getattr(DiscordDouble, "on_message_created", None)
        )

    def crash_hold(self, predicate: Callable[[RecordedRequest], bool], name: str = "") -> Hold:
        """Pause the next channel-message create or edit matching `predicate` until the hold is released."""
        if self.native_faults:
            return Hold(predicate, name, native=self.hold_next(predicate))  # type: ignore[attr-defined]
        hold = Hold(predicate, name)
        self._crash_holds.append(hold)
        return hold

    def crash_on_message_created(self, hook: Callable[[StoredMessage], None]) -> Callable[[], None]:
        """Call `hook(message)` as each message is stored, before the double answers; returns a remover."""
        if self.native_faults:
            return self.on_message_created(hook)  # type: ignore[attr-defined,no-any-return]
        self._crash_created_hooks.append(hook)

        def remove() -> None:
            with contextlib.suppress(ValueError):
                self._crash_created_hooks.remove(hook)

        return remove

    async def _crash_gate(self, record: RecordedRequest) -> None:
        for hold in list(self._crash_holds):
            if hold.armed and hold.predicate(record):
                hold._record = record
                self._crash_holds.remove(hold)
                hold._arrived.set()
                await hold._released.wait()
                if hold.dropped:
                    raise DiscordAPIError(500, 0, "held request dropped by the test: never applied")
                return

    def _create_message(self, **kwargs: Any) -> StoredMessage:  # type: ignore[override]
        message = super()._create_message(**kwargs)
        for hook in list(self._crash_created_hooks):
            hook(message)
        return message

    async def _create_channel_message(self, record: RecordedRequest) -> Any:
        await self._crash_gate(record)
        return await super()._create_channel_message(record)

    async def _edit_channel_message(self, record: RecordedRequest) -> Any:
        await self._crash_gate(record)
        return await super()._edit_channel_message(record)

    def _wake(self) -> None:
        self.activity += 1
        super()._wake()

    def release_all_holds(self) -> None:
        """Release every fallback hold (at the end of a test, so no handler is left waiting)."""
        for hold in list(self._crash_holds):
            hold.release()
        self._crash_holds.clear()


def plug_native_faults(double: DiscordDouble) -> dict[str, bool]:
    """Which fault features the Discord double offers natively (`hold_next`, `rate_limit_stats`, ...),
    for the figures the tests and the benchmark print."""
    return {
        name: callable(getattr(double, name, None))
        for name in (
            "hold_next",
            "on_message_created",
            "fail_next",
            "drop_after_accept_next",
            "rate_limit_stats",
        )
    }


# --- Predicates on requests and messages -------------------------------------------------------------------


def is_video_upload(record: RecordedRequest) -> bool:
    """A message create carrying a `seedance-<id>.mp4` file."""
    return (
        record.method == "POST"
        and record.route == _MESSAGES_ROUTE
        and any(VIDEO_FILE_RE.match(upload.filename or "") for upload in record.files)
    )


def card_label(embeds: Sequence[Mapping[str, Any]] | None) -> tuple[int | None, str] | None:
    """(job id or None, state label) of a status card's first embed, or None when it is not a card."""
    if not embeds:
        return None
    match = CARD_TITLE_RE.match(str(embeds[0].get("title") or ""))
    if match is None:
        return None
    return (int(match[1]) if match[1] else None, match[2])


def is_final_card_edit(record: RecordedRequest) -> bool:
    """An edit of a status card to a final state."""
    if record.method != "PATCH" or record.route != _MESSAGE_ROUTE or not isinstance(record.json, dict):
        return False
    label = card_label(record.json.get("embeds"))
    return label is not None and label[1] in FINAL_CARD_LABELS


def is_video_message(message: StoredMessage) -> bool:
    """A bot message that delivers a video (the file, or the "is ready" text with a link)."""
    if message.source != "bot":
        return False
    has_file = any(VIDEO_FILE_RE.match(a.filename) for a in message.attachments)
    return has_file or READY_RE.search(message.content) is not None


def is_status_card(message: StoredMessage, discord: DiscordDouble) -> bool:
    """A status card as first posted: a bot message with a card embed in a (non-thread) channel."""
    if message.source != "bot" or card_label(message.payload.get("embeds")) is None:
        return False
    channel = discord.channel(message.channel_id)
    return not channel.is_thread


# --- Waiting -------------------------------------------------------------------------------------------


async def wait_for_activity(discord: CrashDiscordDouble, timeout: float) -> None:
    """Return when the Discord double handles anything (or after `timeout`: DB writes make no request)."""
    seen = discord.activity
    with contextlib.suppress(TimeoutError):
        await discord.wait_until(lambda: discord.activity != seen, timeout=timeout)


# --- Reading the database ----------------------------------------------------------------------------


@dataclass(frozen=True)
class JobRow:
    """What the audit needs of a `jobs` row."""

    id: int
    state: str
    prompt: str
    user_id: int | None
    channel_id: int | None
    thread_id: int | None
    status_message_id: int | None
    provider_job_id: str | None
    error_code: str | None

    @property
    def tag(self) -> int | None:
        """The number in the prompt's crash-/load- tag."""
        match = TAG_RE.search(self.prompt)
        return int(match[1]) if match else None


@dataclass(frozen=True)
class Reservation:
    """A `reservations` row."""

    job_id: int
    credits: int
    state: str


def read_database(path: Path) -> tuple[list[JobRow], list[Reservation] | None]:
    """Job rows and reservations (None when the table does not exist) from the bot's SQLite file."""
    if not path.exists():
        return [], None
    conn = sqlite3.connect(path, timeout=10)
    conn.row_factory = sqlite3.Row
    try:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(jobs)")}
        if not columns:
            return [], None

        def column(name: str) -> str:
            return name if name in columns else f"NULL AS {name}"

        rows = conn.execute(
            "SELECT id, state, request_json, "
            + ", ".join(
                column(name)
                for name in (
                    "user_id",
                    "channel_id",
                    "thread_id",
                    "status_message_id",
                    "provider_job_id",
                    "error_code",
                )
            )
            + " FROM jobs ORDER BY id"
        ).fetchall()
        jobs = []
        for row in rows:
            try:
                prompt = str(json.loads(row["request_json"] or "{}").get("prompt", ""))
            except ValueError:
                prompt = ""
            jobs.append(
                JobRow(
                    id=row["id"],
                    state=row["state"],
                    prompt=prompt,
                    user_id=row["user_id"],
                    channel_id=row["channel_id"],
                    thread_id=row["thread_id"],
                    status_message_id=row["status_message_id"],
                    provider_job_id=row["provider_job_id"],
                    error_code=row["error_code"],
                )
            )
        has_reservations = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'reservations'"
        ).fetchone()
        reservations = None
        if has_reservations:
            reservations = [
                Reservation(job_id=r["job_id"], credits=r["credits"], state=r["state"])
                for r in conn.execute("SELECT job_id, credits, state FROM reservations ORDER BY job_id")
            ]
        return jobs, reservations
    finally:
        conn.close()


# --- The audit ---------------------------------------------------------------------------------------


@dataclass
class SentCommand:
    """One /animate a member ran."""

    tag: int
    prompt: str
    user_id: int
    channel: ChannelSpec
    round: int
    handle: InteractionHandle | None = None
    error: str | None = None

    @property
    def acknowledged(self) -> bool:
        """Whether Discord accepted the bot's deferred (or direct) answer."""
        return self.handle is not None and self.handle.acknowledged

    def private_messages(self) -> list[StoredMessage]:
        """The interaction's original answer and its followups."""
        if self.handle is None:
            return []
        found = [self.handle.original, *self.handle.followups]
        unique: dict[int, StoredMessage] = {}
        for message in found:
            if message is not None:
                unique[message.id] = message
        return list(unique.values())


def describe_message(message: StoredMessage, discord: DiscordDouble) -> str:
    """One line about a message, for failure reports."""
    try:
        channel = discord.channel(message.channel_id)
        where = f"{'thread' if channel.is_thread else 'channel'} {channel.name or channel.id}"
    except KeyError:
        where = f"channel {message.channel_id}"
    files = [a.filename for a in message.attachments]
    label = card_label(message.payload.get("embeds"))
    card = f" card={label[1]!r}" if label else ""
    flags = (" (deleted)" if message.deleted else "") + (" (private)" if message.ephemeral else "")
    loading = " (still thinking…)" if message.is_loading else ""
    return (
        f"msg {message.id} in {where} by {message.source}{flags}{loading}: {message.content[:90]!r}"
        f"{' files=' + str(files) if files else ''}{card}"
    )


@dataclass
class Audit:
    """The verdict of one run: figures and, per kind of problem, one readable line per finding."""

    sent: int = 0
    acknowledged: int = 0
    jobs: int = 0
    delivered: int = 0
    ended: int = 0
    refused_before_job: int = 0
    kills: int = 0
    kill_reasons: Counter[str] = field(default_factory=Counter)
    submits: int = 0
    rows_reaching_provider: int = 0
    unconfirmed_submits: int = 0
    duplicates: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    extra_outcomes: list[str] = field(default_factory=list)
    not_final: list[str] = field(default_factory=list)
    stale_cards: list[str] = field(default_factory=list)
    left_thinking: list[str] = field(default_factory=list)
    submit_problems: list[str] = field(default_factory=list)
    ledger_problems: list[str] = field(default_factory=list)
    double_problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def problems(self) -> dict[str, list[str]]:
        """Every non-empty problem list, by name."""
        lists = {
            "duplicate posts": self.duplicates,
            "lost requests": self.lost,
            "more than one outcome": self.extra_outcomes,
            "jobs not final": self.not_final,
            "stale status cards": self.stale_cards,
            "private answers left thinking": self.left_thinking,
            "submits": self.submit_problems,
            "quota ledger": self.ledger_problems,
            "Discord double": self.double_problems,
        }
        return {name: found for name, found in lists.items() if found}

    @property
    def ok(self) -> bool:
        """No problem of any kind."""
        return not self.problems()

    def summary_line(self, label: str = "CRASH") -> str:
        """The figures on one line, for CI logs."""
        reasons = ",".join(f"{reason}={count}" for reason, count in sorted(self.kill_reasons.items()))
        return (
            f"{label} SUMMARY jobs={self.jobs} sent={self.sent} acked={self.acknowledged} "
            f"delivered={self.delivered} ended={self.ended} refused={self.refused_before_job} "
            f"kills={self.kills} [{reasons}] duplicates={len(self.duplicates)} lost={len(self.lost)} "
            f"extra_outcomes={len(self.extra_outcomes)} not_final={len(self.not_final)} "
            f"stale_cards={len(self.stale_cards)} left_thinking={len(self.left_thinking)} "
            f"submits={self.submits} "
            f"rows_at_provider={self.rows_reaching_provider} unconfirmed={self.unconfirmed_submits} "
            f"submit_problems={len(self.submit_problems)} ledger={len(self.ledger_problems)} problems "
            f"-> {'PASS' if self.ok else 'FAIL'}"
        )

    def report(self, limit: int = 12) -> str:
        """Every finding, grouped, at most `limit` per group."""
        lines = [self.summary_line()]
        for name, found in self.problems().items():
            lines.append(f"--- {name} ({len(found)}) ---")
            lines.extend(found[:limit])
            if len(found) > limit:
                lines.append(f"… and {len(found) - limit} more")
        if self.notes:
            lines.append("--- notes ---")
            lines.extend(self.notes[:limit])
        return "\n".join(lines)


def audit(
    *,
    discord: DiscordDouble,
    provider_jobs: Iterable[Any],
    database: Path,
    sent: Sequence[SentCommand],
    bot: BotProcess | None = None,
) -> Audit:
    """Check every invariant on what the doubles and the database hold after a run."""
    result = Audit(sent=len(sent), acknowledged=sum(1 for command in sent if command.acknowledged))
    if bot is not None:
        result.kills = bot.kills
        result.kill_reasons = Counter(bot.kill_reasons)
    final = final_states()
    rows, reservations = read_database(database)
    result.jobs = len(rows)
    by_id = {row.id: row for row in rows}
    rows_by_tag: defaultdict[int, list[JobRow]] = defaultdict(list)
    for row in rows:
        if row.tag is not None:
            rows_by_tag[row.tag].append(row)
    for tag, tagged in rows_by_tag.items():
        if len(tagged) > 1:
            result.duplicates.append(
                f"request crash-{tag:04d} has {len(tagged)} job rows: {[row.id for row in tagged]}"
            )

    messages = discord.all_messages()
    public_bot = [m for m in messages if m.source == "bot" and not m.ephemeral]
    videos: defaultdict[int, list[StoredMessage]] = defaultdict(list)
    endings: defaultdict[int, list[StoredMessage]] = defaultdict(list)
    for message in public_bot:
        ids = {int(match[1]) for a in message.attachments if (match := VIDEO_FILE_RE.match(a.filename))}
        ids |= {int(match) for match in READY_RE.findall(message.content)}
        for job_id in ids:
            videos[job_id].append(message)
        if not ids:
            for match in ENDING_RE.finditer(message.content):
                endings[int(match[1])].append(message)
    # Private answers that tell the member their request ended without a video: "Video #12 did not start."
    # or the ending itself ("video #12 did not work out. …") in place of "Started video #12".
    not_started: defaultdict[int, list[StoredMessage]] = defaultdict(list)
    command_by_tag = {command.tag: command for command in sent}
    for command in sent:
        for message in command.private_messages():
            ids = {int(match[1]) for match in NOT_STARTED_RE.finditer(message.content)}
            ids |= {int(match[1]) for match in ENDING_RE.finditer(message.content)}
            for job_id in ids:
                not_started[job_id].append(message)

    def show(found: Iterable[StoredMessage]) -> str:
        return "; ".join(describe_message(m, discord) for m in found) or "none"

    # Duplicate posts: at most one video message per job.
    for job_id, posted in sorted(videos.items()):
        if len(posted) > 1:
            result.duplicates.append(f"job #{job_id}: {len(posted)} video posts: {show(posted)}")
        if job_id not in by_id:
            result.notes.append(f"a video for job #{job_id}, which has no row: {show(posted)}")

    # Every row final, with exactly one outcome, in its own thread or channel.
    for row in rows:
        outcome_messages = videos.get(row.id, []) + endings.get(row.id, []) + not_started.get(row.id, [])
        who = f"job #{row.id} ({row.prompt[:24]!r}, state {row.state})"
        if row.state not in final:
            result.not_final.append(f"{who}: not final; outcomes so far: {show(outcome_messages)}")
        if row.state == "delivered":
            result.delivered += 1
        elif row.state in final:
            result.ended += 1
        if row.state == "delivered" and not videos.get(row.id):
            result.lost.append(f"{who}: delivered in the store, but no video message")
        if row.state != "delivered" and videos.get(row.id):
            result.extra_outcomes.append(
                f"{who}: the member got the video, but the row is not delivered: {show(videos[row.id])}"
            )
        # One outcome: the video, or one public ending, or (when nothing was posted for it) a private answer
        # saying it ended. A private answer next to a public ending is the same news told twice, quietly,
        # and is fine; next to the video it contradicts it.
        posted_video = bool(videos.get(row.id))
        public_endings = endings.get(row.id, [])
        private_endings = not_started.get(row.id, [])
        if not posted_video and not public_endings and not private_endings and row.state in final:
            command = command_by_tag.get(row.tag) if row.tag is not None else None
            private = show(command.private_messages()) if command else "no interaction"
            result.lost.append(f"{who}: final, but its member was never told; private answers: {private}")
        elif posted_video and (public_endings or private_endings):
            result.extra_outcomes.append(f"{who}: the video and an ending: {show(outcome_messages)}")
        elif len(public_endings) > 1:
            result.extra_outcomes.append(f"{who}: {len(public_endings)} endings: {show(public_endings)}")
        places = {row.channel_id, row.thread_id}
        for message in videos.get(row.id, []) + endings.get(row.id, []):
            channel = discord.channel(message.channel_id)
            if message.channel_id not in places and channel.parent_id not in places:
                result.notes.append(f"{who}: outcome outside its channel/thread: {show([message])}")

    # Every acknowledged request: a job row with its outcome, or a private answer that it did not start;
    # and its "thinking…" answer settled either way (the design: no such reply is left without an owner).
    for command in sent:
        if not command.acknowledged:
            continue
        original = command.handle.original if command.handle else None
        if original is not None and original.is_loading and rows_by_tag.get(command.tag):
            rows_text = ", ".join(f"job #{row.id} {row.state}" for row in rows_by_tag[command.tag])
            result.left_thinking.append(
                f"request crash-{command.tag:04d} ({rows_text}): its private answer still says thinking…"
            )
        tagged = rows_by_tag.get(command.tag, [])
        if tagged:
            continue  # judged with its row above
        private = command.private_messages()
        settled = [m for m in private if not m.is_loading and m.content]
        started = [m for m in settled if STARTED_RE.search(m.content)]
        who = f"request crash-{command.tag:04d} (member {command.user_id}, round {command.round})"
        if started:
            result.lost.append(f"{who}: told it started, but there is no job row: {show(private)}")
        elif not settled:
            result.lost.append(f"{who}: acknowledged, no job row, no answer: {show(private)}")
        else:
            result.refused_before_job += 1

    # Status cards: each shows a final state at the end, or was taken back.
    rows_by_card = {row.status_message_id: row for row in rows if row.status_message_id is not None}
    for message in messages:
        if message.deleted or not is_status_card(message, discord):
            continue
        label = card_label(message.payload.get("embeds"))
        assert label is not None
        if label[1] in FINAL_CARD_LABELS:
            continue
        row = rows_by_card.get(message.id)
        owner = f"job #{row.id} (state {row.state})" if row else "no job row"
        tag_match = TAG_RE.search(json.dumps(message.payload.get("embeds")))
        request = f"crash-{tag_match[1]}" if tag_match else "?"
        result.stale_cards.append(
            f"card {message.id} for request {request}, {owner}, still shows {label[1]!r}: "
            f"{describe_message(message, discord)}"
        )

    # Submits: one per job at most; every paid submit belongs to a row.
    provider_list = list(provider_jobs)
    result.submits = len(provider_list)
    submits_by_tag: defaultdict[int, list[Any]] = defaultdict(list)
    for job in provider_list:
        match = TAG_RE.search(str(job.body.get("prompt", "")))
        if match is None:
            result.submit_problems.append(f"provider job {job.id} carries no tag: {job.body!r:.120}")
            continue
        submits_by_tag[int(match[1])].append(job)
    provider_ids = {job.id for job in provider_list}
    bodies = Counter(json.dumps(job.body, sort_keys=True) for job in provider_list)
    for body, count in bodies.items():
        if count > 1:
            result.submit_problems.append(f"{count} submits carry the same request: {body[:160]}")
    for tag, jobs in sorted(submits_by_tag.items()):
        tagged = rows_by_tag.get(tag, [])
        if len(jobs) > 1:
            result.submit_problems.append(
                f"request crash-{tag:04d} was submitted {len(jobs)} times: {[job.id for job in jobs]} "
                f"(rows {[row.id for row in tagged]})"
            )
        if not tagged:
            result.submit_problems.append(
                f"request crash-{tag:04d} was submitted ({jobs[0].id}) but has no row"
            )
            continue
        for row in tagged:
            if row.provider_job_id is None:
                result.unconfirmed_submits += 1
                if row.state not in final:
                    result.submit_problems.append(
                        f"job #{row.id}: its submit reached the provider ({jobs[0].id}) but the row has no "
                        f"provider id and is {row.state}"
                    )
    for row in rows:
        if row.provider_job_id is not None:
            result.rows_reaching_provider += 1
            if row.provider_job_id not in provider_ids:
                result.submit_problems.append(
                    f"job #{row.id} names provider job {row.provider_job_id}, which the provider never made"
                )

    # The quota ledger.
    if reservations is None:
        result.ledger_problems.append("the database has no reservations table")
    else:
        by_job = defaultdict(list)
        for reservation in reservations:
            by_job[reservation.job_id].append(reservation)
        for job_id, held in by_job.items():
            row = by_id.get(job_id)
            if row is None:
                result.ledger_problems.append(f"reservation for job #{job_id}, which has no row: {held}")
                continue
            if len(held) > 1:
                result.ledger_problems.append(f"job #{job_id} has {len(held)} reservations")
            for reservation in held:
                expected = "committed" if row.state == "delivered" else "released"
                if row.state not in final:
                    expected = "reserved"
                if reservation.state != expected:
                    result.ledger_problems.append(
                        f"job #{job_id} is {row.state} but its reservation of {reservation.credits} credits "
                        f"is {reservation.state} (expected {expected})"
                    )
            if sum(reservation.credits for reservation in held) <= 0:
                result.ledger_problems.append(f"job #{job_id} reserved no credits")
        for row in rows:
            if row.id not in by_job and row.provider_job_id is not None:
                result.ledger_problems.append(f"job #{row.id} reached the provider with no reservation")

    result.double_problems.extend(f"internal error: {error[-400:]}" for error in discord.internal_errors)
    result.double_problems.extend(f"unknown route: {request!r}" for request in discord.unknown_requests)
    return result


def settle_gaps(
    *, discord: DiscordDouble, database: Path, sent: Sequence[SentCommand], include_cards: bool = True
) -> list[str]:
    """What is still missing before a run is over (empty: every job final and every outcome posted)."""
    final = final_states()
    rows, _ = read_database(database)
    gaps: list[str] = []
    outcome_ids: set[int] = set()
    cards: dict[int, StoredMessage] = {}
    for message in discord.all_messages():
        if message.source == "bot" and not message.ephemeral:
            outcome_ids |= {int(m[1]) for a in message.attachments if (m := VIDEO_FILE_RE.match(a.filename))}
            outcome_ids |= {int(m) for m in READY_RE.findall(message.content)}
            outcome_ids |= {int(m[1]) for m in ENDING_RE.finditer(message.content)}
            cards[message.id] = message
    tagged_rows = {row.tag for row in rows if row.tag is not None}
    for command in sent:
        for message in command.private_messages():
            outcome_ids |= {int(m[1]) for m in NOT_STARTED_RE.finditer(message.content)}
            outcome_ids |= {int(m[1]) for m in ENDING_RE.finditer(message.content)}
        original = command.handle.original if command.handle else None
        if command.acknowledged and (original is None or original.is_loading):
            known = "a row" if command.tag in tagged_rows else "no row"
            gaps.append(f"request crash-{command.tag:04d}: {known}, still thinking")
    for row in rows:
        if row.state not in final:
            gaps.append(f"job #{row.id}: {row.state}")
        elif row.id not in outcome_ids:
            gaps.append(f"job #{row.id}: no outcome posted")
        elif include_cards and row.status_message_id in cards:
            card = cards[row.status_message_id]
            label = card_label(card.payload.get("embeds"))
            if not card.deleted and label is not None and label[1] not in FINAL_CARD_LABELS:
                gaps.append(f"job #{row.id}: card shows {label[1]}")
    return gaps


async def settle(
    *,
    discord: CrashDiscordDouble,
    database: Path,
    sent: Sequence[SentCommand],
    bot: BotProcess,
    activity: Callable[[], int],
    timeout: float,
    quiet_s: float = 6.0,
) -> list[str]:
    """Wait until `settle_gaps` is empty; give up after `timeout`, or once every row is final and nothing
    has happened for `quiet_s` (what is missing then will not come). Returns what is still missing."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last_activity, quiet_since = activity(), loop.time()
    final = final_states()
    while True:
        bot.check_alive()
        gaps = settle_gaps(discord=discord, database=database, sent=sent)
        if not gaps:
            return []
        now = loop.time()
        if activity() != last_activity:
            last_activity, quiet_since = activity(), now
        rows, _ = read_database(database)
        all_final = all(row.state in final for row in rows)
        if now > deadline or (all_final and now - quiet_since > quiet_s):
            return gaps
        await wait_for_activity(discord, timeout=0.25)


# --- A rig: both doubles, the bot process, members who run /animate -------------------------------------


class CrashRig:
    """The Discord and RunComfy doubles, one guild of `members` members over `channels` text channels, and
    the bot as a process on one database; `sent` records every /animate."""

    def __init__(
        self,
        directory: Path,
        *,
        members: int = 1,
        channels: int = 1,
        poll_interval_s: float = 0.1,
        overrides: Mapping[str, object] | None = None,
        extra_environment: Mapping[str, str] | None = None,
    ) -> None:
        self.directory = directory
        self.members = [UserSpec(f"member-{n:03d}") for n in range(members)]
        self.channels = [ChannelSpec(f"crash-{n}") for n in range(channels)]
        self.guild = GuildSpec(name="Crash Guild", channels=self.channels, members=[UserSpec("owner")])
        self.guild.members.extend(self.members)
        self.discord = CrashDiscordDouble(guilds=[self.guild])
        self.runcomfy = RunComfyDouble(api_keys=(RUNCOMFY_KEY,))
        self.database = directory / "bot.sqlite3"
        self.poll_interval_s = poll_interval_s
        self.overrides = dict(DEFAULT_OVERRIDES if overrides is None else overrides)
        self.extra_environment = dict(extra_environment or {})
        self.sent: list[SentCommand] = []
        self.image = make_image(640, 480)
        self.bot: BotProcess | None = None
        self.ready = False

    async def __aenter__(self) -> CrashRig:
        await self.discord.start()
        await self.runcomfy.start()
        environment = bot_environment(
            self.discord,
            self.runcomfy.base_url,
            self.database,
            poll_interval_s=self.poll_interval_s,
            extra=self.extra_environment,
        )
        self.bot = BotProcess(environment, log_dir=self.directory, overrides=self.overrides)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.discord.release_all_holds()
        if self.bot is not None and self.bot.alive:
            self.bot.kill("teardown")
            with contextlib.suppress(TimeoutError):
                await self.bot.wait_exit(10)
        await self.runcomfy.close()
        await self.discord.close()

    @property
    def process(self) -> BotProcess:
        """The bot process (once the rig is entered)."""
        assert self.bot is not None, "enter the rig first"
        return self.bot

    def activity(self) -> int:
        """A number that changes whenever either double handles a request."""
        return self.discord.activity + len(self.runcomfy.requests)

    async def start_bot(self) -> None:
        """Start the bot (same database) and wait until it can take interactions."""
        await self.process.start(self.discord)
        await self.process.wait_ready(self.discord)
        self.ready = True

    def kill_now(self, reason: str) -> bool:
        """SIGKILL at once (synchronous, for hooks inside the double)."""
        self.ready = False
        return self.process.kill(reason)

    async def kill_bot(self, reason: str = "random") -> None:
        """SIGKILL and wait until the process is gone."""
        self.kill_now(reason)
        await self.process.wait_exit()

    def prompt(self, tag: int) -> str:
        """A prompt that names its request, so rows and submits can be matched to it."""
        return f"crash-{tag:04d}: the cat slowly turns its head and blinks"

    async def animate(
        self,
        tag: int,
        *,
        member: UserSpec | None = None,
        channel: ChannelSpec | None = None,
        round_number: int = 0,
    ) -> SentCommand:
        """A member runs /animate with an image attachment (returns once dispatched, not acknowledged)."""
        member = member or self.members[tag % len(self.members)]
        channel = channel or self.channels[tag % len(self.channels)]
        hosted = self.discord.add_attachment(self.image, "frame.png", "image/png", channel=channel)
        command = SentCommand(
            tag=tag, prompt=self.prompt(tag), user_id=member.id, channel=channel, round=round_number
        )
        self.sent.append(command)
        try:
            command.handle = await self.discord.send_slash_command(
                "animate", {"image": hosted, "prompt": command.prompt}, user=member, channel=channel
            )
        except (TimeoutError, ConnectionError, RuntimeError) as error:
            command.error = repr(error)
        return command

    async def finish(self, *, settle_timeout: float = 30.0, quiet_s: float = 6.0) -> Audit:
        """Wait for every job to end and be told, stop the bot with SIGTERM, and audit the run."""
        gaps = await settle(
            discord=self.discord,
            database=self.database,
            sent=self.sent,
            bot=self.process,
            activity=self.activity,
            timeout=settle_timeout,
            quiet_s=quiet_s,
        )
        code = await self.process.terminate()
        result = audit(
            discord=self.discord,
            provider_jobs=self.runcomfy.jobs.values(),
            database=self.database,
            sent=self.sent,
            bot=self.process,
        )
        if gaps:
            result.notes.insert(0, f"stopped waiting with {len(gaps)} gap(s): {gaps[:8]}")
        if code != 0:
            result.notes.append(f"the last bot process exited with {code} on SIGTERM")
        log = self.process.log_text()
        for marker in ("Traceback", "database is locked"):
            if marker in log:
                result.notes.append(f"{log.count(marker)} x {marker!r} in the bot's log ({self.directory})")
        return result
