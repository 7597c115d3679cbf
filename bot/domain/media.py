"""Validation of reference media: the videos and audio clips members attach for Seedance 2.0's reference mode.

RunComfy documents, for Seedance 2.0: reference videos (0-3) in MP4 or MOV, each 2 to 15 seconds long;
reference audio (0-3) in WAV or MP3, each 2 to 15 seconds long and under 15 MB. `probe_media` enforces the
per-file rules before anything is sent to a paid provider (how many files a request carries is checked by
the caller, which sees the whole request).

Nothing is taken on trust from the member's side: the API takes no file name or Content-Type. The format is
told from the file's first bytes, and the duration is read from the file itself with PyAV (FFmpeg), from the
container's metadata, without decoding the media. The work is ordered from cheap to costly:

1. the byte size, before the data is looked at;
2. the format, from magic bytes, so that a PNG, PDF, web page or WebM is refused by name;
3. for MP4 and MOV, the top-level box structure, which shows a file cut short (FFmpeg opens many of those
   without complaint, reporting only the part that is left, or the remains of the index as a data stream);
4. the container, opened from memory with only the demuxer its magic bytes named, for the stream and its
   duration.
"""

from __future__ import annotations

import asyncio
import io
import struct
from dataclasses import dataclass, field
from enum import StrEnum

import av
import av.error
from av.container import InputContainer
from av.stream import Disposition, Stream

from bot.domain.errors import InvalidMediaError
from bot.domain.images import exact_size_text, image_subject, size_text
from bot.domain.text import Text

# Decimal megabytes, as in bot/domain/images.py: the stricter reading of the documented "less than 15MB".
MEGABYTE = 1_000_000
"""What "MB" means in every limit and message here (1,000,000 bytes)."""


class MediaKind(StrEnum):
    """What a reference file is meant to be."""

    VIDEO = "video"
    AUDIO = "audio"


class MediaProblem(StrEnum):
    """The `code` of an `InvalidMediaError`: which rule the file broke."""

    EMPTY = "empty"
    TOO_LARGE_FILE = "too_large_file"
    NOT_MEDIA = "not_media"
    UNSUPPORTED_FORMAT = "unsupported_format"
    NO_STREAM = "no_stream"
    UNKNOWN_DURATION = "unknown_duration"
    TOO_SHORT = "too_short"
    TOO_LONG = "too_long"
    DAMAGED = "damaged"


@dataclass(frozen=True, kw_only=True)
class MediaLimits:
    """What a reference file of one kind must satisfy.

    Durations are inclusive (a clip of exactly `min_duration_s` or `max_duration_s` is allowed), widened by
    `duration_tolerance_s` because containers round: a 15-second Seedance video of 24 fps * 15 + 1 frames
    lasts 15.04 s. The byte limit is exclusive: a file of exactly `max_bytes` is refused.
    """

    formats: frozenset[str]  # as `probe_media` names them: "mp4", "mov", "wav", "mp3"
    max_bytes: int
    min_duration_s: float = 2.0
    max_duration_s: float = 15.0
    duration_tolerance_s: float = 0.05


VIDEO_LIMITS = MediaLimits(
    formats=frozenset({"mp4", "mov"}),
    # Not a documented limit: a guess, kept configurable, so that a member cannot make the bot hold and
    # probe a huge file. 15 s of 1080p at a phone camera's bitrate is about 30-40 MB.
    max_bytes=50 * MEGABYTE,
)
"""The documented rules for Seedance 2.0 reference videos, plus a byte cap of our own."""

AUDIO_LIMITS = MediaLimits(formats=frozenset({"wav", "mp3"}), max_bytes=15 * MEGABYTE)
"""The documented rules for Seedance 2.0 reference audio."""


def limits_for(kind: MediaKind) -> MediaLimits:
    """The default limits for reference files of `kind`."""
    return VIDEO_LIMITS if MediaKind(kind) is MediaKind.VIDEO else AUDIO_LIMITS


@dataclass(frozen=True)
class MediaInfo:
    """What `probe_media` learned about a reference file that passed validation."""

    kind: MediaKind
    format: str  # "mp4", "mov", "wav" or "mp3" (with the default limits)
    duration_s: float  # of the video stream for a video, of the audio stream for an audio clip
    size_bytes: int
    mime_type: str  # video/mp4, video/quicktime, audio/wav or audio/mpeg
    width: int | None  # pixels, for a video; None for audio
    height: int | None
    has_audio: bool  # whether a video carries a sound track; always True for an audio clip
    codec: str | None = None  # FFmpeg's name for the codec of the stream measured, e.g. "h264", "pcm_s16le"


@dataclass(frozen=True)
class MediaClip:
    """A reference file ready to hand to a provider: its bytes, what was learned, and any public URL."""

    data: bytes = field(repr=False)
    info: MediaInfo
    url: str | None = None


def probe_media(
    data: bytes, kind: MediaKind, *, limits: MediaLimits | None = None, label: str | None = None
) -> MediaInfo:
    """Check that `data` is a reference file of `kind` within `limits` and describe it.

    Blocking (FFmpeg parses the container): call `probe_media_async` from the event loop. `limits` defaults
    to `limits_for(kind)`. `label` names the file in messages: "video 2" gives "Video 2 is ...", "audio
    clip" gives "The audio clip is ..."; by default it is "the video" or "the audio clip".

    Raises:
        InvalidMediaError: the file breaks a rule; `code` is a `MediaProblem` and the message, safe to show
            to the member, says what is wrong, with numbers, and what is allowed.
    """
    kind = MediaKind(kind)
    limits = limits_for(kind) if limits is None else limits
    rules = _Rules(kind, limits, _subject(label, kind))
    _check_byte_size(len(data), rules)
    format_name = _detect_format(data)
    _check_format(format_name, rules)
    if format_name in _ISO_MEDIA_FORMATS:
        _check_iso_boxes(data, format_name, rules)
    return _read_container(data, format_name, rules)


async def probe_media_async(
    data: bytes, kind: MediaKind, *, limits: MediaLimits | None = None, label: str | None = None
) -> MediaInfo:
    """`probe_media` in a worker thread, so FFmpeg never blocks the event loop."""
    return await asyncio.to_thread(probe_media, data, kind, limits=limits, label=label)


@dataclass(frozen=True)
class _Rules:
    """What one probe checks against, and how its messages name things."""

    kind: MediaKind
    limits: MediaLimits
    subject: Text  # the file, as the start of a sentence: "Video 2", "The audio clip"

    @property
    def video(self) -> bool:
        return self.kind is MediaKind.VIDEO

    @property
    def allowed(self) -> Text | str:
        names = [_display_name(name) for name in _ordered(self.limits.formats)]
        if len(names) == 1:
            return names[0]
        return Text("{names} or {last}", names=", ".join(names[:-1]), last=names[-1])

    @property
    def duration_range(self) -> Text:
        return Text("{low}–{high} s", low=self.limits.min_duration_s, high=self.limits.max_duration_s)


def _subject(label: str | None, kind: MediaKind) -> Text:
    if label is None:
        return Text("The video") if kind is MediaKind.VIDEO else Text("The audio clip")
    return file_subject(label)


def file_subject(label: str) -> Text:
    """How refusals name a member's file at the start of a sentence: "reference video 2" gives "Reference
    video 2", "last frame" gives "The last frame" (each a sentence of its own, said in every language)."""
    label = label.strip()
    match label.split():
        case ["reference", "video", number] if number.isdigit():
            return Text("Reference video {number}", number=int(number))
        case ["reference", "audio", "clip", number] if number.isdigit():
            return Text("Reference audio clip {number}", number=int(number))
        case ["image"] | ["first", "frame"] | ["last", "frame"] | ["reference", "image", _]:
            return image_subject(label)
    # A numbered item ("video 2") or one that already has its determiner ("your video") takes no "the".
    if label.rsplit(" ", 1)[-1].isdigit() or label.lower().startswith(_DETERMINERS):
        return Text.verbatim(label[:1].upper() + label[1:])
    return Text("The {label}", label=label)


_DETERMINERS = ("the ", "your ", "this ", "that ", "a ", "an ")


# --- checks made before FFmpeg sees the data ---------------------------------------------------------------


def _check_byte_size(size_bytes: int, rules: _Rules) -> None:
    if size_bytes == 0:
        raise InvalidMediaError(
            Text("{subject} is an empty file (0 bytes). Attach it again.", subject=rules.subject),
            code=MediaProblem.EMPTY,
        )
    if size_bytes >= rules.limits.max_bytes:
        raise InvalidMediaError(
            (
                Text(
                    "{subject} is {size}; reference videos must be under {limit} (1 MB = {megabyte} "
                    "bytes). Trim or compress it and try again.",
                    subject=rules.subject,
                    size=exact_size_text(size_bytes, rules.limits.max_bytes),
                    limit=size_text(rules.limits.max_bytes),
                    megabyte=MEGABYTE,
                )
                if rules.video
                else Text(
                    "{subject} is {size}; reference audio must be under {limit} (1 MB = {megabyte} bytes). "
                    "Trim it or save it as MP3 and try again.",
                    subject=rules.subject,
                    size=exact_size_text(size_bytes, rules.limits.max_bytes),
                    limit=size_text(rules.limits.max_bytes),
                    megabyte=MEGABYTE,
                )
            ),
            code=MediaProblem.TOO_LARGE_FILE,
        )


def _check_format(format_name: str, rules: _Rules) -> None:
    if format_name in rules.limits.formats:
        return
    description, is_media = _description(format_name)
    if not is_media:
        raise InvalidMediaError(
            (
                Text(
                    "{subject} is not a video: it looks like {description}. Reference videos must be "
                    "{allowed}.",
                    subject=rules.subject,
                    description=description,
                    allowed=rules.allowed,
                )
                if rules.video
                else Text(
                    "{subject} is not an audio file: it looks like {description}. Reference audio must be "
                    "{allowed}.",
                    subject=rules.subject,
                    description=description,
                    allowed=rules.allowed,
                )
            ),
            code=MediaProblem.NOT_MEDIA,
        )
    other_kind = MediaKind.AUDIO if rules.video else MediaKind.VIDEO
    hint: Text
    if format_name in limits_for(other_kind).formats:
        hint = (
            Text("If it is meant as reference audio, attach it as audio instead.")
            if rules.video
            else Text("If it is meant as reference video, attach it as video instead.")
        )
    elif rules.video:
        hint = Text("Convert it to MP4 and try again.")
    else:
        hint = Text("Convert it to MP3 or WAV and try again.")
    raise InvalidMediaError(
        (
            Text(
                "{subject} is {description}; reference videos must be {allowed}. {hint}",
                subject=rules.subject,
                description=description,
                allowed=rules.allowed,
                hint=hint,
            )
            if rules.video
            else Text(
                "{subject} is {description}; reference audio must be {allowed}. {hint}",
                subject=rules.subject,
                description=description,
                allowed=rules.allowed,
                hint=hint,
            )
        ),
        code=MediaProblem.UNSUPPORTED_FORMAT,
    )


# MP4 and MOV share the ISO base media file format: a file is a sequence of boxes, each starting with its
# 32-bit big-endian size and 4-character type.
_ISO_MEDIA_FORMATS = frozenset({"mp4", "mov", "m4a", "3gp"})
# Boxes whose loss makes the file unplayable; anything else overrunning the end is ignorable trailing junk.
_ESSENTIAL_BOXES = frozenset({b"moov", b"mdat", b"moof"})
# Real files have a handful of top-level boxes (a few thousand when fragmented per frame); past this many
# the walk stops, so that a file of millions of tiny boxes costs no more than an ordinary one.
_MAX_TOP_LEVEL_BOXES = 100_000


def _check_iso_boxes(data: bytes, format_name: str, rules: _Rules) -> None:
    """Refuse an MP4/MOV whose box structure shows it was cut short or has no index ("moov" box).

    FFmpeg opens a file cut inside its media data without complaint when the index comes first (a
    fragmented MP4 then just looks shorter), and reports what is left of a cut index as a data stream, so
    this is judged here, where the member can be told the file was cut short.
    """
    offset, seen_index = 0, False
    for _ in range(_MAX_TOP_LEVEL_BOXES):
        if len(data) - offset < 8:  # the end, or a few bytes of padding players ignore
            break
        size, box_type = struct.unpack_from(">I4s", data, offset)
        header = 8
        if size == 1:  # a 64-bit size follows the type
            if len(data) - offset < 16:
                raise _damaged_error(rules, format_name, Text("the file ends in the middle of a box header"))
            (size,) = struct.unpack_from(">Q", data, offset + 8)
            header = 16
        elif size == 0:  # the last box, running to the end of the file
            size = len(data) - offset
        if size < header:
            raise _damaged_error(
                rules, format_name, Text("it contains a box with an impossible size ({size})", size=str(size))
            )
        seen_index = seen_index or box_type == b"moov"
        if offset + size > len(data):
            if box_type in _ESSENTIAL_BOXES or not seen_index:
                raise _damaged_error(
                    rules,
                    format_name,
                    Text("the file ends early (the upload or the recording was cut short)"),
                )
            break
        offset += size
    else:
        return  # too many boxes to walk cheaply: FFmpeg judges the rest
    if not seen_index:
        raise _damaged_error(
            rules,
            format_name,
            Text(
                'its index (the "moov" box) is missing, which happens when a recording was not finished or '
                "the file was cut short"
            ),
        )


# --- reading the container with PyAV -----------------------------------------------------------------------

# The FFmpeg demuxer for each format: forcing it means FFmpeg never guesses a different (possibly less
# well-trodden) demuxer for data whose magic bytes named one.
_DEMUXERS = {
    "mp4": "mov",
    "mov": "mov",
    "m4a": "mov",
    "3gp": "mov",
    "wav": "wav",
    "mp3": "mp3",
    "webm": "matroska",
    "mkv": "matroska",
    "ogg": "ogg",
    "flac": "flac",
    "aac": "aac",
    "avi": "avi",
}
_MIME_TYPES = {
    "mp4": "video/mp4",
    "mov": "video/quicktime",
    "wav": "audio/wav",
    "mp3": "audio/mpeg",
    "m4a": "audio/mp4",
    "3gp": "video/3gpp",
    "webm": "video/webm",
    "mkv": "video/x-matroska",
    "ogg": "audio/ogg",
    "flac": "audio/flac",
    "aac": "audio/aac",
    "avi": "video/x-msvideo",
}
# What PyAV raises on data it cannot parse: FFmpeg's errors (InvalidDataError is also a ValueError,
# av.error.EOFError also an EOFError), and the Python errors its file-object reader can pass on.
_PYAV_FAILURES = (av.error.FFmpegError, ValueError, EOFError, OSError)


def _read_container(data: bytes, format_name: str, rules: _Rules) -> MediaInfo:
    try:
        # Tags are never read here; "replace" keeps a badly encoded one from failing the whole file.
        with av.open(
            io.BytesIO(data), mode="r", format=_DEMUXERS.get(format_name), metadata_errors="replace"
        ) as container:
            return _describe_container(container, data, format_name, rules)
    except _PYAV_FAILURES as exc:
        raise _damaged_error(rules, format_name, Text("it cannot be read")) from exc


def _describe_container(container: InputContainer, data: bytes, format_name: str, rules: _Rules) -> MediaInfo:
    streams: list[Stream] = list(container.streams)
    candidates: list[Stream]
    if rules.kind is MediaKind.VIDEO:
        # A cover picture (an "attached picture" stream, as in many MP3s and M4As) is not the video.
        candidates = [
            s
            for s in streams
            if isinstance(s, av.VideoStream) and Disposition.attached_pic not in s.disposition
        ]
    else:
        candidates = [s for s in streams if isinstance(s, av.AudioStream)]
    if not candidates:
        raise _no_stream_error(streams, format_name, rules)
    stream = candidates[0]
    duration_s = _duration_s(stream, container)
    if duration_s is None:
        raise InvalidMediaError(
            (
                Text(
                    "{subject} does not say how long it is, so its length cannot be checked (it may be cut "
                    "short or still being recorded); reference videos must be {range}. Export it again as "
                    "a regular {format} file.",
                    subject=rules.subject,
                    range=rules.duration_range,
                    format=_display_name(format_name),
                )
                if rules.video
                else Text(
                    "{subject} does not say how long it is, so its length cannot be checked (it may be cut "
                    "short or still being recorded); reference audio must be {range}. Export it again as a "
                    "regular {format} file.",
                    subject=rules.subject,
                    range=rules.duration_range,
                    format=_display_name(format_name),
                )
            ),
            code=MediaProblem.UNKNOWN_DURATION,
        )
    _check_duration(duration_s, rules)
    width = height = None
    if isinstance(stream, av.VideoStream):
        width, height = (stream.width or None), (stream.height or None)
    return MediaInfo(
        kind=rules.kind,
        format=format_name,
        duration_s=duration_s,
        size_bytes=len(data),
        mime_type=_MIME_TYPES.get(format_name, "application/octet-stream"),
        width=width,
        height=height,
        has_audio=any(isinstance(s, av.AudioStream) for s in streams),
        # A stream FFmpeg cannot decode has no codec context.
        codec=stream.codec_context.name if stream.codec_context is not None else None,
    )


def _duration_s(stream: Stream, container: InputContainer) -> float | None:
    """The stream's own duration, else the container's; None if neither is known (or is not positive)."""
    if stream.duration is not None and stream.time_base is not None and stream.duration > 0:
        return float(stream.duration * stream.time_base)
    if container.duration is not None and container.duration > 0:
        return float(container.duration) / av.time_base
    return None


def _check_duration(duration_s: float, rules: _Rules) -> None:
    limits = rules.limits
    if duration_s < limits.min_duration_s - limits.duration_tolerance_s:
        raise InvalidMediaError(
            (
                Text(
                    "{subject} is {length} long; reference videos must be {range}. Use a longer clip.",
                    subject=rules.subject,
                    length=_format_seconds(duration_s, limits.min_duration_s),
                    range=rules.duration_range,
                )
                if rules.video
                else Text(
                    "{subject} is {length} long; reference audio must be {range}. Use a longer clip.",
                    subject=rules.subject,
                    length=_format_seconds(duration_s, limits.min_duration_s),
                    range=rules.duration_range,
                )
            ),
            code=MediaProblem.TOO_SHORT,
        )
    if duration_s > limits.max_duration_s + limits.duration_tolerance_s:
        raise InvalidMediaError(
            (
                Text(
                    "{subject} is {length} long; reference videos must be {range}. Trim it and try again.",
                    subject=rules.subject,
                    length=_format_seconds(duration_s, limits.max_duration_s),
                    range=rules.duration_range,
                )
                if rules.video
                else Text(
                    "{subject} is {length} long; reference audio must be {range}. Trim it and try again.",
                    subject=rules.subject,
                    length=_format_seconds(duration_s, limits.max_duration_s),
                    range=rules.duration_range,
                )
            ),
            code=MediaProblem.TOO_LONG,
        )


# --- messages ----------------------------------------------------------------------------------------------


def _damaged_error(rules: _Rules, format_name: str, detail: Text) -> InvalidMediaError:
    description, _ = _description(format_name)
    return InvalidMediaError(
        Text(
            "{subject} is cut short or damaged: it looks like {description} but {detail}. "
            "Export or save it again and re-upload it.",
            subject=rules.subject,
            description=description,
            detail=detail,
        ),
        code=MediaProblem.DAMAGED,
    )


#: What a file without the wanted track holds instead, by the kinds of track it has (sorted).
_FOUND: dict[tuple[str, ...], Text] = {
    (): Text("no video or audio at all"),
    ("audio",): Text("only audio"),
    ("video",): Text("only video"),
    ("subtitle",): Text("only subtitle"),
    ("audio", "subtitle"): Text("only audio and subtitle"),
    ("subtitle", "video"): Text("only subtitle and video"),
    ("audio", "video"): Text("only audio and video"),
    ("audio", "subtitle", "video"): Text("only audio and subtitle and video"),
}


def _no_stream_error(streams: list[Stream], format_name: str, rules: _Rules) -> InvalidMediaError:
    contents = tuple(sorted({s.type for s in streams if s.type in {"video", "audio", "subtitle"}}))
    description, _ = _description(format_name)
    return InvalidMediaError(
        (
            Text(
                "{subject} has no video track ({description} with {found}); reference videos need one.",
                subject=rules.subject,
                description=description,
                found=_FOUND[contents],
            )
            if rules.video
            else Text(
                "{subject} has no audio track ({description} with {found}); reference audio need one.",
                subject=rules.subject,
                description=description,
                found=_FOUND[contents],
            )
        ),
        code=MediaProblem.NO_STREAM,
    )


def _format_seconds(duration_s: float, broken_bound: float) -> Text:
    text = f"{duration_s:.1f}"
    # With little or no tolerance, 15.04 s must not read as "15.0 s" next to "must be 2-15 s".
    if float(text) == broken_bound:
        text = f"{duration_s:.2f}"
    # A number each language writes its way, unless English shows a trailing zero ("16.0 s").
    seconds: float | str = float(text) if f"{float(text):g}" == text else text
    return Text("{seconds} s", seconds=seconds)


def _description(format_name: str) -> tuple[Text, bool]:
    """How a message names the format, and whether it is audio or video at all."""
    return _DESCRIPTIONS.get(format_name, (Text.verbatim(format_name), True))


# --- telling what a file is, from its first bytes ----------------------------------------------------------

# Format id -> (how a message names it, whether it is audio or video at all).
_DESCRIPTIONS: dict[str, tuple[Text, bool]] = {
    "mp4": (Text("an MP4 file"), True),
    "mov": (Text("a MOV (QuickTime) file"), True),
    "m4a": (Text("an M4A (MPEG-4 audio) file"), True),
    "3gp": (Text("a 3GP video"), True),
    "wav": (Text("a WAV file"), True),
    "mp3": (Text("an MP3 file"), True),
    "webm": (Text("a WebM file"), True),
    "mkv": (Text("an MKV (Matroska) file"), True),
    "avi": (Text("an AVI file"), True),
    "ogg": (Text("an Ogg file"), True),
    "flac": (Text("a FLAC file"), True),
    "aac": (Text("an AAC audio file"), True),
    "aiff": (Text("an AIFF file"), True),
    "flv": (Text("a Flash video (FLV)"), True),
    "asf": (Text("a Windows Media (WMV or WMA) file"), True),
    "ts": (Text("an MPEG transport stream (.ts)"), True),
    "amr": (Text("an AMR voice recording"), True),
    "midi": (Text("a MIDI file"), True),
    "png": (Text("a PNG image"), False),
    "jpeg": (Text("a JPEG image"), False),
    "gif": (Text("a GIF image"), False),
    "webp": (Text("a WebP image"), False),
    "tiff": (Text("a TIFF image"), False),
    "heic": (Text("a HEIC photo"), False),
    "avif": (Text("an AVIF image"), False),
    "pdf": (Text("a PDF document"), False),
    "zip": (Text("a ZIP archive or Office document"), False),
    "gzip": (Text("a gzip archive"), False),
    "svg": (Text("an SVG drawing"), False),
    "html": (Text("a web page (HTML), perhaps an error page instead of the file"), False),
    "xml": (Text("an XML document"), False),
    "json": (Text("JSON data"), False),
    "text": (Text("plain text"), False),
    "binary": (Text("unrecognised binary data"), False),
}
_DISPLAY_ORDER = ("mp4", "mov", "wav", "mp3")


def _ordered(formats: frozenset[str]) -> list[str]:
    return [name for name in _DISPLAY_ORDER if name in formats] + sorted(formats.difference(_DISPLAY_ORDER))


def _display_name(format_name: str) -> str:
    return {"webm": "WebM", "ogg": "Ogg"}.get(format_name, format_name.upper())


_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
    (b"%PDF-", "pdf"),
    (b"PK\x03\x04", "zip"),
    (b"\x1f\x8b", "gzip"),
    (b"OggS", "ogg"),
    (b"fLaC", "flac"),
    (b"FLV\x01", "flv"),
    (b"#!AMR", "amr"),
    (b"MThd", "midi"),
    (b"\x30\x26\xb2\x75\x8e\x66\xcf\x11", "asf"),
)
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"})
_AVIF_BRANDS = frozenset({b"avif", b"avis"})
_M4A_BRANDS = frozenset({b"M4A ", b"M4B ", b"M4P "})
# QuickTime files from before the "ftyp" box existed open straight onto one of these atoms.
_QUICKTIME_FIRST_ATOMS = frozenset({b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"})
_MPEG_TS_PACKET = 188


def _detect_format(data: bytes) -> str:
    """What the file is, from its first bytes: a key of `_DESCRIPTIONS`."""
    for signature, format_name in _SIGNATURES:
        if data.startswith(signature):
            return format_name
    if data[4:8] == b"ftyp":
        return _iso_brand_format(data[8:12])
    if data[4:8] in _QUICKTIME_FIRST_ATOMS:
        return "mov"
    if data.startswith((b"RIFF", b"RF64")):
        return {b"WAVE": "wav", b"AVI ": "avi", b"WEBP": "webp"}.get(data[8:12], "binary")
    if data.startswith(b"FORM") and data[8:12] in {b"AIFF", b"AIFC"}:
        return "aiff"
    if data.startswith(b"\x1a\x45\xdf\xa3"):  # EBML: Matroska, or its WebM profile
        return "webm" if b"webm" in data[:64] else "mkv"
    if data.startswith(b"ID3"):
        return _format_after_id3(data)
    audio_frame = _mpeg_audio_frame(data)
    if audio_frame is not None:
        return audio_frame
    if data[:1] == b"\x47" and data[_MPEG_TS_PACKET : _MPEG_TS_PACKET + 1] == b"\x47":
        return "ts"
    return _sniff_text(data[:4096])


def _iso_brand_format(brand: bytes) -> str:
    if brand == b"qt  ":
        return "mov"
    if brand in _HEIF_BRANDS:
        return "heic"
    if brand in _AVIF_BRANDS:
        return "avif"
    if brand in _M4A_BRANDS:
        return "m4a"
    if brand.startswith((b"3gp", b"3g2")):
        return "3gp"
    return "mp4"  # isom, mp41, mp42, avc1, iso2-iso9, M4V, dash and the many camera brands


def _format_after_id3(data: bytes) -> str:
    """The format of what follows an ID3v2 tag; MP3 unless the first frame is recognisably something else."""
    if len(data) < 10:
        return "mp3"
    # The tag size is "synchsafe": four 7-bit bytes. A footer, when flagged, adds another 10 bytes.
    size = (data[6] & 0x7F) << 21 | (data[7] & 0x7F) << 14 | (data[8] & 0x7F) << 7 | (data[9] & 0x7F)
    offset = 10 + size + (10 if data[5] & 0x10 else 0)
    following = data[offset : offset + 4]
    if following.startswith(b"fLaC"):
        return "flac"
    return _mpeg_audio_frame(following) or "mp3"  # padding or a cut tag: FFmpeg's MP3 demuxer judges


def _mpeg_audio_frame(head: bytes) -> str | None:
    """Return "mp3" or "aac" if `head` starts with an MPEG Layer III or ADTS frame header, else None."""
    if len(head) < 3 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return None
    version, layer = (head[1] >> 3) & 0b11, (head[1] >> 1) & 0b11
    if layer == 0b00:  # ADTS, the framing of raw AAC: a 12-bit sync word, then layer 0
        return "aac" if head[1] & 0xF0 == 0xF0 else None
    bitrate_index, sample_rate_index = head[2] >> 4, (head[2] >> 2) & 0b11
    if version == 0b01 or bitrate_index == 0b1111 or sample_rate_index == 0b11:  # reserved values
        return None
    # Layer III is "01"; Layers I and II (MP1, MP2) are other formats that only look alike.
    return "mp3" if layer == 0b01 else None


def _sniff_text(head: bytes) -> str:
    if b"\x00" in head:
        return "binary"
    text = head.decode("utf-8", errors="replace")
    if text.count("\ufffd") > 2:  # a few may come from a character cut at the end of `head`
        return "binary"
    lowered = text.lstrip("\ufeff \t\r\n").lower()
    if "<svg" in lowered:
        return "svg"
    if lowered.startswith(("<!doctype html", "<html", "<head", "<body")):
        return "html"
    if lowered.startswith("<?xml"):
        return "xml"
    if lowered.startswith(("{", "[")):
        return "json"
    return "text"
