"""Videos are fitted under upload limits, give up their last frame and are joined, as members see them."""

from __future__ import annotations

import io
import struct
from fractions import Fraction
from pathlib import Path

import av
import pytest
from PIL import Image

from bot.domain.errors import DomainError, MediaProcessingError
from bot.domain.images import prepare_image
from bot.domain.transcode import (
    FittedVideo,
    JoinedVideo,
    MediaProcessingProblem,
    TranscodeSettings,
    fit_video,
    fit_video_async,
    join_clips,
    join_clips_async,
    last_frame_png,
    last_frame_png_async,
)
from tests.doubles.media import (
    make_colour_mp4,
    make_image,
    make_mp4,
    make_noisy_mp4,
    make_wav,
    probe_mp4,
    rotate_mp4,
)

FPS = 24
RED, GREEN, BLUE, BLACK = (200, 30, 30), (30, 200, 30), (30, 30, 200), (0, 0, 0)


def write(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


def top_level_boxes(data: bytes) -> list[bytes]:
    """The types of an MP4's top-level boxes, in file order."""
    boxes, offset = [], 0
    while offset + 8 <= len(data):
        size, kind = struct.unpack_from(">I4s", data, offset)
        if size == 1:
            (size,) = struct.unpack_from(">Q", data, offset + 8)
        boxes.append(kind)
        offset += size if size else len(data)
    return boxes


def pictures(path: Path) -> list[Image.Image]:
    with av.open(str(path)) as container:
        return [frame.to_image() for frame in container.decode(video=0)]


def audio_seconds(path: Path) -> float:
    """How long the sound of a file lasts, from its decoded samples."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        return sum(frame.samples for frame in container.decode(stream)) / stream.sample_rate


def close_to(actual: tuple[int, ...], expected: tuple[int, ...], tolerance: int = 20) -> bool:
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True))


def centre(image: Image.Image) -> tuple[int, ...]:
    return tuple(image.getpixel((image.width // 2, image.height // 2)))  # type: ignore[arg-type]


# --- fit_video ----------------------------------------------------------------------------------------------


def test_a_clip_just_over_the_limit_comes_back_under_it_and_plays_with_its_sound(tmp_path: Path) -> None:
    source = make_noisy_mp4(2.0, width=320, height=240, audio=True)
    limit = int(len(source) * 0.85)
    dst = tmp_path / "fitted.mp4"

    fitted = fit_video(write(tmp_path, "clip.mp4", source), dst, limit)

    assert fitted is not None
    data = dst.read_bytes()
    assert len(data) == fitted.size_bytes <= limit
    played, original = probe_mp4(data), probe_mp4(source)
    assert played.codec == "h264"
    assert (played.width, played.height) == (fitted.width, fitted.height) == (320, 240)
    assert played.frames == original.frames  # every picture decodes, none dropped
    assert abs(played.duration_s - original.duration_s) < 0.1
    assert abs(fitted.duration_s - original.duration_s) < 0.1
    assert played.has_audio and fitted.has_audio
    assert abs(audio_seconds(dst) - original.duration_s) < 0.1
    assert fitted.passes >= 1 and fitted.video_bitrate > 0
    # The index comes before the media data, so a player can start before the download ends.
    boxes = top_level_boxes(data)
    assert boxes.index(b"moov") < boxes.index(b"mdat")


def test_a_clip_far_over_the_limit_comes_back_smaller_with_the_same_shape(tmp_path: Path) -> None:
    source = write(tmp_path, "clip.mp4", make_noisy_mp4(2.0, width=640, height=480))
    dst = tmp_path / "fitted.mp4"

    # 80 KB for 2 s leaves too few bits per pixel at 480p: the next step down, 360p, is chosen.
    fitted = fit_video(source, dst, 80_000)

    assert fitted is not None
    assert (fitted.width, fitted.height) == (480, 360)
    played = probe_mp4(dst.read_bytes())
    assert (played.width, played.height) == (480, 360)
    assert played.frames == 49
    assert dst.stat().st_size <= 80_000


def test_a_clip_no_watchable_rendition_fits_gives_none_and_leaves_no_file(tmp_path: Path) -> None:
    source = write(tmp_path, "clip.mp4", make_noisy_mp4(2.0, width=320, height=240))
    dst = tmp_path / "fitted.mp4"

    assert fit_video(source, dst, 10_000) is None

    assert sorted(path.name for path in tmp_path.iterdir()) == ["clip.mp4"]


def test_an_encode_that_comes_out_too_large_is_redone_smaller(tmp_path: Path) -> None:
    source = write(tmp_path, "clip.mp4", make_noisy_mp4(2.0, width=320, height=240))
    limit = len(source.read_bytes()) // 2
    # A negative overhead makes the first encode aim 20 % over the limit, as an encoder's misjudgement would.
    overshooting = TranscodeSettings(container_overhead=-0.2, safety_margin=0.0)

    fitted = fit_video(source, tmp_path / "fitted.mp4", limit, settings=overshooting)

    assert fitted is not None
    assert fitted.passes >= 2
    assert fitted.size_bytes <= limit
    assert sorted(path.name for path in tmp_path.iterdir()) == ["clip.mp4", "fitted.mp4"]


def test_a_clip_that_already_fits_is_copied_as_it_is(tmp_path: Path) -> None:
    source = make_mp4(1.0, width=64, height=64, audio=True)
    dst = tmp_path / "fitted.mp4"

    fitted = fit_video(write(tmp_path, "clip.mp4", source), dst, len(source))

    assert fitted is not None and fitted.passes == 0
    assert dst.read_bytes() == source


def test_a_phone_video_is_turned_upright_rather_than_left_to_the_player(tmp_path: Path) -> None:
    recorded = make_noisy_mp4(1.0, width=320, height=240)
    source = write(tmp_path, "phone.mp4", rotate_mp4(recorded, 90))
    dst = tmp_path / "fitted.mp4"

    fitted = fit_video(source, dst, len(recorded) // 2)

    assert fitted is not None
    assert (fitted.width, fitted.height) == (240, 320)
    with av.open(str(dst)) as container:
        frame = next(container.decode(video=0))
        assert (frame.width, frame.height, frame.rotation) == (240, 320, 0)
        upright = frame.to_image()
    # The noisy clip's red channel runs dark (top) to light (bottom); turned a quarter clockwise, the top
    # edge is on the right.
    left, right = upright.getpixel((10, 160)), upright.getpixel((230, 160))
    assert isinstance(left, tuple) and isinstance(right, tuple)
    assert left[0] > 200 and right[0] < 40


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"this is not a video" * 100, MediaProcessingProblem.UNREADABLE),
        (make_wav(1.0), MediaProcessingProblem.NO_PICTURE),
        # FFmpeg reads a still image as a video of one frame, which has no duration.
        (make_image(400, 400), MediaProcessingProblem.UNKNOWN_TIMING),
    ],
    ids=["garbage", "audio only", "png image"],
)
def test_a_file_ffmpeg_cannot_read_as_a_video_is_a_domain_error(
    tmp_path: Path, data: bytes, code: MediaProcessingProblem
) -> None:
    source = write(tmp_path, "upload.mp4", data)

    with pytest.raises(MediaProcessingError) as caught:
        fit_video(source, tmp_path / "fitted.mp4", 1000)

    assert isinstance(caught.value, DomainError)
    assert caught.value.code == code
    # The member is told about "the video", not about a file name of the bot's own.
    assert caught.value.message.startswith("The video could not be processed: ")
    assert "upload.mp4" not in caught.value.message
    assert not (tmp_path / "fitted.mp4").exists()


# --- last_frame_png -----------------------------------------------------------------------------------------


def test_the_last_frame_is_the_true_last_frame_even_between_keyframes(tmp_path: Path) -> None:
    # Keyframes every 8 frames: the reader seeks near the end, and must still decode through to the end.
    colours = (RED,) * 38 + (GREEN, BLUE)
    source = write(tmp_path, "clip.mp4", make_colour_mp4(colours, width=400, height=320, keyframe_interval=8))

    png = last_frame_png(source)

    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.size == (400, 320)
    assert close_to(centre(image.convert("RGB")), BLUE)
    prepared = prepare_image(png, label="last frame")
    assert (prepared.info.width, prepared.info.height) == (400, 320)


def test_the_last_frame_of_a_clip_with_one_keyframe_is_found_too(tmp_path: Path) -> None:
    source = write(tmp_path, "clip.mp4", make_colour_mp4((RED,) * 40 + (BLUE,), width=320, height=400))

    image = Image.open(io.BytesIO(last_frame_png(source))).convert("RGB")

    assert close_to(centre(image), BLUE)


def test_the_last_frame_of_a_tiny_clip_is_scaled_up_to_a_usable_frame_image(tmp_path: Path) -> None:
    source = write(tmp_path, "tiny.mp4", make_colour_mp4((RED,) * 10 + (BLUE,), width=64, height=64))

    png = last_frame_png(source)

    prepared = prepare_image(png, label="last frame")  # would raise if under 301 px or the wrong shape
    assert prepared.info.width == prepared.info.height > 300
    assert close_to(centre(Image.open(io.BytesIO(png)).convert("RGB")), BLUE)


def test_the_last_frame_of_a_phone_video_is_upright(tmp_path: Path) -> None:
    source = write(tmp_path, "phone.mp4", rotate_mp4(make_noisy_mp4(1.0, width=480, height=320), 90))

    image = Image.open(io.BytesIO(last_frame_png(source)))

    assert image.size == (320, 480)


def test_a_video_too_wide_for_a_frame_image_is_a_domain_error(tmp_path: Path) -> None:
    source = write(tmp_path, "wide.mp4", make_mp4(1.0, width=800, height=300))

    with pytest.raises(MediaProcessingError, match="aspect ratio") as caught:
        last_frame_png(source)

    assert caught.value.code == MediaProcessingProblem.ASPECT


def test_last_frame_of_an_unreadable_file_is_a_domain_error(tmp_path: Path) -> None:
    with pytest.raises(MediaProcessingError):
        last_frame_png(write(tmp_path, "broken.mp4", make_mp4(1.0)[:200]))


# --- join_clips ---------------------------------------------------------------------------------------------


def joined(tmp_path: Path, first: bytes, second: bytes) -> tuple[JoinedVideo, Path]:
    dst = tmp_path / "joined.mp4"
    result = join_clips(write(tmp_path, "first.mp4", first), write(tmp_path, "second.mp4", second), dst)
    return result, dst


def seconds(data: bytes) -> float:
    return probe_mp4(data).duration_s


@pytest.mark.parametrize(
    ("first_audio", "second_audio"),
    [(True, True), (True, False), (False, True)],
    ids=["both", "first", "second"],
)
def test_joined_clips_last_as_long_as_both_with_sound_throughout(
    tmp_path: Path, first_audio: bool, second_audio: bool
) -> None:
    first = make_mp4(2.0, width=320, height=240, audio=first_audio)
    second = make_mp4(1.0, width=320, height=240, audio=second_audio)

    result, dst = joined(tmp_path, first, second)

    expected = seconds(first) + seconds(second)
    assert abs(result.duration_s - expected) <= 1 / FPS + 0.001  # less the one repeated frame
    played = probe_mp4(dst.read_bytes())
    assert abs(played.duration_s - result.duration_s) < 0.001
    assert (played.width, played.height) == (result.width, result.height) == (320, 240)
    assert played.frames == 49 + 25 - 1
    assert result.has_audio and played.has_audio
    # Silence fills the part without sound, so the sound lasts as long as the pictures.
    assert abs(audio_seconds(dst) - played.duration_s) < 0.05
    assert result.size_bytes == dst.stat().st_size


def test_joined_clips_without_sound_have_no_audio_track(tmp_path: Path) -> None:
    result, dst = joined(tmp_path, make_mp4(1.0, width=64, height=64), make_mp4(1.0, width=64, height=64))

    assert not result.has_audio
    assert not probe_mp4(dst.read_bytes()).has_audio


def test_the_repeated_seam_frame_is_shown_once(tmp_path: Path) -> None:
    # "Extend" starts the continuation from the first clip's last frame: here the green one.
    first = make_colour_mp4((RED,) * 12 + (GREEN,), width=64, height=64)
    second = make_colour_mp4((GREEN,) + (BLUE,) * 12, width=64, height=64)

    _, dst = joined(tmp_path, first, second)

    shown = [centre(image) for image in pictures(dst)]
    assert len(shown) == 13 + 13 - 1
    assert sum(close_to(colour, GREEN) for colour in shown) == 1
    assert close_to(shown[12], GREEN) and close_to(shown[13], BLUE)


def test_a_continuation_of_another_shape_and_rate_is_fitted_into_the_first_clips_frame(
    tmp_path: Path,
) -> None:
    first = make_colour_mp4((RED,) * 25, width=320, height=240)  # 4:3 at 24 fps
    second = make_colour_mp4((BLUE,) * 31, width=320, height=180, fps=30)  # 16:9 at 30 fps, 1.03 s

    result, dst = joined(tmp_path, first, second)

    assert (result.width, result.height) == (320, 240)
    frames = pictures(dst)
    # The first clip's rate throughout: the second clip's 1.03 s become 25 frames at 24 fps, less the seam.
    assert len(frames) == 25 + 25 - 1
    with av.open(str(dst)) as container:
        assert container.streams.video[0].average_rate == Fraction(FPS)
    last = frames[-1]
    assert close_to(centre(last), BLUE)
    assert close_to(last.getpixel((160, 5)), BLACK)  # type: ignore[arg-type]  # letterbox bars
    assert close_to(last.getpixel((160, 234)), BLACK)  # type: ignore[arg-type]


def test_joining_an_unreadable_clip_is_a_domain_error_naming_the_clip(tmp_path: Path) -> None:
    with pytest.raises(MediaProcessingError, match="^The continuation could not be processed"):
        joined(tmp_path, make_mp4(1.0), b"not a video at all" * 50)

    assert not (tmp_path / "joined.mp4").exists()


# --- the async wrappers -------------------------------------------------------------------------------------


async def test_the_async_wrappers_give_what_the_blocking_functions_give(tmp_path: Path) -> None:
    clip = write(tmp_path, "clip.mp4", make_colour_mp4((RED,) * 24 + (BLUE,), width=320, height=320))

    png = await last_frame_png_async(clip)
    result = await join_clips_async(clip, clip, tmp_path / "joined.mp4")
    fitted = await fit_video_async(result.path, tmp_path / "fitted.mp4", result.size_bytes * 2)

    assert png == last_frame_png(clip)
    assert isinstance(result, JoinedVideo) and result.duration_s > 2
    assert isinstance(fitted, FittedVideo) and fitted.passes == 0


def make_unusual_mp4(width: int, height: int, *, pix_fmt: str, sample_aspect_ratio: Fraction) -> bytes:
    """A short H.264 MP4 of what phones and editors sometimes write: odd sizes, 4:4:4, non-square pixels."""
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=FPS, options={"preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        stream.codec_context.sample_aspect_ratio = sample_aspect_ratio
        for index in range(FPS):
            picture = av.VideoFrame.from_image(Image.effect_noise((width, height), 40).convert("RGB"))
            picture.pts = index
            container.mux(stream.encode(picture))
        container.mux(stream.encode(None))
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("width", "height", "pix_fmt", "sample_aspect_ratio", "expected"),
    [
        (321, 241, "yuv444p", Fraction(1), (320, 240)),  # odd sides, which yuv420p cannot hold
        (320, 240, "yuv420p", Fraction(4, 3), (426, 240)),  # pixels a third wider than tall
    ],
    ids=["odd sides", "non-square pixels"],
)
def test_unusual_sources_come_out_as_every_player_shows_them(
    tmp_path: Path,
    width: int,
    height: int,
    pix_fmt: str,
    sample_aspect_ratio: Fraction,
    expected: tuple[int, int],
) -> None:
    data = make_unusual_mp4(width, height, pix_fmt=pix_fmt, sample_aspect_ratio=sample_aspect_ratio)
    dst = tmp_path / "fitted.mp4"

    fitted = fit_video(write(tmp_path, "clip.mp4", data), dst, len(data) // 2)

    assert fitted is not None
    assert (fitted.width, fitted.height) == expected
    with av.open(str(dst)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.pix_fmt == "yuv420p"
        assert stream.sample_aspect_ratio in {None, Fraction(1)}
        assert sum(1 for _ in container.decode(stream)) == FPS


def test_a_continuation_with_non_square_pixels_is_fitted_by_the_shape_it_is_shown_at(tmp_path: Path) -> None:
    first = make_colour_mp4((RED,) * 25, width=426, height=240)
    # Stored 320x240 with pixels a third wider than tall: shown 426x240, so it fills the frame unbarred.
    second = make_unusual_mp4(320, 240, pix_fmt="yuv420p", sample_aspect_ratio=Fraction(4, 3))

    result, dst = joined(tmp_path, first, second)

    assert (result.width, result.height) == (426, 240)
    last = pictures(dst)[-1].convert("L")
    # Noise, not black bars, at the left and right edges and at the top.
    assert last.crop((0, 0, 4, 240)).getextrema()[1] > 60  # type: ignore[index]
    assert last.crop((422, 0, 426, 240)).getextrema()[1] > 60  # type: ignore[index]
