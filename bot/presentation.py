"""What a member sees of a job, as plain data: the Discord cogs turn it into embeds, tests read it directly.

Discord markup used here (`<t:…:R>` timestamps, `<@id>` mentions) is plain text; nothing imports discord.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import assert_never

from bot.domain.models import Job, JobState, VideoRequest
from bot.jobs.eta import EstimateScope, JobProgress

EMBED_DESCRIPTION_LIMIT = 4096
EMBED_FIELD_LIMIT = 1024
THREAD_NAME_LIMIT = 100

_BLUE, _AMBER, _GREEN, _RED, _GREY = 0x3B82F6, 0xF59E0B, 0x22C55E, 0xEF4444, 0x6B7280


@dataclass(frozen=True)
class Field:
    """One name/value pair of a card."""

    name: str
    value: str
    inline: bool = True


@dataclass(frozen=True)
class Card:
    """A job's status, ready to render as an embed."""

    title: str
    description: str
    colour: int
    fields: tuple[Field, ...]
    footer: str


def truncate(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def state_label(state: JobState) -> str:
    """The member-facing name of a state."""
    match state:
        case JobState.PENDING:
            return "Submitting"
        case JobState.QUEUED:
            return "Queued"
        case JobState.RUNNING:
            return "Generating"
        case JobState.SUCCEEDED | JobState.DELIVERING:
            return "Uploading"
        case JobState.DELIVERED:
            return "Done"
        case JobState.FAILED:
            return "Failed"
        case JobState.CANCELLED:
            return "Cancelled"
        case JobState.EXPIRED:
            return "Expired"
        case JobState.TIMED_OUT:
            return "Timed out"
        case JobState.UNKNOWN:
            return "Unconfirmed"
        case _:
            assert_never(state)


def state_colour(state: JobState) -> int:
    """A colour per kind of state: working, done, ended badly."""
    if state is JobState.DELIVERED:
        return _GREEN
    if state in (JobState.FAILED, JobState.TIMED_OUT, JobState.UNKNOWN, JobState.EXPIRED):
        return _RED
    if state is JobState.CANCELLED:
        return _GREY
    return _AMBER if state is JobState.RUNNING else _BLUE


def progress_text(job: Job) -> str:
    """The state with what is known of its progress: "Queued · position 3", "Generating · 40%"."""
    text = state_label(job.state)
    if job.state is JobState.QUEUED and job.queue_position is not None:
        text += f" · position {job.queue_position}"
    if job.state is JobState.RUNNING and job.progress_percent is not None:
        text += f" · {job.progress_percent:.0f}%"
    return text


PROGRESS_BAR_CELLS = 10


def progress_bar(fraction: float, *, estimated: bool = False) -> str:
    """Ten cells and a percentage: "▰▰▰▱▱▱▱▱▱▱ 30%"; "about 30%" when it is guessed from elapsed time."""
    fraction = min(1.0, max(0.0, fraction))
    filled = int(fraction * PROGRESS_BAR_CELLS + 1e-9)  # floor: a cell fills when it is reached
    bar = "▰" * filled + "▱" * (PROGRESS_BAR_CELLS - filled)
    return f"{bar} {'about ' if estimated else ''}{fraction * 100:.0f}%"


def about_duration(seconds: float) -> str:
    """A rough duration as a member says it: "under a minute", "about 4 min", "about 2 h 30 min"."""
    if seconds < 60:
        return "under a minute"
    if round(seconds / 60) < 60:
        return f"about {round(seconds / 60)} min"
    hours, minutes = divmod(round(seconds / 600) * 10, 60)  # to ten minutes: it is a median, not a promise
    return f"about {hours} h" if minutes == 0 else f"about {hours} h {minutes} min"


def queue_position_text(position: int) -> str:
    """The queue line, "Queue position: 3"; "next" for 0 (a provider counting from 0 means the next job)."""
    return f"Queue position: {position}" if position > 0 else "Queue position: next"


def eta_text(progress: JobProgress) -> str | None:
    """When the video should be ready, from past jobs like it; None when there is no estimate.

    The time is a Discord timestamp, counted down by every client on its own: the card needs no edit to keep
    it current. If the card is not redrawn, "Expected ready 2 minutes ago" still reads right: it is late.
    """
    if progress.expected_total_s is None or progress.eta_at is None:
        return None
    where = " on this server" if progress.scope is EstimateScope.SERVER else ""
    usual = f"videos like this usually take {about_duration(progress.expected_total_s)}{where}"
    if progress.overdue:
        return f"Taking longer than usual ({usual})"
    return f"Expected ready {timestamp(progress.eta_at)} ({usual})"


def status_text(job: Job, progress: JobProgress | None) -> str:
    """The Status field of a card: the state and, with `progress`, its queue position, bar and ETA lines."""
    if progress is None:
        return progress_text(job)
    lines = [state_label(job.state)]
    if progress.queue_position is not None:
        lines.append(queue_position_text(progress.queue_position))
    if progress.fraction is not None:
        lines.append(progress_bar(progress.fraction, estimated=progress.fraction_estimated))
    eta = eta_text(progress)
    if eta is not None:
        lines.append(eta)
    return truncate("\n".join(lines), EMBED_FIELD_LIMIT)


def timestamp(unix_s: float, style: str = "R") -> str:
    """A Discord timestamp that every client renders in the reader's time zone (and keeps relative)."""
    return f"<t:{int(unix_s)}:{style}>"


def human_size(size_bytes: int) -> str:
    """1.5 MB, 820 KB."""
    if size_bytes >= 1_000_000:
        return f"{size_bytes / 1_000_000:.1f} MB"
    return f"{max(1, round(size_bytes / 1000))} KB"


def _option_fields(request: VideoRequest, model_name: str) -> list[Field]:
    fields = [Field("Model", model_name)]
    for name, value in request.options_summary().items():
        if name != "model":
            fields.append(Field(name.replace("_", " ").capitalize(), value))
    return fields


def request_card(request: VideoRequest, model_name: str, requester_mention: str) -> Card:
    """The status message as first posted, before the provider has accepted the job."""
    return Card(
        title="Video · Submitting",
        description=truncate(request.prompt, EMBED_DESCRIPTION_LIMIT),
        colour=state_colour(JobState.PENDING),
        fields=(Field("Status", "Submitting…", inline=False), *_option_fields(request, model_name)),
        footer=f"Requested by {requester_mention}",
    )


def status_card_title_prefix(job: Job) -> str:
    """How every status card of the job begins its title, whatever its state."""
    return f"Video #{job.id} · "


def status_card(job: Job, model_name: str, progress: JobProgress | None = None) -> Card:
    """The status message of a job: the prompt, its options, where it stands.

    With `progress` (see bot.jobs.eta.EtaService.progress), the Status field also shows the queue position,
    a progress bar and the expected time of arrival, each only when known.
    """
    request = job.request
    fields = [Field("Status", status_text(job, progress), inline=False), *_option_fields(request, model_name)]
    fields.append(Field("Started", timestamp(job.created_at)))
    if job.finished_at is not None and job.state.is_final:
        fields.append(Field("Ended", timestamp(job.finished_at)))
    if job.state in (JobState.FAILED, JobState.EXPIRED, JobState.TIMED_OUT, JobState.UNKNOWN):
        reason = job.error_message or "No reason was given."
        fields.append(Field("What happened", truncate(reason, EMBED_FIELD_LIMIT), inline=False))
    if job.first_frame is not None and job.first_frame.notes:
        notes = "\n".join(job.first_frame.notes)
        fields.append(Field("Image", truncate(notes, EMBED_FIELD_LIMIT), inline=False))
    return Card(
        title=f"{status_card_title_prefix(job)}{state_label(job.state)}",
        description=truncate(request.prompt, EMBED_DESCRIPTION_LIMIT),
        colour=state_colour(job.state),
        fields=tuple(fields),
        footer=f"Job #{job.id} · /job {job.id} for details · /cancel {job.id} while queued",
    )


def thread_name(job_id: int | None, prompt: str) -> str:
    """A thread title from the prompt, within Discord's 100 characters, on one line."""
    prefix = f"#{job_id} " if job_id is not None else ""
    flat = " ".join(prompt.split())
    return truncate(prefix + flat, THREAD_NAME_LIMIT) or "Seedance video"


def job_line(job: Job, link: str | None) -> str:
    """One line of /jobs: id, state, age, prompt, link."""
    prompt = truncate(" ".join(job.request.prompt.split()), 60)
    line = f"**#{job.id}** · {progress_text(job)} · {timestamp(job.created_at)} · {prompt}"
    return f"{line} · [view]({link})" if link else line


def ended_message(job: Job, mention: str) -> str:
    """What is posted under the request when a job ends without a video."""
    match job.state:
        case JobState.CANCELLED:
            return f"{mention} video #{job.id} was cancelled. No video will come for it."
        case JobState.FAILED | JobState.EXPIRED | JobState.TIMED_OUT | JobState.UNKNOWN:
            reason = job.error_message or "The video service did not say why."
            return truncate(f"{mention} video #{job.id} did not work out. {reason}", 2000)
        case (
            JobState.PENDING
            | JobState.QUEUED
            | JobState.RUNNING
            | JobState.SUCCEEDED
            | JobState.DELIVERING
            | JobState.DELIVERED
        ):
            return f"{mention} video #{job.id} is {state_label(job.state).lower()}."
        case _:
            assert_never(job.state)


def delivered_marker(job: Job) -> str:
    """Text that every post of a job's video carries, and nothing else does (found again after a crash)."""
    return f"your video #{job.id} is ready"


def ended_marker(job: Job) -> str:
    """Text that every outcome post of a job carries (its video, or why there is none)."""
    return f"video #{job.id} "


def delivered_message(job: Job, mention: str, note: str | None = None) -> str:
    """The text posted with the finished video (and what the member should know about the file)."""
    text = f"{mention} your video #{job.id} is ready."
    return f"{text} {note}" if note else text


def too_large_message(job: Job, mention: str, size_bytes: int, limit_bytes: int, url: str) -> str:
    """The text posted instead of a video over the upload limit: a link, with its expiry."""
    return (
        f"{mention} your video #{job.id} is ready, but at {human_size(size_bytes)} it is over this server's "
        f"{human_size(limit_bytes)} upload limit, so here is a download link instead. "
        f"The link is the video service's own and expires (typically within 24 hours): {url}"
    )


def history_card(job: Job, model_name: str) -> Card:
    """One entry of /history: the prompt, when, the options, and whether the post was deleted since."""
    options = job.request.options_summary()
    options.pop("model", None)
    when = timestamp(job.finished_at or job.created_at)
    removed = " · post deleted" if job.removed_at is not None else ""
    return Card(
        title=truncate(f"Video #{job.id} · {model_name}", 256),
        description=truncate(f"{job.request.prompt}\n\n{when}{removed}", 4096),
        colour=_GREY if job.removed_at is not None else _GREEN,
        fields=(Field("Options", truncate(" · ".join(f"{k} {v}" for k, v in options.items()), 1024)),),
        footer=f"#{job.id}",
    )
