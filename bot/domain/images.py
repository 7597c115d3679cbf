"""Validation of frame images before anything is submitted to a paid provider.

Every first or last frame passes `prepare_image`, which enforces the rules RunComfy and Novita document for
Seedance frame images (JPEG, PNG, WEBP, BMP, TIFF or GIF; under 30 MB; each side more than 300 and less than
6000 px; width ÷ height strictly between 0.4 and 2.5), all measured after EXIF orientation.

The image is judged cheaply first: the byte size before Pillow sees the data, then the format, dimensions,
orientation and aspect ratio from the header alone. Only an image that passes those checks is decoded, which
is needed to prove it is not cut short or damaged and to re-encode it when something must change:

- an animated GIF, WebP or PNG (or a multi-page TIFF) becomes a still PNG of its first frame;
- an EXIF orientation other than "upright" is applied to the pixels, since providers may ignore the tag;
- CMYK becomes RGB, 16-bit and other unusual colour modes become 8-bit.

An image that needs none of this is handed on as it was sent, minus what is not the picture
(`bot.domain.image_bytes`): anything after its end marker (a ZIP or web page appended to it) and its metadata
(EXIF with GPS and maker notes, XMP, IPTC, PNG text chunks, comments); its ICC colour profile is kept, as
leaving it out would change its colours. A file whose structure cannot be accounted for without decoding
(a TIFF with metadata tags, say) is re-encoded instead. Re-encoded images carry no metadata but their ICC
profile either: the bot re-posts them under its own name, so it passes on the picture and nothing else.
"""

from __future__ import annotations

import asyncio
import io
import math
import struct
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum

from PIL import ExifTags, Image, ImageFile, ImageOps, PngImagePlugin

from bot.domain.errors import InvalidImageError
from bot.domain.image_bytes import CleanedImage, PngCheck, check_png_pixels, clean_image_bytes, png_has_exif
from bot.domain.models import ImageInfo
from bot.domain.stored_text import read_back
from bot.domain.text import Text

# Decimal megabytes: the stricter reading of the documented "under 30 MB", so that no image the bot
# accepts can be refused by the provider for its size.
MEGABYTE = 1_000_000
"""What "MB" means in every limit and message here: a decimal megabyte, 1,000,000 bytes."""


class ImageProblem(StrEnum):
    """The `code` of an `InvalidImageError`: which rule the image broke."""

    EMPTY = "empty"
    TOO_LARGE_FILE = "too_large_file"
    NOT_AN_IMAGE = "not_an_image"
    UNSUPPORTED_FORMAT = "unsupported_format"
    DECOMPRESSION_BOMB = "decompression_bomb"
    TOO_BIG = "too_big"
    TOO_SMALL = "too_small"
    ASPECT = "aspect"
    TRUNCATED = "truncated"
    UNSUPPORTED_COLOR_MODE = "unsupported_color_mode"
    TOO_LARGE_AFTER_CONVERSION = "too_large_after_conversion"


@dataclass(frozen=True)
class ImageLimits:
    """What a frame image must satisfy; the defaults are the providers' documented rules.

    Every bound is exclusive, as the providers document them: a 300 px side, a 6000 px side, an aspect ratio
    of exactly 0.4 or 2.5 and a file of exactly 30 MB are all refused.
    """

    max_bytes: int = 30 * MEGABYTE
    min_side_px: int = 300
    max_side_px: int = 6000
    min_aspect: float = 0.4
    max_aspect: float = 2.5
    formats: frozenset[str] = frozenset({"JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF"})


DEFAULT_IMAGE_LIMITS = ImageLimits()


@dataclass(frozen=True)
class PreparedImage:
    """An image that passed validation, as it should be sent to a provider."""

    # The original bytes when nothing had to change (cut after the image's end and without metadata blocks
    # when the file carried any), else the re-encoded image.
    data: bytes
    info: ImageInfo  # describes `data`; `frames` is the frame count of the original


# Pillow's own names for the formats, in the order they are listed to members.
_FORMAT_DISPLAY_ORDER = ("JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF")

# More pixels per byte of file than any allowed format can really encode (deflate tops out near 1032:1,
# i.e. about 8,300 one-bit pixels per byte), so a header claiming this is lying or is a decompression bomb.
_BOMB_PIXELS_PER_FILE_BYTE = 16_384

# Colour modes every provider decodes as they are; anything else is converted before it is sent.
_PASS_THROUGH_MODES = frozenset({"1", "L", "LA", "P", "RGB", "RGBA"})
_HIGH_DEPTH_MODES = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N", "F"})

# Image.open treats these as "not this format, try the next one"; so do we.
_NOT_THIS_FORMAT = (SyntaxError, IndexError, TypeError, struct.error)
# What Pillow raises while reading an image whose data is cut short or damaged.
_DAMAGED_DATA = (OSError, EOFError, SyntaxError, ValueError, IndexError, struct.error)

# What streaming through a PNG holds (a slice of its pixels and zlib's window), and a scaled JPEG's extras.
_PNG_SLICE_ESTIMATE = 2 * 1024 * 1024
_JPEG_QUALITY = 95
_FALLBACK_JPEG_QUALITIES = (90, 80)
# A JPEG decoded at 1/8 scale still runs through all of its entropy-coded data, so truncation is caught for
# 1/64 of the memory of a full decode.
_JPEG_VERIFY_SCALE = 8
# Pillow stops reading a PNG once it has every pixel, so a file cut after its pixel data still decodes;
# strict decoders refuse a PNG without its closing IEND chunk (length 0, type, fixed CRC).
_PNG_END_CHUNK = b"\x00\x00\x00\x00IEND\xaeB`\x82"
_ORIENTATION_UPRIGHT = 1
_ORIENTATIONS_THAT_SWAP_SIDES = frozenset({5, 6, 7, 8})
_TURNED_A_QUARTER = 6


def prepare_image(
    data: bytes, *, limits: ImageLimits = DEFAULT_IMAGE_LIMITS, label: str = "image"
) -> PreparedImage:
    """Check `data` against `limits` and return the bytes to send to a provider.

    Blocking (it may decode and re-encode the image): call `prepare_image_async` from the event loop.
    `label` names the image in messages, e.g. "last frame" gives "The last frame is ...".

    Raises:
        InvalidImageError: the image breaks a rule; `code` is an `ImageProblem` and the message, safe to show
            to the member, says what is wrong with numbers and what is allowed.
    """
    subject = image_subject(label)
    _check_byte_size(len(data), limits, subject)
    with _open_header(data, limits, subject) as image:
        format_name = _format_name(image)
        if format_name not in limits.formats:
            raise InvalidImageError(
                Text(
                    "{subject} is in {format} format, which is not supported. Allowed formats: {allowed}. "
                    "Save it as PNG or JPEG and try again.",
                    subject=subject,
                    format=format_name,
                    allowed=_allowed_formats(limits),
                ),
                code=ImageProblem.UNSUPPORTED_FORMAT,
            )
        orientation = _orientation_from_header(image)
        _check_header_geometry(image.size, orientation, len(data), limits, subject)
        with _refusing_damaged_data(subject, format_name):
            frames = int(getattr(image, "n_frames", 1))
        return _decode_and_finish(
            image,
            data,
            format_name=format_name,
            header_orientation=orientation,
            frames=frames,
            limits=limits,
            subject=subject,
        )


def prepare_memory_estimate(data: bytes, *, limits: ImageLimits = DEFAULT_IMAGE_LIMITS) -> int:
    """About the most memory `prepare_image` holds for `data` besides `data` itself, in bytes, read from the
    header alone (no pixel is decoded) so that a caller can wait for that much before it starts.

    A JPEG passed on as it is costs 1/64 of its pixels (it is verified at 1/8 scale), a PNG passed on as it
    is next to nothing (`check_png_pixels` streams through it); anything decoded in full or re-encoded
    costs its pixels twice (decoded, then converted). An image refused from its header costs nothing.
    """
    try:
        with _open_header(data, limits, image_subject("image")) as image:
            format_name = _format_name(image)
            stored_size, mode = image.size, image.mode
            orientation = _orientation_from_header(image)
            frames = int(getattr(image, "n_frames", 1)) if format_name in {"JPEG", "PNG"} else 2
    except InvalidImageError:
        return 0
    except _DAMAGED_DATA:
        return 0  # `prepare_image` refuses it before decoding
    full = _pixel_bytes(stored_size, mode)
    plain = frames == 1 and mode in _PASS_THROUGH_MODES and (orientation or _ORIENTATION_UPRIGHT) == 1
    if plain and format_name == "JPEG":
        return full // (_JPEG_VERIFY_SCALE * _JPEG_VERIFY_SCALE) + _PNG_SLICE_ESTIMATE
    if plain and format_name == "PNG" and _png_bit_depth(data) != 16 and not png_has_exif(data):
        return _PNG_SLICE_ESTIMATE
    return 2 * full


async def prepare_image_async(
    data: bytes, *, limits: ImageLimits = DEFAULT_IMAGE_LIMITS, label: str = "image"
) -> PreparedImage:
    """`prepare_image` in a worker thread, so decoding never blocks the event loop."""
    return await asyncio.to_thread(prepare_image, data, limits=limits, label=label)


def fit_image(
    prepared: PreparedImage, limit_bytes: int, *, limits: ImageLimits = DEFAULT_IMAGE_LIMITS
) -> PreparedImage:
    """A copy of `prepared` of at most `limit_bytes`, e.g. to re-post under a Discord server's upload limit.

    `prepared` is returned as it is when it already fits. Otherwise the copy is a JPEG, first of the full
    picture at falling quality (90 down to 60), then, only if that is not enough, scaled down with its
    aspect ratio kept, never to `limits.min_side_px` (300 px) or less on its short side, so that the copy
    is still a frame image the providers accept. Prepared images are upright already (`prepare_image`
    applies EXIF orientation); an orientation tag still in the data is applied all the same, and the copy
    carries no EXIF. Transparency is flattened onto white. The returned `info` describes the copy, with a
    note of what was done. Blocking (it decodes and encodes): use `fit_image_async` from the event loop.

    Raises:
        InvalidImageError: not even the smallest allowed size at quality 60 fits; `code` is
            `ImageProblem.TOO_LARGE_AFTER_CONVERSION`.
    """
    if len(prepared.data) <= limit_bytes:
        return prepared
    image = _decoded_for_fit(prepared, limits)
    capped = image.size != (prepared.info.width, prepared.info.height)
    sizes: dict[int, int] = {}
    for quality in _FIT_QUALITIES:
        encoded, _ = _encoded_bytes(image, "JPEG", quality, None)
        if len(encoded) <= limit_bytes:
            note = _fitted_note(image.size if capped else None, quality, limit_bytes)
            return _fitted_copy(prepared, image.size, image.mode, encoded, note)
        sizes[quality] = len(encoded)
    smallest = _scaled_size(image.size, 0.0, limits)
    if smallest != image.size:
        scale, quality, size_bytes = 1.0, _FIT_SCALED_QUALITY, sizes[_FIT_SCALED_QUALITY]
        for _ in range(_FIT_MAX_SCALINGS):
            # A JPEG's size follows its pixel count, so each side shrinks by the root of the excess.
            scale *= math.sqrt(limit_bytes * _FIT_AIM / size_bytes)
            size = _scaled_size(image.size, scale, limits)
            qualities = (quality,) if size != smallest else _FIT_QUALITIES[_FIT_QUALITIES.index(quality) :]
            scaled = image.resize(size, Image.Resampling.LANCZOS)
            for quality_tried in qualities:
                encoded, _ = _encoded_bytes(scaled, "JPEG", quality_tried, None)
                if len(encoded) <= limit_bytes:
                    note = _fitted_note(size, quality_tried, limit_bytes)
                    return _fitted_copy(prepared, size, scaled.mode, encoded, note)
            if size == smallest:
                break
            size_bytes = len(encoded)
    width, height = smallest
    raise InvalidImageError(
        Text(
            "The image cannot be made to fit {limit}: even at {width}×{height} px (the smallest a frame "
            "image may be) as a JPEG of quality {quality}, it would be larger. Use a simpler image or a "
            "server with a higher upload limit.",
            limit=size_text(limit_bytes),
            width=_side(width),
            height=_side(height),
            quality=_FIT_QUALITIES[-1],
        ),
        code=ImageProblem.TOO_LARGE_AFTER_CONVERSION,
    )


async def fit_image_async(
    prepared: PreparedImage, limit_bytes: int, *, limits: ImageLimits = DEFAULT_IMAGE_LIMITS
) -> PreparedImage:
    """`fit_image` in a worker thread, so decoding and encoding never block the event loop."""
    return await asyncio.to_thread(fit_image, prepared, limit_bytes, limits=limits)


#: The longest side of a copy recompressed to fit an upload limit. Seedance makes videos of at most 1080p,
#: so a bigger frame shows nothing more in the video; decoding and holding it would only cost memory.
FIT_MAX_SIDE_PX = 2560
# Rows flattened and reduced at a time (about 6 MB of a 6000 px wide RGBA picture, per copy).
_FLATTEN_STRIP_ROWS = 256
# How many encoded copies of about the original's size may be alive at once while fitting (the buffer being
# written and the last attempt).
_FIT_ENCODED_COPIES = 2
# `fit_image`'s JPEG qualities, best first, and the one a scaled-down copy is written at: with fewer pixels,
# a better quality costs less than it would have at full size, and looks better than more pixels at 60.
_FIT_QUALITIES = (90, 80, 70, 60)
_FIT_SCALED_QUALITY = 80
# Each scaling aims this far under the limit, as the size follows the pixel count only roughly; the
# second attempt, measured from the first, is nearly always within.
_FIT_AIM = 0.95
_FIT_MAX_SCALINGS = 3


def fit_memory_estimate(prepared: PreparedImage, limits: ImageLimits = DEFAULT_IMAGE_LIMITS) -> int:
    """About the most memory `fit_image` holds at once for `prepared`, in bytes (0 when it fits already is
    not known here: the caller knows the limit): the decoded pixels (a JPEG decoded at a reduced scale when
    the copy is capped), the capped copy and its flattened twin, and the encoded outputs."""
    info = prepared.info
    target = _fit_size((info.width, info.height), limits)
    decoded = (info.width, info.height)
    if info.format == "JPEG":
        decoded = _jpeg_draft_size(decoded, target)
    # The decoded pixels, their flattened and reduced copy (as big as they are when it cannot be reduced),
    # then that copy and the final one; plus a strip, and the encoded outputs.
    decoded_bytes = _pixel_bytes(decoded, info.mode)
    factor = max(1, min(decoded[0] // target[0], decoded[1] // target[1]))
    reduced_bytes = _pixel_bytes((decoded[0] // factor, decoded[1] // factor), "RGB")
    strip_bytes = _pixel_bytes((decoded[0], _FLATTEN_STRIP_ROWS), "RGBA") * 3
    return (
        decoded_bytes
        + max(reduced_bytes, 2 * _pixel_bytes(target, "RGB"))
        + strip_bytes
        + _FIT_ENCODED_COPIES * len(prepared.data)
    )


def _decoded_for_fit(prepared: PreparedImage, limits: ImageLimits) -> Image.Image:
    """The pixels of a prepared image, upright, at most `FIT_MAX_SIDE_PX` on the long side, in a mode JPEG
    can hold (L or RGB). A JPEG is decoded straight at a reduced scale when the copy will be smaller."""
    image = _loaded_upright(prepared, limits)  # the only reference: each step below frees the one before
    target = _fit_size(image.size, limits)
    if target == image.size:
        return _without_alpha(image)
    # Averaged down by whole blocks of pixels first (as Pillow's reducing_gap does), flattened on the way,
    # a strip at a time; only then the fine resampling, once the full-size pixels are gone.
    factor = max(1, min(image.width // target[0], image.height // target[1]))
    image = _flattened_reduced(image, factor)
    return image.resize(target, Image.Resampling.LANCZOS)


def _flattened_reduced(image: Image.Image, factor: int) -> Image.Image:
    """`image` without alpha (`_without_alpha`) and reduced by `factor` (a box average), made a strip at a
    time: Pillow would premultiply a whole RGBA image into a full-size copy before reducing it, and
    flattening all of it at once would take another. Box averages of strips aligned on `factor` rows are
    exactly the average of the whole, and flattening commutes with averaging."""
    width, height = image.size
    reduced: Image.Image | None = None
    strip_rows = _FLATTEN_STRIP_ROWS - _FLATTEN_STRIP_ROWS % factor
    for top in range(0, height, strip_rows):
        strip = _without_alpha(image.crop((0, top, width, min(height, top + strip_rows))))
        if factor > 1:
            strip = strip.reduce(factor)
        if reduced is None:
            reduced = Image.new(strip.mode, (-(-width // factor), -(-height // factor)))
        reduced.paste(strip, (0, top // factor))
    assert reduced is not None  # a prepared image has rows
    return reduced


def _loaded_upright(prepared: PreparedImage, limits: ImageLimits) -> Image.Image:
    with _refusing_damaged_data(image_subject("image"), prepared.info.format):
        # Not closed: that would free the pixels. The data is in memory, so no file is left open.
        image = Image.open(io.BytesIO(prepared.data))
        target = _fit_size(image.size, limits)
        if image.format in {"JPEG", "MPO"} and target != image.size:
            # libjpeg scales by 1/2, 1/4 or 1/8 while decoding: a quarter of the memory or less.
            image.draft(image.mode, target)
        image.load()
    # In place: a copy of a 25-megapixel picture would cost another 100 MB.
    ImageOps.exif_transpose(image, in_place=True)
    return image


def _fit_size(size: tuple[int, int], limits: ImageLimits) -> tuple[int, int]:
    """`size`, scaled down (aspect kept) to at most `FIT_MAX_SIDE_PX` on its long side."""
    long_side = max(size)
    return size if long_side <= FIT_MAX_SIDE_PX else _scaled_size(size, FIT_MAX_SIDE_PX / long_side, limits)


def _jpeg_draft_size(size: tuple[int, int], target: tuple[int, int]) -> tuple[int, int]:
    """The size libjpeg decodes `size` at when asked for at least `target` (as `Image.draft` picks)."""
    width, height = size
    scale = 1
    while (
        scale < _JPEG_VERIFY_SCALE
        and -(-width // (scale * 2)) >= target[0]
        and -(-height // (scale * 2)) >= target[1]
    ):
        scale *= 2
    return -(-width // scale), -(-height // scale)


def _pixel_bytes(size: tuple[int, int], mode: str) -> int:
    """The memory Pillow takes for an image of `size` in `mode`: 1 byte a pixel for one 8-bit band, 2 for
    16-bit grey, 4 for everything else (it stores RGB and LA in 4 bytes a pixel, like RGBA)."""
    width, height = size
    per_pixel = 1 if mode in {"1", "L", "P"} else 2 if mode.startswith("I;16") else 4
    return width * height * per_pixel


def _scaled_size(size: tuple[int, int], scale: float, limits: ImageLimits) -> tuple[int, int]:
    """`size` scaled by `scale`, but never to `limits.min_side_px` or less on the short side.

    The long side is derived from the short one, which keeps the aspect ratio as exact as whole pixels
    allow, and is moved a pixel inwards should rounding put the ratio on one of `limits`' (exclusive) bounds.
    """
    width, height = size
    short, long = min(width, height), max(width, height)
    new_short = min(short, max(limits.min_side_px + 1, math.floor(short * scale)))
    new_long = round(new_short * long / short)
    widest = limits.max_aspect if width >= height else 1 / limits.min_aspect
    while new_long > new_short and new_long / new_short >= widest:
        new_long -= 1
    return (new_long, new_short) if width >= height else (new_short, new_long)


def _fitted_note(scaled_to: tuple[int, int] | None, quality: int, limit_bytes: int) -> Text:
    """What `fit_image` did: re-encoded, and scaled down to `scaled_to` when it is not None."""
    if scaled_to is None:
        return Text(
            "re-encoded as JPEG (quality {quality}) to fit {limit}",
            quality=quality,
            limit=size_text(limit_bytes),
        )
    return Text(
        "scaled down to {width}×{height} px and re-encoded as JPEG (quality {quality}) to fit {limit}",
        width=_side(scaled_to[0]),
        height=_side(scaled_to[1]),
        quality=quality,
        limit=size_text(limit_bytes),
    )


def _fitted_copy(
    prepared: PreparedImage, size: tuple[int, int], mode: str, encoded: bytes, note: Text
) -> PreparedImage:
    width, height = size
    info = ImageInfo(
        format="JPEG",
        width=width,
        height=height,
        size_bytes=len(encoded),
        mode=mode,
        frames=prepared.info.frames,
        notes=(*prepared.info.notes, str(note)),
    )
    return PreparedImage(data=encoded, info=info)


# --- checks made before any pixel is decoded ---------------------------------------------------------------


def _check_byte_size(size_bytes: int, limits: ImageLimits, subject: Text) -> None:
    if size_bytes == 0:
        raise InvalidImageError(
            Text("{subject} file is empty (0 bytes).", subject=subject), code=ImageProblem.EMPTY
        )
    if size_bytes >= limits.max_bytes:
        raise InvalidImageError(
            Text(
                "{subject} is {size}; the limit is {limit} (files must be smaller; 1 MB = {megabyte} bytes). "
                "Save it as a smaller JPEG and try again.",
                subject=subject,
                size=exact_size_text(size_bytes, limits.max_bytes),
                limit=size_text(limits.max_bytes),
                megabyte=MEGABYTE,
            ),
            code=ImageProblem.TOO_LARGE_FILE,
        )


@contextmanager
def _open_header(data: bytes, limits: ImageLimits, subject: Text) -> Iterator[ImageFile.ImageFile]:
    """Identify the image and read its header, as `Image.open` does, without decoding any pixels.

    `Image.open` would refuse a huge image itself (DecompressionBombError, without saying its dimensions)
    or warn about it through the process-wide warnings machinery. Our side limit bounds the pixel count far
    below Pillow's threshold, so we run the same registered format openers, minus that check, and judge the
    dimensions ourselves. Pillow's globals (MAX_IMAGE_PIXELS, LOAD_TRUNCATED_IMAGES) are left alone.
    """
    Image.init()  # registers every format plugin; does nothing after the first call
    prefix = data[:16]
    damaged_format: str | None = None
    image: ImageFile.ImageFile | None = None
    for format_id in Image.ID:
        factory, accept = Image.OPEN[format_id]
        verdict = accept(prefix) if accept is not None else True
        if isinstance(verdict, str) or not verdict:  # a str explains why Pillow cannot read this format
            continue
        try:
            image = factory(io.BytesIO(data), "")
        except _NOT_THIS_FORMAT:
            if accept is not None and format_id in limits.formats:
                damaged_format = format_id  # its signature matched, but the header would not parse
            continue
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise _bomb_error(subject, None, len(data)) from exc
        except (OSError, EOFError) as exc:
            if accept is None:  # a format without a signature: this was only a guess
                continue
            raise _damaged_error(subject, format_id) from exc
        break
    if image is None:
        if damaged_format is not None:
            raise _damaged_error(subject, damaged_format)
        raise _unreadable_error(data, limits, subject)
    with image:
        yield image


def _format_name(image: Image.Image) -> str:
    # A multi-picture JPEG (many phone cameras write one) is a plain JPEG whose extra pictures (previews,
    # depth maps) every decoder skips; it is a JPEG for our purposes and is passed on unchanged.
    return "JPEG" if image.format in {"JPEG", "MPO"} else str(image.format)


def _orientation_from_header(image: Image.Image) -> int | None:
    """The EXIF orientation (1-8) found in the header, or None if only decoding could tell."""
    if isinstance(image, PngImagePlugin.PngImageFile) and "exif" not in image.info:
        # Pillow would decode every pixel to look for an eXIf chunk after the image data; we look again
        # once the image has been decoded for verification anyway.
        return None
    return _orientation(image)


def _orientation(image: Image.Image) -> int:
    try:
        orientation = image.getexif().get(ExifTags.Base.Orientation, _ORIENTATION_UPRIGHT)
    except (SyntaxError, ValueError, struct.error, OSError):
        # A broken EXIF block says nothing reliable; the pixels are fine, so the image is taken as stored.
        return _ORIENTATION_UPRIGHT
    if not isinstance(orientation, int) or not 1 <= orientation <= 8:
        return _ORIENTATION_UPRIGHT
    return orientation


def _oriented_size(stored_size: tuple[int, int], orientation: int) -> tuple[int, int]:
    width, height = stored_size
    return (height, width) if orientation in _ORIENTATIONS_THAT_SWAP_SIDES else (width, height)


def _check_header_geometry(
    stored_size: tuple[int, int], orientation: int | None, size_bytes: int, limits: ImageLimits, subject: Text
) -> None:
    """Refuse, before decoding, an image whose dimensions or aspect ratio break `limits`."""
    problem = _geometry_problem(stored_size, orientation or _ORIENTATION_UPRIGHT, size_bytes, limits, subject)
    if problem is None:
        return
    # An orientation that only decoding can reveal (None) might turn the image into one the limits accept,
    # with limits that are not symmetric under rotation (the default ones are): then decode and see.
    if orientation is None and (
        _geometry_problem(stored_size, _TURNED_A_QUARTER, size_bytes, limits, subject) is None
    ):
        return
    raise problem


def _geometry_problem(
    stored_size: tuple[int, int], orientation: int, size_bytes: int, limits: ImageLimits, subject: Text
) -> InvalidImageError | None:
    """What is wrong with the dimensions or aspect ratio, measured as the image is meant to be seen."""
    width, height = _oriented_size(stored_size, orientation)
    if orientation in _ORIENTATIONS_THAT_SWAP_SIDES:
        shown = Text(
            "{width}×{height} px (once turned upright by its EXIF orientation)",
            width=_side(width),
            height=_side(height),
        )
    else:
        shown = Text("{width}×{height} px", width=_side(width), height=_side(height))
    if width >= limits.max_side_px or height >= limits.max_side_px:
        if width * height > _BOMB_PIXELS_PER_FILE_BYTE * size_bytes:
            return _bomb_error(subject, (width, height), size_bytes, limits)
        return InvalidImageError(
            Text(
                "{subject} is {shown}; width and height must each be less than {max_side} px. "
                "Scale it down and try again.",
                subject=subject,
                shown=shown,
                max_side=limits.max_side_px,
            ),
            code=ImageProblem.TOO_BIG,
        )
    if width <= limits.min_side_px or height <= limits.min_side_px:
        return InvalidImageError(
            Text(
                "{subject} is {shown}; width and height must each be more than {min_side} px. "
                "Use a larger image.",
                subject=subject,
                shown=shown,
                min_side=limits.min_side_px,
            ),
            code=ImageProblem.TOO_SMALL,
        )
    aspect = width / height
    if aspect <= limits.min_aspect or aspect >= limits.max_aspect:
        broken_bound = limits.min_aspect if aspect <= limits.min_aspect else limits.max_aspect
        return InvalidImageError(
            Text(
                "{subject} is {shown}, an aspect ratio (width ÷ height) of {aspect}; it must be between "
                "{min_aspect} and {max_aspect} (exclusive). Crop it closer to {shape}.",
                subject=subject,
                shown=shown,
                aspect=_as_number(_format_aspect(aspect, broken_bound)),
                min_aspect=limits.min_aspect,
                max_aspect=limits.max_aspect,
                shape=_suggested_shape(aspect, limits),
            ),
            code=ImageProblem.ASPECT,
        )
    return None


# --- decoding, verification and conversion -----------------------------------------------------------------


@contextmanager
def _refusing_damaged_data(subject: Text, format_name: str) -> Iterator[None]:
    """Turn what Pillow raises on a cut-short, corrupt or bomb-like image into a member-facing refusal."""
    try:
        yield
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _bomb_error(subject, None, None) from exc
    except _DAMAGED_DATA as exc:
        raise _damaged_error(subject, format_name) from exc


def _decode_and_finish(
    image: ImageFile.ImageFile,
    data: bytes,
    *,
    format_name: str,
    header_orientation: int | None,
    frames: int,
    limits: ImageLimits,
    subject: Text,
) -> PreparedImage:
    """Decode the image (proving it is whole), then hand it on as it is or re-encoded where it must change."""
    animated = frames > 1 and image.format != "MPO"
    sixteen_bit_png = format_name == "PNG" and _png_bit_depth(data) == 16
    must_change = (
        animated
        or (header_orientation or _ORIENTATION_UPRIGHT) != _ORIENTATION_UPRIGHT
        or image.mode not in _PASS_THROUGH_MODES
        or sixteen_bit_png
    )
    cleaned: CleanedImage | None = None
    unaccounted = False
    if not must_change:
        cleaned = clean_image_bytes(data, format_name)
        # Bytes that cannot be accounted for without decoding are not passed on: the pixels are re-encoded.
        unaccounted = must_change = cleaned is None
    stored_size = image.size  # `draft` below shrinks `size` to the scaled decode
    if format_name == "PNG" and not must_change and cleaned is not None:
        # A PNG passed on as it is needs no pixels, only proof that they are all there: stream through them.
        verdict = check_png_pixels(data)
        if verdict is PngCheck.DAMAGED:
            raise _damaged_error(subject, format_name)
        if verdict is PngCheck.WHOLE:  # no EXIF in it, so it is upright as stored
            problem = _geometry_problem(stored_size, _ORIENTATION_UPRIGHT, len(data), limits, subject)
            if problem is not None:
                raise problem
            return _passed_on(cleaned, stored_size, image.mode, format_name)
    with _refusing_damaged_data(subject, format_name):
        if animated:
            image.seek(0)
        elif format_name == "JPEG" and not must_change:
            width, height = image.size
            image.draft(None, (max(1, width // _JPEG_VERIFY_SCALE), max(1, height // _JPEG_VERIFY_SCALE)))
        image.load()
    if format_name == "PNG" and _PNG_END_CHUNK not in data:
        raise _damaged_error(subject, format_name)
    orientation = header_orientation
    if orientation is None:  # a PNG: its EXIF, if any, could only be read now that it has been decoded
        orientation = _orientation(image)
        problem = _geometry_problem(stored_size, orientation, len(data), limits, subject)
        if problem is not None:
            raise problem
        must_change = must_change or orientation != _ORIENTATION_UPRIGHT
    if not must_change and cleaned is not None:
        return _passed_on(cleaned, _oriented_size(stored_size, orientation), image.mode, format_name)

    notes: list[Text] = []
    if unaccounted and orientation == _ORIENTATION_UPRIGHT:
        notes.append(_UNACCOUNTED_DATA_NOTE)
    if animated:
        notes.append(_first_frame_note(image, format_name, frames))
    still: Image.Image = image
    if orientation != _ORIENTATION_UPRIGHT:
        still = ImageOps.exif_transpose(image)
        notes.append(Text("turned upright as its EXIF orientation asks"))
    still = _to_common_mode(still, sixteen_bit_png, notes, subject)
    keep_icc_profile = still.mode == image.mode
    return _encode(
        still,
        source_format=format_name,
        frames=frames,
        keep_icc_profile=keep_icc_profile,
        notes=notes,
        limits=limits,
        subject=subject,
    )


def _passed_on(cleaned: CleanedImage, size: tuple[int, int], mode: str, format_name: str) -> PreparedImage:
    """The image as the member sent it, minus what is not the picture (see `bot.domain.image_bytes`)."""
    width, height = size
    info = ImageInfo(
        format=format_name,
        width=width,
        height=height,
        size_bytes=len(cleaned.data),
        mode=mode,
        notes=(str(_TRAILING_DATA_NOTE),) if cleaned.trailing_bytes else (),
    )
    return PreparedImage(data=cleaned.data, info=info)


_TRAILING_DATA_NOTE = Text("data after the end of the image was left out")
_UNACCOUNTED_DATA_NOTE = Text("re-encoded to leave out metadata or data that is not part of the picture")


def _png_bit_depth(data: bytes) -> int:
    # The IHDR chunk always comes first: 8-byte signature, 8-byte chunk head, width, height, then the depth.
    return data[24] if len(data) > 24 else 8


def _first_frame_note(image: Image.Image, format_name: str, frames: int) -> Text:
    if format_name == "TIFF":
        return Text("TIFF with {pages} pages: the first page is used", pages=frames)
    kind = {"WEBP": "WebP"}.get(format_name, format_name)
    return Text("animated {format} with {frames} frames: the first frame is used", format=kind, frames=frames)


def _to_common_mode(
    image: Image.Image, sixteen_bit_png: bool, notes: list[Text], subject: Text
) -> Image.Image:
    """Convert colour modes providers may not decode into 8-bit RGB(A), noting what changed."""
    mode = image.mode
    if mode in _PASS_THROUGH_MODES:
        if sixteen_bit_png:  # Pillow already reads 16-bit colour PNGs as 8 bits; re-encoding makes it so
            notes.append(Text("converted from 16 to 8 bits per channel"))
        return image
    if mode == "CMYK":
        notes.append(Text("converted from CMYK to RGB"))
        return image.convert("RGB")
    if mode in _HIGH_DEPTH_MODES:
        notes.append(_high_depth_note(mode))
        return _high_depth_to_rgb(image)
    target = "RGBA" if "A" in mode or "a" in mode else "RGB"
    try:
        converted = image.convert(target)
    except ValueError as exc:
        raise InvalidImageError(
            Text(
                "{subject} uses the {mode} colour mode, which cannot be converted to RGB. "
                "Save it as an RGB PNG or JPEG and try again.",
                subject=subject,
                mode=mode,
            ),
            code=ImageProblem.UNSUPPORTED_COLOR_MODE,
        ) from exc
    notes.append(Text("converted from {mode} to {target}", mode=mode, target=target))
    return converted


def _high_depth_note(mode: str) -> Text:
    if mode.startswith("I;16"):
        return Text("converted from 16-bit greyscale to 8-bit RGB")
    if mode == "F":
        return Text("converted from 32-bit floating-point greyscale to 8-bit RGB")
    return Text("converted from 32-bit greyscale to 8-bit RGB")


def _high_depth_to_rgb(image: Image.Image) -> Image.Image:
    """Scale greyscale deeper than 8 bits into 0-255 (a plain convert would clip everything above 255)."""
    as_int = image if image.mode in {"I", "F"} else image.convert("I")
    _, brightest = as_int.getextrema()
    brightest_value = float(brightest) if isinstance(brightest, (int, float)) else 0.0
    if brightest_value <= 255:
        scaled = as_int
    else:
        # 16-bit data is scaled as 16-bit whatever it holds, so a dark image stays dark.
        full_scale = 65535.0 if brightest_value <= 65535 else brightest_value
        scaled = as_int.point(lambda value: value * (255.0 / full_scale))
    return scaled.convert("L").convert("RGB")


def _encode(
    image: Image.Image,
    *,
    source_format: str,
    frames: int,
    keep_icc_profile: bool,
    notes: list[Text],
    limits: ImageLimits,
    subject: Text,
) -> PreparedImage:
    """Re-encode as JPEG (a JPEG source) or PNG (lossless for the rest), within the size limit."""
    icc_profile = image.info.get("icc_profile") if keep_icc_profile else None
    attempts: list[tuple[str, int | None]] = []
    if source_format == "JPEG" and image.mode in {"L", "RGB"}:
        attempts.append(("JPEG", _JPEG_QUALITY))
    else:
        attempts.append(("PNG", None))
    attempts.extend(("JPEG", quality) for quality in _FALLBACK_JPEG_QUALITIES)

    encoded = b""
    for attempt_number, (format_name, quality) in enumerate(attempts):
        encoded, mode = _encoded_bytes(image, format_name, quality, icc_profile)
        if len(encoded) < limits.max_bytes:
            if attempt_number > 0 and quality is not None:
                notes.append(
                    Text(
                        "re-encoded as JPEG (quality {quality}) to stay under {limit}",
                        quality=quality,
                        limit=size_text(limits.max_bytes),
                    )
                )
            info = ImageInfo(
                format=format_name,
                width=image.width,
                height=image.height,
                size_bytes=len(encoded),
                mode=mode,
                frames=frames,
                notes=tuple(str(note) for note in notes),
            )
            return PreparedImage(data=encoded, info=info)
    raise InvalidImageError(
        Text(
            "{subject} had to be re-encoded ({notes}) and is then {size}, over the {limit} limit. "
            "Save it as a smaller JPEG and try again.",
            subject=subject,
            notes=_joined_notes(notes),
            size=size_text(len(encoded)),
            limit=size_text(limits.max_bytes),
        ),
        code=ImageProblem.TOO_LARGE_AFTER_CONVERSION,
    )


def _joined_notes(notes: Sequence[Text]) -> Text:
    """The notes said one after the other, "; " between them."""
    if not notes:
        return Text.verbatim("")
    joined = notes[0]
    for note in notes[1:]:
        joined = Text("{notes}; {note}", notes=joined, note=note)
    return joined


#: Every note `ImageInfo.notes` may hold, as templates: `note_text` reads a stored note back with them.
NOTE_TEMPLATES = (
    "data after the end of the image was left out",
    "re-encoded to leave out metadata or data that is not part of the picture",
    "TIFF with {pages} pages: the first page is used",
    "animated {format} with {frames} frames: the first frame is used",
    "turned upright as its EXIF orientation asks",
    "converted from 16 to 8 bits per channel",
    "converted from CMYK to RGB",
    "converted from 16-bit greyscale to 8-bit RGB",
    "converted from 32-bit floating-point greyscale to 8-bit RGB",
    "converted from 32-bit greyscale to 8-bit RGB",
    "converted from {mode} to {target}",
    "re-encoded as JPEG (quality {quality}) to stay under {limit}",
    "re-encoded as JPEG (quality {quality}) to fit {limit}",
    "scaled down to {width}×{height} px and re-encoded as JPEG (quality {quality}) to fit {limit}",
)
#: The sizes a note's `{limit}` is written as (see `size_text`).
_SIZE_TEMPLATES = ("{amount} GB", "{amount} MB", "{amount} KB", "{count} bytes")


def note_text(note: str) -> Text:
    """A note stored in `ImageInfo.notes` (English) as a `Text` to say in the reader's language.

    Notes are stored as English sentences with the job; this reads one back with its values ("animated GIF
    with 12 frames…": 12 and GIF), so that the catalogues translate it whatever its numbers. A note no
    template writes (one from an older version) is looked up as it is and otherwise stays English.
    """
    return read_back(note, NOTE_TEMPLATES, parts=_SIZE_TEMPLATES)


def _encoded_bytes(
    image: Image.Image, format_name: str, quality: int | None, icc_profile: object
) -> tuple[bytes, str]:
    """The image encoded as `format_name`, and the colour mode it was written in."""
    buffer = io.BytesIO()
    options: dict[str, object] = {}
    if isinstance(icc_profile, bytes):
        options["icc_profile"] = icc_profile
    if format_name == "JPEG":
        image = _without_alpha(image)
        options["quality"] = quality
    image.save(buffer, format_name, **options)
    encoded = buffer.getvalue()
    # Pillow copies some of the source's metadata (a JPEG comment, for one) into what it writes.
    cleaned = clean_image_bytes(encoded, format_name)
    return (cleaned.data if cleaned is not None else encoded), image.mode


def _without_alpha(image: Image.Image) -> Image.Image:
    """The image flattened onto white, as JPEG has no transparency."""
    if image.mode in {"L", "RGB"}:
        return image
    has_transparency = image.mode in {"LA", "RGBA", "PA"} or "transparency" in image.info
    if not has_transparency:
        return image.convert("RGB")
    rgba = image if image.mode == "RGBA" else image.convert("RGBA")
    # Pasting through the alpha channel composites onto white with one new image, where alpha_composite
    # and a conversion would take three.
    flattened = Image.new("RGB", rgba.size, (255, 255, 255))
    flattened.paste(rgba, mask=rgba.getchannel("A"))
    return flattened


# --- messages ----------------------------------------------------------------------------------------------


def image_subject(label: str) -> Text:
    """How refusals name an image at the start of a sentence: "first frame" gives "The first frame".

    Each label the bot uses is a sentence of its own, so that every language can say it its way (and
    agree with it); any other label is said as "The <label>".
    """
    words = label.split()
    match words:
        case ["image"]:
            return Text("The image")
        case ["first", "frame"]:
            return Text("The first frame")
        case ["last", "frame"]:
            return Text("The last frame")
        case ["reference", "image", number] if number.isdigit():
            return Text("The reference image {number}", number=int(number))
    return Text("The {label}", label=label)


def _bomb_error(
    subject: Text,
    size: tuple[int, int] | None,
    size_bytes: int | None,
    limits: ImageLimits = DEFAULT_IMAGE_LIMITS,
) -> InvalidImageError:
    if size is None:
        message = Text(
            "{subject} declares far more pixels than its file could hold, so it was not opened "
            "(it looks like a decompression bomb). Use an ordinary photo or drawing.",
            subject=subject,
        )
        return InvalidImageError(message, code=ImageProblem.DECOMPRESSION_BOMB)
    width, height = size
    pixels = width * height  # at least 16,384 per byte of file: always grouped, as `{:,}` did
    values: dict[str, int | str | Text] = {
        "subject": subject,
        "width": _side(width),
        "height": _side(height),
        "pixels": pixels,
        "memory": size_text(pixels * 4),
        "max_side": limits.max_side_px,
    }
    if size_bytes is None:
        message = Text(
            "{subject} claims to be {width}×{height} px ({pixels} pixels); decoding it would need about "
            "{memory} of memory, so it was not opened. Width and height must each be less than "
            "{max_side} px.",
            **values,
        )
    else:
        message = Text(
            "{subject} claims to be {width}×{height} px ({pixels} pixels) in a file of only {file_size}; "
            "decoding it would need about {memory} of memory, so it was not opened. Width and height must "
            "each be less than {max_side} px.",
            file_size=size_text(size_bytes),
            **values,
        )
    return InvalidImageError(message, code=ImageProblem.DECOMPRESSION_BOMB)


def _damaged_error(subject: Text, format_name: str) -> InvalidImageError:
    return InvalidImageError(
        Text(
            "{subject} file is cut short or damaged: it looks like a {format} image but cannot be decoded. "
            "Save or export it again and re-upload it.",
            subject=subject,
            format=format_name,
        ),
        code=ImageProblem.TRUNCATED,
    )


def _unreadable_error(data: bytes, limits: ImageLimits, subject: Text) -> InvalidImageError:
    allowed = _allowed_formats(limits)
    kind = _sniff_kind(data)
    if kind is _Kind.SVG:
        return InvalidImageError(
            Text(
                "{subject} is an SVG drawing, which is not supported. Allowed formats: {allowed}. "
                "Export it as PNG and try again.",
                subject=subject,
                allowed=allowed,
            ),
            code=ImageProblem.UNSUPPORTED_FORMAT,
        )
    if kind in {_Kind.HEIC, _Kind.AVIF}:
        return InvalidImageError(
            Text(
                "{subject} is {kind}, which is not supported. Allowed formats: {allowed}. Export or share it "
                "as JPEG and try again (on an iPhone: Settings › Camera › Formats › Most Compatible).",
                subject=subject,
                kind=_KIND_TEXTS[kind],
                allowed=allowed,
            ),
            code=ImageProblem.UNSUPPORTED_FORMAT,
        )
    return InvalidImageError(
        Text(
            "{subject} is not an image file the bot can read (it looks like {kind}). "
            "Allowed formats: {allowed}.",
            subject=subject,
            kind=_KIND_TEXTS[kind],
            allowed=allowed,
        ),
        code=ImageProblem.NOT_AN_IMAGE,
    )


def _allowed_formats(limits: ImageLimits) -> str:
    known = [name for name in _FORMAT_DISPLAY_ORDER if name in limits.formats]
    others = sorted(limits.formats.difference(_FORMAT_DISPLAY_ORDER))
    return ", ".join(known + others)


def format_bytes(size_bytes: int | None) -> str:
    """A size as members read it, in decimal units: "30 MB", "1.5 KB", "812 bytes"."""
    if size_bytes is None:
        return "an unknown size"
    for unit_name, unit in (("GB", 1000 * MEGABYTE), ("MB", MEGABYTE), ("KB", 1000)):
        if size_bytes >= unit:
            return f"{size_bytes / unit:.1f}".removesuffix(".0") + f" {unit_name}"
    return f"{size_bytes:,} bytes"


def size_text(size_bytes: int | None) -> Text:
    """`format_bytes` as a sentence piece, so that each language writes the number its way ("1,5 MB")."""
    if size_bytes is None:
        return Text("an unknown size")
    if size_bytes >= 1000 * MEGABYTE:
        return Text("{amount} GB", amount=_one_decimal(size_bytes / (1000 * MEGABYTE)))
    if size_bytes >= MEGABYTE:
        return Text("{amount} MB", amount=_one_decimal(size_bytes / MEGABYTE))
    if size_bytes >= 1000:
        return Text("{amount} KB", amount=_one_decimal(size_bytes / 1000))
    return Text("{count} bytes", count=size_bytes)


def exact_size_text(size_bytes: int, limit_bytes: int) -> Text:
    """`size_text`, with the exact byte count when rounding would make it read as the limit it broke."""
    shown = size_text(size_bytes)
    if str(shown) == str(size_text(limit_bytes)):
        return Text("{size} ({count} bytes)", size=shown, count=_grouped(size_bytes))
    return shown


def _grouped(count: int) -> int | str:
    # English always groups an exact byte count ("3,129 bytes"); a `Text` groups from 10,000 on, so the
    # few counts below that (only with limits under 10 KB) are written as English writes them.
    return count if count >= 10_000 or count < 1000 else f"{count:,}"


def _one_decimal(amount: float) -> float:
    # What `format_bytes` shows ("1.5", "30"): rounded to one decimal; `{:g}` then drops a ".0".
    return float(f"{amount:.1f}")


def _side(pixels: int) -> str:
    # A side is written as it is in every language, never grouped: "100000 px", not "100,000 px".
    return str(pixels)


def _as_number(text: str) -> float | str:
    """A decimal as a number each language writes its way, unless English shows trailing zeros ("2.50")."""
    number = float(text)
    return number if f"{number:g}" == text else text


def _format_aspect(aspect: float, broken_bound: float) -> str:
    text = f"{aspect:.2f}"
    if aspect != broken_bound and float(text) == broken_bound:  # 2.501 must not read as "2.50"
        text = f"{aspect:.4f}"
    return text


def _suggested_shape(aspect: float, limits: ImageLimits) -> str:
    for name, value in (("16:9", 16 / 9), ("9:16", 9 / 16)):
        wanted_side = value > 1 if aspect >= limits.max_aspect else value < 1
        if wanted_side and limits.min_aspect < value < limits.max_aspect:
            return name
    return "a square"


# --- telling what a non-image is, from its first bytes -----------------------------------------------------


class _Kind(StrEnum):
    SVG = "an SVG drawing"
    HEIC = "a HEIC photo"
    AVIF = "an AVIF image"
    PDF = "a PDF document"
    ZIP = "a ZIP archive or Office document"
    MP4 = "an MP4 video"
    QUICKTIME = "a QuickTime (MOV) video"
    MATROSKA = "a WebM or MKV video"
    AVI = "an AVI video"
    WAV = "a WAV audio file"
    MP3 = "an MP3 audio file"
    OGG = "an Ogg audio or video file"
    GZIP = "a gzip archive"
    HTML = "a web page (HTML), perhaps an error page instead of the image"
    JSON = "JSON data"
    XML = "an XML document"
    TEXT = "plain text"
    BINARY = "unrecognised binary data"


#: How refusals name each kind, translated like any other sentence.
_KIND_TEXTS: dict[_Kind, Text] = {
    _Kind.SVG: Text("an SVG drawing"),
    _Kind.HEIC: Text("a HEIC photo"),
    _Kind.AVIF: Text("an AVIF image"),
    _Kind.PDF: Text("a PDF document"),
    _Kind.ZIP: Text("a ZIP archive or Office document"),
    _Kind.MP4: Text("an MP4 video"),
    _Kind.QUICKTIME: Text("a QuickTime (MOV) video"),
    _Kind.MATROSKA: Text("a WebM or MKV video"),
    _Kind.AVI: Text("an AVI video"),
    _Kind.WAV: Text("a WAV audio file"),
    _Kind.MP3: Text("an MP3 audio file"),
    _Kind.OGG: Text("an Ogg audio or video file"),
    _Kind.GZIP: Text("a gzip archive"),
    _Kind.HTML: Text("a web page (HTML), perhaps an error page instead of the image"),
    _Kind.JSON: Text("JSON data"),
    _Kind.XML: Text("an XML document"),
    _Kind.TEXT: Text("plain text"),
    _Kind.BINARY: Text("unrecognised binary data"),
}

_SIGNATURES: tuple[tuple[bytes, _Kind], ...] = (
    (b"%PDF-", _Kind.PDF),
    (b"PK\x03\x04", _Kind.ZIP),
    (b"\x1a\x45\xdf\xa3", _Kind.MATROSKA),
    (b"OggS", _Kind.OGG),
    (b"ID3", _Kind.MP3),
    (b"\x1f\x8b", _Kind.GZIP),
)
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"})
_AVIF_BRANDS = frozenset({b"avif", b"avis"})


def _sniff_kind(data: bytes) -> _Kind:
    """A cheap guess at what a file Pillow cannot read is, so the member knows what they sent."""
    for signature, kind in _SIGNATURES:
        if data.startswith(signature):
            return kind
    if data[4:8] == b"ftyp":  # the ISO media family: MP4, MOV, HEIC, AVIF
        brand = data[8:12]
        if brand in _HEIF_BRANDS:
            return _Kind.HEIC
        if brand in _AVIF_BRANDS:
            return _Kind.AVIF
        return _Kind.QUICKTIME if brand == b"qt  " else _Kind.MP4
    if data.startswith(b"RIFF"):
        return {b"WAVE": _Kind.WAV, b"AVI ": _Kind.AVI}.get(data[8:12], _Kind.BINARY)
    return _sniff_text(data[:4096])


def _sniff_text(head: bytes) -> _Kind:
    if b"\x00" in head:
        return _Kind.BINARY
    text = head.decode("utf-8", errors="replace")
    if text.count("\ufffd") > 2:  # a few may come from a character cut at the end of `head`
        return _Kind.BINARY
    lowered = text.lstrip("\ufeff \t\r\n").lower()
    if "<svg" in lowered:
        return _Kind.SVG
    if lowered.startswith(("<!doctype html", "<html", "<head", "<body")):
        return _Kind.HTML
    if lowered.startswith("<?xml"):
        return _Kind.XML
    if lowered.startswith(("{", "[")):
        return _Kind.JSON
    return _Kind.TEXT
