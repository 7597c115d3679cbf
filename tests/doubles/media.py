"""Real media made in memory for tests: H.264/AAC MP4 clips (PyAV) and still images (Pillow).

`make_mp4` follows Seedance's output shape (24 fps, frames = fps * duration + 1, AAC when audio is on) so
that code which inspects or transcodes videos meets what a provider really sends. Results are cached:
tests may call it freely.
"""

from __future__ import annotations

import io
import wave
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

import av
from PIL import Image

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
