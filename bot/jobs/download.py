"""Streaming a finished video to a temporary file, with a size cap, without holding it in memory.

Where a download may go: a provider's output URL is chosen by the provider (or whoever answers for it), so
the bot fetches it only over https from public addresses, checked after DNS resolution and again on every
redirect (followed by hand, at most MAX_REDIRECTS). Otherwise a crafted result could make the bot read the
cloud metadata service (169.254.169.254), a database on the private network or the bot's own host, and post
what it got into a Discord channel.

The connection is pinned to the address that was checked: the request goes to that IP, with the name kept in
the Host header and in TLS (SNI and certificate check), so a second DNS answer cannot swap in another host
between the check and the connect. One limit remains: the shared connection pool keys connections by that
IP, so two names that resolve to the same checked public address may share a TLS connection (as browsers'
connection coalescing does); both names passed the check.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import io
import ipaddress
import os
import socket
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from bot.domain.text import Text
from bot.jobs.errors import FetchError, VideoDownloadError
from bot.jobs.notifier import DownloadedVideo
from bot.settings import Settings

_CHUNK_BYTES = 256 * 1024
_WRITE_BATCH_BYTES = 1024 * 1024

#: The most redirects a download follows, each re-checked, before giving up.
MAX_REDIRECTS = 5

_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
#: Shared address space (carrier-grade NAT, RFC 6598): not private per `ipaddress`, but not public either.
_CGNAT = ipaddress.ip_network("100.64.0.0/10")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class AddressPolicy(enum.Enum):
    """Which addresses a download may connect to."""

    #: https only, to public addresses only, re-checked on every redirect: provider output in production.
    PUBLIC_HTTPS = "public_https"
    #: PUBLIC_HTTPS plus loopback addresses and plain http: the tests' loopback doubles, never production.
    ALLOW_LOOPBACK = "allow_loopback"
    #: No address check: URLs the operator typed, or fetches already held to a host list (`allowed_hosts`).
    UNCHECKED = "unchecked"


class _RefusedError(Exception):
    """A URL or a redirect the policy refuses; the message says why, for the caller's own error."""


async def download_video(
    http: httpx.AsyncClient,
    url: str,
    *,
    max_bytes: int,
    directory: Path | None = None,
    policy: AddressPolicy = AddressPolicy.UNCHECKED,
) -> DownloadedVideo:
    """Fetch `url` into a new temporary file; the caller owns (and deletes) the file.

    Refuses before reading the body when Content-Length is over `max_bytes`, and stops as soon as the body
    grows past it when the length was not announced or was a lie. `policy` says which addresses the URL and
    each redirect may reach; a provider's output is fetched with PUBLIC_HTTPS (see the module docstring).
    """
    if not url.startswith(("https://", "http://")):
        raise VideoDownloadError(
            f"the provider gave a video address that is not a web URL: {url[:80]}", permanent=True
        )
    try:
        async with _open(http, httpx.URL(url), policy) as response:
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
    except _RefusedError as error:
        raise VideoDownloadError(
            f"the bot will not fetch the provider's video: {error}", permanent=True
        ) from None
    except httpx.HTTPError as error:
        raise VideoDownloadError(
            f"the video download was interrupted ({type(error).__name__})", permanent=False
        ) from error


async def download_bytes(
    http: httpx.AsyncClient,
    url: str,
    *,
    max_bytes: int,
    allowed_hosts: frozenset[str] | None = None,
    policy: AddressPolicy = AddressPolicy.UNCHECKED,
) -> bytes:
    """Fetch a small file (an input image) into memory, refusing anything over `max_bytes`.

    With `allowed_hosts`, only URLs on those hosts are fetched (Discord attachments come from its CDN only),
    and a redirect elsewhere is refused, not followed. `policy` says which addresses the URL and each redirect
    may reach. Raises FetchError with a message fit for the member.
    """
    parsed = httpx.URL(url)
    if parsed.scheme not in ("http", "https"):
        raise FetchError(Text("Only http(s) addresses can be fetched, not “{url}”.", url=url[:80]))
    if allowed_hosts is not None and parsed.host.lower() not in allowed_hosts:
        raise FetchError(
            Text(
                "Files are only fetched from {hosts}, not {host}.",
                hosts=", ".join(sorted(allowed_hosts)),
                host=parsed.host,
            )
        )
    try:
        async with _open(http, parsed, policy, allowed_hosts=allowed_hosts) as response:
            if response.status_code >= 400:
                raise FetchError(
                    Text(
                        "The file could not be fetched: HTTP {status} from {host}.",
                        status=str(response.status_code),
                        host=parsed.host,
                    )
                )
            announced = response.headers.get("content-length")
            if announced is not None and announced.isdigit() and int(announced) > max_bytes:
                raise FetchError(_too_large_file(int(announced), max_bytes))
            # BytesIO hands its buffer over on getvalue(); bytes(bytearray) would copy a 30 MB file once more.
            received = io.BytesIO()
            async for chunk in response.aiter_bytes(_CHUNK_BYTES):
                received.write(chunk)
                if received.tell() > max_bytes:
                    raise FetchError(_too_large_file(received.tell(), max_bytes, at_least=True))
            return received.getvalue()
    except _RefusedError as error:
        raise FetchError(Text("The file was not fetched: {reason}.", reason=str(error))) from None
    except httpx.HTTPError as error:
        raise FetchError(
            Text(
                "The file could not be fetched from {host} ({error}).",
                host=parsed.host,
                error=type(error).__name__,
            )
        ) from error


@contextlib.asynccontextmanager
async def _open(
    http: httpx.AsyncClient,
    url: httpx.URL,
    policy: AddressPolicy,
    *,
    allowed_hosts: frozenset[str] | None = None,
) -> AsyncIterator[httpx.Response]:
    """The streamed response at the end of `url`'s redirects, each hop checked against `policy`.

    With `allowed_hosts`, a redirect to a host outside them is refused rather than followed.
    """
    for _hop in range(MAX_REDIRECTS + 1):
        request = await _checked_request(http, url, policy)
        response = await http.send(request, stream=True, follow_redirects=False)
        location = response.headers.get("location")
        if response.status_code in _REDIRECT_STATUSES and location:
            await response.aclose()
            target = url.join(location)
            if allowed_hosts is not None and target.host.lower() not in allowed_hosts:
                raise _RefusedError(
                    f"{url.host} sent a redirect to another host ({target.host[:80]}); not followed"
                )
            url = target
            continue
        try:
            yield response
        finally:
            await response.aclose()
        return
    raise _RefusedError(f"more than {MAX_REDIRECTS} redirects")


async def _checked_request(http: httpx.AsyncClient, url: httpx.URL, policy: AddressPolicy) -> httpx.Request:
    """A GET of `url` if `policy` allows it, connecting to the very address that was checked."""
    if url.scheme not in ("http", "https"):
        raise _RefusedError(f"a redirect led to a non-web address ({url.scheme}:)")
    if policy is AddressPolicy.UNCHECKED:
        return http.build_request("GET", url)
    if url.scheme != "https" and policy is not AddressPolicy.ALLOW_LOOPBACK:
        raise _RefusedError(f"{url.host} was offered over plain http, not https")
    host = url.host
    port = url.port or (443 if url.scheme == "https" else 80)
    addresses = await _resolve(host, port)
    for address in addresses:
        problem = _forbidden(address, policy)
        if problem is not None:
            # Every answer must pass: a resolver can put a private address next to a public one.
            raise _RefusedError(f"{host} is {problem}")
    if _is_ip_literal(host):
        return http.build_request("GET", url)
    # Pinned: the connection goes to the checked address; the name stays in Host and in TLS (SNI, cert check).
    return http.build_request(
        "GET",
        url.copy_with(host=str(addresses[0])),
        headers={"Host": url.netloc.decode("ascii")},
        extensions={"sni_hostname": host},
    )


async def _resolve(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to, without blocking the event loop (an IP literal is itself)."""
    if _is_ip_literal(host):
        return [ipaddress.ip_address(host)]
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as error:
        # Like a refused connection: the name may resolve again later.
        raise httpx.ConnectError(f"could not resolve {host}: {error}") from error
    addresses = list(dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos))
    if not addresses:
        raise httpx.ConnectError(f"{host} resolved to no address")
    return addresses


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _forbidden(address: IPAddress, policy: AddressPolicy) -> str | None:
    """Why `policy` refuses `address` (a phrase after "is"), or None when it may be reached."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    if address.is_loopback:
        return None if policy is AddressPolicy.ALLOW_LOOPBACK else "a loopback address"
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_link_local:
        return "a link-local address (such as the cloud metadata service)"
    if address.is_multicast:
        return "a multicast address"
    if isinstance(address, ipaddress.IPv4Address) and address in _CGNAT:
        return "a shared (carrier-grade NAT) address"
    if address.is_private:
        return "a private address"
    if address.is_reserved or not address.is_global:
        return "not a public address"
    return None


def _too_large_file(size: int, limit: int, *, at_least: bool = False) -> Text:
    shown = f"{size / 1_000_000:.1f}"
    # A number each language writes its way, unless English shows a trailing zero ("30.0 MB").
    amount: float | str = float(shown) if f"{float(shown):g}" == shown else shown
    most = int(f"{limit / 1_000_000:.0f}")
    if at_least:
        return Text("The file is more than {size} MB; the limit is {limit} MB.", size=amount, limit=most)
    return Text("The file is {size} MB; the limit is {limit} MB.", size=amount, limit=most)


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


def download_policy(settings: Settings) -> AddressPolicy:
    """The address policy the settings ask for: public https only, unless a test allows loopback."""
    return AddressPolicy.ALLOW_LOOPBACK if settings.download_allow_loopback else AddressPolicy.PUBLIC_HTTPS
