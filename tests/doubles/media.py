"""Real media made in memory for tests: H.264/AAC MP4 clips (PyAV) and still images (Pillow).

`make_mp4` follows Seedance's output shape (24 fps, frames = fps * duration + 1, AAC when audio is on) so
that code which inspects or transcodes videos meets what a provider really sends; `make_noisy_mp4` (whose
size follows the bitrate), `make_colour_mp4` (a chosen colour per frame) and `rotate_mp4` (a phone's
display rotation) serve transcoding tests. Clips are cached: tests may ask for them freely.
"""

from __future__ import annotations

import io
import math
import random
import struct
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

import av
from PIL import Image, ImageChops

_AUDIO_RATE = 44_100
_AUDIO_FRAME_SAMPLES = 1024


@dataclass(frozen=True)
class Mp4Info:
    """What `probe_mp4` learned about a clip."""

    codec: str  # the video codec, "h264" for what make_mp4 writes
    width: int
    height: int
    frames: int  # decoded video frames
    duration_s: float  # of the video stream
    has_audio: bool


def make_mp4(
    duration_s: float = 2.0, *, width: int = 64, height: int = 64, fps: int = 24, audio: bool = False
) -> bytes:
    """An H.264 MP4 of `fps * duration_s + 1` frames (as Seedance makes them), with silent AAC if `audio`."""
    if width % 2 or height % 2:
        raise ValueError("H.264 in yuv420p needs an even width and height")
    return _make_mp4(float(duration_s), width, height, fps, audio)


@lru_cache(maxsize=32)
def _make_mp4(duration_s: float, width: int, height: int, fps: int, audio: bool) -> bytes:
    buffer = io.BytesIO()
    frame_count = round(fps * duration_s) + 1
    with av.open(buffer, mode="w", format="mp4") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        # Every stream must exist before the first packet is written.
        sound = container.add_stream("aac", rate=_AUDIO_RATE) if audio else None
        if sound is not None:
            sound.layout = "mono"
        for index in range(frame_count):
            # A colour that changes per frame, so the encoder writes real (non-empty) frames.
            picture = Image.new("RGB", (width, height), ((index * 5) % 256, 80, 40))
            frame = av.VideoFrame.from_image(picture)
            frame.pts = index
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        if sound is not None:
            total = round(_AUDIO_RATE * frame_count / fps)
            written = 0
            while written < total:
                samples = min(_AUDIO_FRAME_SAMPLES, total - written)
                chunk = av.AudioFrame(format="fltp", layout="mono", samples=samples)
                chunk.planes[0].update(bytes(chunk.planes[0].buffer_size))
                chunk.sample_rate = _AUDIO_RATE
                chunk.pts = written
                written += samples
                container.mux(sound.encode(chunk))
            container.mux(sound.encode(None))
    return buffer.getvalue()


def probe_mp4(data: bytes) -> Mp4Info:
    """Codec, size, decoded frame count, duration and audio presence of an MP4 held in memory."""
    with av.open(io.BytesIO(data), mode="r") as container:
        video = container.streams.video[0]
        has_audio = bool(container.streams.audio)
        codec = video.codec_context.name
        width, height = video.codec_context.width, video.codec_context.height
        if video.duration is not None and video.time_base is not None:
            duration_s = float(video.duration * Fraction(video.time_base))
        else:
            duration_s = (container.duration or 0) / av.time_base
        frames = sum(1 for _ in container.decode(video=0))
    return Mp4Info(
        codec=codec,
        width=width,
        height=height,
        frames=frames,
        duration_s=duration_s,
        has_audio=has_audio,
    )


def make_image(
    width: int,
    height: int,
    *,
    fmt: str = "PNG",
    mode: str = "RGB",
    color: tuple[int, ...] | int = (200, 80, 40),
) -> bytes:
    """A solid image of the given size, format (Pillow's name) and mode, encoded in memory."""
    fill: tuple[int, ...] | int = color
    if mode in ("L", "1", "P") and isinstance(color, tuple):
        fill = color[0]
    elif mode in ("RGBA", "CMYK") and isinstance(color, tuple) and len(color) == 3:
        fill = (*color, 255) if mode == "RGBA" else (*color, 0)
    buffer = io.BytesIO()
    Image.new(mode, (width, height), fill).save(buffer, format=fmt)
    return buffer.getvalue()


def make_wav(seconds: float, *, rate: int = 8000, sample_bytes: int = 2) -> bytes:
    """A mono PCM WAV of silence lasting `seconds`, written by the standard library."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(sample_bytes)
        writer.setframerate(rate)
        writer.writeframes(bytes(sample_bytes * round(rate * seconds)))
    return buffer.getvalue()


def make_noisy_mp4(
    duration_s: float = 2.0,
    *,
    width: int = 320,
    height: int = 240,
    fps: int = 24,
    audio: bool = False,
    grain: float = 12.0,
    crf: int = 18,
    keyframe_interval: int | None = None,
) -> bytes:
    """An MP4 like `make_mp4`'s, with pictures that cost bits, so that its size follows the bitrate.

    Every frame is a drifting gradient under fresh random grain (`grain` is its standard deviation), encoded
    at `crf` (x264's quality: lower is larger), and the sound, if `audio`, is a 440 Hz tone rather than
    silence. `keyframe_interval` is as for `make_colour_mp4`. The result is the same for the same arguments
    (the grain is seeded).
    """
    if width % 2 or height % 2:
        raise ValueError("H.264 in yuv420p needs an even width and height")
    return _make_noisy_mp4(float(duration_s), width, height, fps, audio, float(grain), crf, keyframe_interval)


@lru_cache(maxsize=16)
def _make_noisy_mp4(
    duration_s: float,
    width: int,
    height: int,
    fps: int,
    audio: bool,
    grain: float,
    crf: int,
    keyframe_interval: int | None,
) -> bytes:
    frame_count = round(fps * duration_s) + 1
    ramp = Image.linear_gradient("L").resize((width * 2, height))
    glow = Image.radial_gradient("L").resize((width, height))
    pictures = (
        _noisy_picture(ramp, glow, index, width, height, grain, seed=index) for index in range(frame_count)
    )
    options = {"crf": str(crf), **_keyframe_options(keyframe_interval)}
    return _write_mp4(pictures, width, height, fps, frame_count, tone=audio, options=options)


def _noisy_picture(
    ramp: Image.Image, glow: Image.Image, index: int, width: int, height: int, grain: float, *, seed: int
) -> Image.Image:
    shift = (index * 7) % width
    red = ramp.crop((shift, 0, shift + width, height))
    noise = Image.frombytes("L", (width, height), random.Random(seed).randbytes(width * height))
    noise = Image.blend(Image.new("L", (width, height), 128), noise, min(1.0, grain / 74))
    green = Image.blend(glow, noise, 0.5)
    blue = ImageChops.add(red, noise, 2.0)
    return Image.merge("RGB", (red, green, blue))


def make_colour_mp4(
    colours: tuple[tuple[int, int, int], ...],
    *,
    width: int = 64,
    height: int = 64,
    fps: int = 24,
    audio: bool = False,
    keyframe_interval: int | None = None,
) -> bytes:
    """An MP4 with one solid-colour frame per entry of `colours`, in order (a tone if `audio`).

    `keyframe_interval` (frames) makes the encoder start a new group of pictures that often, so that a
    reader can seek into the middle of the clip; by default x264 puts a keyframe only at the start.
    """
    if width % 2 or height % 2:
        raise ValueError("H.264 in yuv420p needs an even width and height")
    return _make_colour_mp4(tuple(colours), width, height, fps, audio, keyframe_interval)


@lru_cache(maxsize=16)
def _make_colour_mp4(
    colours: tuple[tuple[int, int, int], ...],
    width: int,
    height: int,
    fps: int,
    audio: bool,
    keyframe_interval: int | None,
) -> bytes:
    options = _keyframe_options(keyframe_interval)
    pictures = (Image.new("RGB", (width, height), colour) for colour in colours)
    return _write_mp4(pictures, width, height, fps, len(colours), tone=audio, options=options)


def _keyframe_options(keyframe_interval: int | None) -> dict[str, str]:
    return {} if keyframe_interval is None else {"g": str(keyframe_interval), "keyint_min": "1"}


def _write_mp4(
    pictures: Iterator[Image.Image],
    width: int,
    height: int,
    fps: int,
    frame_count: int,
    *,
    tone: bool,
    options: dict[str, str],
) -> bytes:
    """An H.264 MP4 of `pictures` at `fps`, with a mono AAC 440 Hz tone as long as them if `tone`."""
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        video = container.add_stream("libx264", rate=fps, options={"preset": "ultrafast", **options})
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        sound = container.add_stream("aac", rate=_AUDIO_RATE) if tone else None
        if sound is not None:
            sound.layout = "mono"
        for index, picture in enumerate(pictures):
            frame = av.VideoFrame.from_image(picture)
            frame.pts = index
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        if sound is not None:
            total = round(_AUDIO_RATE * frame_count / fps)
            for start in range(0, total, _AUDIO_FRAME_SAMPLES):
                samples = min(_AUDIO_FRAME_SAMPLES, total - start)
                chunk = av.AudioFrame(format="fltp", layout="mono", samples=samples)
                wave_samples = (
                    0.3 * math.sin(2 * math.pi * 440 * (start + i) / _AUDIO_RATE) for i in range(samples)
                )
                chunk.planes[0].update(struct.pack(f"{samples}f", *wave_samples))
                chunk.sample_rate = _AUDIO_RATE
                chunk.pts = start
                container.mux(sound.encode(chunk))
            container.mux(sound.encode(None))
    return buffer.getvalue()


def rotate_mp4(data: bytes, degrees: int) -> bytes:
    """`data` (an MP4 of one video track) with its display matrix set to turn the picture by `degrees`.

    `degrees` is clockwise, as players turn the picture when showing it: 90 is how a phone held upright
    records. The pixels are unchanged; only the track header's transformation matrix is rewritten.
    """
    one, minus_one = 0x10000, 0xFFFF0000  # 16.16 fixed point, the second as an unsigned 32-bit value
    matrices = {
        0: (one, 0, 0, 0, one, 0),
        90: (0, one, 0, minus_one, 0, 0),
        180: (minus_one, 0, 0, 0, minus_one, 0),
        270: (0, minus_one, 0, one, 0, 0),
    }
    a, b, u, c, d, v = matrices[degrees % 360]
    patched = bytearray(data)
    box = patched.find(b"tkhd")
    if box < 0:
        raise ValueError("no track header (tkhd box) in the MP4")
    version = patched[box + 4]
    # After the type: version and flags, times and ids (64-bit times in version 1), reserved, layer,
    # alternate group, volume, reserved; then the 3x3 matrix.
    matrix_at = box + 4 + 4 + (32 if version == 1 else 20) + 8 + 8
    struct.pack_into(">9I", patched, matrix_at, a, b, u, c, d, v, 0, 0, 0x40000000)
    return bytes(patched)
