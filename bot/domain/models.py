"""Frozen value types shared by every layer: job states, requests, images and jobs."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class ProviderName(StrEnum):
    """The video providers the bot can talk to."""

    RUNCOMFY = "runcomfy"
    NOVITA = "novita"
    ARK = "ark"


class Resolution(StrEnum):
    """Output resolutions, named as every provider names them."""

    P480 = "480p"
    P720 = "720p"
    P1080 = "1080p"


class Ratio(StrEnum):
    """Output aspect ratios; `adaptive` lets the model follow the first frame."""

    R16_9 = "16:9"
    R4_3 = "4:3"
    R1_1 = "1:1"
    R3_4 = "3:4"
    R9_16 = "9:16"
    R21_9 = "21:9"
    ADAPTIVE = "adaptive"


class ServiceTier(StrEnum):
    """How urgently a provider runs a job: `flex` is offline, about half price, and may take hours."""

    DEFAULT = "default"
    FLEX = "flex"


class JobState(StrEnum):
    """The life of a job. See `ALLOWED_TRANSITIONS` for the edges."""

    PENDING = "pending"  # row written, submit not yet accepted by the provider
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"  # the provider has the video; not yet delivered
    #: The video is being posted: a post may exist already. Whoever finds a job here looks for its own
    #: earlier post (by the delivery's nonce and marker) before posting, so a video is never posted twice.
    DELIVERING = "delivering"
    DELIVERED = "delivered"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    TIMED_OUT = "timed_out"
    UNKNOWN = "unknown"  # the submit may or may not have reached the provider; never resubmitted

    @property
    def is_final(self) -> bool:
        """A final job never changes state again."""
        return self in FINAL_STATES

    @property
    def is_active(self) -> bool:
        """An active job is still being driven by the poller."""
        return not self.is_final


FINAL_STATES: frozenset[JobState] = frozenset(
    {
        JobState.DELIVERED,
        JobState.FAILED,
        JobState.CANCELLED,
        JobState.EXPIRED,
        JobState.TIMED_OUT,
        JobState.UNKNOWN,
    }
)

_ENDINGS = frozenset({JobState.FAILED, JobState.CANCELLED, JobState.EXPIRED, JobState.TIMED_OUT})

ALLOWED_TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.PENDING: frozenset({JobState.QUEUED, JobState.FAILED, JobState.UNKNOWN}),
    JobState.QUEUED: frozenset({JobState.QUEUED, JobState.RUNNING, JobState.SUCCEEDED}) | _ENDINGS,
    JobState.RUNNING: frozenset({JobState.RUNNING, JobState.SUCCEEDED}) | _ENDINGS,
    # A finished video that cannot be fetched or posted for good ends as failed.
    JobState.SUCCEEDED: frozenset({JobState.DELIVERING, JobState.DELIVERED, JobState.FAILED}),
    JobState.DELIVERING: frozenset({JobState.DELIVERED, JobState.FAILED}),
    JobState.DELIVERED: frozenset(),
    JobState.FAILED: frozenset(),
    JobState.CANCELLED: frozenset(),
    JobState.EXPIRED: frozenset(),
    JobState.TIMED_OUT: frozenset(),
    JobState.UNKNOWN: frozenset(),
}


def sources_of(target: JobState) -> frozenset[JobState]:
    """The states from which `target` may be entered."""
    return frozenset(state for state, targets in ALLOWED_TRANSITIONS.items() if target in targets)


@dataclass(frozen=True)
class VideoRequest:
    """A request whose options were checked against the catalogue; unsupported options are None."""

    model: str
    prompt: str
    resolution: Resolution
    ratio: Ratio
    duration_s: int
    generate_audio: bool | None = None
    camera_fixed: bool | None = None
    seed: int | None = None
    watermark: bool | None = None
    service_tier: ServiceTier | None = None
    #: Seconds after which the provider gives up on the job (Novita and ModelArk); None: its default.
    expires_after_s: int | None = None
    return_last_frame: bool | None = None
    reference_images: int = 0
    reference_videos: int = 0
    reference_audios: int = 0
    #: Whether the model may search the web for facts in the prompt (Seedance 2.0 on RunComfy); None: not
    #: asked, which the providers read as off.
    web_search: bool | None = None

    @property
    def has_references(self) -> bool:
        """Whether the request carries reference media (Seedance 2.0's multimodal reference mode)."""
        return bool(self.reference_images or self.reference_videos or self.reference_audios)

    def options_summary(self) -> dict[str, str]:
        """The options as short display strings, in a stable order, skipping what the model lacks."""
        summary = {
            "model": self.model,
            "resolution": self.resolution.value,
            "ratio": self.ratio.value,
            "duration": f"{self.duration_s} s",
        }
        if self.generate_audio is not None:
            summary["audio"] = "on" if self.generate_audio else "off"
        if self.camera_fixed is not None:
            summary["camera_fixed"] = "yes" if self.camera_fixed else "no"
        if self.seed is not None:
            summary["seed"] = str(self.seed)
        if self.watermark is not None:
            summary["watermark"] = "yes" if self.watermark else "no"
        if self.service_tier is ServiceTier.FLEX:
            summary["tier"] = "flex (slower, cheaper)"
        if self.return_last_frame:
            summary["last frame"] = "returned"
        if self.web_search:
            summary["web search"] = "on"
        references = [
            f"{count} {noun}{'s' if count != 1 else ''}"
            for count, noun in (
                (self.reference_images, "image"),
                (self.reference_videos, "video"),
                (self.reference_audios, "audio clip"),
            )
            if count
        ]
        if references:
            summary["references"] = ", ".join(references)
        return summary


@dataclass(frozen=True)
class ImageInfo:
    """What validation learned about an image, measured after EXIF orientation."""

    format: str  # Pillow's name: JPEG, PNG, WEBP, BMP, TIFF, GIF
    width: int
    height: int
    size_bytes: int
    mode: str
    frames: int = 1
    notes: tuple[str, ...] = ()  # what the bot did about it, for the member ("first frame of 12 used")

    @property
    def mime_type(self) -> str:
        """The MIME type for this image format."""
        return f"image/{self.format.lower()}"

    @property
    def extension(self) -> str:
        """The usual file name extension for this image format: jpg, png, webp, bmp, tiff, gif."""
        return "jpg" if self.format == "JPEG" else self.format.lower()


@dataclass(frozen=True)
class FrameImage:
    """An image ready to hand to a provider: the validated bytes and, when published, a public URL.

    `data` holds the bytes to send inline (they may have been re-encoded: an animated or CMYK image becomes
    a still PNG/JPEG). `url` is set when the image is reachable at a stable public URL, which URL-only
    providers need.
    """

    data: bytes = field(repr=False)
    info: ImageInfo
    url: str | None = None


class JobOrigin(StrEnum):
    """Which front end created a job; each front end's poller drives only its own jobs."""

    DISCORD = "discord"
    CLI = "cli"


@dataclass(frozen=True)
class Requester:
    """Who asked, and where the answer goes. Plain ids: the domain does not know Discord."""

    origin: JobOrigin
    user_id: int | None = None
    guild_id: int | None = None
    channel_id: int | None = None


class Derivation(StrEnum):
    """How a job was made from an earlier one, with a button on that job's result."""

    REROLL = "reroll"  # the same inputs and options, a new seed
    EXTEND = "extend"  # starts from the earlier video's last frame; delivered joined to it
    VARIATION = "variation"  # the same inputs with one option changed


@dataclass(frozen=True)
class Lineage:
    """The earlier job a job was made from, and how."""

    parent_job_id: int
    derivation: Derivation


@dataclass(frozen=True)
class Job:
    """One stored job, as the store last saw it."""

    id: int
    state: JobState
    provider: ProviderName
    request: VideoRequest
    requester: Requester
    created_at: float
    updated_at: float
    deadline_at: float
    first_frame: ImageInfo | None = None
    last_frame: ImageInfo | None = None
    provider_job_id: str | None = None
    submitted_at: float | None = None
    finished_at: float | None = None
    next_poll_at: float | None = None
    poll_failures: int = 0
    queue_position: int | None = None
    progress_percent: float | None = None
    video_url: str | None = None
    last_frame_url: str | None = None  # the provider's image of the video's last frame, when asked for
    video_bytes: int | None = None
    cost_usd: float | None = None
    error_code: str | None = None
    error_message: str | None = None
    status_message_id: int | None = None
    thread_id: int | None = None
    delivery_ref: str | None = None
    upload_limit_bytes: int | None = None
    credits: int | None = None  # what the quota reserved for this job; None when no quota applied
    usage_tokens: int | None = None  # the provider's own usage figure, when it reports one
    #: The process driving the job, and until when (see bot.jobs.ports on leases).
    lease_owner: str | None = None
    lease_expires_at: float | None = None
    #: When the paid submit was started; a PENDING job without it was never sent, so nothing was charged.
    submit_started_at: float | None = None
    #: When the final outcome (the video, or why there is none) reached the requester; None until then.
    announced_at: float | None = None
    #: The front end's handle for answering the requester privately (see NewJob.reply_handle).
    reply_handle: str | None = None
    #: When the status card was last shown in the job's final state (None: not yet, or no card).
    card_final_at: float | None = None
    #: The job this one was made from with a button (re-roll, extend, variation); None for a fresh request.
    lineage: Lineage | None = None
    #: When the requester or a moderator deleted the video's post (the job stays, for usage and history).
    removed_at: float | None = None

    @property
    def model(self) -> str:
        """The catalogue key of the job's model."""
        return self.request.model


class MediaRole(StrEnum):
    """What a file given with a request is for."""

    FIRST_FRAME = "first_frame"
    LAST_FRAME = "last_frame"
    IMAGE = "image"  # a reference image (Seedance 2.0)
    VIDEO = "video"  # a reference video
    AUDIO = "audio"  # a reference audio clip

    @property
    def is_image(self) -> bool:
        """Whether files in this role are images."""
        return self in (MediaRole.FIRST_FRAME, MediaRole.LAST_FRAME, MediaRole.IMAGE)


@dataclass(frozen=True, order=True)
class MediaSlot:
    """One file's place in a request: its role and, for references, its number (1-based)."""

    role: MediaRole
    number: int = 0

    @property
    def key(self) -> str:
        """A stable short name: "first_frame", "image2", "audio1"."""
        return self.role.value if self.number == 0 else f"{self.role.value}{self.number}"

    @property
    def noun(self) -> str:
        """How a member would name it: "image", "last frame", "reference image 2"."""
        match self.role:
            case MediaRole.FIRST_FRAME:
                return "image"
            case MediaRole.LAST_FRAME:
                return "last frame"
            case MediaRole.IMAGE:
                return f"reference image {self.number}"
            case MediaRole.VIDEO:
                return f"reference video {self.number}"
            case MediaRole.AUDIO:
                return f"reference audio clip {self.number}"

    @property
    def file_stem(self) -> str:
        """The file name it is re-posted under, without extension: "first-frame", "image2"."""
        return self.key.replace("_", "-")

    @classmethod
    def from_filename(cls, filename: str) -> MediaSlot | None:
        """The slot a re-posted file stands for ("image2.png" -> reference image 2); None for another file."""
        stem = filename.rsplit(".", 1)[0]
        for role in MediaRole:
            prefix = role.value.replace("_", "-")
            numbered = role not in (MediaRole.FIRST_FRAME, MediaRole.LAST_FRAME)
            if stem == prefix and not numbered:
                return cls(role)
            number = stem.removeprefix(prefix)
            if numbered and number != stem and number.isdigit():
                return cls(role, int(number))
        return None


FIRST_FRAME = MediaSlot(MediaRole.FIRST_FRAME)
LAST_FRAME = MediaSlot(MediaRole.LAST_FRAME)
