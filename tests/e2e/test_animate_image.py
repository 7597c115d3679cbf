"""The "Animate image" menu end to end: the message command, its form, and the same flow as /animate — with
the Discord double's real rules (the form must be the first answer within 3 s; its submit is a new
interaction)."""

from __future__ import annotations

import logging

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


async def posted_by_bob(discord, *images, content="look at this"):
    channel = discord.guilds[0].text_channel
    hosted = [discord.add_attachment(make_image(w, h, fmt="JPEG"), name) for name, (w, h) in images]
    return await discord.post_user_message(channel, content, user=BOB, attachments=hosted)


async def open_form(discord, message, user=ALICE):
    menu = await discord.send_message_command("Animate image", message, user=user)
    await menu.wait_acknowledged()
    assert menu.acknowledged_after < 3.0
    return menu


async def test_a_member_animates_someone_elses_image_through_the_form(harness, bot, discord, runcomfy):
    message = await posted_by_bob(discord, ("harbour.jpg", (800, 600)))
    menu = await open_form(discord, message)
    form = await menu.wait_modal()
    assert {"prompt", "duration", "more"} <= {field.custom_id for field in form.fields}

    submit = await discord.submit_modal(
        menu, {"prompt": "the boats rock gently", "duration": "6", "more": "ratio:9:16 resolution:720p"}
    )
    reply = await submit.wait_original(timeout=20)

    assert reply.ephemeral and "Started video #1" in reply.content
    submitted = await runcomfy.wait_for_submit()
    assert submitted.body["prompt"] == "the boats rock gently"
    assert (submitted.body["duration"], submitted.body["ratio"], submitted.body["resolution"]) == (
        6,
        "9:16",
        "720p",
    )
    job = await job_in_state(bot, 1, JobState.DELIVERED)
    assert job.requester.user_id == ALICE.id  # the member who asked, not the image's author
    card = discord.message(job.status_message_id)
    assert card.attachments[0].data == make_image(800, 600, fmt="JPEG")
    assert submitted.body["first_frame_image_url"] == card.attachments[0].url


async def test_a_message_without_an_image_is_answered_at_once_without_a_form(harness, bot, discord, runcomfy):
    message = await discord.post_user_message(discord.guilds[0].text_channel, "just words", user=BOB)
    menu = await open_form(discord, message)

    reply = await menu.wait_original(timeout=5)

    assert reply.ephemeral and "no image I can use" in reply.content
    assert menu.modal is None


async def test_an_image_too_small_is_refused_before_the_form_with_its_size(harness, bot, discord, runcomfy):
    message = await posted_by_bob(discord, ("icon.jpg", (200, 200)))
    menu = await open_form(discord, message)

    reply = await menu.wait_original(timeout=5)

    assert "200×200 px" in reply.content and "over 300 px" in reply.content
    assert menu.modal is None and runcomfy.submit_count == 0


async def test_with_several_images_the_first_usable_one_is_used_and_named(harness, bot, discord, runcomfy):
    message = await posted_by_bob(discord, ("tiny.jpg", (100, 100)), ("big.jpg", (900, 600)))
    menu = await open_form(discord, message)
    await menu.wait_modal()

    submit = await discord.submit_modal(menu, {"prompt": "waves"})
    reply = await submit.wait_original(timeout=20)

    assert "Used image 2 of 2 (big.jpg)." in reply.content
    job = await job_in_state(bot, 1, JobState.QUEUED, JobState.RUNNING, JobState.DELIVERED)
    assert (job.first_frame.width, job.first_frame.height) == (900, 600)


async def test_a_form_submitted_after_a_restart_still_starts_the_video(harness, bot, discord, runcomfy):
    message = await posted_by_bob(discord, ("harbour.jpg", (800, 600)))
    menu = await open_form(discord, message)
    await menu.wait_modal()
    await harness.stop()
    await harness.start()

    submit = await discord.submit_modal(menu, {"prompt": "the boats rock"})

    assert "Started video #1" in (await submit.wait_original(timeout=20)).content


async def test_form_errors_get_the_same_answers_as_commands(
    harness, bot, discord, runcomfy, caplog, monkeypatch
):
    message = await posted_by_bob(discord, ("harbour.jpg", (800, 600)))
    menu = await open_form(discord, message)
    await menu.wait_modal()
    refused = await (await discord.submit_modal(menu, {"prompt": "x", "more": "style:anime"})).wait_original()
    assert refused.ephemeral and "`style:anime`" in refused.content
    menu = await open_form(discord, message)
    await menu.wait_modal()
    refused = await (await discord.submit_modal(menu, {"prompt": "x", "duration": "5 x"})).wait_original()
    assert "not a number of seconds" in refused.content
    assert runcomfy.submit_count == 0

    async def explode(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(bot.jobs, "start", explode)
    menu = await open_form(discord, message)
    await menu.wait_modal()
    with caplog.at_level(logging.ERROR, logger="cogs.support.errors"):
        failed = await (await discord.submit_modal(menu, {"prompt": "x"})).wait_original()
    reference = failed.content.split("reference `")[1].split("`")[0]
    assert any(reference in record.getMessage() and record.exc_info for record in caplog.records)
    assert "disk on fire" not in failed.content
