"""Streaming a finished video to a temporary file, with a size cap, without holding it in memory."""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from pathlib import Path

import httpx

from bot.jobs.errors import FetchError, VideoDownloadError
from bot.jobs.notifier import DownloadedVideo

_CHUNK_BYTES = 256 * 1024
_WRITE_BATCH_BYTES = 1024 * 1024


async def download_video(
    http: httpx.AsyncClient, url: str, *, max_bytes: int, directory: Path | None = None
) -> DownloadedVideo:
    """Fetch `url` into a new temporary file; the caller owns (and deletes) the file.

    Refuses before reading the body when Content-Length is over `max_bytes`, and stops as soon as the body
    grows past it when the length was not announced or was a lie.
    """
    if not url.startswith(("https://", "http://")):
        raise VideoDownloadError(
            f"the provider gave a video address that is not a web URL: {url[:80]}", permanent=True
        )
    try:
        async with http.stream("GET", url, follow_redirects=True) as response:
            if response.status_code in (404, 410):
                raise VideoDownloadError(
                    f"the finished video is no longer at the provider (HTTP {response.status_code})",
                    permanent=True,
                )
            if response.status_code >= 400:
                raise VideoDownloadError(
                    f"the video download failed with HTTP {response.status_code}",
                    permanent=400 <= response.status_code < 500 and response.status_code != 429,
                )
            announced = response.headers.get("content-length")
            if announced is not None and announced.isdigit() and int(announced) > max_bytes:
                raise VideoDownloadError(_too_large(int(announced), max_bytes), permanent=True)
            return await _stream_to_file(response, url, max_bytes, directory)
    except httpx.HTTPError as error:
        raise VideoDownloadError(
            f"the video download was interrupted ({type(error).__name__})", permanent=False
        ) from error


async def download_bytes(
    http: httpx.AsyncClient, url: str, *, max_bytes: int, allowed_hosts: frozenset[str] | None = None
) -> bytes:
    """Fetch a small file (an input image) into memory, refusing anything over `max_bytes`.

    With `allowed_hosts`, only URLs on those hosts are fetched (Discord attachments come from its CDN only).
    Raises FetchError with a message fit for the member.
    """
    parsed = httpx.URL(url)
    if parsed.scheme not in ("http", "https"):
        raise FetchError(f"Only http(s) addresses can be fetched, not “{url[:80]}”.")
    if allowed_hosts is not None and parsed.host.lower() not in allowed_hosts:
        raise FetchError(
            f"Files are only fetched from {', '.join(sorted(allowed_hosts))}, not {parsed.host}."
        )
    try:
        async with http.stream("GET", url, follow_redirects=allowed_hosts is None) as response:
            if response.status_code >= 400:
                raise FetchError(
                    f"The file could not be fetched: HTTP {response.status_code} from {parsed.host}."
                )
            announced = response.headers.get("content-length")
            if announced is not None and announced.isdigit() and int(announced) > max_bytes:
                raise FetchError(_too_large_file(int(announced), max_bytes))
            received = bytearray()
            async for chunk in response.aiter_bytes(_CHUNK_BYTES):
                received += chunk
                if len(received) > max_bytes:
                    raise FetchError(_too_large_file(len(received), max_bytes, at_least=True))
            return bytes(received)
    except httpx.HTTPError as error:
        raise FetchError(
            f"The file could not be fetched from {parsed.host} ({type(error).__name__})."
        ) from error


def _too_large_file(size: int, limit: int, *, at_least: bool = False) -> str:
    prefix = "more than " if at_least else ""
    return f"The file is {prefix}{size / 1_000_000:.1f} MB; the limit is {limit / 1_000_000:.0f} MB."


async def _stream_to_file(
    response: httpx.Response, url: str, max_bytes: int, directory: Path | None
) -> DownloadedVideo:
    fd, name = tempfile.mkstemp(prefix="seedance-", suffix=".mp4", dir=directory)
    path = Path(name)
    size = 0
    pending: list[bytes] = []
    pending_size = 0
    try:
        with os.fdopen(fd, "wb") as file:
            async for chunk in response.aiter_bytes(_CHUNK_BYTES):
                size += len(chunk)
                if size > max_bytes:
                    raise VideoDownloadError(_too_large(size, max_bytes, at_least=True), permanent=True)
                pending.append(chunk)
                pending_size += len(chunk)
                if pending_size >= _WRITE_BATCH_BYTES:
                    # Disk writes go to a thread in batches: the event loop never waits on the disk.
                    await asyncio.to_thread(file.writelines, pending)
                    pending, pending_size = [], 0
            if pending:
                await asyncio.to_thread(file.writelines, pending)
        if size == 0:
            raise VideoDownloadError("the provider's video file is empty", permanent=True)
    except BaseException:
        _discard(path)
        raise
    content_type = response.headers.get("content-type", "video/mp4").split(";")[0].strip()
    return DownloadedVideo(path=path, size_bytes=size, content_type=content_type, source_url=url)


def _discard(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


def _too_large(size: int, limit: int, *, at_least: bool = False) -> str:
    prefix = "more than " if at_least else ""
    return (
        f"the video is {prefix}{size / 1_048_576:.1f} MiB, "
        f"over the bot's limit of {limit / 1_048_576:.0f} MiB"
    )
