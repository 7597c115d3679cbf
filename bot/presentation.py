"""What a member sees of a job, as plain data in the reader's language: the Discord cogs turn it into embeds
and messages, the CLI and tests read it directly.

Every sentence is written once, here, as a `Text` (catalogue domain `cards`) and said in one language by a
`Translator`; the functions without a translator are the English ones (`status_card(job, …)` is
`localized_status_card(ENGLISH, job, …)`), which the CLI, the crash markers and the English tests read. Ids
are passed as strings so that "#12345" is never grouped into "#12,345". Discord markup used here (`<t:…:R>`
timestamps, `<@id>` mentions, `<#id>` channels) is plain text; nothing imports discord.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import assert_never

from babel.units import format_unit

from bot.domain.images import note_text
from bot.domain.models import Job, JobState, VideoRequest
from bot.domain.text import Text
from bot.i18n import Language, Translator, translator
from bot.jobs.eta import EstimateScope, JobProgress
from bot.jobs.explain import stored_reason

EMBED_DESCRIPTION_LIMIT = 4096
EMBED_FIELD_LIMIT = 1024
THREAD_NAME_LIMIT = 100
PROGRESS_BAR_CELLS = 10

_BLUE, _AMBER, _GREEN, _RED, _GREY = 0x3B82F6, 0xF59E0B, 0x22C55E, 0xEF4444, 0x6B7280

#: The English translator: what the functions without one speak.
ENGLISH = translator(Language.ENGLISH)


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


# --- plain helpers (no words) ------------------------------------------------------------------------------


def truncate(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def state_colour(state: JobState) -> int:
    """A colour per kind of state: working, done, ended badly."""
    if state is JobState.DELIVERED:
        return _GREEN
    if state in (JobState.FAILED, JobState.TIMED_OUT, JobState.UNKNOWN, JobState.EXPIRED):
        return _RED
    if state is JobState.CANCELLED:
        return _GREY
    return _AMBER if state is JobState.RUNNING else _BLUE


def timestamp(unix_s: float, style: str = "R") -> str:
    """A Discord timestamp that every client renders in the reader's time zone and language (and keeps
    relative)."""
    return f"<t:{int(unix_s)}:{style}>"


def human_size(size_bytes: int) -> str:
    """1.5 MB, 820 KB."""
    if size_bytes >= 1_000_000:
        return f"{size_bytes / 1_000_000:.1f} MB"
    return f"{max(1, round(size_bytes / 1000))} KB"


def message_link(guild_id: int | None, channel_id: int | None, message_id: int | None) -> str | None:
    """The jump link of a message, when all its ids are known."""
    if channel_id is None or message_id is None:
        return None
    return f"https://discord.com/channels/{guild_id or '@me'}/{channel_id}/{message_id}"


def _id(job: Job) -> str:
    # A string, not an int: "#12345", as the English posts always wrote it, never "#12,345".
    return str(job.id)


def stored_reason_text(tr: Translator, sentence: str) -> str:
    """A job's reason, stored in English, in the reader's language: read back against the sentences the bot
    writes (`bot.jobs.explain.stored_reason`), so its numbers survive; a provider's own words stay as they
    are. English readers get the stored sentence itself."""
    return sentence if tr.language is Language.ENGLISH else tr.text(stored_reason(sentence))


def stored_note_text(tr: Translator, note: str) -> str:
    """An image note, stored in English, in the reader's language (`bot.domain.images.note_text`)."""
    return note if tr.language is Language.ENGLISH else tr.text(note_text(note))


# --- states and progress -----------------------------------------------------------------------------------

#: A state's name on a card; the msgid is the English word.
_STATE_LABELS: dict[JobState, str] = {
    JobState.PENDING: "Submitting",
    JobState.QUEUED: "Queued",
    JobState.RUNNING: "Generating",
    JobState.SUCCEEDED: "Uploading",
    JobState.DELIVERING: "Uploading",
    JobState.DELIVERED: "Done",
    JobState.FAILED: "Failed",
    JobState.CANCELLED: "Cancelled",
    JobState.EXPIRED: "Expired",
    JobState.TIMED_OUT: "Timed out",
    JobState.UNKNOWN: "Unconfirmed",
}

#: Option values a card shows that are words (the others are numbers, ratios and names, said as they are).
_OPTION_WORDS = frozenset({"on", "off", "yes", "no", "returned", "flex (slower, cheaper)"})


def state_text(tr: Translator, state: JobState) -> str:
    """The member-facing name of a state ("Queued", "En file d'attente")."""
    return tr.text(Text(_STATE_LABELS[state]))


def state_label(state: JobState) -> str:
    """The member-facing name of a state, in English."""
    return state_text(ENGLISH, state)


def localized_progress_text(tr: Translator, job: Job) -> str:
    """The state with what is known of its progress: "Queued · position 3", "Generating · 40%"."""
    label = state_text(tr, job.state)
    if job.state is JobState.QUEUED and job.queue_position is not None:
        return tr.text(Text("{state} · position {position}", state=label, position=job.queue_position))
    if job.state is JobState.RUNNING and job.progress_percent is not None:
        return tr.text(Text("{state} · {percent}%", state=label, percent=round(job.progress_percent)))
    return label


def progress_text(job: Job) -> str:
    """`localized_progress_text` in English."""
    return localized_progress_text(ENGLISH, job)


def localized_progress_bar(tr: Translator, fraction: float, *, estimated: bool = False) -> str:
    """Ten cells and a percentage: "▰▰▰▱▱▱▱▱▱▱ 30%"; "about 30%" when it is guessed from elapsed time."""
    fraction = min(1.0, max(0.0, fraction))
    filled = int(fraction * PROGRESS_BAR_CELLS + 1e-9)  # floor: a cell fills when it is reached
    bar = "▰" * filled + "▱" * (PROGRESS_BAR_CELLS - filled)
    percent = round(fraction * 100)
    if estimated:
        return tr.text(Text("{bar} about {percent}%", bar=bar, percent=percent))
    return tr.text(Text("{bar} {percent}%", bar=bar, percent=percent))


def progress_bar(fraction: float, *, estimated: bool = False) -> str:
    """`localized_progress_bar` in English."""
    return localized_progress_bar(ENGLISH, fraction, estimated=estimated)


def _span(tr: Translator, **amount: int) -> str:
    """One amount of one unit ("4 min", "4 Min.", "4 分"), in Babel's short form for the language."""
    ((unit, count),) = amount.items()
    if tr.language is Language.ENGLISH:
        return f"{count} {'h' if unit == 'hours' else 'min'}"  # the English cards' own spelling
    measure = "duration-hour" if unit == "hours" else "duration-minute"
    return format_unit(count, measure, length="short", locale=tr.language.babel)


def about_duration_text(tr: Translator, seconds: float) -> str:
    """A rough duration as a member says it: "under a minute", "about 4 min", "about 2 h 30 min" (Babel's
    units in other languages)."""
    if seconds < 60:
        return tr.text(Text("under a minute"))
    if round(seconds / 60) < 60:
        return tr.text(Text("about {duration}", duration=_span(tr, minutes=round(seconds / 60))))
    hours, minutes = divmod(round(seconds / 600) * 10, 60)  # to ten minutes: it is a median, not a promise
    span = _span(tr, hours=hours)
    if minutes:
        span = f"{span} {_span(tr, minutes=minutes)}"
    return tr.text(Text("about {duration}", duration=span))


def about_duration(seconds: float) -> str:
    """`about_duration_text` in English."""
    return about_duration_text(ENGLISH, seconds)


def queue_position_text(position: int, tr: Translator = ENGLISH) -> str:
    """The queue line, "Queue position: 3"; "next" for 0 (a provider counting from 0 means the next job)."""
    if position > 0:
        return tr.text(Text("Queue position: {position}", position=position))
    return tr.text(Text("Queue position: next"))


def eta_sentence(tr: Translator, progress: JobProgress) -> str | None:
    """When the video should be ready, from past jobs like it; None when there is no estimate.

    The time is a Discord timestamp, shown by every client in its own language and counted down by it: the
    card needs no edit to keep it current. If the card is not redrawn, "Expected ready 2 minutes ago" still
    reads right: it is late.
    """
    if progress.expected_total_s is None or progress.eta_at is None:
        return None
    duration = about_duration_text(tr, progress.expected_total_s)
    if progress.scope is EstimateScope.SERVER:
        usual = Text("videos like this usually take {duration} on this server", duration=duration)
    else:
        usual = Text("videos like this usually take {duration}", duration=duration)
    if progress.overdue:
        return tr.text(Text("Taking longer than usual ({usual})", usual=usual))
    return tr.text(Text("Expected ready {time} ({usual})", time=timestamp(progress.eta_at), usual=usual))


def eta_text(progress: JobProgress) -> str | None:
    """`eta_sentence` in English."""
    return eta_sentence(ENGLISH, progress)


def status_field_text(tr: Translator, job: Job, progress: JobProgress | None) -> str:
    """The Status field of a card: the state and, with `progress`, its queue position, bar and ETA lines."""
    if progress is None:
        return localized_progress_text(tr, job)
    lines = [state_text(tr, job.state)]
    if progress.queue_position is not None:
        lines.append(queue_position_text(progress.queue_position, tr))
    if progress.fraction is not None:
        lines.append(localized_progress_bar(tr, progress.fraction, estimated=progress.fraction_estimated))
    eta = eta_sentence(tr, progress)
    if eta is not None:
        lines.append(eta)
    return truncate("\n".join(lines), EMBED_FIELD_LIMIT)


def status_text(job: Job, progress: JobProgress | None) -> str:
    """`status_field_text` in English."""
    return status_field_text(ENGLISH, job, progress)


# --- cards -------------------------------------------------------------------------------------------------


def _option_label(tr: Translator, name: str) -> str:
    """An option's name on a card: "Camera fixed", "Caméra fixe"."""
    return tr.text(Text(name.replace("_", " ").capitalize()))


def _option_value(tr: Translator, value: str) -> str:
    return tr.text(Text(value)) if value in _OPTION_WORDS else value


def _option_fields(tr: Translator, request: VideoRequest, model_name: str) -> list[Field]:
    fields = [Field(tr.text(Text("Model")), model_name)]
    for name, value in request.options_summary().items():
        if name != "model":
            fields.append(Field(_option_label(tr, name), _option_value(tr, value)))
    return fields


def request_card(
    request: VideoRequest, model_name: str, requester_mention: str, tr: Translator = ENGLISH
) -> Card:
    """The status message as first posted, before the provider has accepted the job."""
    return Card(
        title=tr.text(Text("Video · {state}", state=state_text(tr, JobState.PENDING))),
        description=truncate(request.prompt, EMBED_DESCRIPTION_LIMIT),
        colour=state_colour(JobState.PENDING),
        fields=(
            Field(tr.text(Text("Status")), tr.text(Text("Submitting…")), inline=False),
            *_option_fields(tr, request, model_name),
        ),
        footer=tr.text(Text("Requested by {mention}", mention=requester_mention)),
    )


def card_title_prefix(tr: Translator, job: Job) -> str:
    """How every status card of the job begins its title in this language, whatever its state."""
    return tr.text(Text("Video #{id} · ", id=_id(job)))


def status_card_title_prefix(job: Job) -> str:
    """`card_title_prefix` in English."""
    return card_title_prefix(ENGLISH, job)


def localized_status_card(
    tr: Translator, job: Job, model_name: str, progress: JobProgress | None = None
) -> Card:
    """The status message of a job: the prompt, its options, where it stands, in `tr`'s language.

    With `progress` (see bot.jobs.eta.EtaService.progress), the Status field also shows the queue position,
    a progress bar and the expected time of arrival, each only when known.
    """
    request = job.request
    fields = [
        Field(tr.text(Text("Status")), status_field_text(tr, job, progress), inline=False),
        *_option_fields(tr, request, model_name),
        Field(tr.text(Text("Started")), timestamp(job.created_at)),
    ]
    if job.finished_at is not None and job.state.is_final:
        fields.append(Field(tr.text(Text("Ended")), timestamp(job.finished_at)))
    if job.state in (JobState.FAILED, JobState.EXPIRED, JobState.TIMED_OUT, JobState.UNKNOWN):
        reason = (
            stored_reason_text(tr, job.error_message)
            if job.error_message
            else tr.text(Text("No reason was given."))
        )
        fields.append(
            Field(tr.text(Text("What happened")), truncate(reason, EMBED_FIELD_LIMIT), inline=False)
        )
    if job.first_frame is not None and job.first_frame.notes:
        notes = "\n".join(stored_note_text(tr, note) for note in job.first_frame.notes)
        fields.append(Field(tr.text(Text("Image")), truncate(notes, EMBED_FIELD_LIMIT), inline=False))
    footer = Text("Job #{id} · /job {id} for details · /cancel {id} while queued", id=_id(job))
    return Card(
        title=card_title_prefix(tr, job) + state_text(tr, job.state),
        description=truncate(request.prompt, EMBED_DESCRIPTION_LIMIT),
        colour=state_colour(job.state),
        fields=tuple(fields),
        footer=tr.text(footer),
    )


def status_card(job: Job, model_name: str, progress: JobProgress | None = None) -> Card:
    """`localized_status_card` in English."""
    return localized_status_card(ENGLISH, job, model_name, progress)


def history_card(job: Job, model_name: str, tr: Translator = ENGLISH) -> Card:
    """One entry of /history: the prompt, when, the options, and whether the post was deleted since."""
    options = job.request.options_summary()
    options.pop("model", None)
    when = timestamp(job.finished_at or job.created_at)
    if job.removed_at is not None:
        when = tr.text(Text("{when} · post deleted", when=when))
    # English keeps the options' own short names ("camera_fixed yes"), as it always showed them.
    names = {name: name if tr.language is Language.ENGLISH else _option_label(tr, name) for name in options}
    summary = " · ".join(f"{names[name]} {_option_value(tr, value)}" for name, value in options.items())
    return Card(
        title=truncate(tr.text(Text("Video #{id} · {model}", id=_id(job), model=model_name)), 256),
        description=truncate(f"{job.request.prompt}\n\n{when}", 4096),
        colour=_GREY if job.removed_at is not None else _GREEN,
        fields=(Field(tr.text(Text("Options")), truncate(summary, 1024)),),
        footer=f"#{job.id}",
    )


def thread_name(job_id: int | None, prompt: str, tr: Translator = ENGLISH) -> str:
    """A thread title from the prompt (the member's own words), within Discord's 100 characters, on one
    line."""
    prefix = f"#{job_id} " if job_id is not None else ""
    flat = " ".join(prompt.split())
    return truncate(prefix + flat, THREAD_NAME_LIMIT) or tr.text(Text("Seedance video"))


def job_line(job: Job, link: str | None, tr: Translator = ENGLISH) -> str:
    """One line of /jobs: id, state, age, prompt, link."""
    prompt = truncate(" ".join(job.request.prompt.split()), 60)
    line = f"**#{job.id}** · {localized_progress_text(tr, job)} · {timestamp(job.created_at)} · {prompt}"
    return tr.text(Text("{line} · [view]({link})", line=line, link=link)) if link else line


# --- posts under the request -------------------------------------------------------------------------------


def asked_for_a_video(tr: Translator, mention: str) -> str:
    """The status message's line above the card."""
    return tr.text(Text("{mention} asked for a video", mention=mention))


def delivered_marker_text(tr: Translator, job: Job) -> str:
    """Text that every post of a job's video carries in this language, and nothing else does (found again
    after a crash)."""
    return tr.text(Text("your video #{id} is ready", id=_id(job)))


def delivered_marker(job: Job) -> str:
    """`delivered_marker_text` in English."""
    return delivered_marker_text(ENGLISH, job)


def ended_marker_text(tr: Translator, job: Job) -> str:
    """What every outcome post of the job carries in this language (its video, or why there is none)."""
    return tr.text(Text("video #{id} ", id=_id(job)))


def ended_marker(job: Job) -> str:
    """`ended_marker_text` in English."""
    return ended_marker_text(ENGLISH, job)


def every_language(marker: Callable[[Translator, Job], str], job: Job) -> tuple[str, ...]:
    """A marker in each language: a post made before a crash may be in a language the member left since."""
    return tuple(dict.fromkeys(marker(translator(language), job) for language in Language))


def delivered_text(tr: Translator, job: Job, mention: str, note: str | None = None) -> str:
    """The text posted with the finished video (and what the member should know about the file)."""
    text = tr.text(Text("{mention} your video #{id} is ready.", mention=mention, id=_id(job)))
    return f"{text} {note}" if note else text


def delivered_message(job: Job, mention: str, note: str | None = None) -> str:
    """`delivered_text` in English."""
    return delivered_text(ENGLISH, job, mention, note)


def too_large_text(
    tr: Translator, job: Job, mention: str, *, size_bytes: int, limit_bytes: int, url: str
) -> str:
    """The text posted instead of a video over the upload limit: a link, with its expiry."""
    return tr.text(
        Text(
            "{mention} your video #{id} is ready, but at {size} it is over this server's {limit} upload "
            "limit, so here is a download link instead. The link is the video service's own and expires "
            "(typically within 24 hours): {url}",
            mention=mention,
            id=_id(job),
            size=human_size(size_bytes),
            limit=human_size(limit_bytes),
            url=url,
        )
    )


def too_large_message(job: Job, mention: str, size_bytes: int, limit_bytes: int, url: str) -> str:
    """`too_large_text` in English."""
    return too_large_text(ENGLISH, job, mention, size_bytes=size_bytes, limit_bytes=limit_bytes, url=url)


def ended_text(tr: Translator, job: Job, mention: str) -> str:
    """What is posted under the request when a job ends without a video."""
    match job.state:
        case JobState.CANCELLED:
            return tr.text(
                Text(
                    "{mention} video #{id} was cancelled. No video will come for it.",
                    mention=mention,
                    id=_id(job),
                )
            )
        case JobState.FAILED | JobState.EXPIRED | JobState.TIMED_OUT | JobState.UNKNOWN:
            reason = (
                stored_reason_text(tr, job.error_message)
                if job.error_message
                else tr.text(Text("The video service did not say why."))
            )
            sentence = Text(
                "{mention} video #{id} did not work out. {reason}",
                mention=mention,
                id=_id(job),
                reason=reason,
            )
            return truncate(tr.text(sentence), 2000)
        case (
            JobState.PENDING
            | JobState.QUEUED
            | JobState.RUNNING
            | JobState.SUCCEEDED
            | JobState.DELIVERING
            | JobState.DELIVERED
        ):
            state = state_text(tr, job.state)
            # English says the state in the middle of a sentence: lower case there, as it always did.
            state = state.lower() if tr.language is Language.ENGLISH else state
            return tr.text(
                Text("{mention} video #{id} is {state}.", mention=mention, id=_id(job), state=state)
            )
        case _:
            assert_never(job.state)


def ended_message(job: Job, mention: str) -> str:
    """`ended_text` in English."""
    return ended_text(ENGLISH, job, mention)


# --- private answers ---------------------------------------------------------------------------------------


def localized_started_text(tr: Translator, job: Job) -> str:
    """The member's private answer once their job started: where the video will appear."""
    link = message_link(job.requester.guild_id, job.requester.channel_id, job.status_message_id)
    if job.thread_id:
        sentence = Text(
            "Started video #{id}. It will be posted in {thread} when it is ready: {link}",
            id=_id(job),
            thread=f"<#{job.thread_id}>",
            link=str(link),
        )
    else:
        sentence = Text(
            "Started video #{id}. It will be posted in this channel when it is ready: {link}",
            id=_id(job),
            link=str(link),
        )
    return tr.text(sentence)


def started_text(job: Job) -> str:
    """`localized_started_text` in English."""
    return localized_started_text(ENGLISH, job)


def not_started_text(tr: Translator, job: Job) -> str:
    """The member's private answer when their job ended before it started, with why."""
    reason = stored_reason_text(tr, job.error_message) if job.error_message else "None"
    return tr.text(Text("Video #{id} did not start. {reason}", id=_id(job), reason=reason))
