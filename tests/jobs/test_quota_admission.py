"""Fifty members (or one member fifty times) pressing the button in the same second never exceed a limit.

The real JobService, QuotaService, QuotaStore and RunComfy client, against the RunComfy double.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
from pydantic import SecretStr

from bot.domain.catalogue import RequestedOptions, default_catalogue
from bot.domain.models import JobOrigin, Requester
from bot.domain.quota import MemberLimits, ServerRules
from bot.jobs.quota import Member, QuotaExceededError, QuotaService
from bot.jobs.service import JobService
from bot.providers.runcomfy import RunComfyProvider
from bot.storage.database import open_database
from bot.storage.jobs import JobStore
from bot.storage.quota import QuotaStore
from tests.doubles.media import make_image
from tests.doubles.runcomfy import RunComfyDouble

GUILD = 1


class NoTracking:
    def track(self, job) -> None:
        """The poller is not part of this test."""


@pytest.mark.parametrize(
    ("case", "member_limits", "server_rules", "members"),
    [
        ("one member, 20 credits a day", MemberLimits(credits_per_day=20), ServerRules(), 1),
        ("one member, 10 at a time", MemberLimits(concurrent_jobs=10), ServerRules(), 1),
        ("fifty members, a server budget of 20", MemberLimits(), ServerRules(credits_per_day=20), 50),
    ],
)
async def test_fifty_simultaneous_requests_against_a_limit_of_ten(
    tmp_path, case, member_limits, server_rules, members
):
    path = tmp_path / "bot.sqlite3"
    conn = await open_database(path)
    quota_store = await QuotaStore.open(path)
    image = make_image(640, 480)
    try:
        async with RunComfyDouble(api_keys=("key",)) as double, httpx.AsyncClient() as http:
            provider = RunComfyProvider(http, base_url=double.base_url, api_key=SecretStr("key"))
            quota = QuotaService(quota_store, member_defaults=member_limits, server_defaults=server_rules)
            service = JobService(
                JobStore(conn),
                {provider.name: provider},
                default_catalogue(),
                tracker=NoTracking(),
                job_timeout_s=600,
                quota=quota,
            )
            # Seedance 1.0 Pro, 2 s at 480p: 2 credits a video, so a 20-credit budget admits 10.
            prepared = await service.prepare(
                "seedance-1.0-pro", RequestedOptions(prompt="x", duration_s=2), image
            )
            url = double.host_file(image, "image/png")

            async def press(n: int):
                user = 100 + (n % members)
                return await service.submit(
                    prepared,
                    Requester(origin=JobOrigin.DISCORD, user_id=user, guild_id=GUILD, channel_id=5),
                    first_frame_url=url,
                    member=Member(guild_id=GUILD, user_id=user, channel_id=5),
                )

            results = await asyncio.gather(*(press(n) for n in range(50)), return_exceptions=True)

            accepted = [r for r in results if not isinstance(r, BaseException)]
            refused = [r for r in results if isinstance(r, QuotaExceededError)]
            assert (len(accepted), len(refused)) == (10, 40), case
            assert double.submit_count == 10
            async with conn.execute("SELECT COUNT(*), SUM(credits) FROM jobs") as cursor:
                assert tuple(await cursor.fetchone()) == (10, 20)
            assert all(refusal.refusal.message for refusal in refused)
    finally:
        await quota_store.close()
        await conn.close()
