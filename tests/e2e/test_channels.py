"""Where the bot may post: missing permissions, channels without threads, Discord rate limits."""

from __future__ import annotations

import discord as discord_py
import pytest

from bot.domain.models import JobState
from tests.doubles.discord_double import ChannelSpec, GuildSpec
from tests.e2e.conftest import job_in_state

NO_THREADS = discord_py.Permissions(create_public_threads=True).value
NO_FILES = discord_py.Permissions(attach_files=True).value


@pytest.mark.parametrize(
    "guilds", [[GuildSpec(channels=[ChannelSpec("general", bot_denied_permissions=NO_FILES)])]]
)
async def test_a_channel_where_the_bot_cannot_attach_files_is_refused_up_front(
    harness, bot, discord, runcomfy
):
    reply = await (await harness.animate(image=harness.image(), prompt="x")).wait_original(timeout=10)
    assert reply.ephemeral
    assert "Attach Files" in reply.content
    assert [m for m in discord.all_messages() if m.source == "bot" and not m.ephemeral] == []
    assert runcomfy.requests == []


@pytest.mark.parametrize(
    "guilds", [[GuildSpec(channels=[ChannelSpec("general", bot_denied_permissions=NO_THREADS)])]]
)
async def test_without_thread_permission_the_video_is_posted_in_the_channel(harness, bot, discord, runcomfy):
    channel = discord.guilds[0].text_channel
    reply = await (await harness.animate(image=harness.image(), prompt="x")).wait_original(timeout=20)
    assert "in this channel" in reply.content
    await job_in_state(bot, 1, JobState.DELIVERED)
    videos = [
        m
        for m in discord.messages(channel.id)
        if m.source == "bot" and m.attachments and "ready" in m.content
    ]
    assert len(videos) == 1
    assert videos[0].attachments[0].data == runcomfy.video
    assert discord.threads == []


async def test_discord_rate_limits_on_posting_are_waited_out_not_lost(harness, bot, discord, runcomfy):
    discord.rate_limit_next(lambda r: r.method == "POST" and "/messages" in r.path, retry_after=0.2, count=2)
    await (await harness.animate(image=harness.image(), prompt="x")).wait_original(timeout=20)
    await job_in_state(bot, 1, JobState.DELIVERED)
    assert len([r for r in discord.requests if r.status == 429]) == 2
