"""Video processing for delivery and "Extend": fit under an upload limit, take the last frame, join two.

Everything here streams: frames are decoded, reshaped and encoded one at a time (PyAV/FFmpeg), so memory
stays at a few frames whatever the length of the video. The functions block (FFmpeg does the work in C, but
for seconds); call the `*_async` wrappers from the event loop, which run them in a worker thread.

- `fit_video` re-encodes a video that is over a Discord server's upload limit into an H.264/AAC MP4 under
  it, choosing the bitrate from the duration and the limit and lowering the resolution only when the
  picture would otherwise get too few bits; it returns None when no watchable rendition fits, so that the
  caller posts a link instead.
- `last_frame_png` gives the video's true last frame as a PNG that passes `prepare_image`, to start an
  "Extend" job from.
- `join_clips` joins a clip and its continuation into one MP4 at the first clip's size and frame rate.

Videos are shown upright: a rotation the container asks for (phone videos) is applied to the pixels, and
non-square pixels are made square, so every output plays the same in every player.
"""

from __future__ import annotations

import asyncio
import io
import math
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction
from pathlib import Path

import av
import av.error
from av.audio.frame import AudioFrame
from av.audio.resampler import AudioResampler
from av.audio.stream import AudioStream
from av.container import InputContainer, OutputContainer
from av.filter import Graph
from av.video.frame import VideoFrame
from av.video.stream import VideoStream
from PIL import Image

from bot.domain.errors import MediaProcessingError
from bot.domain.images import DEFAULT_IMAGE_LIMITS, ImageLimits
from bot.domain.text import Text


@dataclass(frozen=True)
class TranscodeSettings:
    """How videos are encoded; the defaults suit a small bot host (about two CPU cores)."""

    # x264's speed/efficiency trade-off. Fitting 10 s of grainy 720p into 5 MB on two cores took 7.3 s at
    # "medium", 6.0 s at "faster" and 4.7 s at "veryfast", whose pictures need a few percent more bits for
    # the same quality; the size is held by the bitrate whichever is chosen.
    preset: str = "veryfast"
    # Below this many bits per pixel per frame, H.264 turns smooth footage into visible blocks: a smaller
    # picture with more bits per pixel looks better than a larger one without. 0.05 is 1.1 Mbit/s for
    # 1280x720 at 24 fps, 490 kbit/s for 854x480, 280 kbit/s for 640x360.
    min_bits_per_pixel: float = 0.05
    # Short sides (px) to step down through when the picture needs more bits per pixel; the video is
    # never made larger than it is.
    short_sides: tuple[int, ...] = (1080, 720, 480, 360)
    # Kept free of the limit: the MP4 index grows with the number of frames and is estimated on its own,
    # this is for what that estimate misses (headers, edit lists, the muxer's interleaving).
    container_overhead: float = 0.02
    # x264's average-bitrate mode lands within a few percent of the target; aim this much lower.
    safety_margin: float = 0.03
    # Encodes tried at most by `fit_video`, each retry with the bitrate scaled by limit ÷ size reached.
    max_passes: int = 3
    # Quality of `join_clips`' output (x264 constant rate factor: lower is better and larger; 18 is about
    # visually lossless). The join is encoded for quality, and fitted to a limit afterwards if need be.
    join_crf: int = 20
    # A keyframe this often in `join_clips`' output, so that taking its last frame (to extend it again)
    # decodes at most this much video rather than all of it.
    join_keyframe_interval_s: float = 2.0


DEFAULT_TRANSCODE_SETTINGS = TranscodeSettings()


class MediaProcessingProblem(StrEnum):
    """The `code` of a `MediaProcessingError`: what is wrong with the video."""

    UNREADABLE = "unreadable"  # FFmpeg cannot read the file, or not as a video
    NO_PICTURE = "no_picture"  # no video stream, or none of its pictures decodes
    UNKNOWN_TIMING = "unknown_timing"  # no duration or no frame rate
    ASPECT = "aspect"  # too wide or too tall to make a frame image of (`last_frame_png`)


@dataclass(frozen=True)
class FittedVideo:
    """A video `fit_video` wrote under the limit."""

    path: Path
    size_bytes: int
    width: int
    height: int
    duration_s: float  # of the video stream, read back from the written file
    video_bitrate: int  # bit/s asked of the encoder in the pass that fitted (the source's if copied)
    has_audio: bool
    passes: int  # encodes made; 0 when the source already fitted and was copied as it is


@dataclass(frozen=True)
class JoinedVideo:
    """The MP4 `join_clips` wrote."""

    path: Path
    size_bytes: int
    duration_s: float  # of the video stream, read back from the written file
    width: int
    height: int
    has_audio: bool


def fit_video(
    src: Path, dst: Path, limit_bytes: int, *, settings: TranscodeSettings = DEFAULT_TRANSCODE_SETTINGS
) -> FittedVideo | None:
    """Write `src` to `dst` as an H.264/AAC MP4 of at most `limit_bytes`, or return None if none fits.

    A source that already fits is copied as it is (`passes` 0). Otherwise it is re-encoded: H.264 (yuv420p,
    the index at the front so players start at once) at the frame rate and timing of the source, and AAC
    if the source has sound (mono stays mono, more than two channels become stereo). The bitrate is chosen
    from the duration and the limit (`_plan_fit`); the resolution is lowered, through
    `settings.short_sides`, only when the picture would get fewer than `settings.min_bits_per_pixel`.
    If an encode comes out too large, it is redone at a bitrate scaled down by limit ÷ size.

    Returns None, having written nothing to `dst`, when not even the smallest size fits at the floor (15 s
    of video in 100 KB, say): the caller then posts a link instead. Blocking: use `fit_video_async`.

    Raises:
        MediaProcessingError: `src` is not a video FFmpeg can read.
    """
    source = _probe(src)
    size_bytes = src.stat().st_size
    if size_bytes <= limit_bytes:
        shutil.copyfile(src, dst)
        return FittedVideo(
            path=dst,
            size_bytes=size_bytes,
            width=source.width,
            height=source.height,
            duration_s=source.duration_s,
            video_bitrate=source.video_bit_rate,
            has_audio=source.audio is not None,
            passes=0,
        )
    plan = _plan_fit(source, limit_bytes, settings)
    partial = _partial_path(dst)
    try:
        for passes in range(1, settings.max_passes + 1):
            if plan is None:
                return None
            _encode_fit(src, partial, source, plan, settings)
            written = partial.stat().st_size
            if written <= limit_bytes:
                partial.replace(dst)
                return _fitted(dst, written, plan, passes)
            # Too large: the encoder missed by written ÷ limit; ask for that much less, and the margin again.
            scale = limit_bytes / written * (1 - settings.safety_margin)
            plan = _plan_fit(source, limit_bytes, settings, video_bit_rate=int(plan.video_bit_rate * scale))
        return None
    finally:
        partial.unlink(missing_ok=True)


def last_frame_png(src: Path, *, limits: ImageLimits = DEFAULT_IMAGE_LIMITS) -> bytes:
    """The last frame of `src`, upright, as a PNG that `prepare_image` accepts under `limits`.

    Only the end of the video is decoded: the reader jumps to the last keyframe before the final second
    and decodes from there to the end (a video with no keyframe there is decoded from the start). A frame
    whose short side is not over `limits.min_side_px` (300 px) is scaled up to just over it, and one too
    large is scaled down; the aspect ratio is kept. Blocking: use `last_frame_png_async`.

    Raises:
        MediaProcessingError: `src` is not a video FFmpeg can read, or its shape is outside the aspect
            ratios `limits` allow (a frame image cannot be made from it without cropping).
    """
    source = _probe(src)
    image: Image.Image = _last_frame(src, source).to_image()  # type: ignore[no-untyped-call]  # PyAV's stub
    if source.sample_aspect_ratio not in {0, 1}:  # non-square pixels: stretch to what players show
        shown_width = max(1, round(image.width * source.sample_aspect_ratio))
        image = image.resize((shown_width, image.height), Image.Resampling.BICUBIC)
    image = _fit_frame_image(_upright(image, source.rotation), limits)
    buffer = io.BytesIO()
    image.save(buffer, "PNG", compress_level=_PNG_COMPRESS_LEVEL)
    return buffer.getvalue()


def join_clips(
    first: Path, second: Path, dst: Path, *, settings: TranscodeSettings = DEFAULT_TRANSCODE_SETTINGS
) -> JoinedVideo:
    """Join `first` and its continuation `second` into one MP4 at `dst`.

    The output has the first clip's size and a constant frame rate, the first clip's; the second clip is
    scaled to fit inside that size, with black bars if its shape differs, and its frames are retimed to
    that rate. The second clip's first frame is dropped: "Extend" makes it from the first clip's last
    frame, so keeping it would show that picture twice, a visible hitch at the seam. The duration is
    therefore the sum of both less one frame.

    Sound: when both clips have it, it is joined; when only one has, the other's part is silent; when
    neither has, the output has no audio track. Each clip's sound, taken from its start, is cut or padded
    with silence to the length of its pictures (the second's less the dropped frame's share), so the
    second clip's sound starts with its pictures.

    The output is encoded for quality (`settings.join_crf`), not for size: fit it to an upload limit with
    `fit_video` afterwards. Blocking: use `join_clips_async`.

    Raises:
        MediaProcessingError: either clip is not a video FFmpeg can read.
    """
    clips = (_probe(first, "first clip"), _probe(second, "continuation"))
    partial = _partial_path(dst)
    try:
        _encode_join((first, second), clips, partial, settings)
        info = _read_back(partial)
        partial.replace(dst)
    finally:
        partial.unlink(missing_ok=True)
    return JoinedVideo(
        path=dst,
        size_bytes=dst.stat().st_size,
        duration_s=info.duration_s,
        width=info.width,
        height=info.height,
        has_audio=info.has_audio,
    )


async def fit_video_async(
    src: Path, dst: Path, limit_bytes: int, *, settings: TranscodeSettings = DEFAULT_TRANSCODE_SETTINGS
) -> FittedVideo | None:
    """`fit_video` in a worker thread."""
    return await asyncio.to_thread(fit_video, src, dst, limit_bytes, settings=settings)


async def last_frame_png_async(src: Path, *, limits: ImageLimits = DEFAULT_IMAGE_LIMITS) -> bytes:
    """`last_frame_png` in a worker thread."""
    return await asyncio.to_thread(last_frame_png, src, limits=limits)


async def join_clips_async(
    first: Path, second: Path, dst: Path, *, settings: TranscodeSettings = DEFAULT_TRANSCODE_SETTINGS
) -> JoinedVideo:
    """`join_clips` in a worker thread."""
    return await asyncio.to_thread(join_clips, first, second, dst, settings=settings)


# --- reading a source ---------------------------------------------------------------------------------------

# What PyAV raises on data it cannot parse: FFmpeg's errors, and the Python errors its reader can pass on.
_READ_FAILURES = (av.error.FFmpegError, ValueError, EOFError, OSError)


@dataclass(frozen=True)
class _Audio:
    """A source's sound track."""

    sample_rate: int
    channels: int
    start_s: float
    duration_s: float


@dataclass(frozen=True)
class _Source:
    """What the encoders need to know about a video before they start."""

    label: str  # what messages call it: "video", "first clip"
    width: int  # as shown: upright, with square pixels
    height: int
    rotation: int  # degrees, counter-clockwise, that the container asks players to turn the picture
    sample_aspect_ratio: Fraction
    fps: Fraction
    time_base: Fraction
    start_s: float
    duration_s: float  # of the video stream
    video_bit_rate: int  # bit/s, over the whole file when the stream does not say
    audio: _Audio | None

    @property
    def total_s(self) -> float:
        """How long the file plays: the longer of its video and sound."""
        audio_end = self.audio.start_s + self.audio.duration_s - self.start_s if self.audio else 0.0
        return max(self.duration_s, audio_end)


def _unreadable(
    label: str,
    detail: str = "it cannot be read",
    code: MediaProcessingProblem = MediaProcessingProblem.UNREADABLE,
) -> MediaProcessingError:
    # `label` ("video", "first clip") rather than the file's name, which is the bot's own and means
    # nothing to the member.
    subject = _SUBJECTS.get(label) or Text("The {label}", label=label)
    reason = _DETAILS.get(detail) or Text.verbatim(detail)
    return MediaProcessingError(
        Text("{subject} could not be processed: {detail}.", subject=subject, detail=reason), code=code
    )


#: How messages name each clip `_probe` is given, at the start of a sentence (a sentence each, so that every
#: language can say it its own way).
_SUBJECTS = {
    "video": Text("The video"),
    "first clip": Text("The first clip"),
    "continuation": Text("The continuation"),
}
#: Why a clip could not be processed, by its English words.
_DETAILS = {
    "it cannot be read": Text("it cannot be read"),
    "it has no video stream": Text("it has no video stream"),
    "none of its pictures can be decoded": Text("none of its pictures can be decoded"),
    "it does not say how long it is": Text("it does not say how long it is"),
    "its frame rate is unknown": Text("its frame rate is unknown"),
}


@contextmanager
def _opened(path: Path, label: str) -> Iterator[InputContainer]:
    """`path` opened for reading; FFmpeg's failure to make sense of it becomes a MediaProcessingError."""
    if not path.is_file():
        raise FileNotFoundError(path)  # a bug of the caller's, not something wrong with the video
    try:
        container = av.open(str(path), mode="r", metadata_errors="replace")
    except _READ_FAILURES as exc:
        raise _unreadable(label) from exc
    with container:
        if not container.streams.video:
            raise _unreadable(label, "it has no video stream", MediaProcessingProblem.NO_PICTURE)
        yield container


def _decoded(container: InputContainer, label: str, *, audio: bool) -> Iterator[VideoFrame | AudioFrame]:
    """Every frame of the first video stream (and the first audio stream if `audio`), in file order."""
    streams: list[VideoStream | AudioStream] = [container.streams.video[0]]
    if audio and container.streams.audio:
        streams.append(container.streams.audio[0])
    packets = container.demux(*streams)
    while True:
        try:
            packet = next(packets, None)
            # The last packets of each stream are empty: decoding them flushes the decoder. (PyAV's stub
            # types what decode() returns as subtitles only.)
            frames: Sequence[object] = packet.decode() if packet is not None else []
        except _READ_FAILURES as exc:
            raise _unreadable(label) from exc
        if packet is None:
            return
        for frame in frames:
            if isinstance(frame, (VideoFrame, AudioFrame)):
                yield frame


def _probe(path: Path, label: str = "video") -> _Source:
    """Read what `_Source` holds, decoding only the first frame (which carries the rotation)."""
    with _opened(path, label) as container:
        video = container.streams.video[0]
        first = next(
            (frame for frame in _decoded(container, label, audio=False) if isinstance(frame, VideoFrame)),
            None,
        )
        if first is None:
            raise _unreadable(label, "none of its pictures can be decoded", MediaProcessingProblem.NO_PICTURE)
        time_base = video.time_base or Fraction(1, 90_000)
        start_s = float(video.start_time * time_base) if video.start_time is not None else 0.0
        duration_s = _stream_seconds(video.duration, time_base)
        if duration_s is None:
            duration_s = (container.duration or 0) / av.time_base
        if duration_s <= 0:
            raise _unreadable(label, "it does not say how long it is", MediaProcessingProblem.UNKNOWN_TIMING)
        fps = video.average_rate or video.guessed_rate or video.base_rate
        if fps is None or fps <= 0:
            raise _unreadable(label, "its frame rate is unknown", MediaProcessingProblem.UNKNOWN_TIMING)
        sample_aspect_ratio = video.sample_aspect_ratio or Fraction(1)
        rotation = _quarter_turns(first.rotation) * 90
        width, height = _display_size(first.width, first.height, sample_aspect_ratio, rotation)
        size_bytes = path.stat().st_size
        bit_rate = video.bit_rate or int(size_bytes * 8 / duration_s)
        audio = None
        if container.streams.audio:
            stream = container.streams.audio[0]
            audio_time_base = stream.time_base or Fraction(1, stream.sample_rate or 1)
            audio = _Audio(
                sample_rate=stream.sample_rate or _DEFAULT_AUDIO_RATE,
                channels=stream.channels or 2,
                start_s=float(stream.start_time * audio_time_base) if stream.start_time is not None else 0.0,
                duration_s=_stream_seconds(stream.duration, audio_time_base) or duration_s,
            )
        return _Source(
            label=label,
            width=width,
            height=height,
            rotation=rotation,
            sample_aspect_ratio=Fraction(sample_aspect_ratio),
            fps=Fraction(fps),
            time_base=Fraction(time_base),
            start_s=start_s,
            duration_s=duration_s,
            video_bit_rate=int(bit_rate),
            audio=audio,
        )


def _stream_seconds(duration: int | None, time_base: Fraction) -> float | None:
    if duration is None or duration <= 0:
        return None
    return float(duration * time_base)


def _quarter_turns(rotation: float) -> int:
    """A display rotation in degrees as quarter turns counter-clockwise, 0-3 (odd angles are rounded)."""
    return round(rotation / 90) % 4


def _display_size(width: int, height: int, sample_aspect_ratio: Fraction, rotation: int) -> tuple[int, int]:
    """The size a player shows a picture at: square pixels, turned upright, even sides (for yuv420p)."""
    shown_width = width * sample_aspect_ratio if sample_aspect_ratio > 0 else Fraction(width)
    if rotation % 180:
        return _even(height), _even(shown_width)
    return _even(shown_width), _even(height)


def _even(value: float | Fraction) -> int:
    return max(2, 2 * math.floor(value / 2))


@dataclass(frozen=True)
class _ReadBack:
    width: int
    height: int
    duration_s: float
    has_audio: bool


def _read_back(path: Path) -> _ReadBack:
    """Size, duration and sound of a file just written, from its container (nothing is decoded)."""
    with av.open(str(path), mode="r") as container:
        video = container.streams.video[0]
        duration_s = _stream_seconds(video.duration, video.time_base or Fraction(1, 90_000))
        return _ReadBack(
            width=video.codec_context.width,
            height=video.codec_context.height,
            duration_s=duration_s if duration_s is not None else (container.duration or 0) / av.time_base,
            has_audio=bool(container.streams.audio),
        )


def _partial_path(dst: Path) -> Path:
    # Written beside the destination and renamed into place, so `dst` never holds half a video.
    return dst.with_name(f".{dst.name}.partial")


# --- reshaping pictures -------------------------------------------------------------------------------------


class _Shaper:
    """An FFmpeg filter graph that turns decoded pictures upright and into the output's size and format.

    Built from the first picture it is given (its size and pixel format). With `letterbox`, a picture of
    another shape is scaled to fit inside the output size and centred on black; without, it is scaled
    to the output size exactly (the caller keeps the aspect ratio).
    """

    def __init__(
        self,
        width: int,
        height: int,
        rotation: int,
        *,
        letterbox: bool,
        sample_aspect_ratio: Fraction = Fraction(1),
    ) -> None:
        self._width, self._height, self._rotation, self._letterbox = width, height, rotation, letterbox
        self._sample_aspect_ratio = sample_aspect_ratio
        self._graph: Graph | None = None

    def shape(self, frame: VideoFrame | None) -> list[VideoFrame]:
        """The pictures ready for the encoder so far; None flushes the graph at the end."""
        if self._graph is None:
            if frame is None:
                return []
            self._graph = self._build(frame)
        self._graph.push(frame)
        shaped: list[VideoFrame] = []
        while True:
            try:
                output = self._graph.vpull()
            except (av.error.BlockingIOError, av.error.EOFError):
                return shaped
            shaped.append(output)

    def _build(self, frame: VideoFrame) -> Graph:
        graph = Graph()
        nodes = [
            graph.add_buffer(
                width=frame.width, height=frame.height, format=frame.format, time_base=frame.time_base
            )
        ]
        if self._letterbox and self._sample_aspect_ratio not in {0, 1}:
            # Square the pixels first, so that the picture is fitted by the shape players show it at.
            square_width = _even(frame.width * self._sample_aspect_ratio)
            nodes.extend((graph.add("scale", f"w={square_width}:h={frame.height}"), graph.add("setsar", "1")))
        turns = _quarter_turns(self._rotation)
        if turns == 1:
            nodes.append(graph.add("transpose", "cclock"))
        elif turns == 3:
            nodes.append(graph.add("transpose", "clock"))
        elif turns == 2:
            nodes.extend((graph.add("hflip"), graph.add("vflip")))
        size = f"w={self._width}:h={self._height}"
        if self._letterbox:
            nodes.append(
                graph.add("scale", f"{size}:force_original_aspect_ratio=decrease:force_divisible_by=2")
            )
            nodes.append(graph.add("pad", f"{size}:x=(ow-iw)/2:y=(oh-ih)/2:color=black"))
        else:
            nodes.append(graph.add("scale", size))
        nodes.extend((graph.add("setsar", "1"), graph.add("format", "yuv420p"), graph.add("buffersink")))
        graph.link_nodes(*nodes).configure()
        return graph


def _add_video_encoder(
    output: OutputContainer,
    width: int,
    height: int,
    *,
    fps: Fraction,
    time_base: Fraction,
    settings: TranscodeSettings,
    bit_rate: int | None = None,
    crf: int | None = None,
    keyframe_interval: int | None = None,
) -> VideoStream:
    options = {"preset": settings.preset}
    if crf is not None:
        options["crf"] = str(crf)
    if keyframe_interval is not None:
        options["g"] = str(keyframe_interval)
    stream = output.add_stream("libx264", rate=fps, options=options)
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    stream.codec_context.time_base = time_base
    if bit_rate is not None:
        stream.codec_context.bit_rate = bit_rate
    return stream


def _open_output(path: Path) -> OutputContainer:
    # faststart moves the index (moov) before the media data once writing ends, so a player streaming
    # the file (Discord's) can start before it has all of it.
    return av.open(str(path), mode="w", format="mp4", container_options={"movflags": "+faststart"})


# --- writing sound ------------------------------------------------------------------------------------------

_DEFAULT_AUDIO_RATE = 48_000
# The sampling rates AAC signals directly; anything else is resampled to 48 kHz.
_AAC_RATES = frozenset({8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000})
_AUDIO_CHUNK = 1024  # samples per AAC frame


class _SoundTrack:
    """An AAC track written from decoded sound of any format, with silence wherever a part has none.

    Sound is written in parts (one per clip); each part is cut or padded with silence to a given length,
    and may skip some samples at its start. Timestamps count samples, so the parts follow each other with
    no gap and no overlap whatever the sources' own timestamps say.
    """

    def __init__(self, output: OutputContainer, sample_rate: int, channels: int, bit_rate: int) -> None:
        self.sample_rate = sample_rate if sample_rate in _AAC_RATES else _DEFAULT_AUDIO_RATE
        self._layout = "mono" if channels == 1 else "stereo"
        self._output = output
        self._stream = output.add_stream("aac", rate=self.sample_rate)
        self._stream.layout = self._layout
        self._stream.codec_context.bit_rate = bit_rate
        self._written = 0  # samples, and the timestamp of the next one
        self._part_end: int | None = None
        self._to_skip = 0
        self._fifo = av.AudioFifo()
        self._resampler = self._new_resampler()

    def _new_resampler(self) -> AudioResampler:
        return AudioResampler(format="fltp", layout=self._layout, rate=self.sample_rate)

    def start_part(self, *, at_sample: int, skip_samples: int = 0, length_samples: int | None = None) -> None:
        """Begin a part at `at_sample` (silence fills any gap before it), to end after `length_samples`."""
        self._fill_silence(at_sample)
        self._to_skip = skip_samples
        self._part_end = None if length_samples is None else self._written + length_samples
        self._fifo = av.AudioFifo()
        self._resampler = self._new_resampler()

    def add(self, frame: AudioFrame | None) -> None:
        """Write decoded sound of the current part (None at its end flushes the resampler)."""
        for converted in self._resampler.resample(frame):
            converted.pts = None  # the FIFO insists on continuous timestamps; ours are counted instead
            self._fifo.write(converted)
        self._drain(partial=frame is None)

    def end_part(self) -> None:
        """Finish the current part: flush what is buffered, then pad it with silence to its length."""
        self.add(None)
        if self._part_end is not None:
            self._fill_silence(self._part_end)
        self._part_end = None

    def finish(self) -> None:
        """Flush the encoder; the track is complete."""
        self._output.mux(self._stream.encode(None))

    def _drain(self, *, partial: bool) -> None:
        while self._to_skip and self._fifo.samples:
            skipped = self._fifo.read(min(self._to_skip, self._fifo.samples))
            self._to_skip -= skipped.samples if skipped is not None else self._to_skip
        while self._fifo.samples >= _AUDIO_CHUNK or (partial and self._fifo.samples):
            wanted = min(_AUDIO_CHUNK, self._fifo.samples)
            if self._part_end is not None:
                wanted = min(wanted, self._part_end - self._written)
            if wanted <= 0:
                self._fifo = av.AudioFifo()  # past the part's end: the rest is dropped
                return
            chunk = self._fifo.read(wanted)
            if chunk is None:
                return
            self._encode(chunk)

    def _fill_silence(self, until_sample: int) -> None:
        while self._written < until_sample:
            samples = min(_AUDIO_CHUNK, until_sample - self._written)
            silence = AudioFrame(format="fltp", layout=self._layout, samples=samples)
            for plane in silence.planes:
                plane.update(bytes(plane.buffer_size))
            silence.sample_rate = self.sample_rate
            self._encode(silence)

    def _encode(self, chunk: AudioFrame) -> None:
        chunk.pts = self._written
        chunk.time_base = Fraction(1, self.sample_rate)
        self._written += chunk.samples
        self._output.mux(self._stream.encode(chunk))


# --- fitting under a limit ----------------------------------------------------------------------------------

# The MP4 index lists every frame: about 12 bytes per video frame (size, time, offset, composition time)
# and 8 per audio frame, on top of a couple of kilobytes of headers.
_INDEX_BASE_BYTES = 2048
_INDEX_BYTES_PER_VIDEO_FRAME = 12
_INDEX_BYTES_PER_AUDIO_FRAME = 8
# The sound's share of a tight budget, and its bounds: 64 kbit/s per channel is transparent enough for
# generated video's sound, and below 32 kbit/s AAC sounds broken, so the sound never gets less.
_AUDIO_SHARE = 0.1
_AUDIO_BPS_PER_CHANNEL = 64_000
_MIN_AUDIO_BPS = 32_000


@dataclass(frozen=True)
class _FitPlan:
    width: int
    height: int
    video_bit_rate: int
    audio_bit_rate: int  # 0 without sound


def _plan_fit(
    source: _Source, limit_bytes: int, settings: TranscodeSettings, *, video_bit_rate: int | None = None
) -> _FitPlan | None:
    """The size and bitrates to encode `source` at to end under `limit_bytes`; None if none is watchable.

    The budget is the limit less the MP4 index (estimated from the frame counts), the container overhead
    and the safety margin, spread over the duration. The sound takes `_AUDIO_SHARE` of it within bounds;
    the picture gets the rest (or `video_bit_rate`, when a retry has measured better), at the largest size
    of the ladder where that is at least `settings.min_bits_per_pixel`.
    """
    seconds = source.total_s
    video_frames = seconds * float(source.fps)
    audio_bit_rate = 0
    index_bytes = _INDEX_BASE_BYTES + _INDEX_BYTES_PER_VIDEO_FRAME * video_frames
    if source.audio is not None:
        index_bytes += _INDEX_BYTES_PER_AUDIO_FRAME * seconds * source.audio.sample_rate / _AUDIO_CHUNK
    usable_bytes = limit_bytes * (1 - settings.container_overhead - settings.safety_margin) - index_bytes
    total_bit_rate = usable_bytes * 8 / seconds
    if source.audio is not None:
        most = _AUDIO_BPS_PER_CHANNEL * min(source.audio.channels, 2)
        audio_bit_rate = min(most, max(_MIN_AUDIO_BPS, 1000 * round(total_bit_rate * _AUDIO_SHARE / 1000)))
    if video_bit_rate is None:
        video_bit_rate = int(total_bit_rate - audio_bit_rate)
    for width, height in _renditions(source.width, source.height, settings.short_sides):
        if video_bit_rate >= settings.min_bits_per_pixel * width * height * float(source.fps):
            return _FitPlan(width, height, video_bit_rate, audio_bit_rate)
    return None


def _renditions(width: int, height: int, short_sides: tuple[int, ...]) -> Iterator[tuple[int, int]]:
    """The source's size, then each smaller size of the ladder, largest first, with the same shape."""
    yield width, height
    short = min(width, height)
    for side in sorted(short_sides, reverse=True):
        if side < short:
            scale = side / short
            yield _even(width * scale + 1), _even(height * scale + 1)  # +1: round to even, not down


def _encode_fit(src: Path, dst: Path, source: _Source, plan: _FitPlan, settings: TranscodeSettings) -> None:
    """One encode of `src` to `dst` at `plan`'s size and bitrates, keeping the source's timing."""
    with _opened(src, source.label) as container, _open_output(dst) as output:
        container.streams.video[0].thread_type = "AUTO"
        video = _add_video_encoder(
            output,
            plan.width,
            plan.height,
            fps=source.fps,
            time_base=source.time_base,
            settings=settings,
            bit_rate=plan.video_bit_rate,
        )
        sound = None
        if source.audio is not None:
            sound = _SoundTrack(output, source.audio.sample_rate, source.audio.channels, plan.audio_bit_rate)
            lead = round((source.audio.start_s - source.start_s) * sound.sample_rate)
            sound.start_part(at_sample=max(0, lead), skip_samples=max(0, -lead))
        shaper = _Shaper(plan.width, plan.height, source.rotation, letterbox=False)
        clock = _Timestamps(source)
        for frame in _decoded(container, source.label, audio=sound is not None):
            if isinstance(frame, AudioFrame):
                if sound is not None:
                    sound.add(frame)
                continue
            frame.pts = clock.next(frame.pts)
            for shaped in shaper.shape(frame):
                output.mux(video.encode(shaped))
        for shaped in shaper.shape(None):
            output.mux(video.encode(shaped))
        output.mux(video.encode(None))
        if sound is not None:
            sound.end_part()
            sound.finish()


class _Timestamps:
    """The source's own picture timestamps, from zero, made strictly increasing (encoders insist)."""

    def __init__(self, source: _Source) -> None:
        self._start = round(source.start_s / source.time_base)
        self._step = max(1, round(1 / (source.fps * source.time_base)))
        self._last: int | None = None

    def next(self, pts: int | None) -> int:
        if pts is None:  # a picture without a time is taken to follow the last one
            stamp = 0 if self._last is None else self._last + self._step
        else:
            stamp = max(0, pts - self._start)
            if self._last is not None and stamp <= self._last:
                stamp = self._last + 1
        self._last = stamp
        return stamp


def _fitted(path: Path, size_bytes: int, plan: _FitPlan, passes: int) -> FittedVideo:
    info = _read_back(path)
    return FittedVideo(
        path=path,
        size_bytes=size_bytes,
        width=info.width,
        height=info.height,
        duration_s=info.duration_s,
        video_bitrate=plan.video_bit_rate,
        has_audio=info.has_audio,
        passes=passes,
    )


# --- the last frame -----------------------------------------------------------------------------------------

# How far before the end the reader jumps; it lands on the keyframe at or before that point.
_SEEK_BACK_S = 1.0
# Pillow's default. On a 1080p frame it takes about 0.3 s against 0.12 s at level 1, for a file 20-40 %
# smaller; the file is what gets uploaded for the provider to fetch, so the smaller one is worth it.
_PNG_COMPRESS_LEVEL = 6


def _last_frame(src: Path, source: _Source) -> VideoFrame:
    target_s = source.start_s + source.duration_s - _SEEK_BACK_S
    if target_s > source.start_s:
        frame = _last_decoded(src, source.label, seek_to_s=target_s)
        if frame is not None:
            return frame
    frame = _last_decoded(src, source.label, seek_to_s=None)
    if frame is None:
        raise _unreadable(
            source.label, "none of its pictures can be decoded", MediaProcessingProblem.NO_PICTURE
        )
    return frame


def _last_decoded(src: Path, label: str, *, seek_to_s: float | None) -> VideoFrame | None:
    """The latest picture decoded from `seek_to_s` (from the start if None) to the end."""
    with _opened(src, label) as container:
        video = container.streams.video[0]
        video.thread_type = "AUTO"
        if seek_to_s is not None:
            time_base = video.time_base or Fraction(1, 90_000)
            try:
                container.seek(round(seek_to_s / time_base), stream=video, backward=True)
            except _READ_FAILURES:
                return None  # the caller decodes from the start instead
        last: VideoFrame | None = None
        for frame in _decoded(container, label, audio=False):
            # Pictures come out in display order; the comparison guards against a stray late one.
            if isinstance(frame, VideoFrame) and (
                last is None or frame.pts is None or last.pts is None or frame.pts >= last.pts
            ):
                last = frame
        return last


def _upright(image: Image.Image, rotation: int) -> Image.Image:
    turns = _quarter_turns(rotation)
    if turns == 0:
        return image
    # Pillow's ROTATE_90 turns counter-clockwise, as the display rotation is counted.
    method = (Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_180, Image.Transpose.ROTATE_270)[turns - 1]
    return image.transpose(method)


def _fit_frame_image(image: Image.Image, limits: ImageLimits) -> Image.Image:
    """`image` scaled, keeping its shape, so that every side is strictly within `limits`' bounds."""
    width, height = image.size
    aspect = width / height
    if not limits.min_aspect < aspect < limits.max_aspect:
        raise MediaProcessingError(
            Text(
                "The video is {width}×{height} px, an aspect ratio of {aspect}; a frame image must be "
                "between {min_aspect} and {max_aspect}, so it cannot be extended.",
                width=str(width),
                height=str(height),
                aspect=format(aspect, ".2f"),  # two decimals, as written (3.00 is not exactly 3)
                min_aspect=limits.min_aspect,
                max_aspect=limits.max_aspect,
            ),
            code=MediaProcessingProblem.ASPECT,
        )
    scale = 1.0
    if min(width, height) <= limits.min_side_px:
        scale = (limits.min_side_px + 1) / min(width, height)
    elif max(width, height) >= limits.max_side_px:
        scale = (limits.max_side_px - 1) / max(width, height)
    if scale == 1.0:
        return image
    # Rounded away from the bound being met, so that a side never lands back on it.
    size = (
        math.ceil(width * scale) if scale > 1 else math.floor(width * scale),
        math.ceil(height * scale) if scale > 1 else math.floor(height * scale),
    )
    return image.resize(size, Image.Resampling.LANCZOS)


# --- joining ------------------------------------------------------------------------------------------------


def _encode_join(
    paths: tuple[Path, Path], clips: tuple[_Source, _Source], dst: Path, settings: TranscodeSettings
) -> None:
    first = clips[0]
    fps = first.fps
    time_base = 1 / fps
    with _open_output(dst) as output:
        video = _add_video_encoder(
            output,
            first.width,
            first.height,
            fps=fps,
            time_base=time_base,
            settings=settings,
            crf=settings.join_crf,
            keyframe_interval=max(1, round(settings.join_keyframe_interval_s * fps)),
        )
        sound = _join_sound_track(output, clips)
        written = 0  # frames, and the timestamp of the next one
        for index, (path, clip) in enumerate(zip(paths, clips, strict=True)):
            # The second clip's first frame repeats the first clip's last: it is not shown again.
            dropped = 1 if index > 0 else 0
            slots = max(1, round(clip.duration_s * fps)) - dropped
            if sound is not None:
                sound.start_part(
                    at_sample=_sample_at(written, fps, sound.sample_rate),
                    skip_samples=_sample_at(dropped, fps, sound.sample_rate),
                    length_samples=_sample_at(written + slots, fps, sound.sample_rate)
                    - _sample_at(written, fps, sound.sample_rate),
                )
            written = _join_clip(
                path, clip, output, video, sound, first_slot=dropped, slots=slots, written=written, fps=fps
            )
            if sound is not None:
                sound.end_part()
        output.mux(video.encode(None))
        if sound is not None:
            sound.finish()


def _sample_at(frame_index: int, fps: Fraction, sample_rate: int) -> int:
    return round(frame_index / fps * sample_rate)


def _join_sound_track(output: OutputContainer, clips: tuple[_Source, _Source]) -> _SoundTrack | None:
    tracks = [clip.audio for clip in clips if clip.audio is not None]
    if not tracks:
        return None
    channels = max(track.channels for track in tracks)
    bit_rate = _AUDIO_BPS_PER_CHANNEL * min(channels, 2)
    return _SoundTrack(output, tracks[0].sample_rate, channels, bit_rate)


def _join_clip(
    path: Path,
    clip: _Source,
    output: OutputContainer,
    video: VideoStream,
    sound: _SoundTrack | None,
    *,
    first_slot: int,
    slots: int,
    written: int,
    fps: Fraction,
) -> int:
    """Encode one clip's pictures into `slots` frames at `fps` from frame `written`; the new frame count.

    Each output frame shows the source picture nearest its time, so a clip of another frame rate is
    retimed by repeating or skipping pictures (as FFmpeg's fps filter does); slot 0 is the clip's first
    picture, and slots before `first_slot` are not written.
    """
    canvas = video.codec_context
    shaper = _Shaper(
        canvas.width,
        canvas.height,
        clip.rotation,
        letterbox=True,
        sample_aspect_ratio=clip.sample_aspect_ratio,
    )
    slot = 0
    pending: tuple[VideoFrame, float] | None = None  # the latest picture, and its time in the clip

    def emit_until(boundary_s: float) -> None:
        nonlocal slot, written
        while pending is not None and slot < first_slot + slots and slot / fps < boundary_s:
            if slot >= first_slot:
                pending[0].pts, pending[0].time_base = written, 1 / fps
                output.mux(video.encode(pending[0]))
                written += 1
            slot += 1

    def take(shaped: list[VideoFrame]) -> None:
        nonlocal pending
        for picture in shaped:
            time_base = picture.time_base or clip.time_base
            seconds = float(picture.pts * time_base) - clip.start_s if picture.pts is not None else 0.0
            if pending is not None:
                # Slots before the midpoint of two pictures show the earlier one.
                emit_until((pending[1] + seconds) / 2)
            pending = (picture, seconds)

    with _opened(path, clip.label) as container:
        container.streams.video[0].thread_type = "AUTO"
        for frame in _decoded(container, clip.label, audio=sound is not None):
            if isinstance(frame, AudioFrame):
                if sound is not None:
                    sound.add(frame)
                continue
            take(shaper.shape(frame))
        take(shaper.shape(None))
    emit_until(math.inf)
    return written
