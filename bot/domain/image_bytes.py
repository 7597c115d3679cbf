"""An image file reduced to the image alone, without decoding a pixel: nothing after its end, no metadata.

A file can carry more than its picture: data after its end marker (a ZIP or HTML page appended to a JPEG
still opens as a JPEG everywhere) and metadata blocks (EXIF with GPS position and maker notes, XMP, IPTC,
PNG text chunks, comments). The bot re-posts frame images under its own name and sends them to providers,
so it passes on the picture and nothing else: `clean_image_bytes` walks the file's own structure, keeps
what decoders need to draw the picture, and leaves out the rest.

What is kept besides the pixels: the ICC colour profile (leaving it out would change the colours shown for
a wide-gamut or CMYK-calibrated photo; it describes colours, not the member or their camera), and what
decoders need to draw the picture right (JFIF density, Adobe colour transform, PNG transparency, gamma and
chromaticities, GIF transparency). EXIF is left out (GPS position, camera serial numbers, maker notes,
thumbnails), unless it holds nothing but the orientation tag: by the time an image is passed on unchanged its
orientation is upright, which is what an image without EXIF means, so nothing is lost either way.

Every walk is strict: anything it does not understand (an unknown structure, a size pointing outside the
file, unreferenced bytes inside a TIFF) answers None, and the caller re-encodes the image from its pixels
instead. A file Pillow decoded but this module cannot account for is thus never passed on as it is.
"""

from __future__ import annotations

import enum
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class CleanedImage:
    """An image file as it is passed on, and what was left out of it."""

    data: bytes
    trailing_bytes: int  # bytes that followed the image's end marker, left out
    removed: tuple[str, ...]  # names of the metadata blocks left out, e.g. ("EXIF", "tEXt")


def clean_image_bytes(data: bytes, format_name: str) -> CleanedImage | None:
    """`data` cut after the image's end, without metadata blocks; None when that needs a re-encode.

    `format_name` is Pillow's name of the format ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF"; a
    multi-picture JPEG is "JPEG"). When nothing had to be left out, `data` is returned unchanged (the same
    bytes); when only a tail was cut, the result is a prefix of `data`.
    """
    cleaner = _CLEANERS.get(format_name)
    if cleaner is None:
        return None
    try:
        result = cleaner(data)
    except (IndexError, ValueError, struct.error):
        return None  # a structure that does not add up: re-encode rather than guess
    if result is None:
        return None
    kept, end, removed = result
    if not removed and end == len(data):
        return CleanedImage(data=data, trailing_bytes=0, removed=())
    cleaned = data[:end] if not removed else kept
    return CleanedImage(data=cleaned, trailing_bytes=len(data) - end, removed=tuple(removed))


# A cleaner returns the kept bytes (meaningful only when something was removed), the offset where the image
# ends in `data`, and the names of what it removed; or None when the image must be re-encoded.
_Cleaned = tuple[bytes, int, list[str]] | None


# --- JPEG ---------------------------------------------------------------------------------------------------

_SOI = b"\xff\xd8"
_EOI = b"\xff\xd9"
_SOS = 0xDA
_COM = 0xFE
_APP0, _APP1, _APP2, _APP13, _APP14 = 0xE0, 0xE1, 0xE2, 0xED, 0xEE
# Markers without a length field (besides SOI and EOI): restart markers and TEM.
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})
_ICC_SIGNATURE = b"ICC_PROFILE\x00"
_MPF_SIGNATURE = b"MPF\x00"
_APP_NAMES = {_APP1: "EXIF/XMP", _APP13: "IPTC", _COM: "comment"}


_EXIF_HEADER = b"Exif\x00\x00"
_EXIF_ORIENTATION_TAG = 274


def _is_orientation_only_exif(tiff: bytes) -> bool:
    """Whether a TIFF-structured EXIF block holds only an orientation: one IFD, with tag 274 alone."""
    order = {b"II": "<", b"MM": ">"}.get(tiff[:2])
    if order is None or len(tiff) < 8:
        return False
    try:
        (ifd,) = struct.unpack(order + "I", tiff[4:8])
        (count,) = struct.unpack(order + "H", tiff[ifd : ifd + 2])
        tags = [
            struct.unpack(order + "H", tiff[ifd + 2 + 12 * i : ifd + 4 + 12 * i])[0] for i in range(count)
        ]
        (next_ifd,) = struct.unpack(order + "I", tiff[ifd + 2 + 12 * count : ifd + 6 + 12 * count])
    except struct.error:
        return False
    return tags == [_EXIF_ORIENTATION_TAG] and next_ifd == 0


@dataclass(frozen=True)
class _Segment:
    marker: int
    start: int  # the offset of its 0xFF
    end: int  # past its payload (for a scan: past its entropy-coded data)


def _jpeg_picture(data: bytes, start: int) -> tuple[list[_Segment], int]:
    """The segments of the JPEG picture starting at `start`, and the offset just past its EOI."""
    if data[start : start + 2] != _SOI:
        raise ValueError("no SOI")
    segments: list[_Segment] = []
    pos = start + 2
    while True:
        if data[pos] != 0xFF:
            raise ValueError("expected a marker")
        while data[pos] == 0xFF:  # fill bytes may precede a marker
            pos += 1
        marker, marker_start = data[pos], pos - 1
        pos += 1
        if marker == 0xD9:
            return segments, pos
        if marker in _STANDALONE:
            continue
        (length,) = struct.unpack(">H", data[pos : pos + 2])
        if length < 2 or pos + length > len(data):
            raise ValueError("segment runs past the file")
        pos += length
        if marker == _SOS:
            pos = _end_of_entropy_data(data, pos)
        segments.append(_Segment(marker, marker_start, pos))


def _end_of_entropy_data(data: bytes, pos: int) -> int:
    """The offset of the first marker after a scan's entropy-coded data (which restart markers split)."""
    while True:
        found = data.index(b"\xff", pos)
        following = data[found + 1]
        if following == 0x00 or 0xD0 <= following <= 0xD7:  # a stuffed 0xFF, or a restart marker
            pos = found + 2
        elif following == 0xFF:  # fill bytes before a marker
            pos = found + 1
        else:
            return found


def _jpeg_keeps(segment: _Segment, data: bytes, *, keep_mpf: bool) -> bool:
    """Whether a decoder needs `segment`: everything but metadata, and of metadata only colour."""
    marker = segment.marker
    if not (0xE0 <= marker <= 0xEF or marker == _COM):
        return True  # not metadata (a scan's payload is the whole picture: never sliced, never copied)
    payload = data[segment.start + 4 : segment.end]
    if marker in {_APP0, _APP14}:  # JFIF density / Adobe colour transform: they change the pixels
        return True
    if marker == _APP1:
        return payload.startswith(_EXIF_HEADER) and _is_orientation_only_exif(payload[len(_EXIF_HEADER) :])
    if marker == _APP2:
        return payload.startswith(_ICC_SIGNATURE) or (keep_mpf and payload.startswith(_MPF_SIGNATURE))
    return False


def _clean_jpeg(data: bytes) -> _Cleaned:
    segments, end = _jpeg_picture(data, 0)
    kept = [segment for segment in segments if _jpeg_keeps(segment, data, keep_mpf=True)]
    removed = [_jpeg_segment_name(segment, data) for segment in segments if segment not in kept]
    if any(not _jpeg_keeps(segment, data, keep_mpf=False) for segment in kept):  # an MPF index
        # A multi-picture JPEG (phones write them): its other pictures (previews, depth maps) follow the
        # first one. They are kept only when they carry no metadata either; otherwise the first picture
        # alone is passed on, without its index of the others.
        end_of_all = _end_of_clean_pictures(data, end) if not removed else None
        if end_of_all is not None:
            return b"", end_of_all, []
        kept = [segment for segment in kept if _jpeg_keeps(segment, data, keep_mpf=False)]
        removed.append("MPF")
    if not removed:
        return b"", end, removed  # the caller passes `data` on (cut at `end`): no copy is made
    view = memoryview(data)  # joined from views: the picture is copied once, not twice
    return b"".join([_SOI, *(view[segment.start : segment.end] for segment in kept), _EOI]), end, removed


def _end_of_clean_pictures(data: bytes, pos: int) -> int | None:
    """Past the last picture following `pos` back to back, or None when one carries metadata."""
    while data.startswith(_SOI, pos):
        segments, pos = _jpeg_picture(data, pos)
        if not all(_jpeg_keeps(segment, data, keep_mpf=False) for segment in segments):
            return None
    return pos


def _jpeg_segment_name(segment: _Segment, data: bytes) -> str:
    if segment.marker == _APP2:
        return "APP2"
    if 0xE0 <= segment.marker <= 0xEF:
        return _APP_NAMES.get(segment.marker, f"APP{segment.marker - 0xE0}")
    return _APP_NAMES.get(segment.marker, f"marker {segment.marker:#x}")


# --- PNG ----------------------------------------------------------------------------------------------------

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_CRITICAL = frozenset({b"IHDR", b"PLTE", b"IDAT", b"IEND"})
# Ancillary chunks that change how the pixels look: colour (iCCP, sRGB, gAMA, cHRM, cICP, mDCv, cLLi),
# transparency and precision (tRNS, sBIT), background and density (bKGD, pHYs). Text (tEXt, zTXt, iTXt),
# EXIF (eXIf), time (tIME), animation control and private chunks are left out.
_PNG_KEPT_ANCILLARY = frozenset(
    {b"iCCP", b"sRGB", b"gAMA", b"cHRM", b"cICP", b"mDCv", b"cLLi", b"tRNS", b"sBIT", b"bKGD", b"pHYs"}
)


def _clean_png(data: bytes) -> _Cleaned:
    if not data.startswith(_PNG_SIGNATURE):
        return None
    pos = len(_PNG_SIGNATURE)
    view = memoryview(data)  # kept chunks are views: copied once, and only when something is left out
    kept: list[memoryview] = [view[:pos]]
    removed: list[str] = []
    while True:
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        end = pos + 12 + length
        if end > len(data):
            return None
        orientation_only = kind == b"eXIf" and _is_orientation_only_exif(data[pos + 8 : end - 4])
        if kind in _PNG_CRITICAL or kind in _PNG_KEPT_ANCILLARY or orientation_only:
            kept.append(view[pos:end])
        else:
            removed.append(kind.decode("latin-1"))
        pos = end
        if kind == b"IEND":
            return (b"".join(kept) if removed else b""), pos, removed


# --- GIF ----------------------------------------------------------------------------------------------------

_GIF_EXTENSION, _GIF_IMAGE, _GIF_TRAILER = 0x21, 0x2C, 0x3B
_GIF_GRAPHIC_CONTROL = 0xF9  # delay and transparency: kept
_GIF_EXTENSION_NAMES = {0xFE: "comment", 0xFF: "application extension", 0x01: "plain text extension"}


def _gif_colour_table_size(packed: int) -> int:
    return 3 * (2 ** ((packed & 0x07) + 1)) if packed & 0x80 else 0


def _gif_sub_blocks_end(data: bytes, pos: int) -> int:
    """Past the terminator of the data sub-blocks starting at `pos`."""
    while True:
        size = data[pos]
        pos += 1 + size
        if size == 0:
            if pos > len(data):
                raise ValueError("sub-blocks run past the file")
            return pos


def _clean_gif(data: bytes) -> _Cleaned:
    if not data.startswith((b"GIF87a", b"GIF89a")):
        return None
    pos = 13 + _gif_colour_table_size(data[10])
    kept: list[bytes] = [data[:pos]]
    removed: list[str] = []
    while True:
        block = data[pos]
        if block == _GIF_TRAILER:
            kept.append(data[pos : pos + 1])
            return b"".join(kept), pos + 1, removed
        if block == _GIF_EXTENSION:
            label = data[pos + 1]
            end = _gif_sub_blocks_end(data, pos + 2)
            if label == _GIF_GRAPHIC_CONTROL:
                kept.append(data[pos:end])
            else:
                removed.append(_GIF_EXTENSION_NAMES.get(label, f"extension {label:#x}"))
        elif block == _GIF_IMAGE:
            header_end = pos + 10 + _gif_colour_table_size(data[pos + 9])
            end = _gif_sub_blocks_end(data, header_end + 1)  # after the LZW minimum code size
            kept.append(data[pos:end])
        else:
            return None
        pos = end


# --- WebP ---------------------------------------------------------------------------------------------------

# Chunks that draw the picture or set its colours; EXIF, XMP and unknown chunks are left out.
_WEBP_KEPT = frozenset({b"VP8 ", b"VP8L", b"VP8X", b"ALPH", b"ICCP", b"ANIM", b"ANMF"})
_VP8X_FLAGS = {b"EXIF": 0x08, b"XMP ": 0x04}


def _riff_chunks(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(fourcc, start, end including the pad byte) of each chunk between `start` and `end`."""
    pos = start
    while pos < end:
        kind = data[pos : pos + 4]
        (size,) = struct.unpack("<I", data[pos + 4 : pos + 8])
        chunk_end = pos + 8 + size + (size & 1)
        if chunk_end > end:
            raise ValueError("chunk runs past the RIFF container")
        yield kind, pos, chunk_end
        pos = chunk_end


def _webp_exif(chunk: bytes) -> bytes:
    (size,) = struct.unpack("<I", chunk[4:8])
    return chunk[8 : 8 + size].removeprefix(_EXIF_HEADER)  # some writers keep JPEG's header


def _clean_webp(data: bytes) -> _Cleaned:
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        return None
    (riff_size,) = struct.unpack("<I", data[4:8])
    end = 8 + riff_size
    if end > len(data) or riff_size & 1:
        return None
    kept: list[bytes] = []
    removed: list[str] = []
    flags_left_out = 0
    for kind, start, chunk_end in _riff_chunks(data, 12, end):
        chunk = data[start:chunk_end]
        if kind in _WEBP_KEPT or (kind == b"EXIF" and _is_orientation_only_exif(_webp_exif(chunk))):
            kept.append(chunk)
        else:
            removed.append(kind.decode("latin-1").strip())
            flags_left_out |= _VP8X_FLAGS.get(kind, 0)
    if flags_left_out and kept and kept[0].startswith(b"VP8X"):
        # The extended header announces the EXIF and XMP chunks; it must not announce chunks left out.
        header = bytearray(kept[0])
        header[8] &= ~flags_left_out & 0xFF
        kept[0] = bytes(header)
    body = b"WEBP" + b"".join(kept)
    return b"RIFF" + struct.pack("<I", len(body)) + body, end, removed


# --- BMP ----------------------------------------------------------------------------------------------------


def _clean_bmp(data: bytes) -> _Cleaned:
    # The file header declares the file's size, which covers the pixels and any colour profile after them.
    file_size, pixel_offset = struct.unpack("<I4xI", data[2:14])
    if not 14 < pixel_offset < file_size <= len(data):
        return None  # a size that cannot be trusted: re-encode
    return b"", file_size, []


# --- TIFF ---------------------------------------------------------------------------------------------------

# Baseline and colour tags a single-page TIFF needs to be drawn: anything else (EXIF and GPS directories,
# XMP, IPTC, Photoshop data, descriptions, camera make, software, dates, private tags) means a re-encode.
_TIFF_KEPT_TAGS = frozenset(
    {
        254, 255, 256, 257, 258, 259, 262, 266, 273, 274, 277, 278, 279, 280, 281, 282, 283, 284, 290, 291,
        296, 317, 318, 319, 320, 322, 323, 324, 325, 338, 339, 340, 341, 347, 529, 530, 531, 532,
        34675,  # the ICC colour profile
    }
)  # fmt: skip
_TIFF_STRIP_OFFSETS, _TIFF_STRIP_BYTES, _TIFF_TILE_OFFSETS, _TIFF_TILE_BYTES = 273, 279, 324, 325
# Bytes per value of each field type (BYTE, ASCII, SHORT, LONG, RATIONAL, SBYTE, UNDEFINED, SSHORT, SLONG,
# SRATIONAL, FLOAT, DOUBLE).
_TIFF_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8}
# Writers align values to even offsets, leaving a byte out here and there.
_TIFF_ALIGNMENT_GAP = 1


def _clean_tiff(data: bytes) -> _Cleaned:
    order = {b"II": "<", b"MM": ">"}.get(data[:2])
    if order is None or struct.unpack(order + "H", data[2:4])[0] != 42:
        return None  # BigTIFF or not TIFF: re-encode
    (ifd,) = struct.unpack(order + "I", data[4:8])
    (count,) = struct.unpack(order + "H", data[ifd : ifd + 2])
    ifd_end = ifd + 2 + 12 * count + 4
    if struct.unpack(order + "I", data[ifd_end - 4 : ifd_end])[0] != 0:
        return None  # a second page: pass-through images have one
    regions = [(0, 8), (ifd, ifd_end)]
    values: dict[int, tuple[int, ...]] = {}
    for entry in range(ifd + 2, ifd_end - 4, 12):
        tag, kind, number = struct.unpack(order + "HHI", data[entry : entry + 8])
        if tag not in _TIFF_KEPT_TAGS or kind not in _TIFF_TYPE_SIZES:
            return None
        size = _TIFF_TYPE_SIZES[kind] * number
        where = entry + 8
        if size > 4:
            (where,) = struct.unpack(order + "I", data[entry + 8 : entry + 12])
            regions.append((where, where + size))
        if kind in {3, 4}:
            values[tag] = struct.unpack(
                f"{order}{number}{'H' if kind == 3 else 'I'}", data[where : where + size]
            )
    for offsets_tag, sizes_tag in (
        (_TIFF_STRIP_OFFSETS, _TIFF_STRIP_BYTES),
        (_TIFF_TILE_OFFSETS, _TIFF_TILE_BYTES),
    ):
        offsets, sizes = values.get(offsets_tag, ()), values.get(sizes_tag, ())
        if len(offsets) != len(sizes):
            return None
        regions.extend((offset, offset + size) for offset, size in zip(offsets, sizes, strict=True))
    end = 0
    for start, stop in sorted(regions):
        if stop > len(data) or start - end > _TIFF_ALIGNMENT_GAP:
            return None  # data outside the file, or bytes nothing refers to (where anything could hide)
        end = max(end, stop)
    return b"", end, []


_CLEANERS = {
    "JPEG": _clean_jpeg,
    "PNG": _clean_png,
    "GIF": _clean_gif,
    "WEBP": _clean_webp,
    "BMP": _clean_bmp,
    "TIFF": _clean_tiff,
}


# --- PNG pixel data, checked without holding the pixels ---------------------------------------------------


class PngCheck(enum.Enum):
    """What streaming through a PNG's compressed pixel data found."""

    WHOLE = "whole"  # every row is there, each with a valid filter, in an intact zlib stream
    DAMAGED = "damaged"  # cut short, or a chunk or row that a decoder would refuse
    UNSURE = "unsure"  # something this check does not judge (an eXIf chunk, data after the stream): decode


# Decompressed a slice at a time, so the check holds about this much of the pixels at once whatever the size.
_PNG_SLICE_BYTES = 1 << 20
_PNG_INPUT_BYTES = 1 << 16
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # by colour type
# Adam7: (first column, first row, column step, row step) of each of the seven passes.
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
_PNG_MAX_FILTER = 4  # None, Sub, Up, Average, Paeth
# Text chunks whose keyword Pillow reads EXIF (and so an orientation) from.
_PNG_TEXT_CHUNKS = frozenset({b"tEXt", b"zTXt", b"iTXt"})


def check_png_pixels(data: bytes) -> PngCheck:
    """Whether a PNG's pixel data is whole, found by inflating it a slice at a time (about a megabyte held,
    however many pixels), as a decoder would: chunk lengths and CRCs, one complete zlib stream, exactly the
    bytes its rows need, and a valid filter type at the start of every row.

    A decode proves the same but holds every pixel (144 MB for a 6000 x 6000 RGBA picture). UNSURE means
    "decode to know": an image this check does not fully judge (EXIF that may turn it; data after the
    compressed stream, which some decoders ignore) is never passed as whole.
    """
    if not data.startswith(_PNG_SIGNATURE) or len(data) < 33 or data[12:16] != b"IHDR":
        return PngCheck.UNSURE
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", data[16:29])
    channels = _PNG_CHANNELS.get(colour)
    if channels is None or interlace > 1 or width == 0 or height == 0:
        return PngCheck.UNSURE
    rows = _png_rows(width, height, channels * depth, interlaced=interlace == 1)
    inflater = zlib.decompressobj()
    produced = 0  # decompressed bytes so far
    row_index, next_row_at = 0, 0  # the next row's filter byte offset in the decompressed stream
    pos = len(_PNG_SIGNATURE)
    while pos + 12 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        end = pos + 12 + length
        if end > len(data):
            return PngCheck.DAMAGED
        body = memoryview(data)[pos + 8 : end - 4]
        if zlib.crc32(body, zlib.crc32(kind)) != struct.unpack(">I", data[end - 4 : end])[0]:
            return PngCheck.DAMAGED
        if _is_exif_chunk(kind, body[:80]):
            return PngCheck.UNSURE
        if kind == b"IDAT":
            if inflater.eof:
                return PngCheck.UNSURE  # more data after the stream ended
            for start in range(0, len(body), _PNG_INPUT_BYTES):
                # Fed a bounded slice at a time: zlib copies what it has not consumed yet on every call.
                pending: bytes | memoryview = body[start : start + _PNG_INPUT_BYTES]
                while pending:
                    try:
                        piece = inflater.decompress(pending, _PNG_SLICE_BYTES)
                    except zlib.error:
                        return PngCheck.DAMAGED
                    pending = inflater.unconsumed_tail
                    while row_index < len(rows) and next_row_at < produced + len(piece):
                        if piece[next_row_at - produced] > _PNG_MAX_FILTER:
                            return PngCheck.DAMAGED
                        next_row_at += rows[row_index]
                        row_index += 1
                    produced += len(piece)
                    if produced > next_row_at and row_index == len(rows):
                        return PngCheck.UNSURE  # more pixel bytes than rows: decoders differ on what to do
        elif kind == b"IEND":
            if not inflater.eof or produced != next_row_at or row_index != len(rows):
                return PngCheck.DAMAGED
            return PngCheck.WHOLE if not inflater.unused_data else PngCheck.UNSURE
        pos = end
    return PngCheck.DAMAGED  # no IEND: cut short


def png_has_exif(data: bytes) -> bool:
    """Whether the PNG holds EXIF (an eXIf chunk, or a text chunk Pillow reads EXIF from), found by walking
    its chunk headers only; such an image must be decoded to learn its orientation."""
    pos = len(_PNG_SIGNATURE)
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        if _is_exif_chunk(kind, data[pos + 8 : pos + 8 + min(length, 80)]):
            return True
        if kind == b"IEND":
            return False
        pos += 12 + length
    return False


def _is_exif_chunk(kind: bytes, head: bytes | memoryview) -> bool:
    return kind == b"eXIf" or (kind in _PNG_TEXT_CHUNKS and b"exif" in bytes(head).lower())


def _png_rows(width: int, height: int, bits_per_pixel: int, *, interlaced: bool) -> list[int]:
    """The length of each row in the decompressed stream (its filter byte and its pixels), in order."""
    passes = _ADAM7 if interlaced else ((0, 0, 1, 1),)
    rows: list[int] = []
    for first_column, first_row, column_step, row_step in passes:
        columns = (width - first_column + column_step - 1) // column_step if width > first_column else 0
        count = (height - first_row + row_step - 1) // row_step if height > first_row else 0
        if columns and count:
            rows.extend([1 + (columns * bits_per_pixel + 7) // 8] * count)
    return rows
