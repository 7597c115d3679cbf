"""Frame images are refused with a specific reason, or handed on as bytes every provider can use."""

from __future__ import annotations

import io
import random
import struct
import time
import zlib
from collections.abc import Callable

import pytest
from PIL import ExifTags, Image, ImageFile

from bot.domain.errors import InvalidImageError
from bot.domain.images import (
    DEFAULT_IMAGE_LIMITS,
    ImageLimits,
    ImageProblem,
    PreparedImage,
    prepare_image,
    prepare_image_async,
)
from tests.doubles.media import make_mp4

MB = 1_000_000


# --- building images in memory ------------------------------------------------------------------------------


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def solid(width: int, height: int, fmt: str = "PNG", mode: str = "RGB", **options: object) -> bytes:
    colour: int | tuple[int, ...] = (
        128 if mode in {"1", "L", "P", "I;16"} else (200, 80, 40, 255)[: len(mode)]
    )
    return encode(Image.new(mode, (width, height), colour), fmt, **options)


def noise(width: int, height: int, seed: int = 1) -> Image.Image:
    """Random pixels: they compress badly, which makes file sizes predictable."""
    return Image.frombytes("RGB", (width, height), random.Random(seed).randbytes(width * height * 3))


def halves(width: int, height: int, top: str, bottom: str) -> Image.Image:
    """An image whose top half is `top` and bottom half `bottom`, to see which way it was turned."""
    image = Image.new("RGB", (width, height), bottom)
    image.paste(Image.new("RGB", (width, height // 2), top), (0, 0))
    return image


def exif_with_orientation(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    return exif.tobytes()


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def handmade_png(width: int, height: int, *, bit_depth: int, colour_type: int, rows: bytes) -> bytes:
    """A PNG built byte by byte (valid CRCs), to declare what Pillow would never write."""
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(rows))
        + png_chunk(b"IEND", b"")
    )


def decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def refusal(
    data: bytes, *, limits: ImageLimits = DEFAULT_IMAGE_LIMITS, label: str = "image"
) -> InvalidImageError:
    with pytest.raises(InvalidImageError) as caught:
        prepare_image(data, limits=limits, label=label)
    return caught.value


ForbidDecoding = Callable[[], None]


@pytest.fixture
def forbid_decoding(monkeypatch: pytest.MonkeyPatch) -> ForbidDecoding:
    """Call it once the test's images are built: from then on, decoding any pixel fails the test."""

    def explode(self: Image.Image) -> None:
        raise AssertionError("pixels were decoded")

    def forbid() -> None:
        monkeypatch.setattr(ImageFile.ImageFile, "load", explode)
        monkeypatch.setattr(Image.Image, "load", explode)

    return forbid


# --- accepted as they are -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "mode"),
    [
        ("JPEG", "RGB"),
        ("JPEG", "L"),
        ("PNG", "RGB"),
        ("WEBP", "RGB"),
        ("BMP", "RGB"),
        ("TIFF", "RGB"),
        ("GIF", "P"),
    ],
)
def test_a_valid_still_image_in_an_allowed_format_is_handed_on_byte_for_byte(fmt: str, mode: str) -> None:
    data = solid(640, 480, fmt, mode)

    prepared = prepare_image(data)

    assert prepared.data == data
    assert prepared.info.format == fmt
    assert (prepared.info.width, prepared.info.height) == (640, 480)
    assert prepared.info.size_bytes == len(data)
    assert prepared.info.mode == mode
    assert (prepared.info.frames, prepared.info.notes) == (1, ())


@pytest.mark.parametrize("mode", ["P", "LA", "RGBA", "1"])
def test_palette_transparent_and_bilevel_pngs_are_handed_on_unchanged(mode: str) -> None:
    image = Image.new(mode, (500, 400))
    if mode == "P":
        image.info["transparency"] = 0
    data = encode(image, "PNG")

    prepared = prepare_image(data)

    assert prepared.data == data
    assert (prepared.info.mode, prepared.info.notes) == (mode, ())


def test_a_multi_picture_jpeg_from_a_phone_is_a_plain_jpeg_and_is_handed_on() -> None:
    data = encode(
        Image.new("RGB", (640, 480), "red"),
        "MPO",
        save_all=True,
        append_images=[Image.new("RGB", (640, 480))],
    )
    assert Image.open(io.BytesIO(data)).format == "MPO"

    prepared = prepare_image(data)

    assert prepared.data == data
    assert (prepared.info.format, prepared.info.frames, prepared.info.notes) == ("JPEG", 1, ())


# --- the documented rules, at their boundaries --------------------------------------------------------------


def test_the_default_limits_are_the_documented_rules() -> None:
    limits = ImageLimits()

    assert limits.max_bytes == 30_000_000
    assert (limits.min_side_px, limits.max_side_px) == (300, 6000)
    assert (limits.min_aspect, limits.max_aspect) == (0.4, 2.5)
    assert limits.formats == {"JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF"}


@pytest.mark.parametrize(
    ("width", "height", "problem"),
    [
        (301, 301, None),
        (300, 301, ImageProblem.TOO_SMALL),
        (301, 300, ImageProblem.TOO_SMALL),
        (5999, 3000, None),
        (3000, 5999, None),
        (6000, 3000, ImageProblem.TOO_BIG),
        (3000, 6000, ImageProblem.TOO_BIG),
    ],
)
def test_each_side_must_be_more_than_300_and_less_than_6000_px(
    width: int, height: int, problem: ImageProblem | None
) -> None:
    data = solid(width, height, "PNG", "L", compress_level=1)

    if problem is None:
        info = prepare_image(data).info
        assert (info.width, info.height) == (width, height)
    else:
        error = refusal(data)
        assert error.code == problem
        assert f"{width}×{height} px" in error.message
        assert (
            "more than 300 px" if problem is ImageProblem.TOO_SMALL else "less than 6000 px"
        ) in error.message


@pytest.mark.parametrize(
    ("width", "height", "problem", "shown"),
    [
        (999, 400, None, ""),
        (1000, 400, ImageProblem.ASPECT, "of 2.50;"),
        (1001, 400, ImageProblem.ASPECT, "of 2.5025;"),  # never "2.50" for a ratio that is not 2.5
        (401, 1000, None, ""),
        (400, 1000, ImageProblem.ASPECT, "of 0.40;"),
        (3000, 1000, ImageProblem.ASPECT, "of 3.00;"),
    ],
)
def test_the_aspect_ratio_must_lie_strictly_between_0_4_and_2_5(
    width: int, height: int, problem: ImageProblem | None, shown: str
) -> None:
    data = solid(width, height)

    if problem is None:
        assert prepare_image(data).data == data
    else:
        error = refusal(data)
        assert error.code == problem
        assert f"{width}×{height} px" in error.message
        assert shown in error.message
        assert "between 0.4 and 2.5" in error.message


def test_a_too_wide_image_is_told_to_crop_towards_16_9_and_a_too_tall_one_towards_9_16() -> None:
    assert "Crop it closer to 16:9" in refusal(solid(3000, 1000)).message
    assert "Crop it closer to 9:16" in refusal(solid(1000, 3000)).message


def test_the_file_must_be_strictly_smaller_than_the_byte_limit() -> None:
    data = solid(400, 400, "JPEG")

    assert prepare_image(data, limits=ImageLimits(max_bytes=len(data) + 1)).data == data
    error = refusal(data, limits=ImageLimits(max_bytes=len(data)))
    assert error.code == ImageProblem.TOO_LARGE_FILE
    assert f"{len(data):,} bytes" in error.message


def test_a_30_mb_file_is_refused_by_its_size_before_pillow_reads_a_byte(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def untouchable(*args: object, **kwargs: object) -> None:
        raise AssertionError("Pillow was asked to read the file")

    monkeypatch.setattr(Image, "open", untouchable)
    monkeypatch.setattr(ImageFile.ImageFile, "__init__", untouchable)

    error = refusal(bytes(30 * MB))

    assert error.code == ImageProblem.TOO_LARGE_FILE
    assert "is 30 MB (30,000,000 bytes); the limit is 30 MB" in error.message
    assert "1 MB = 1,000,000 bytes" in error.message


def test_a_file_one_byte_under_30_mb_gets_past_the_size_check() -> None:
    assert refusal(bytes(30 * MB - 1)).code == ImageProblem.NOT_AN_IMAGE


def test_a_large_file_states_its_size_in_mb() -> None:
    error = refusal(bytes(31 * MB + MB // 5))

    assert "is 31.2 MB; the limit is 30 MB" in error.message


def test_an_empty_file_is_refused() -> None:
    error = refusal(b"")

    assert (error.code, error.message) == (ImageProblem.EMPTY, "The image file is empty (0 bytes).")


def test_the_label_names_the_image_in_messages() -> None:
    error = refusal(solid(250, 400), label="last frame")

    assert error.message.startswith("The last frame is 250×400 px;")


# --- decompression bombs ------------------------------------------------------------------------------------


def test_a_tiny_png_claiming_100000_by_100000_px_is_refused_from_its_header(
    forbid_decoding: ForbidDecoding,
) -> None:
    bomb = handmade_png(100_000, 100_000, bit_depth=8, colour_type=2, rows=b"\x00" * 301)
    forbid_decoding()
    started = time.perf_counter()

    error = refusal(bomb)

    assert time.perf_counter() - started < 0.5
    assert error.code == ImageProblem.DECOMPRESSION_BOMB
    assert "100000×100000 px" in error.message
    assert "10,000,000,000 pixels" in error.message
    assert "less than 6000 px" in error.message
    assert Image.MAX_IMAGE_PIXELS == 1024 * 1024 * 1024 // 4 // 3  # Pillow's global was left alone
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_a_tiny_gif_claiming_a_65535_px_square_screen_is_refused_from_its_header(
    forbid_decoding: ForbidDecoding,
) -> None:
    gif = bytearray(solid(1, 1, "GIF", "P"))
    gif[6:10] = struct.pack("<HH", 65535, 65535)  # the logical screen size
    forbid_decoding()

    error = refusal(bytes(gif))

    assert error.code == ImageProblem.DECOMPRESSION_BOMB
    assert "65535×65535 px" in error.message


def test_a_real_but_oversized_photo_is_too_big_rather_than_a_bomb(forbid_decoding: ForbidDecoding) -> None:
    photo = encode(noise(640, 480), "JPEG")
    forbid_decoding()

    error = refusal(photo, limits=ImageLimits(max_side_px=600))

    assert error.code == ImageProblem.TOO_BIG
    assert "640×480 px" in error.message


# --- EXIF orientation ---------------------------------------------------------------------------------------


def test_rules_are_applied_to_the_upright_image_from_the_header(forbid_decoding: ForbidDecoding) -> None:
    data = solid(400, 1200, "JPEG", exif=exif_with_orientation(6))
    forbid_decoding()

    error = refusal(data)

    assert error.code == ImageProblem.ASPECT
    assert "1200×400 px (once turned upright by its EXIF orientation)" in error.message
    assert "of 3.00;" in error.message


# These limits are not symmetric under rotation (the default ones are: 1 / 0.4 == 2.5), so turning the image
# upright decides whether it is accepted.
LANDSCAPE_ONLY = ImageLimits(min_aspect=0.9)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_a_portrait_stored_image_turned_landscape_by_exif_is_accepted_and_sent_upright(fmt: str) -> None:
    stored = halves(400, 800, top="red", bottom="blue")
    data = encode(stored, fmt, exif=exif_with_orientation(6))  # 6: turn 90° clockwise to view
    assert refusal(encode(stored, fmt), limits=LANDSCAPE_ONLY).code == ImageProblem.ASPECT

    prepared = prepare_image(data, limits=LANDSCAPE_ONLY)

    assert (prepared.info.width, prepared.info.height) == (800, 400)
    assert prepared.info.format == ("JPEG" if fmt == "JPEG" else "PNG")
    assert prepared.info.notes == ("turned upright as its EXIF orientation asks",)
    sent = decoded(prepared.data)
    assert sent.size == (800, 400)
    assert sent.getexif().get(ExifTags.Base.Orientation, 1) == 1
    left, right = sent.convert("RGB").getpixel((200, 200)), sent.convert("RGB").getpixel((600, 200))
    assert isinstance(left, tuple) and isinstance(right, tuple)
    assert left[2] > 200 > left[0]  # the stored bottom (blue) is now on the left
    assert right[0] > 200 > right[2]  # the stored top (red) is now on the right


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_a_landscape_stored_image_turned_portrait_by_exif_is_refused(fmt: str) -> None:
    stored = Image.new("RGB", (800, 400))
    assert prepare_image(encode(stored, fmt), limits=LANDSCAPE_ONLY).info.width == 800

    error = refusal(encode(stored, fmt, exif=exif_with_orientation(8)), limits=LANDSCAPE_ONLY)

    assert error.code == ImageProblem.ASPECT
    assert "400×800 px (once turned upright" in error.message


def png_with_exif_after_its_pixels(image: Image.Image, orientation: int) -> bytes:
    """A PNG whose eXIf chunk follows the image data, where only decoding finds it."""
    data = encode(image, "PNG")
    end = png_chunk(b"IEND", b"")
    exif_chunk = png_chunk(b"eXIf", exif_with_orientation(orientation).removeprefix(b"Exif\x00\x00"))
    return data.removesuffix(end) + exif_chunk + end


def test_an_orientation_found_after_the_pixels_of_a_png_still_turns_it_upright() -> None:
    data = png_with_exif_after_its_pixels(halves(400, 800, top="red", bottom="blue"), 6)

    prepared = prepare_image(data, limits=LANDSCAPE_ONLY)

    assert (prepared.info.width, prepared.info.height) == (800, 400)
    assert prepared.info.notes == ("turned upright as its EXIF orientation asks",)
    assert decoded(prepared.data).getpixel((600, 200)) == (255, 0, 0)


def test_an_orientation_found_after_the_pixels_of_a_png_can_make_it_refused() -> None:
    data = png_with_exif_after_its_pixels(Image.new("RGB", (800, 400)), 8)

    error = refusal(data, limits=LANDSCAPE_ONLY)

    assert error.code == ImageProblem.ASPECT
    assert "400×800 px (once turned upright" in error.message


def test_an_upright_orientation_tag_changes_nothing() -> None:
    data = solid(640, 480, "JPEG", exif=exif_with_orientation(1))

    assert prepare_image(data).data == data


# --- not images, unsupported formats, damaged files ---------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "looks_like"),
    [
        (b"Just some notes about my cat.\nShe likes boxes.\n", "plain text"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n", "a PDF document"),
        (make_mp4(0.5), "an MP4 video"),
        (b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + bytes(40), "a ZIP archive"),
        (random.Random(7).randbytes(4096), "unrecognised binary data"),
        (
            b"<!DOCTYPE html>\n<html><head><title>403 Forbidden</title></head>"
            b"<body>Access denied</body></html>",
            "a web page (HTML)",
        ),
        (b'{"error": "attachment expired"}', "JSON data"),
    ],
    ids=["text", "pdf", "mp4", "zip", "random", "html", "json"],
)
def test_a_file_that_is_not_an_image_is_refused_saying_what_it_looks_like(
    data: bytes, looks_like: str
) -> None:
    error = refusal(data)

    assert error.code == ImageProblem.NOT_AN_IMAGE
    assert f"(it looks like {looks_like}" in error.message
    assert "JPEG, PNG, WEBP, BMP, TIFF, GIF" in error.message


@pytest.mark.parametrize(
    ("data", "named"),
    [
        (solid(400, 400, "ICO", sizes=[(256, 256)]), "in ICO format"),
        (solid(400, 400, "PPM"), "in PPM format"),
        (solid(400, 400, "PCX"), "in PCX format"),
        (solid(400, 400, "TGA"), "in TGA format"),
        (
            b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="400" height="400">'
            b'<rect width="400" height="400" fill="red"/></svg>',
            "an SVG drawing",
        ),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64), "a HEIC photo"),
    ],
    ids=["ico", "ppm", "pcx", "tga", "svg", "heic"],
)
def test_an_image_in_an_unsupported_format_is_refused_naming_the_format(data: bytes, named: str) -> None:
    error = refusal(data)

    assert error.code == ImageProblem.UNSUPPORTED_FORMAT
    assert named in error.message
    assert "Allowed formats: JPEG, PNG, WEBP, BMP, TIFF, GIF" in error.message


def test_a_format_left_out_of_the_limits_is_refused_even_if_providers_accept_it() -> None:
    error = refusal(solid(400, 400, "GIF", "P"), limits=ImageLimits(formats=frozenset({"JPEG", "PNG"})))

    assert error.code == ImageProblem.UNSUPPORTED_FORMAT
    assert "in GIF format" in error.message
    assert "Allowed formats: JPEG, PNG." in error.message


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF"])
@pytest.mark.parametrize("kept", [0.5, 0.98])
def test_a_file_cut_short_is_refused_as_damaged(fmt: str, kept: float) -> None:
    whole = encode(noise(500, 400), fmt)

    error = refusal(whole[: int(len(whole) * kept)])

    assert error.code == ImageProblem.TRUNCATED
    assert f"cut short or damaged: it looks like a {fmt} image" in error.message


@pytest.mark.parametrize(
    ("fmt", "options"),
    [("JPEG", {}), ("JPEG", {"progressive": True}), ("PNG", {})],
    ids=["jpeg", "progressive", "png"],
)
def test_a_file_missing_only_its_last_bytes_is_refused_as_damaged(
    fmt: str, options: dict[str, object]
) -> None:
    whole = encode(noise(500, 400), fmt, **options)

    assert refusal(whole[:-2]).code == ImageProblem.TRUNCATED


def test_a_png_cut_inside_its_header_is_refused_as_damaged() -> None:
    assert refusal(solid(500, 400)[:30]).code == ImageProblem.TRUNCATED


# --- images that must change before a provider sees them ----------------------------------------------------


def animation(fmt: str, frames: int) -> bytes:
    colours = ["red", "lime", "blue", "yellow", "white"][:frames]
    images = [Image.new("RGB", (500, 400), colour) for colour in colours]
    lossless = {"lossless": True} if fmt == "WEBP" else {}  # so that colours survive exactly
    return encode(images[0], fmt, save_all=True, append_images=images[1:], duration=100, loop=0, **lossless)


@pytest.mark.parametrize(
    ("fmt", "note"),
    [
        ("GIF", "animated GIF with 5 frames: the first frame is used"),
        ("WEBP", "animated WebP with 5 frames: the first frame is used"),
        ("PNG", "animated PNG with 5 frames: the first frame is used"),
        ("TIFF", "TIFF with 5 pages: the first page is used"),
    ],
)
def test_an_animation_is_replaced_by_its_first_frame_as_a_still_png(fmt: str, note: str) -> None:
    data = animation(fmt, 5)
    assert getattr(Image.open(io.BytesIO(data)), "n_frames", 1) == 5

    prepared = prepare_image(data)

    assert (prepared.info.format, prepared.info.frames, prepared.info.notes) == ("PNG", 5, (note,))
    still = decoded(prepared.data)
    assert still.format == "PNG"
    assert getattr(still, "n_frames", 1) == 1
    assert (still.size, (prepared.info.width, prepared.info.height)) == ((500, 400), (500, 400))
    assert still.convert("RGB").getpixel((250, 200)) == (255, 0, 0)  # the first frame is red
    assert prepared.info.size_bytes == len(prepared.data)


def test_a_cmyk_jpeg_becomes_an_rgb_jpeg_of_the_same_colours() -> None:
    data = encode(Image.new("CMYK", (500, 400), (0, 255, 255, 0)), "JPEG")  # pure red in CMYK

    prepared = prepare_image(data)

    assert (prepared.info.format, prepared.info.mode) == ("JPEG", "RGB")
    assert prepared.info.notes == ("converted from CMYK to RGB",)
    sent = decoded(prepared.data)
    assert sent.mode == "RGB"
    pixel = sent.getpixel((250, 200))
    assert isinstance(pixel, tuple)
    red, green, blue = pixel
    assert red > 240 and green < 15 and blue < 15


def test_a_16_bit_greyscale_png_becomes_8_bit_rgb_keeping_its_brightness() -> None:
    data = encode(Image.new("I;16", (500, 400), 40_000), "PNG")

    prepared = prepare_image(data)

    assert (prepared.info.format, prepared.info.mode) == ("PNG", "RGB")
    assert prepared.info.notes == ("converted from 16-bit greyscale to 8-bit RGB",)
    sent = decoded(prepared.data)
    assert sent.mode == "RGB"
    assert sent.getpixel((0, 0)) in {(155, 155, 155), (156, 156, 156)}  # 40000 / 65535 of full white


def test_a_16_bit_colour_png_is_re_encoded_with_8_bits_per_channel() -> None:
    row = b"\x00" + b"\xff\xff\x80\x00\x00\x00" * 400  # filter byte, then 16-bit (R, G, B) per pixel
    data = handmade_png(400, 400, bit_depth=16, colour_type=2, rows=row * 400)

    prepared = prepare_image(data)

    assert prepared.info.notes == ("converted from 16 to 8 bits per channel",)
    assert prepared.data[24] == 8  # the bit depth in the IHDR chunk
    assert decoded(prepared.data).getpixel((10, 10)) == (255, 128, 0)


def test_a_conversion_too_big_as_png_falls_back_to_jpeg_within_the_limit() -> None:
    frames = [noise(400, 400, seed) for seed in (1, 2)]
    data = encode(frames[0], "WEBP", save_all=True, append_images=frames[1:], quality=30)
    limits = ImageLimits(max_bytes=300_000)
    assert len(encode(frames[0], "PNG")) > limits.max_bytes > len(data)

    prepared = prepare_image(data, limits=limits)

    assert prepared.info.format == "JPEG"
    assert len(prepared.data) < limits.max_bytes
    assert prepared.info.notes[-1] == "re-encoded as JPEG (quality 90) to stay under 300 KB"
    assert decoded(prepared.data).size == (400, 400)


def test_a_conversion_that_cannot_fit_the_limit_is_refused() -> None:
    frames = [noise(400, 400, seed) for seed in (1, 2)]
    data = encode(frames[0], "WEBP", save_all=True, append_images=frames[1:], quality=1)
    limits = ImageLimits(max_bytes=len(data) + 1)

    error = refusal(data, limits=limits)

    assert error.code == ImageProblem.TOO_LARGE_AFTER_CONVERSION
    assert "animated WebP with 2 frames" in error.message


# --- off the event loop -------------------------------------------------------------------------------------


async def test_prepare_image_async_gives_the_same_result_and_the_same_refusals() -> None:
    data = solid(640, 480, "JPEG")

    prepared = await prepare_image_async(data, label="first frame")

    assert prepared == PreparedImage(data=data, info=prepare_image(data).info)
    with pytest.raises(InvalidImageError) as caught:
        await prepare_image_async(solid(250, 400), label="first frame")
    assert caught.value.code == ImageProblem.TOO_SMALL
    assert caught.value.message.startswith("The first frame is 250×400 px")
