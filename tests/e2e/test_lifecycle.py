"""Jobs over time: cancel, outliving the interaction token, restarts, and the member's own job commands."""

from __future__ import annotations

import logging

import pytest

from bot.domain.models import JobState
from tests.doubles.runcomfy import Lifecycle
from tests.e2e.conftest import job_in_state


def status_message(discord):
    channel = discord.guilds[0].text_channel
    return next(m for m in discord.messages(channel.id) if m.source == "bot" and m.embeds)


def bot_posts_in(discord, channel_id):
    return [m for m in discord.messages(channel_id) if m.source == "bot"]


async def test_cancel_a_queued_video(harness, bot, discord, runcomfy):
    runcomfy.script(Lifecycle.queued(1, hold=True).completes())
    interaction = await harness.animate(image=harness.image(), prompt="x")
    await interaction.wait_original(timeout=20)
    provider_job = await runcomfy.wait_for_submit()

    cancel = await discord.send_slash_command("cancel", {"id": 1})
    reply = await cancel.wait_original(timeout=10)

    assert reply.ephemeral and "Cancelled video #1" in reply.content
    assert runcomfy.jobs[provider_job.request_id].status == "cancelled"
    assert (await job_in_state(bot, 1, JobState.CANCELLED)).error_code == "cancelled"
    status = status_message(discord)
    notice = await discord.wait_until(
        lambda: next((m for m in bot_posts_in(discord, status.thread_id) if "cancelled" in m.content), None)
    )
    assert "#1" in notice.content
    # The card's edit may wait out the channel's 5-per-5 s bucket (card, edits, thread notice): allow that.
    await discord.wait_until(lambda: "Cancelled" in status.embeds[0]["title"], timeout=15)


async def test_a_running_video_is_reported_as_not_cancellable(harness, bot, discord, runcomfy):
    runcomfy.script(Lifecycle.queued(1).running(1, hold=True).completes())
    await (await harness.animate(image=harness.image(), prompt="x")).wait_original(timeout=20)
    job = await runcomfy.wait_for_submit()
    await runcomfy.wait_for_polls(job.request_id, 2)

    reply = await (await discord.send_slash_command("cancel", {"id": 1})).wait_original(timeout=10)

    assert "cannot stop it now" in reply.content
    assert (await bot.runtime.store.get(1)).state is JobState.RUNNING


async def test_members_cannot_cancel_or_see_each_others_jobs(harness, bot, discord, runcomfy):
    from tests.doubles.discord_double import UserSpec

    runcomfy.script(Lifecycle.queued(1, hold=True).completes())
    await (await harness.animate(image=harness.image(), prompt="mine")).wait_original(timeout=20)
    stranger = UserSpec("mallory")
    discord.guilds[0].members.append(stranger)

    cancel = await discord.send_slash_command("cancel", {"id": 1}, user=stranger)
    assert "You have no job #1" in (await cancel.wait_original(timeout=10)).content
    details = await discord.send_slash_command("job", {"id": 1}, user=stranger)
    assert "You have no job #1" in (await details.wait_original(timeout=10)).content
    choices = await (
        await discord.send_autocomplete("job", {"id": ""}, focused="id", user=stranger)
    ).wait_autocomplete()
    assert choices == []
    assert (await bot.runtime.store.get(1)).state is JobState.QUEUED


@pytest.mark.parametrize("discord_options", [{"token_lifetime_s": 1.0}])
async def test_a_video_that_outlives_the_interaction_token_is_still_delivered(
    harness, bot, discord, runcomfy
):
    runcomfy.script(Lifecycle.queued(1, hold=True).completes())
    interaction = await harness.animate(image=harness.image(), prompt="x")
    await interaction.wait_original(timeout=20)
    job = await runcomfy.wait_for_submit()
    await interaction.token_expired()

    runcomfy.release(job.request_id)
    status = status_message(discord)
    video = await discord.wait_until(
        lambda: next((m for m in bot_posts_in(discord, status.thread_id) if m.attachments), None), timeout=20
    )
    assert video.attachments[0].data == runcomfy.video
    await job_in_state(bot, 1, JobState.DELIVERED)
    assert [r for r in discord.requests if r.error_code == 50027] == []


async def test_a_restart_mid_job_resumes_it_and_posts_the_video_exactly_once(harness, bot, discord, runcomfy):
    runcomfy.script(Lifecycle.queued(1).running(1, hold=True).completes())
    await (await harness.animate(image=harness.image(), prompt="x")).wait_original(timeout=20)
    job = await runcomfy.wait_for_submit()
    await runcomfy.wait_for_polls(job.request_id, 2)
    creates_before = discord.command_creates()

    await harness.stop()
    runcomfy.release(job.request_id)
    restarted = await harness.start()

    status = status_message(discord)
    await job_in_state(restarted, 1, JobState.DELIVERED)
    videos = [m for m in bot_posts_in(discord, status.thread_id) if m.attachments]
    assert len(videos) == 1
    assert videos[0].attachments[0].data == runcomfy.video
    assert runcomfy.submit_count == 1
    # The command set did not change, so the restart did not spend any of the daily command creates.
    assert discord.command_creates() == creates_before
    assert len(discord.command_sync_requests()) == 1


async def test_jobs_lists_the_members_videos_privately_newest_first(harness, bot, discord, runcomfy):
    runcomfy.script(Lifecycle.queued(1, hold=True).completes())
    for prompt in ("first idea", "second idea"):
        await (await harness.animate(image=harness.image(), prompt=prompt)).wait_original(timeout=20)

    listing = await (await discord.send_slash_command("jobs")).wait_original(timeout=10)

    assert listing.ephemeral
    text = listing.embeds[0]["description"]
    assert text.index("#2") < text.index("#1")
    assert "second idea" in text and "first idea" in text
    assert "https://discord.com/channels/" in text

    choices = await (
        await discord.send_autocomplete("cancel", {"id": "sec"}, focused="id")
    ).wait_autocomplete()
    assert [choice["value"] for choice in choices] == [2]
    assert choices[0]["name"].startswith("#2 · Queued")


async def test_an_unexpected_error_gives_a_reference_that_is_in_the_log(
    harness, bot, discord, runcomfy, caplog, monkeypatch
):
    async def explode(*args, **kwargs):
        raise RuntimeError("database on fire")

    monkeypatch.setattr(bot.jobs, "recent_jobs", explode)
    with caplog.at_level(logging.ERROR, logger="cogs.support.errors"):
        reply = await (await discord.send_slash_command("jobs")).wait_original(timeout=10)

    assert reply.ephemeral
    assert "database on fire" not in reply.content
    reference = reply.content.split("reference `")[1].split("`")[0]
    assert len(reference) == 6
    logged = [r for r in caplog.records if reference in r.getMessage()]
    assert logged and logged[0].exc_info is not None


async def test_with_a_dev_guild_commands_sync_to_it_instantly_and_not_globally(harness, discord):
    guild = discord.guilds[0]
    harness.overrides["discord_dev_guild_id"] = guild.id
    await harness.start()
    names = {command["name"] for command in discord.commands(guild)}
    assert {"animate", "jobs", "job", "cancel"} <= names
    assert discord.commands(None) == []
    animate = next(c for c in discord.commands(guild) if c["name"] == "animate")
    duration = next(o for o in animate["options"] if o["name"] == "duration")
    assert (duration["min_value"], duration["max_value"]) == (2, 15)
