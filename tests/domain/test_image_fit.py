"""A member's image over the server's upload limit is re-posted as a smaller copy a provider accepts."""

from __future__ import annotations

import io
import random

import pytest
from PIL import ExifTags, Image

from bot.domain.errors import InvalidImageError
from bot.domain.images import ImageProblem, PreparedImage, fit_image, fit_image_async, prepare_image

WHITE = (255, 255, 255)


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def noise(width: int, height: int, mode: str = "RGB", seed: int = 1) -> Image.Image:
    """Random pixels: they compress badly, so a file's size is large and predictable."""
    bands = len(mode)
    return Image.frombytes(mode, (width, height), random.Random(seed).randbytes(width * height * bands))


def tinted(image: Image.Image, colour: tuple[int, int, int]) -> Image.Image:
    """`image` (noise) faintly over a solid colour, so the colour shows where the picture was put."""
    return Image.blend(Image.new("RGB", image.size, colour), image.convert("RGB"), 0.2)


def decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def close_to(actual: tuple[int, ...], expected: tuple[int, ...], tolerance: int = 40) -> bool:
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True))


def mean_colour(image: Image.Image, box: tuple[int, int, int, int]) -> tuple[int, ...]:
    """The average colour of `box` (a noisy area has no single colour)."""
    return tuple(image.convert("RGB").crop(box).resize((1, 1), Image.Resampling.BOX).getpixel((0, 0)))  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_an_image_a_little_over_the_limit_fits_at_full_size(mode: str) -> None:
    prepared = prepare_image(encode(noise(1600, 1200, mode), "JPEG", quality=95))
    limit = len(prepared.data) * 3 // 4

    fitted = fit_image(prepared, limit)

    assert len(fitted.data) == fitted.info.size_bytes <= limit
    image = decoded(fitted.data)
    assert image.format == "JPEG" and image.mode == mode == fitted.info.mode
    assert image.size == (fitted.info.width, fitted.info.height) == (1600, 1200)
    assert (fitted.info.mime_type, fitted.info.extension) == ("image/jpeg", "jpg")
    assert "quality" in fitted.info.notes[-1]


@pytest.mark.parametrize(("width", "height"), [(2400, 1600), (1000, 2400)], ids=["landscape", "tall"])
def test_an_image_far_over_the_limit_is_scaled_down_with_its_shape_kept(width: int, height: int) -> None:
    prepared = prepare_image(encode(noise(width, height), "PNG"))  # about 11 MB of noise
    limit = 500_000

    fitted = fit_image(prepared, limit)

    assert len(fitted.data) <= limit
    image = decoded(fitted.data)
    assert image.size == (fitted.info.width, fitted.info.height)
    assert min(image.size) > 300  # still a frame image the providers accept
    assert image.width < width
    # The same shape, to within the rounding of one pixel on the short side.
    assert abs(image.width / image.height - width / height) < 1 / min(image.size)
    prepare_image(fitted.data)  # accepted as a frame image: would raise otherwise
    assert "scaled down" in fitted.info.notes[-1]


def test_an_image_that_fits_is_returned_as_it_is() -> None:
    prepared = prepare_image(encode(noise(800, 600), "JPEG"))

    assert fit_image(prepared, len(prepared.data)) is prepared


def test_an_image_that_cannot_fit_even_at_the_smallest_frame_size_is_refused() -> None:
    prepared = prepare_image(encode(noise(1200, 900), "PNG"))

    with pytest.raises(InvalidImageError) as caught:
        fit_image(prepared, 5_000)

    assert caught.value.code == ImageProblem.TOO_LARGE_AFTER_CONVERSION
    assert "5 KB" in caught.value.message and "401×301 px" in caught.value.message


def test_the_copy_stays_upright_as_prepare_image_turned_it() -> None:
    # Stored on its side with red on top; EXIF orientation 6 says "turn a quarter clockwise to show".
    stored = Image.new("RGB", (1600, 1200))
    stored.paste(tinted(noise(1600, 600, seed=2), (220, 20, 20)), (0, 0))
    stored.paste(tinted(noise(1600, 600, seed=3), (20, 20, 220)), (0, 600))
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    prepared = prepare_image(encode(stored, "JPEG", quality=95, exif=exif.tobytes()))
    assert (prepared.info.width, prepared.info.height) == (1200, 1600)

    fitted = fit_image(prepared, len(prepared.data) // 4)

    image = decoded(fitted.data)
    assert image.getexif().get(ExifTags.Base.Orientation) is None
    assert image.width < image.height  # still portrait, as shown
    # Red was on top of the stored picture, so it is on the right of the upright one.
    third = image.width // 3
    assert close_to(mean_colour(image, (2 * third, 0, image.width, image.height)), (220, 20, 20))
    assert close_to(mean_colour(image, (0, 0, third, image.height)), (20, 20, 220))


def test_transparency_is_flattened_onto_white() -> None:
    picture = noise(1200, 900, "RGBA")
    picture.putalpha(Image.new("L", picture.size, 255))
    picture.paste((0, 0, 0, 0), (0, 0, 600, 900))  # the left half fully transparent
    prepared = prepare_image(encode(picture, "PNG"))

    fitted = fit_image(prepared, len(prepared.data) // 2)

    image = decoded(fitted.data)
    assert image.mode == "RGB"
    assert close_to(mean_colour(image, (0, 0, image.width // 2 - 8, image.height)), WHITE, tolerance=3)


async def test_fit_image_async_gives_what_fit_image_gives() -> None:
    prepared = prepare_image(encode(noise(1200, 900), "PNG"))

    fitted = await fit_image_async(prepared, 1_000_000)

    assert isinstance(fitted, PreparedImage)
    assert fitted == fit_image(prepared, 1_000_000)
