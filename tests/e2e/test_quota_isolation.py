"""A moderator of one server can never see, cancel or change another server's jobs and settings."""

from __future__ import annotations

import pytest

from bot.domain.models import JobState
from tests.doubles.discord_double import GuildSpec, UserSpec
from tests.doubles.runcomfy import Lifecycle
from tests.e2e.conftest import job_in_state

MOD_A = UserSpec("mod-a")  # owner of server A: every permission there, none in B
MOD_B = UserSpec("mod-b")  # owner of server B
MEMBER_B = UserSpec("bob-b")
SERVER_A = GuildSpec(name="Server A", members=[MOD_A])
SERVER_B = GuildSpec(name="Server B", members=[MOD_B, MEMBER_B])


@pytest.fixture
def guilds():
    return [SERVER_A, SERVER_B]


async def admin(discord, command, options=None, *, user, guild):
    interaction = await discord.send_slash_command(
        f"seedance-admin {command}", options or {}, user=user, guild=guild
    )
    return await interaction.wait_original(timeout=10)


async def queued_job_in_b(harness, discord, runcomfy):
    """Member B starts a video in server B that stays queued at the provider; returns its id."""
    await harness.start()
    runcomfy.script(Lifecycle.queued(1, hold=True).completes())
    image = discord.add_attachment(harness.image().data, "frame.png", channel=SERVER_B.text_channel)
    interaction = await discord.send_slash_command(
        "animate", {"image": image, "prompt": "a lighthouse blinks"}, user=MEMBER_B, guild=SERVER_B
    )
    assert "Started video #1" in (await interaction.wait_original(timeout=20)).content
    job = await job_in_state(harness.bot, 1, JobState.QUEUED)
    assert job.requester.guild_id == SERVER_B.id
    return job.id


async def test_a_moderator_cannot_cancel_another_servers_job(harness, discord, runcomfy):
    job_id = await queued_job_in_b(harness, discord, runcomfy)

    reply = await admin(discord, "cancel", {"id": job_id}, user=MOD_A, guild=SERVER_A)

    assert f"no job #{job_id} in this server" in reply.content
    assert reply.ephemeral
    job = await harness.bot.runtime.store.get(job_id)
    assert job is not None and job.state is JobState.QUEUED
    assert all(status.status != "cancelled" for status in runcomfy.jobs.values())
    # B's own moderator still can: the refusal was about the server, not a broken command.
    reply = await admin(discord, "cancel", {"id": job_id}, user=MOD_B, guild=SERVER_B)
    assert f"Cancelled video #{job_id}" in reply.content


async def test_a_moderator_does_not_see_another_servers_jobs(harness, discord, runcomfy):
    job_id = await queued_job_in_b(harness, discord, runcomfy)

    listing_a = await admin(discord, "jobs", user=MOD_A, guild=SERVER_A)
    listing_b = await admin(discord, "jobs", user=MOD_B, guild=SERVER_B)

    assert f"#{job_id}" not in listing_a.embeds[0]["description"]
    assert str(MEMBER_B.id) not in listing_a.embeds[0]["description"]
    assert listing_a.embeds[0]["title"].startswith("0 video")
    assert f"#{job_id}" in listing_b.embeds[0]["description"]


@pytest.mark.parametrize(
    ("command", "options"),
    [
        ("limits set", {"credits_per_day": 1}),
        ("budget", {"credits_per_day": 1}),
        ("words add", {"words": "lighthouse"}),
        ("ban", {"member": MOD_A}),
    ],
)
async def test_a_moderators_changes_apply_to_their_server_only(harness, discord, runcomfy, command, options):
    await harness.start()
    store = harness.bot.jobs.quota.store
    before_b = await store.config(SERVER_B.id)

    await admin(discord, command, options, user=MOD_A, guild=SERVER_A)

    assert await store.config(SERVER_B.id) == before_b
    assert await store.config(SERVER_A.id) != before_b  # the change did land, in A


async def test_usage_lists_only_the_moderators_own_server(harness, discord, runcomfy):
    await queued_job_in_b(harness, discord, runcomfy)

    reply = await admin(discord, "usage", user=MOD_A, guild=SERVER_A)

    assert "No videos in this period." in reply.embeds[0]["description"]
    assert str(MEMBER_B.id) not in reply.embeds[0]["description"]
