"""Moderators' spend controls through Discord: the audit channel, budget alerts, the per-job cap, the hourly
burst limit."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from bot.domain.models import JobState
from tests.doubles.discord_double import ChannelSpec, GuildSpec, HostedFile, UserSpec
from tests.doubles.runcomfy import Lifecycle
from tests.e2e.conftest import job_in_state

MODERATOR = UserSpec("modkat")  # the guild owner (first member): every permission
MEMBER = UserSpec("bob")
OTHERS = [UserSpec(f"member{n}") for n in range(8)]
AUDIT = ChannelSpec("spend-audit")
ALERT_ROLE = 424_242_424_242_424_242


@pytest.fixture
def guilds():
    return [GuildSpec(members=[MODERATOR, MEMBER, *OTHERS], channels=[ChannelSpec("general"), AUDIT])]


async def animate(harness, user=MEMBER, image: HostedFile | None = None, **options):
    options["image"] = image or harness.image()
    options.setdefault("prompt", "a lighthouse blinks")
    interaction = await harness.discord.send_slash_command("animate", options, user=user)
    return await interaction.wait_original(timeout=20)


async def admin(discord, command, options=None, user=MODERATOR):
    interaction = await discord.send_slash_command(f"seedance-admin {command}", options or {}, user=user)
    return await interaction.wait_original(timeout=10)


def audit_lines(discord) -> list[str]:
    return [message.content for message in discord.messages(AUDIT)]


def fetched(discord, image: HostedFile) -> bool:
    """Whether the bot downloaded `image` from the double's CDN."""
    return any(served.id == image.id for served in discord.cdn_downloads)


async def wait_for_lines(discord, count: int) -> list[str]:
    return await discord.wait_until(lambda: len(audit_lines(discord)) >= count and audit_lines(discord), 20)


# --- the audit channel ------------------------------------------------------------------------------------


async def test_the_audit_channel_gets_exactly_one_line_per_job_outcome_across_a_restart(
    harness, discord, runcomfy
):
    await harness.start()
    reply = await admin(discord, "audit", {"channel": AUDIT})
    assert f"<#{AUDIT.id}>" in str(reply.embeds[0])

    runcomfy.script(Lifecycle.queued(1).completes(cost=0.25))  # job 1: finished, with a reported cost
    await animate(harness, duration=4, resolution="720p")
    await job_in_state(harness.bot, 1, JobState.DELIVERED)
    runcomfy.script(Lifecycle.queued(1).fails("The model refused."))  # job 2: failed
    await animate(harness)
    await job_in_state(harness.bot, 2, JobState.FAILED)
    runcomfy.script(Lifecycle.queued(1, hold=True).completes())  # job 3: cancelled by a moderator
    await animate(harness)
    await admin(discord, "cancel", {"id": 3})
    await job_in_state(harness.bot, 3, JobState.CANCELLED)
    await wait_for_lines(discord, 6)

    # A restart (every job is already announced), then one more job to its end: its two lines prove the
    # restarted poller ran, and nothing earlier was posted again.
    await harness.stop()
    await harness.start()
    await animate(harness)
    await job_in_state(harness.bot, 4, JobState.DELIVERED)
    lines = await wait_for_lines(discord, 8)

    by_job = {job_id: [line for line in lines if f" · #{job_id} · " in line] for job_id in (1, 2, 3, 4)}
    assert [len(found) for found in by_job.values()] == [2, 2, 2, 2], lines
    assert len(lines) == 8
    started, finished = by_job[1]
    assert started.startswith("▶️ Started") and finished.startswith("✅ Finished")
    for part in (f"<@{MEMBER.id}>", "Seedance", "4 s", "720p", "8 credits"):
        assert part in started and part in finished
    assert "provider cost $0.2500" in finished
    assert by_job[2][1].startswith("❌ Failed") and "5 credits (returned)" in by_job[2][1]
    assert by_job[3][1].startswith("🚫 Cancelled")
    assert by_job[4][1].startswith("✅ Finished")
    # The member is named, never pinged.
    for message in discord.messages(AUDIT):
        assert message.pinged_user_ids == [] and message.payload["mention_roles"] == []

    # The usage report puts the provider's reported cost next to the credits, in the embed and the CSV.
    report = await admin(discord, "usage", {"days": 1})
    assert "$0.3500 reported by the provider" in report.embeds[0]["title"]
    assert "$0.3500 reported" in report.embeds[0]["description"]
    assert "0.3500" in report.attachments[0].data.decode()


async def test_a_failing_audit_channel_never_fails_the_job_and_audit_off_stops_the_lines(
    harness, discord, runcomfy
):
    await harness.start()
    store = harness.bot.runtime.quota_store
    guild_id = discord.guilds[0].id
    # A channel that does not exist: Discord answers 404 to every post.
    await store.update_rules(guild_id, lambda r: dataclasses.replace(r, audit_channel_id=12345), by=None)
    await animate(harness)
    await job_in_state(harness.bot, 1, JobState.DELIVERED)
    assert any("/channels/12345/messages" in r.path for r in discord.requests)  # it was tried

    await admin(discord, "audit", {"channel": AUDIT})
    await admin(discord, "audit-off")
    assert (await store.config(guild_id)).rules.audit_channel_id is None
    await animate(harness)
    await job_in_state(harness.bot, 2, JobState.DELIVERED)
    assert audit_lines(discord) == []


# --- budget alerts ----------------------------------------------------------------------------------------


async def test_budget_alerts_fire_once_each_at_the_thresholds_under_a_burst(harness, discord, runcomfy):
    harness.overrides.update(quota_credits_per_day=1_000, quota_concurrent_jobs=10)
    await harness.start()
    guild_id = discord.guilds[0].id
    await admin(discord, "budget", {"credits_per_day": 20, "credits_per_month": 40})
    await admin(discord, "audit", {"channel": AUDIT})
    # The double cannot send role options yet: the alert role is set in the store, as the command would.
    store = harness.bot.runtime.quota_store
    await store.update_rules(guild_id, lambda r: dataclasses.replace(r, alert_role_id=ALERT_ROLE), by=None)

    # Eight members at once, 5 credits each, against a daily budget of 20: four get in.
    replies = await asyncio.gather(*(animate(harness, user=member) for member in OTHERS))
    assert sum("Started video" in reply.content for reply in replies) == 4

    alerts = [m for m in discord.messages(AUDIT) if "budget" in m.content]
    assert sorted(m.content.split(":")[0] for m in alerts) == sorted(
        [
            f"<@&{ALERT_ROLE}> ⚠️ This server has used 50 % of its daily budget",
            f"<@&{ALERT_ROLE}> ⚠️ This server has used 80 % of its daily budget",
            f"<@&{ALERT_ROLE}> ⚠️ This server has used all of its daily budget",
            f"<@&{ALERT_ROLE}> ⚠️ This server has used 50 % of its monthly budget",
        ]
    )
    assert all(m.payload["mention_roles"] == [str(ALERT_ROLE)] for m in alerts)  # the role is pinged
    assert all(m.pinged_user_ids == [] for m in alerts)

    # After a restart (nothing remembered in memory), more admissions at the same thresholds post nothing:
    # the fired alerts are recorded in the database.
    await harness.stop()
    await harness.start()
    await admin(discord, "budget", {"credits_per_day": 25})
    started = await animate(harness, user=MEMBER)
    assert "Started video" in started.content
    await job_in_state(harness.bot, 5, JobState.DELIVERED)
    await wait_for_lines(discord, 4 + 5 * 2)  # the alerts, and the started and finished lines of five jobs
    assert len([m for m in discord.messages(AUDIT) if "budget" in m.content]) == 4


# --- the per-job cap and the hourly burst limit ----------------------------------------------------------


async def test_the_per_job_cap_refuses_before_anything_is_downloaded(harness, discord, runcomfy):
    await harness.start()
    await admin(discord, "budget", {"max_credits_per_job": 9})

    dear = harness.image()
    refused = await animate(harness, image=dear, duration=5, resolution="720p")  # 10 credits
    assert refused.ephemeral
    assert "costs 10 credits" in refused.content and "at most 9 credits" in refused.content
    assert not fetched(discord, dear)
    assert runcomfy.submit_count == 0

    cheap = harness.image()
    assert "Started video" in (await animate(harness, image=cheap, duration=4, resolution="720p")).content
    assert fetched(discord, cheap)  # an allowed request is fetched: the check above can fail

    await admin(discord, "budget", {"max_credits_per_job": 0})  # 0: no cap
    assert "Started video" in (await animate(harness, duration=5, resolution="720p")).content


async def test_the_hourly_limit_refuses_the_next_video_and_says_when(harness, discord, runcomfy):
    harness.overrides.update(quota_credits_per_day=1_000, quota_concurrent_jobs=10)
    await harness.start()
    await admin(discord, "limits set", {"videos_per_hour": 2})

    for _ in range(2):
        assert "Started video" in (await animate(harness)).content
    third = harness.image()
    refused = await animate(harness, image=third)
    assert "2 videos in the last hour" in refused.content and "2 an hour" in refused.content
    assert "<t:" in refused.content
    assert not fetched(discord, third)
    assert runcomfy.submit_count == 2

    # A member override lifts it for one member only.
    await admin(discord, "limits set", {"member": MEMBER, "videos_per_hour": 3})
    assert "Started video" in (await animate(harness)).content
