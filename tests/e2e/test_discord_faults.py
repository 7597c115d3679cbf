"""Discord's transient faults are retried, never turned into a second post or a "something went wrong":
a 503 or a dropped connection after Discord accepted a post, a 429, and Discord down for longer than the
bot waits (then a specific answer, and nothing charged)."""

from __future__ import annotations

import pytest

from bot.domain.models import JobState
from bot.jobs.ports import ReservationState
from tests.doubles.discord_double import is_message_create
from tests.doubles.runcomfy import Lifecycle
from tests.e2e.conftest import job_in_state


def bot_messages(discord, channel_id):
    return [m for m in discord.messages(channel_id) if m.source == "bot"]


def videos(discord, thread_id, job_id=1):
    return [m for m in bot_messages(discord, thread_id) if f"your video #{job_id} is ready" in m.content]


async def finished_video(harness, bot, discord, runcomfy):
    runcomfy.script(Lifecycle.queued(1).completes())
    reply = await (await harness.animate(image=harness.image(), prompt="waves")).wait_original(timeout=20)
    assert "Started video #1" in reply.content, reply.content
    job = await job_in_state(bot, 1, JobState.DELIVERED)
    return job, reply


async def test_a_503_while_posting_the_status_card_is_retried_into_one_card(harness, bot, discord, runcomfy):
    channel = discord.guilds[0].text_channel
    discord.fail_next(is_message_create(channel, with_files=True), status=503)
    job, _ = await finished_video(harness, bot, discord, runcomfy)
    cards = [m for m in bot_messages(discord, channel.id) if m.embeds]
    assert len(cards) == 1 and cards[0].id == job.status_message_id
    assert runcomfy.submit_count == 1


async def test_a_status_card_post_whose_answer_is_lost_is_not_posted_twice(harness, bot, discord, runcomfy):
    channel = discord.guilds[0].text_channel
    discord.drop_after_accept_next(is_message_create(channel, with_files=True))
    job, _ = await finished_video(harness, bot, discord, runcomfy)
    cards = [m for m in bot_messages(discord, channel.id) if m.embeds]
    assert [card.id for card in cards] == [job.status_message_id]


@pytest.mark.parametrize("fault", ["503", "drop", "429"])
async def test_the_video_is_posted_once_through_a_fault_on_its_upload(harness, bot, discord, runcomfy, fault):
    thread_uploads = lambda record: (  # noqa: E731
        record.method == "POST"
        and bool(record.files)
        and record.params.get("channel_id") != str(discord.guilds[0].text_channel.id)
    )
    match fault:
        case "503":
            discord.fail_next(thread_uploads, status=503)
        case "drop":
            discord.drop_after_accept_next(thread_uploads)
        case "429":
            discord.rate_limit_next(thread_uploads, retry_after=0.2)
    job, _ = await finished_video(harness, bot, discord, runcomfy)
    assert len(videos(discord, job.thread_id)) == 1
    assert job.delivery_ref == str(videos(discord, job.thread_id)[0].id)


async def test_discord_down_for_longer_than_the_bot_waits_gets_a_specific_answer_and_costs_nothing(
    harness, discord, runcomfy
):
    harness.overrides["discord_retry_s"] = 0.5
    bot = await harness.start()
    channel = discord.guilds[0].text_channel
    discord.fail_next(is_message_create(channel, with_files=True), status=503, count=1000)
    interaction = await harness.animate(image=harness.image(), prompt="waves")
    reply = await interaction.wait_original(timeout=20)
    assert "Discord is having trouble right now; nothing was charged" in reply.content
    assert "reference" not in reply.content  # not the unexpected-error answer
    assert runcomfy.submit_count == 0
    job = await bot.runtime.store.get(1)
    assert (job.state, job.error_code) == (JobState.FAILED, "not_started")
    assert (await bot.runtime.quota_store.reservation(1)).state is ReservationState.RELEASED
    assert bot_messages(discord, channel.id) == []
