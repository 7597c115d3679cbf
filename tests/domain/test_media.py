"""Reference videos and audio clips are refused with a specific reason, or described from the file itself."""

from __future__ import annotations

import asyncio
import inspect
import io
import random
import struct
import threading
from collections.abc import Callable

import av
import av.error
import pytest
from PIL import Image

from bot.domain import media
from bot.domain.errors import DomainError, InvalidMediaError
from bot.domain.media import (
    AUDIO_LIMITS,
    VIDEO_LIMITS,
    MediaClip,
    MediaInfo,
    MediaKind,
    MediaLimits,
    MediaProblem,
    limits_for,
    probe_media,
    probe_media_async,
)
from tests.doubles.media import make_image, make_mp4, make_wav

MB = 1_000_000
FPS = 4  # few frames keep the clips tiny and the tests fast; make_mp4 adds one frame, as Seedance does
AUDIO_RATE = 8_000
MP3_ENCODER = "libmp3lame" if "libmp3lame" in av.codecs_available else None
needs_mp3_encoder = pytest.mark.skipif(
    MP3_ENCODER is None, reason="the FFmpeg bundled with PyAV has no MP3 encoder (libmp3lame)"
)
VIDEO = MediaKind.VIDEO
AUDIO = MediaKind.AUDIO


# --- building media in memory ------------------------------------------------------------------------------


def mp4(seconds: float, *, audio: bool = False) -> bytes:
    """An H.264 MP4 whose video lasts exactly `seconds` (make_mp4 writes fps * duration + 1 frames)."""
    return make_mp4(seconds - 1 / FPS, fps=FPS, audio=audio)


def encode_video(
    container_format: str, codec: str, seconds: float = 2.0, options: dict[str, str] | None = None
) -> bytes:
    """A 64 x 64 px video of `seconds` at FPS frames per second in any container PyAV can write."""
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=container_format, options=options or {}) as container:
        stream = container.add_stream(codec, rate=FPS)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        for index in range(round(seconds * FPS)):
            frame = av.VideoFrame.from_image(Image.new("RGB", (64, 64), (index * 20 % 256, 90, 30)))
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return buffer.getvalue()


def encode_audio(
    container_format: str,
    codec: str,
    seconds: float = 2.0,
    *,
    rate: int = AUDIO_RATE,
    options: dict[str, str] | None = None,
) -> bytes:
    """`seconds` of mono silence encoded with `codec` in any container PyAV can write."""
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=container_format, options=options or {}) as container:
        stream = container.add_stream(codec, rate=rate)
        stream.layout = "mono"
        frame_size = stream.codec_context.frame_size or 1024
        sample_format = stream.codec_context.format.name
        total, written = round(rate * seconds), 0
        while written < total:
            samples = min(frame_size, total - written)
            frame = av.AudioFrame(format=sample_format, layout="mono", samples=samples)
            for plane in frame.planes:
                plane.update(bytes(plane.buffer_size))
            frame.sample_rate, frame.pts = rate, written
            written += samples
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return buffer.getvalue()


def wav(seconds: float, *, rate: int = AUDIO_RATE, sample_bytes: int = 2) -> bytes:
    return make_wav(seconds, rate=rate, sample_bytes=sample_bytes)


def wav_of_size(total_bytes: int) -> bytes:
    """An 8-bit WAV of exactly `total_bytes`, lasting about 15 s (so only its size can be wrong)."""
    header = len(wav(0, sample_bytes=1))
    samples = total_bytes - header
    data = wav(samples / 1_000_000, rate=1_000_000, sample_bytes=1)
    assert len(data) == total_bytes
    return data


def mp3(seconds: float, **options: str) -> bytes:
    assert MP3_ENCODER is not None
    return encode_audio("mp3", MP3_ENCODER, seconds, options=options)


def iso_boxes(data: bytes) -> list[tuple[bytes, bytes]]:
    """The top-level (type, whole box) pairs of an MP4 or MOV file."""
    boxes, offset = [], 0
    while offset < len(data):
        size, box_type = struct.unpack_from(">I4s", data, offset)
        boxes.append((box_type, data[offset : offset + size]))
        offset += size
    return boxes


def seeded_bytes(size: int, seed: int = 7) -> bytes:
    return random.Random(seed).randbytes(size)


def refusal(data: bytes, kind: MediaKind, **options: object) -> InvalidMediaError:
    with pytest.raises(InvalidMediaError) as caught:
        probe_media(data, kind, **options)  # type: ignore[arg-type]
    return caught.value


# --- the public surface ------------------------------------------------------------------------------------


def test_the_defaults_are_the_documented_rules() -> None:
    assert limits_for(VIDEO) is VIDEO_LIMITS and limits_for(AUDIO) is AUDIO_LIMITS
    assert VIDEO_LIMITS.formats == {"mp4", "mov"} and AUDIO_LIMITS.formats == {"wav", "mp3"}
    for limits in (VIDEO_LIMITS, AUDIO_LIMITS):
        assert (limits.min_duration_s, limits.max_duration_s, limits.duration_tolerance_s) == (
            2.0,
            15.0,
            0.05,
        )
    assert AUDIO_LIMITS.max_bytes == 15 * MB
    assert VIDEO_LIMITS.max_bytes == 50 * MB


def test_a_refusal_is_a_domain_error_with_a_code() -> None:
    error = refusal(b"", VIDEO)
    assert isinstance(error, DomainError)
    assert error.code == MediaProblem.EMPTY
    assert error.message == str(error)


def test_the_file_name_and_content_type_cannot_be_passed_so_cannot_be_trusted() -> None:
    """Only the bytes are judged: a PNG called "clip.mp4" and sent as video/mp4 is still a PNG."""
    for function in (probe_media, probe_media_async):
        assert list(inspect.signature(function).parameters) == ["data", "kind", "limits", "label"]
    assert refusal(make_image(64, 64), VIDEO).code == MediaProblem.NOT_MEDIA


def test_a_clip_hides_its_bytes_from_repr() -> None:
    data = mp4(2.0)
    clip = MediaClip(data=data, info=probe_media(data, VIDEO))
    assert "data=" not in repr(clip)
    assert clip.url is None


# --- videos ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seconds", [2.0, 15.0])
def test_a_video_at_either_duration_bound_is_accepted(seconds: float) -> None:
    data = mp4(seconds)
    info = probe_media(data, VIDEO, label="video 1")
    assert info == MediaInfo(
        kind=VIDEO,
        format="mp4",
        duration_s=pytest.approx(seconds),  # type: ignore[arg-type]
        size_bytes=len(data),
        mime_type="video/mp4",
        width=64,
        height=64,
        has_audio=False,
        codec="h264",
    )


def test_a_seedance_shaped_15_second_video_fits_within_the_tolerance() -> None:
    data = make_mp4(15.0, fps=24)  # 361 frames at 24 fps: 15.04 s
    info = probe_media(data, VIDEO)
    assert info.duration_s == pytest.approx(15 + 1 / 24)


@pytest.mark.parametrize(
    ("seconds", "code", "message"),
    [
        (
            1.0,
            MediaProblem.TOO_SHORT,
            "Video 2 is 1.0 s long; reference videos must be 2–15 s. Use a longer clip.",
        ),
        (1.75, MediaProblem.TOO_SHORT, "Video 2 is 1.8 s long; reference videos must be 2–15 s."),
        (15.25, MediaProblem.TOO_LONG, "Video 2 is 15.2 s long; reference videos must be 2–15 s."),
        (
            16.0,
            MediaProblem.TOO_LONG,
            "Video 2 is 16.0 s long; reference videos must be 2–15 s. Trim it and try again.",
        ),
    ],
)
def test_a_video_outside_the_duration_range_is_refused(
    seconds: float, code: MediaProblem, message: str
) -> None:
    error = refusal(mp4(seconds), VIDEO, label="video 2")
    assert error.code == code
    assert error.message.startswith(message)


def test_the_duration_bounds_and_tolerance_are_configurable() -> None:
    strict = MediaLimits(
        formats=VIDEO_LIMITS.formats, max_bytes=VIDEO_LIMITS.max_bytes, duration_tolerance_s=0
    )
    assert refusal(make_mp4(15.0, fps=24), VIDEO, limits=strict).code == MediaProblem.TOO_LONG
    short = MediaLimits(formats=VIDEO_LIMITS.formats, max_bytes=VIDEO_LIMITS.max_bytes, min_duration_s=1)
    assert probe_media(mp4(1.0), VIDEO, limits=short).duration_s == pytest.approx(1.0)


def test_a_duration_that_rounds_to_the_bound_is_shown_with_more_digits() -> None:
    strict = MediaLimits(
        formats=VIDEO_LIMITS.formats, max_bytes=VIDEO_LIMITS.max_bytes, duration_tolerance_s=0
    )
    error = refusal(make_mp4(15.0, fps=24), VIDEO, limits=strict)
    assert "is 15.04 s long" in error.message


@pytest.mark.parametrize("audio", [False, True])
def test_a_sound_track_is_detected(audio: bool) -> None:
    assert probe_media(mp4(2.0, audio=audio), VIDEO).has_audio is audio


def test_a_mov_video_is_accepted() -> None:
    data = encode_video("mov", "libx264", 3.0)
    assert data[4:12] == b"ftypqt  "
    info = probe_media(data, VIDEO)
    assert (info.format, info.mime_type, info.width, info.height) == ("mov", "video/quicktime", 64, 64)
    assert info.duration_s == pytest.approx(3.0)


@pytest.mark.parametrize(
    ("container_format", "codec", "named"),
    [("webm", "libvpx", "a WebM file"), ("matroska", "libx264", "an MKV")],
)
def test_a_matroska_video_is_refused_by_name(container_format: str, codec: str, named: str) -> None:
    error = refusal(encode_video(container_format, codec), VIDEO, label="video 1")
    assert error.code == MediaProblem.UNSUPPORTED_FORMAT
    assert error.message.startswith(f"Video 1 is {named}")
    assert "reference videos must be MP4 or MOV." in error.message


def test_other_formats_are_accepted_when_the_limits_allow_them() -> None:
    """WebM keeps no per-stream duration, so this also shows the fall-back to the container's."""
    limits = MediaLimits(formats=frozenset({"mp4", "mov", "webm"}), max_bytes=VIDEO_LIMITS.max_bytes)
    info = probe_media(encode_video("webm", "libvpx", 2.5), VIDEO, limits=limits)
    assert (info.format, info.mime_type, info.codec) == ("webm", "video/webm", "vp8")
    assert info.duration_s == pytest.approx(2.5, abs=0.01)


def test_an_image_sent_as_a_video_is_refused_by_name() -> None:
    error = refusal(make_image(64, 64), VIDEO, label="video 3")
    assert error.code == MediaProblem.NOT_MEDIA
    assert error.message == (
        "Video 3 is not a video: it looks like a PNG image. Reference videos must be MP4 or MOV."
    )


@needs_mp3_encoder
def test_an_mp3_sent_as_a_video_is_refused_with_a_hint() -> None:
    error = refusal(mp3(3.0), VIDEO, label="video 1")
    assert error.code == MediaProblem.UNSUPPORTED_FORMAT
    assert error.message == (
        "Video 1 is an MP3 file; reference videos must be MP4 or MOV. "
        "If it is meant as reference audio, attach it as audio instead."
    )


def test_a_wav_sent_as_a_video_is_refused() -> None:
    error = refusal(wav(3.0), VIDEO)
    assert error.code == MediaProblem.UNSUPPORTED_FORMAT
    assert error.message.startswith("The video is a WAV file; reference videos must be MP4 or MOV.")


def test_an_mp4_with_only_audio_sent_as_a_video_has_no_video_track() -> None:
    error = refusal(encode_audio("mp4", "aac", 3.0), VIDEO, label="video 1")
    assert error.code == MediaProblem.NO_STREAM
    assert error.message == (
        "Video 1 has no video track (an MP4 file with only audio); reference videos need one."
    )


def test_an_mp4_with_nothing_in_it_has_no_duration() -> None:
    """The header of a fragmented MP4 whose fragments are gone: a video track with no frames."""
    boxes = dict(iso_boxes(encode_video("mp4", "libx264", options={"movflags": "frag_keyframe+empty_moov"})))
    header_only = boxes[b"ftyp"] + boxes[b"moov"]
    error = refusal(header_only, VIDEO)
    assert error.code == MediaProblem.UNKNOWN_DURATION
    assert "reference videos must be 2–15 s" in error.message


# --- files cut short, damaged or not media at all ----------------------------------------------------------


def test_an_mp4_cut_in_half_is_damaged() -> None:
    data = mp4(4.0, audio=True)
    error = refusal(data[: len(data) // 2], VIDEO, label="video 1")
    assert error.code == MediaProblem.DAMAGED
    assert error.message.startswith(
        "Video 1 is cut short or damaged: it looks like an MP4 file but the file ends"
    )


def test_an_mp4_without_its_index_is_damaged() -> None:
    """What a phone leaves behind when recording stops abruptly: the media data, but no "moov" box."""
    boxes = iso_boxes(mp4(4.0))
    assert [box_type for box_type, _ in boxes][-1] == b"moov"
    without_index = b"".join(box for box_type, box in boxes if box_type != b"moov")
    error = refusal(without_index, VIDEO)
    assert error.code == MediaProblem.DAMAGED
    assert '"moov" box' in error.message


def test_a_fragmented_mp4_cut_short_is_damaged() -> None:
    """Its index comes first, so FFmpeg alone would open it and trust the duration the index promises."""
    data = encode_video("mp4", "libx264", 4.0, options={"movflags": "frag_keyframe+empty_moov"})
    assert probe_media(data, VIDEO).duration_s == pytest.approx(4.0)
    error = refusal(data[: len(data) * 3 // 4], VIDEO)
    assert error.code == MediaProblem.DAMAGED


def test_an_mp4_with_an_impossible_box_size_is_damaged() -> None:
    data = mp4(2.0)
    broken = data[:32] + struct.pack(">I4s", 4, b"free") + data[40:]  # the 8-byte "free" box claims 4
    assert refusal(broken, VIDEO).code == MediaProblem.DAMAGED


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2", VIDEO),
        (b"RIFF\x00\x10\x00\x00WAVE", AUDIO),
        (b"ID3\x04\x00\x00\x00\x00\x00\x0a" + bytes(10), AUDIO),
    ],
    ids=["mp4", "wav", "mp3"],
)
def test_random_bytes_behind_a_real_signature_are_damaged(head: bytes, kind: MediaKind) -> None:
    error = refusal(head + seeded_bytes(20_000), kind)
    assert error.code == MediaProblem.DAMAGED
    assert "cut short or damaged" in error.message


def test_what_ffmpeg_cannot_parse_is_reported_with_its_cause() -> None:
    error = refusal(b"RIFF\x00\x10\x00\x00WAVE" + seeded_bytes(20_000), AUDIO)
    assert isinstance(error.__cause__, av.error.FFmpegError)


@pytest.mark.parametrize("kind", [VIDEO, AUDIO])
def test_random_bytes_are_not_media(kind: MediaKind) -> None:
    error = refusal(seeded_bytes(20_000), kind, label="reference 1")
    assert error.code == MediaProblem.NOT_MEDIA
    assert "it looks like unrecognised binary data" in error.message


@pytest.mark.parametrize("kind", [VIDEO, AUDIO])
def test_an_empty_file_is_refused(kind: MediaKind) -> None:
    error = refusal(b"", kind, label=f"{kind.value} 1")
    assert error.code == MediaProblem.EMPTY
    assert error.message.startswith(f"{kind.value.capitalize()} 1 is an empty file (0 bytes).")


@pytest.mark.parametrize(
    ("data", "named"),
    [
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "a PDF document"),
        (b"<!DOCTYPE html><html><body>Not found</body></html>", "a web page (HTML)"),
        (b'{"error": "expired"}', "JSON data"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "a JPEG image"),
    ],
    ids=["pdf", "html", "json", "jpeg"],
)
def test_what_is_not_media_is_named(data: bytes, named: str) -> None:
    for kind in (VIDEO, AUDIO):
        error = refusal(data, kind)
        assert error.code == MediaProblem.NOT_MEDIA
        assert f"it looks like {named}" in error.message


# --- audio -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seconds", [2.0, 15.0])
def test_a_wav_at_either_duration_bound_is_accepted(seconds: float) -> None:
    data = wav(seconds)
    info = probe_media(data, AUDIO, label="audio 1")
    assert info == MediaInfo(
        kind=AUDIO,
        format="wav",
        duration_s=seconds,
        size_bytes=len(data),
        mime_type="audio/wav",
        width=None,
        height=None,
        has_audio=True,
        codec="pcm_s16le",
    )


@pytest.mark.parametrize(
    ("seconds", "accepted"), [(1.94, False), (1.96, True), (15.04, True), (15.06, False)]
)
def test_the_audio_duration_tolerance_is_a_twentieth_of_a_second(seconds: float, accepted: bool) -> None:
    if accepted:
        assert probe_media(wav(seconds), AUDIO).duration_s == pytest.approx(seconds)
    else:
        assert refusal(wav(seconds), AUDIO).code in {MediaProblem.TOO_SHORT, MediaProblem.TOO_LONG}


@pytest.mark.parametrize(
    ("seconds", "code", "message"),
    [
        (1.0, MediaProblem.TOO_SHORT, "The audio clip is 1.0 s long; reference audio must be 2–15 s."),
        (16.0, MediaProblem.TOO_LONG, "Audio 2 is 16.0 s long; reference audio must be 2–15 s."),
    ],
)
def test_a_wav_outside_the_duration_range_is_refused(
    seconds: float, code: MediaProblem, message: str
) -> None:
    error = refusal(wav(seconds), AUDIO, label="audio 2" if seconds > 2 else "audio clip")
    assert error.code == code
    assert error.message.startswith(message)


@needs_mp3_encoder
@pytest.mark.parametrize("seconds", [2.0, 15.0])
def test_an_mp3_at_either_duration_bound_is_accepted(seconds: float) -> None:
    """LAME writes an "Info" header with the exact sample count, from which FFmpeg takes the duration."""
    data = mp3(seconds)
    assert data.startswith(b"ID3")
    info = probe_media(data, AUDIO)
    assert (info.format, info.mime_type, info.has_audio, info.width) == ("mp3", "audio/mpeg", True, None)
    assert info.duration_s == pytest.approx(seconds)


@needs_mp3_encoder
@pytest.mark.parametrize(("seconds", "code"), [(1.0, MediaProblem.TOO_SHORT), (16.0, MediaProblem.TOO_LONG)])
def test_an_mp3_outside_the_duration_range_is_refused(seconds: float, code: MediaProblem) -> None:
    assert refusal(mp3(seconds), AUDIO).code == code


@needs_mp3_encoder
def test_a_bare_mp3_is_told_by_its_frame_header() -> None:
    """No ID3 tag and no Info header: FFmpeg estimates the duration from the bitrate (padding included)."""
    data = mp3(5.0, id3v2_version="0", write_xing="0")
    assert data[:2] == b"\xff\xe3"  # frame sync, then MPEG-2.5 Layer III (the version that has 8 kHz)
    info = probe_media(data, AUDIO)
    assert info.format == "mp3"
    assert info.duration_s == pytest.approx(5.0, abs=0.25)


def test_an_mp3_frame_header_is_recognised_without_an_encoder() -> None:
    """MPEG-1 Layer III frame headers (128 kbit/s, 44.1 kHz) are told apart from the bytes alone."""
    frame = b"\xff\xfb\x90\x64" + bytes(413)
    error = refusal(frame * 4, VIDEO)
    assert error.code == MediaProblem.UNSUPPORTED_FORMAT
    assert "is an MP3 file" in error.message


def test_an_audio_clip_of_15_mb_or_more_is_refused_before_it_is_read() -> None:
    data = wav(15.0, rate=540_000)  # an allowed duration at a high sample rate: 16.2 MB
    error = refusal(data, AUDIO)
    assert error.code == MediaProblem.TOO_LARGE_FILE
    assert error.message.startswith("The audio clip is 16.2 MB; reference audio must be under 15 MB")


@pytest.mark.parametrize(("size", "accepted"), [(15 * MB - 1, True), (15 * MB, False)])
def test_the_audio_size_limit_is_exclusive_and_decimal(size: int, accepted: bool) -> None:
    data = wav_of_size(size)
    if accepted:
        assert probe_media(data, AUDIO).size_bytes == size
    else:
        error = refusal(data, AUDIO)
        assert error.code == MediaProblem.TOO_LARGE_FILE
        assert "is 15 MB (15,000,000 bytes); reference audio must be under 15 MB" in error.message


def test_a_huge_video_is_refused_before_anything_else_is_looked_at() -> None:
    error = refusal(bytes(50 * MB), VIDEO, label="video 1")  # not even media: only the size is judged
    assert error.code == MediaProblem.TOO_LARGE_FILE
    assert error.message.startswith(
        "Video 1 is 50 MB (50,000,000 bytes); reference videos must be under 50 MB"
    )


def test_the_video_byte_cap_is_configurable() -> None:
    data = mp4(2.0)
    at_cap = MediaLimits(formats=VIDEO_LIMITS.formats, max_bytes=len(data))
    above = MediaLimits(formats=VIDEO_LIMITS.formats, max_bytes=len(data) + 1)
    assert refusal(data, VIDEO, limits=at_cap).code == MediaProblem.TOO_LARGE_FILE
    assert probe_media(data, VIDEO, limits=above).size_bytes == len(data)


@pytest.mark.parametrize(
    ("make", "named"),
    [
        (lambda: mp4(3.0, audio=True), "an MP4 file"),
        (lambda: encode_audio("mp4", "aac", 3.0), "an MP4 file"),
        (lambda: encode_audio("ipod", "aac", 3.0), "an M4A (MPEG-4 audio) file"),
        (lambda: encode_audio("ogg", "libvorbis", 3.0), "an Ogg file"),
        (lambda: encode_audio("flac", "flac", 3.0), "a FLAC file"),
        (lambda: encode_audio("adts", "aac", 3.0), "an AAC audio file"),
    ],
    ids=["mp4-video", "mp4-audio-only", "m4a", "ogg", "flac", "aac"],
)
def test_other_audio_containers_are_refused_by_name(make: Callable[[], bytes], named: str) -> None:
    """An MP4 holding only AAC (an .m4a by another name) is not a documented reference audio format."""
    error = refusal(make(), AUDIO, label="audio 1")
    assert error.code == MediaProblem.UNSUPPORTED_FORMAT
    assert error.message.startswith(f"Audio 1 is {named}; reference audio must be WAV or MP3.")


# --- labels and the event loop -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "label", "subject"),
    [
        (VIDEO, None, "The video"),
        (AUDIO, None, "The audio clip"),
        (VIDEO, "video 2", "Video 2"),
        (AUDIO, "reference audio 3", "Reference audio 3"),
        (VIDEO, "motion reference", "The motion reference"),
        (VIDEO, "your clip", "Your clip"),
    ],
)
def test_the_label_names_the_file_at_the_start_of_each_message(
    kind: MediaKind, label: str | None, subject: str
) -> None:
    assert refusal(b"", kind, label=label).message.startswith(f"{subject} is an empty file")


async def test_the_async_probe_runs_in_a_worker_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    threads: list[threading.Thread] = []
    real_probe = media.probe_media

    def recording_probe(*args: object, **kwargs: object) -> MediaInfo:
        threads.append(threading.current_thread())
        return real_probe(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(media, "probe_media", recording_probe)
    data = mp4(2.0)
    info = await probe_media_async(data, VIDEO, label="video 1")
    assert info == real_probe(data, VIDEO)
    assert threads and threads[0] is not threading.main_thread()


async def test_the_async_probe_raises_the_same_refusals() -> None:
    with pytest.raises(InvalidMediaError) as caught:
        await probe_media_async(wav(16.0), AUDIO, label="audio 1")
    assert caught.value.code == MediaProblem.TOO_LONG


async def test_probes_run_concurrently_without_blocking_the_loop() -> None:
    clips = [mp4(2.0), mp4(3.0, audio=True), wav(4.0)]
    kinds = [VIDEO, VIDEO, AUDIO]
    results = await asyncio.gather(*(probe_media_async(d, k) for d, k in zip(clips, kinds, strict=True)))
    assert [round(r.duration_s, 2) for r in results] == [2.0, 3.0, 4.0]
