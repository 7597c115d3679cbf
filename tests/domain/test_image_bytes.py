"""The image alone, found from a file's own structure: where it ends, what is metadata, what is unclear."""

from __future__ import annotations

import io
import random
import struct

import pytest
from PIL import Image

from bot.domain.image_bytes import CleanedImage, clean_image_bytes


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def noise(width: int = 320, height: int = 240) -> Image.Image:
    return Image.frombytes("RGB", (width, height), random.Random(3).randbytes(width * height * 3))


@pytest.mark.parametrize(
    "options",
    [{}, {"progressive": True}, {"restart_marker_blocks": 1}, {"subsampling": 0, "quality": 100}],
    ids=["baseline", "progressive", "restart-markers", "4:4:4"],
)
def test_a_jpegs_end_is_found_past_every_scan_stuffed_byte_and_restart_marker(
    options: dict[str, object],
) -> None:
    image = encode(noise(), "JPEG", **options)
    tail = b"\xff\xd9\xff\xd8 after the end"

    cleaned = clean_image_bytes(image + tail, "JPEG")

    assert cleaned == CleanedImage(data=image, trailing_bytes=len(tail), removed=())


def test_an_image_with_nothing_to_leave_out_comes_back_as_the_same_bytes() -> None:
    image = encode(noise(), "PNG")

    cleaned = clean_image_bytes(image, "PNG")

    assert cleaned is not None and cleaned.data is image


def test_what_was_left_out_is_named() -> None:
    image = encode(noise(), "JPEG", comment=b"hello")

    cleaned = clean_image_bytes(image + b"tail", "JPEG")

    assert cleaned is not None
    assert (cleaned.removed, cleaned.trailing_bytes) == (("comment",), 4)
    assert b"hello" not in cleaned.data


def handmade_tiff(hidden: bytes = b"") -> bytes:
    """A 400x320 greyscale TIFF with `hidden` between its header and its directory, where nothing refers."""
    width, height = 400, 320
    pixels = random.Random(4).randbytes(width * height)
    ifd_offset = 8 + len(hidden)
    entries = [(256, 3, width), (257, 3, height), (258, 3, 8), (259, 3, 1), (262, 3, 1)]
    entries += [(273, 4, ifd_offset + 2 + 9 * 12 + 4), (277, 3, 1), (278, 3, height), (279, 4, len(pixels))]
    directory = struct.pack("<H", len(entries))
    for tag, kind, value in entries:
        packed = struct.pack("<HH", value, 0) if kind == 3 else struct.pack("<I", value)
        directory += struct.pack("<HHI", tag, kind, 1) + packed
    directory += struct.pack("<I", 0)
    return b"II*\x00" + struct.pack("<I", ifd_offset) + hidden + directory + pixels


def test_a_tiff_with_bytes_nothing_refers_to_is_left_to_a_re_encode() -> None:
    plain, smuggling = handmade_tiff(), handmade_tiff(b"PK\x03\x04" + b"payload" * 20)
    assert Image.open(io.BytesIO(smuggling)).size == (400, 320)  # a valid TIFF all the same

    assert clean_image_bytes(plain, "TIFF") == CleanedImage(data=plain, trailing_bytes=0, removed=())
    assert clean_image_bytes(smuggling, "TIFF") is None


def test_a_bmp_whose_declared_size_cannot_be_trusted_is_left_to_a_re_encode() -> None:
    image = bytearray(encode(noise(), "BMP"))
    image[2:6] = struct.pack("<I", len(image) + 100)  # claims more than the file holds

    assert clean_image_bytes(bytes(image), "BMP") is None


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "WEBP"])
def test_a_structure_that_does_not_add_up_is_left_to_a_re_encode(fmt: str) -> None:
    image = encode(noise().convert("P") if fmt == "GIF" else noise(), fmt)

    assert clean_image_bytes(image[: len(image) // 2], fmt) is None
    assert clean_image_bytes(b"not an image at all", fmt) is None


def test_a_format_it_does_not_know_is_left_to_a_re_encode() -> None:
    assert clean_image_bytes(encode(noise(), "PPM"), "PPM") is None
