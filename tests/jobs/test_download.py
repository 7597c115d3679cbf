"""Where downloads may go: provider output only over https from public addresses, every redirect re-checked;
Discord attachments only from the CDN hosts, a redirect elsewhere reported as such."""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator

import httpx
import pytest
from aiohttp import web

from bot.jobs import download
from bot.jobs.download import MAX_REDIRECTS, AddressPolicy, download_bytes, download_video
from bot.jobs.errors import FetchError, VideoDownloadError

VIDEO = b"\x00\x00\x00\x18ftypmp42" + b"v" * 1000


class LoopbackFiles:
    """An http server on 127.0.0.1: /video.mp4, and /redirect?to=URL answering 302 to URL."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str | None]] = []  # (path, Host header)
        self.base_url = ""
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> LoopbackFiles:
        app = web.Application()
        app.router.add_get("/video.mp4", self._video)
        app.router.add_get("/redirect", self._redirect)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    async def _video(self, request: web.Request) -> web.Response:
        self.requests.append((request.path, request.headers.get("Host")))
        return web.Response(body=VIDEO, content_type="video/mp4")

    async def _redirect(self, request: web.Request) -> web.Response:
        self.requests.append((request.path, request.headers.get("Host")))
        raise web.HTTPFound(request.query["to"])


@pytest.fixture
async def files() -> AsyncIterator[LoopbackFiles]:
    async with LoopbackFiles() as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5) as client:
        yield client


def redirect_to(files: LoopbackFiles, target: str) -> str:
    return str(httpx.URL(f"{files.base_url}/redirect", params={"to": target}))


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://127.0.0.1/v.mp4", "loopback"),
        ("https://[::1]/v.mp4", "loopback"),
        ("https://[::ffff:127.0.0.1]/v.mp4", "loopback"),
        ("https://169.254.169.254/latest/meta-data/", "link-local"),
        ("https://[fe80::1]/v.mp4", "link-local"),
        ("https://10.0.0.5/v.mp4", "private"),
        ("https://172.16.0.1/v.mp4", "private"),
        ("https://192.168.1.1/v.mp4", "private"),
        ("https://[fd00::1]/v.mp4", "private"),
        ("https://100.64.0.1/v.mp4", "carrier-grade NAT"),
        ("https://224.0.0.1/v.mp4", "multicast"),
        ("https://0.0.0.0/v.mp4", "unspecified"),
        ("https://localhost/v.mp4", "loopback"),  # checked after DNS resolution, not on the name
    ],
)
async def test_provider_output_on_a_non_public_address_is_refused_for_good(http, tmp_path, url, reason):
    with pytest.raises(VideoDownloadError) as refused:
        await download_video(
            http, url, max_bytes=10_000, directory=tmp_path, policy=AddressPolicy.PUBLIC_HTTPS
        )
    assert refused.value.permanent
    assert reason in refused.value.message
    assert list(tmp_path.iterdir()) == []


async def test_provider_output_over_plain_http_is_refused_even_from_a_public_address(http):
    with pytest.raises(VideoDownloadError) as refused:
        await download_video(
            http, "http://93.184.216.34/v.mp4", max_bytes=10_000, policy=AddressPolicy.PUBLIC_HTTPS
        )
    assert refused.value.permanent and "plain http" in refused.value.message


async def test_a_test_may_allow_the_loopback_double_and_nothing_else(http, files, tmp_path):
    video = await download_video(
        http, f"{files.base_url}/video.mp4", max_bytes=10_000, policy=AddressPolicy.ALLOW_LOOPBACK
    )
    assert video.path.read_bytes() == VIDEO
    video.path.unlink()
    with pytest.raises(VideoDownloadError, match="private"):
        await download_video(
            http, "http://10.0.0.5/v.mp4", max_bytes=10_000, policy=AddressPolicy.ALLOW_LOOPBACK
        )


@pytest.mark.parametrize(
    "target",
    [
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "https://10.1.2.3/internal",
        "http://[fe80::1]/x",
    ],
)
async def test_every_redirect_is_checked_again(http, files, target):
    # The first hop is allowed (the loopback double); where it points is not.
    with pytest.raises(VideoDownloadError) as refused:
        await download_video(
            http, redirect_to(files, target), max_bytes=10_000, policy=AddressPolicy.ALLOW_LOOPBACK
        )
    assert refused.value.permanent
    assert "will not fetch" in refused.value.message
    assert [path for path, _ in files.requests] == ["/redirect"]


async def test_allowed_redirects_are_followed_up_to_the_limit(http, files):
    target = f"{files.base_url}/video.mp4"
    chain = target
    for _ in range(MAX_REDIRECTS):
        chain = redirect_to(files, chain)
    video = await download_video(http, chain, max_bytes=10_000, policy=AddressPolicy.ALLOW_LOOPBACK)
    assert video.path.read_bytes() == VIDEO
    video.path.unlink()

    files.requests.clear()
    with pytest.raises(VideoDownloadError, match="redirects"):
        await download_video(
            http, redirect_to(files, chain), max_bytes=10_000, policy=AddressPolicy.ALLOW_LOOPBACK
        )
    assert ("/video.mp4", files.base_url.removeprefix("http://")) not in files.requests


async def test_the_connection_goes_to_the_checked_address_with_the_name_in_host(http, files, monkeypatch):
    # "video.invalid" never resolves for real: the request can only arrive through the checked address.
    resolved: list[str] = []

    async def fake_resolve(host: str, port: int):
        resolved.append(host)
        return [ipaddress.ip_address("127.0.0.1")]

    monkeypatch.setattr(download, "_resolve", fake_resolve)
    port = httpx.URL(files.base_url).port
    video = await download_video(
        http, f"http://video.invalid:{port}/video.mp4", max_bytes=10_000, policy=AddressPolicy.ALLOW_LOOPBACK
    )
    video.path.unlink()
    assert resolved == ["video.invalid"]
    assert files.requests == [("/video.mp4", f"video.invalid:{port}")]


async def test_a_name_with_one_private_answer_among_public_ones_is_refused(http, monkeypatch):
    async def fake_resolve(host: str, port: int):
        return [ipaddress.ip_address("93.184.216.34"), ipaddress.ip_address("10.0.0.7")]

    monkeypatch.setattr(download, "_resolve", fake_resolve)
    with pytest.raises(VideoDownloadError, match="private"):
        await download_video(
            http, "https://cdn.example/v.mp4", max_bytes=10_000, policy=AddressPolicy.PUBLIC_HTTPS
        )


async def test_the_last_frame_is_held_to_the_same_policy(http):
    with pytest.raises(FetchError, match="link-local"):
        await download_bytes(
            http,
            "https://169.254.169.254/frame.png",
            max_bytes=10_000,
            policy=AddressPolicy.PUBLIC_HTTPS,
        )


async def test_a_cdn_redirect_to_another_host_is_reported_as_a_redirect(http, files):
    url = redirect_to(files, "https://evil.example/x.png")
    with pytest.raises(FetchError) as refused:
        await download_bytes(http, url, max_bytes=10_000, allowed_hosts=frozenset({"127.0.0.1"}))
    assert "redirect to another host (evil.example); not followed" in refused.value.message
    assert "plain text" not in refused.value.message


async def test_a_cdn_redirect_within_the_cdn_hosts_is_followed(http, files):
    url = redirect_to(files, f"{files.base_url}/video.mp4")
    data = await download_bytes(http, url, max_bytes=10_000, allowed_hosts=frozenset({"127.0.0.1"}))
    assert data == VIDEO
