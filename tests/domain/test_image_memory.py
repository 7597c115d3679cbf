"""Big images without big memory: a PNG proven whole without holding its pixels, a JPEG checked at 1/8 scale,
recompressed copies capped at 2560 px and flattened a strip at a time, and honest estimates for the budget."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image, ImageFile

from bot.domain.errors import InvalidImageError
from bot.domain.image_bytes import PngCheck, check_png_pixels, png_has_exif
from bot.domain.images import (
    FIT_MAX_SIDE_PX,
    ImageProblem,
    fit_image,
    fit_memory_estimate,
    prepare_image,
    prepare_memory_estimate,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def gradient(width: int, height: int, mode: str = "RGB") -> Image.Image:
    bands = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
    red = Image.linear_gradient("L").resize((width, height))
    green = Image.radial_gradient("L").resize((width, height))
    layers = [red, green, red.transpose(Image.Transpose.FLIP_LEFT_RIGHT), green.point(lambda v: 255 - v)]
    return Image.merge(mode, layers[:bands]) if bands > 1 else red


def chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(body, zlib.crc32(kind)))


def raw_png(width: int, height: int, rows: bytes, *, extra: bytes = b"", interlace: int = 0) -> bytes:
    """An 8-bit grey PNG written by hand from its filtered rows (so a test can break exactly one rule)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, interlace)
    return (
        PNG_SIGNATURE
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows) + extra)
        + chunk(b"IEND", b"")
    )


def rows_of(width: int, height: int, filter_type: int = 0) -> bytes:
    return b"".join(bytes([filter_type]) + bytes((x + y) % 256 for x in range(width)) for y in range(height))


# --- check_png_pixels -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "image",
    [
        gradient(400, 320),
        gradient(400, 320, "RGBA"),
        gradient(400, 320, "L").convert("1"),
        gradient(400, 320).convert("P"),
    ],
    ids=["rgb", "rgba", "one-bit", "palette"],
)
def test_whole_pngs_of_every_kind_are_found_whole(image: Image.Image) -> None:
    assert check_png_pixels(encode(image, "PNG")) is PngCheck.WHOLE


ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))


def test_an_interlaced_png_is_followed_through_its_seven_passes() -> None:
    width, height = 401, 333
    rows = b"".join(
        b"\x00" + bytes((x * 7 + y) % 256 for x in range(x0, width, dx))
        for x0, y0, dx, dy in ADAM7
        for y in range(y0, height, dy)
        if x0 < width
    )
    data = raw_png(width, height, rows, interlace=1)
    with Image.open(io.BytesIO(data)) as image:  # a real decoder agrees the file is whole
        image.load()
        assert image.getpixel((5, 9)) == (5 * 7 + 9) % 256
    assert check_png_pixels(data) is PngCheck.WHOLE
    assert check_png_pixels(raw_png(width, height, rows[:-50], interlace=1)) is PngCheck.DAMAGED


def test_pixel_data_cut_short_is_damaged_even_with_its_chunks_intact() -> None:
    rows = rows_of(320, 320)
    compressed = zlib.compress(rows)
    header = struct.pack(">IIBBBBB", 320, 320, 8, 0, 0, 0, 0)
    # The stream stops half-way, but every chunk, CRC and IEND is in order.
    cut = PNG_SIGNATURE + chunk(b"IHDR", header) + chunk(b"IDAT", compressed[: len(compressed) // 2])
    assert check_png_pixels(cut + chunk(b"IEND", b"")) is PngCheck.DAMAGED
    assert check_png_pixels(raw_png(320, 320, rows[:-320])) is PngCheck.DAMAGED  # a row short


def test_a_row_with_an_unknown_filter_is_damaged() -> None:
    rows = bytearray(rows_of(320, 320))
    rows[321 * 200] = 9  # row 200's filter type: there are five (0-4)
    assert check_png_pixels(raw_png(320, 320, bytes(rows))) is PngCheck.DAMAGED
    assert check_png_pixels(raw_png(320, 320, rows_of(320, 320, filter_type=4))) is PngCheck.WHOLE


def test_a_wrong_crc_or_a_missing_end_is_damaged() -> None:
    data = bytearray(encode(gradient(400, 320), "PNG"))
    flipped = bytearray(data)
    flipped[60] ^= 0x01  # a bit inside the first IDAT
    assert check_png_pixels(bytes(flipped)) is PngCheck.DAMAGED
    assert check_png_pixels(bytes(data[:-12])) is PngCheck.DAMAGED  # no IEND chunk


def test_what_the_check_does_not_judge_is_left_to_a_decode() -> None:
    rows = rows_of(320, 320)
    assert check_png_pixels(raw_png(320, 320, rows, extra=b"after the stream")) is PngCheck.UNSURE
    exif = Image.Exif()
    exif[0x0112] = 6
    turned = encode(gradient(400, 320), "PNG", exif=exif.tobytes())
    assert png_has_exif(turned)
    assert check_png_pixels(turned) is PngCheck.UNSURE


def test_a_whole_png_is_accepted_without_decoding_its_pixels(monkeypatch: pytest.MonkeyPatch) -> None:
    data = encode(gradient(1800, 1200, "RGBA"), "PNG")

    def no_decoding(self: ImageFile.ImageFile) -> None:
        raise AssertionError("the pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    prepared = prepare_image(data)
    assert prepared.data == data and (prepared.info.width, prepared.info.height) == (1800, 1200)


def test_a_damaged_png_is_still_refused_as_damaged() -> None:
    data = encode(gradient(400, 320), "PNG")
    idat = data.index(b"IDAT")
    (length,) = struct.unpack(">I", data[idat - 4 : idat])
    body = data[idat + 4 : idat + 4 + length // 2]
    cut = data[: idat - 4] + chunk(b"IDAT", body) + chunk(b"IEND", b"")
    with pytest.raises(InvalidImageError) as refused:
        prepare_image(cut)
    assert refused.value.code == ImageProblem.TRUNCATED


# --- fit_image: capped, flattened a strip at a time -------------------------------------------------------


def test_a_big_copy_is_capped_at_the_largest_side_a_video_can_use() -> None:
    prepared = prepare_image(encode(gradient(5200, 3000), "JPEG", quality=95))
    fitted = fit_image(prepared, limit_bytes=len(prepared.data) - 1)
    with Image.open(io.BytesIO(fitted.data)) as image:
        assert FIT_MAX_SIDE_PX - 5 <= max(image.size) <= FIT_MAX_SIDE_PX
        assert abs(image.width / image.height - 5200 / 3000) < 0.01
        assert f"scaled down to {image.width}×{image.height} px" in fitted.info.notes[-1]


def test_a_transparent_picture_reduced_in_strips_matches_one_flattened_whole() -> None:
    source = gradient(5400, 2700, "RGBA")
    prepared = prepare_image(encode(source, "PNG"))
    fitted = fit_image(prepared, limit_bytes=len(prepared.data) - 1)
    white = Image.new("RGBA", source.size, (255, 255, 255, 255))
    reference = (
        Image.alpha_composite(white, source).convert("RGB").resize((2560, 1280), Image.Resampling.LANCZOS)
    )
    with Image.open(io.BytesIO(fitted.data)) as image:
        copy = image.convert("RGB")
    assert copy.size == reference.size
    worst = max(
        max(abs(a - b) for a, b in zip(copy.getpixel((x, y)), reference.getpixel((x, y)), strict=True))
        for x in range(0, 2560, 97)
        for y in range(0, 1280, 89)
    )
    assert worst <= 12  # JPEG's own error, not a seam or a dark fringe between strips


# --- what the budget is told ------------------------------------------------------------------------------


def test_estimates_follow_what_will_really_be_decoded() -> None:
    plain_jpeg = encode(gradient(4000, 3000), "JPEG", quality=90)
    full = 4000 * 3000 * 4  # Pillow holds RGB in four bytes a pixel
    assert prepare_memory_estimate(plain_jpeg) < full // 16  # checked at 1/8 scale
    exif = Image.Exif()
    exif[0x0112] = 6
    turned_jpeg = encode(gradient(4000, 3000), "JPEG", quality=90, exif=exif.tobytes())
    assert prepare_memory_estimate(turned_jpeg) >= 2 * full  # decoded, then turned into a copy
    plain_png = encode(gradient(4000, 3000, "RGBA"), "PNG")
    assert prepare_memory_estimate(plain_png) < 4 * 1024 * 1024  # streamed
    turned_png = encode(gradient(4000, 3000, "RGBA"), "PNG", exif=exif.tobytes())
    assert prepare_memory_estimate(turned_png) >= 2 * full
    assert prepare_memory_estimate(b"not an image at all") == 0


def test_a_jpeg_fit_is_estimated_at_its_reduced_decode() -> None:
    jpeg = prepare_image(encode(gradient(5200, 5200), "JPEG", quality=90))
    png = prepare_image(encode(gradient(5200, 5200), "PNG"))
    full = 5200 * 5200 * 4
    assert fit_memory_estimate(png) >= full  # every pixel is decoded
    assert fit_memory_estimate(jpeg) < full  # decoded at half size: a quarter of the pixels
