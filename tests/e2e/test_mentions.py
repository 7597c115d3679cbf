"""Starting a video by mentioning the bot, end to end: an image in the mention, a reply to an image (with and
without the Message Content intent), options as words, and refusals that remove themselves."""

from __future__ import annotations

import logging
import sys

import pytest

from bot.domain.models import JobState
from tests.doubles.discord_double import GuildSpec, UserSpec
from tests.doubles.media import make_image
from tests.e2e.conftest import job_in_state

ALICE = UserSpec("alice")
BOB = UserSpec("bob")


@pytest.fixture
def guilds() -> list[GuildSpec]:
    return [GuildSpec(members=[ALICE, BOB])]


def image(discord, width=800, height=600, name="harbour.jpg"):
    return discord.add_attachment(make_image(width, height, fmt="JPEG"), name)


async def mention(discord, text, *, user=ALICE, attachments=(), reference=None):
    return await discord.post_user_message(
        discord.guilds[0].text_channel,
        f"<@{discord.bot_user.id}> {text}",
        user=user,
        attachments=attachments,
        reference=reference,
    )


def replies_to(discord, message):
    return [
        m for m in discord.messages(message.channel_id) if m.source == "bot" and m.reference_id == message.id
    ]


async def test_a_mention_with_an_image_and_option_words_makes_the_video(
    harness, bot, discord, runcomfy, caplog
):
    asked = await mention(discord, "the boats rock gently duration:6 ratio:1:1", attachments=[image(discord)])

    assert await discord.wait_reaction(asked, "👀")
    submitted = await runcomfy.wait_for_submit()
    assert submitted.body["prompt"] == "the boats rock gently"
    assert (submitted.body["duration"], submitted.body["ratio"]) == (6, "1:1")
    job = await job_in_state(bot, 1, JobState.DELIVERED)
    assert job.requester.user_id == ALICE.id
    card = discord.message(job.status_message_id)
    assert card.reference_id == asked.id  # the card answers the member's message
    video = next(m for m in discord.messages(job.thread_id) if m.attachments)
    assert video.pinged_user_ids == [ALICE.id]
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_replying_to_someone_elses_image_without_the_intent_points_to_the_menu(
    harness, bot, discord, runcomfy, monkeypatch
):
    # The extension as the bot loaded it (discord.py loads extensions outside the `cogs` package namespace).
    monkeypatch.setattr(sys.modules["cogs.mentions"], "REFUSAL_LIFETIME_S", 0.5)
    photo = await discord.post_user_message(
        discord.guilds[0].text_channel, "my photo", user=BOB, attachments=[image(discord)]
    )
    asked = await mention(discord, "make it move", reference=photo)

    refusal = await discord.wait_until(lambda: next(iter(replies_to(discord, asked)), None), timeout=10)

    assert "Animate image" in refusal.content and "attach the image" in refusal.content
    assert refusal.pinged_user_ids == [ALICE.id]
    await discord.wait_until(lambda: refusal.deleted, timeout=10)  # it removes itself
    assert runcomfy.submit_count == 0


@pytest.mark.parametrize("discord_options", [{"message_content_intent_granted": True}])
async def test_with_the_intent_a_reply_to_an_image_makes_the_video(harness, discord, runcomfy):
    harness.overrides["discord_message_content_intent"] = True
    bot = await harness.start()
    photo = await discord.post_user_message(
        discord.guilds[0].text_channel, "my photo", user=BOB, attachments=[image(discord, name="bobs.jpg")]
    )

    await mention(discord, "make it move", reference=photo)

    submitted = await runcomfy.wait_for_submit()
    job = await job_in_state(bot, 1, JobState.QUEUED, JobState.RUNNING, JobState.DELIVERED)
    assert job.requester.user_id == ALICE.id
    card = discord.message(job.status_message_id)
    assert card.attachments[0].data == make_image(800, 600, fmt="JPEG")
    assert submitted.body["first_frame_image_url"] == card.attachments[0].url


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("waves style:anime duration:5", "`style:anime`"),
        ("waves duration:99", "outside"),
        ("", "Mention me with a prompt"),
    ],
)
async def test_refusals_name_what_is_wrong(harness, bot, discord, runcomfy, text, answer):
    asked = await mention(discord, text, attachments=[image(discord)])

    refusal = await discord.wait_until(lambda: next(iter(replies_to(discord, asked)), None), timeout=10)

    assert answer in refusal.content
    assert runcomfy.submit_count == 0


async def test_a_mention_without_any_image_says_how(harness, bot, discord, runcomfy):
    asked = await mention(discord, "the boats rock")
    refusal = await discord.wait_until(lambda: next(iter(replies_to(discord, asked)), None), timeout=10)
    assert "Attach an image" in refusal.content


async def test_a_reply_that_only_pings_the_bot_is_not_a_request(harness, bot, discord, runcomfy):
    await (await harness.animate(image=harness.image(), prompt="x")).wait_original(timeout=20)
    job = await job_in_state(bot, 1, JobState.DELIVERED)
    video = next(m for m in discord.messages(job.thread_id) if m.attachments)
    thanks = await discord.post_user_message(
        discord.channel(job.thread_id), "thanks, lovely!", user=ALICE, reference=video
    )
    # Another mention after it, answered: by then the first was seen and (rightly) ignored.
    probe = await mention(discord, "")
    await discord.wait_until(lambda: next(iter(replies_to(discord, probe)), None), timeout=10)
    assert replies_to(discord, thanks) == [] and thanks.reactions == []
