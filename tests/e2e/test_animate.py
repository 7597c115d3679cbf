"""/animate end to end: the real bot against loopback Discord and RunComfy, down to the MP4 bytes."""

from __future__ import annotations

import io
import random

import pytest
from PIL import Image

from bot.domain.models import JobState
from tests.doubles.discord_double import GuildSpec
from tests.doubles.media import make_image, make_mp4, make_noisy_mp4, probe_mp4
from tests.doubles.runcomfy import Lifecycle
from tests.e2e.conftest import job_in_state


def bot_messages(discord, channel_id):
    return [m for m in discord.messages(channel_id) if m.source == "bot"]


async def wait_for_video(discord, thread_id):
    return await discord.wait_until(
        lambda: next(
            (m for m in bot_messages(discord, thread_id) if m.attachments or "ready" in m.content), None
        ),
        timeout=20,
    )


async def test_a_member_gets_their_video_in_a_thread_under_the_request(harness, bot, discord, runcomfy):
    runcomfy.script(Lifecycle.queued(2).running(1).completes(cost=0.2))
    guild = discord.guilds[0]
    member = guild.members[0]
    image = harness.image(800, 600, fmt="JPEG", name="harbour.jpg")

    interaction = await harness.animate(
        image=image, prompt="boats rock gently", duration=4, resolution="720p"
    )

    assert interaction.acknowledged_after < 3.0
    reply = await interaction.wait_original(timeout=20)
    assert reply.ephemeral
    assert "Started video #1" in reply.content

    status = next(m for m in bot_messages(discord, guild.text_channel.id) if m.embeds)
    assert status.attachments and status.attachments[0].data == make_image(800, 600, fmt="JPEG")
    assert status.embeds[0]["description"] == "boats rock gently"
    # The provider got the re-posted copy, not the member's ephemeral option attachment.
    job = await runcomfy.wait_for_submit()
    assert job.body["first_frame_image_url"] == status.attachments[0].url
    assert job.body["first_frame_image_url"] != image.url
    assert (job.body["duration"], job.body["resolution"]) == (4, "720p")

    thread_id = status.thread_id
    assert thread_id is not None
    delivered = await wait_for_video(discord, thread_id)
    assert delivered.attachments[0].data == runcomfy.video
    assert probe_mp4(delivered.attachments[0].data).codec == "h264"
    assert delivered.pinged_user_ids == [member.id]
    assert not delivered.pings_everyone

    done = await discord.wait_until(lambda: status.edits and "Done" in status.embeds[0]["title"], timeout=10)
    assert done
    stored = await job_in_state(bot, 1, JobState.DELIVERED)
    assert stored.delivery_ref == str(delivered.id)
    # Nothing after the first seconds went through the interaction token.
    assert all(r.error_code is None for r in interaction.webhook_requests)


async def test_a_prompt_with_everyone_and_role_mentions_pings_nobody(harness, bot, discord, runcomfy):
    guild = discord.guilds[0]
    prompt = "@everyone look <@&123456789> and <@987654321> @here"
    interaction = await harness.animate(image=harness.image(), prompt=prompt)
    await interaction.wait_original(timeout=20)
    job = await runcomfy.wait_for_submit()
    thread_id = next(m for m in bot_messages(discord, guild.text_channel.id) if m.embeds).thread_id
    delivered = await wait_for_video(discord, thread_id)

    for message in discord.all_messages():
        if message.source != "bot":
            continue
        assert not message.pings_everyone, message
        assert set(message.pinged_user_ids) <= {guild.members[0].id}, message
    assert job.body["prompt"] == prompt
    assert delivered.pinged_user_ids == [guild.members[0].id]


@pytest.mark.parametrize(
    ("size", "message"),
    [((200, 600), "200×600"), ((3000, 1000), "between 0.4 and 2.5")],
)
async def test_a_bad_image_gets_a_private_specific_answer_and_nothing_is_posted_or_sent(
    harness, bot, discord, runcomfy, size, message
):
    interaction = await harness.animate(image=harness.image(*size), prompt="x")
    reply = await interaction.wait_original(timeout=10)
    assert reply.ephemeral
    assert message in reply.content
    assert [m for m in discord.all_messages() if m.source == "bot" and not m.ephemeral] == []
    assert runcomfy.requests_to("submit") == []


async def test_a_file_that_is_not_an_image_is_named(harness, bot, discord, runcomfy):
    attachment = discord.add_attachment(b"%PDF-1.7\n" + bytes(2000), "scan.png", "image/png")
    interaction = await harness.animate(image=attachment, prompt="x")
    reply = await interaction.wait_original(timeout=10)
    assert "PDF" in reply.content
    assert runcomfy.requests_to("submit") == []


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"model": "seedance-1.0-pro", "audio": True}, "has no `audio` option"),
        ({"model": "seedance-2.0-pro", "resolution": "1080p"}, "Allowed: 480p, 720p"),
        ({"model": "seedance-1.5-pro", "duration": 2}, "4 to 12 seconds"),
    ],
)
async def test_an_option_the_model_lacks_is_refused_before_downloading(
    harness, bot, discord, runcomfy, options, message
):
    image = harness.image()
    interaction = await harness.animate(image=image, prompt="x", **options)
    reply = await interaction.wait_original(timeout=10)
    assert message in reply.content
    assert runcomfy.requests == []
    assert not any(r.path.startswith("/attachments/") for r in discord.requests)


async def test_a_failed_generation_is_explained_under_the_request(harness, bot, discord, runcomfy):
    runcomfy.script(Lifecycle.queued(1).fails("The output was flagged by the safety checker"))
    await harness.animate(image=harness.image(), prompt="x")
    guild = discord.guilds[0]
    status = await discord.wait_until(
        lambda: next((m for m in bot_messages(discord, guild.text_channel.id) if m.embeds), None)
    )
    notice = await discord.wait_until(
        lambda: next(
            (m for m in bot_messages(discord, status.thread_id) if "did not work out" in m.content), None
        ),
        timeout=20,
    )
    assert "safety checker" in notice.content
    assert notice.pinged_user_ids == [guild.members[0].id]
    await discord.wait_until(lambda: "Failed" in status.embeds[0]["title"], timeout=10)


@pytest.mark.parametrize("guilds", [[GuildSpec(upload_limit_bytes=2_000)]])
async def test_a_video_over_the_upload_limit_becomes_a_link_not_a_loss(harness, bot, discord, runcomfy):
    runcomfy.video = make_mp4(2.0, width=128, height=128)
    assert len(runcomfy.video) > 2_000
    await harness.animate(image=harness.image(), prompt="x")
    guild = discord.guilds[0]
    status = await discord.wait_until(
        lambda: next((m for m in bot_messages(discord, guild.text_channel.id) if m.embeds), None)
    )
    notice = await discord.wait_until(
        lambda: next((m for m in bot_messages(discord, status.thread_id) if "ready" in m.content), None),
        timeout=20,
    )
    assert notice.attachments == []
    assert "upload limit" in notice.content
    assert "/files/videos/" in notice.content  # the provider's link
    assert "expires" in notice.content


async def test_rapid_progress_does_not_become_an_edit_storm(harness, bot, discord, runcomfy):
    runcomfy.script(Lifecycle.queued(10).running(5).completes())
    await (await harness.animate(image=harness.image(), prompt="x")).wait_original(timeout=20)
    guild = discord.guilds[0]
    status = next(m for m in bot_messages(discord, guild.text_channel.id) if m.embeds)
    await job_in_state(bot, 1, JobState.DELIVERED)
    # The final card goes out within the channel's edit budget, after the video (never holding it up).
    await discord.wait_until(lambda: "Done" in status.embeds[0]["title"], timeout=10)
    # 15 visible changes in well under the 5 s edit window: the latest state at each edit, the final one
    # (Done) always; everything in between is coalesced.
    assert 2 <= len(status.edits) <= 4, len(status.edits)
    assert "Done" in status.embeds[0]["title"]


@pytest.mark.parametrize("guilds", [[GuildSpec(upload_limit_bytes=150_000)]])
async def test_a_video_just_over_the_upload_limit_is_posted_re_encoded_and_plays(
    harness, bot, discord, runcomfy
):
    runcomfy.video = make_noisy_mp4(2.0, width=320, height=240, audio=True)
    assert len(runcomfy.video) > 150_000
    await harness.animate(image=harness.image(), prompt="x")
    guild = discord.guilds[0]
    status = await discord.wait_until(
        lambda: next((m for m in bot_messages(discord, guild.text_channel.id) if m.embeds), None)
    )
    await job_in_state(bot, 1, JobState.DELIVERED)
    posted = await wait_for_video(discord, status.thread_id)

    video = next(a for a in posted.attachments if a.filename == "seedance-1.mp4")
    assert len(video.data) <= 150_000
    played, source = probe_mp4(video.data), probe_mp4(runcomfy.video)
    assert played.codec == "h264" and played.has_audio
    assert played.duration_s == pytest.approx(source.duration_s, abs=0.1)
    assert "Re-encoded" in posted.content


async def test_an_image_over_the_servers_upload_limit_is_recompressed_for_the_provider(
    harness, bot, discord, runcomfy
):
    side = 3100
    noise = Image.frombytes("RGB", (side, side), random.Random(3).randbytes(side * side * 3))
    buffer = io.BytesIO()
    noise.save(buffer, format="PNG", compress_level=1)
    assert 25_000_000 < len(buffer.getvalue()) < 30_000_000  # under the provider's 30 MB, over Discord's 10
    image = discord.add_attachment(buffer.getvalue(), "huge.png")

    reply = await (await harness.animate(image=image, prompt="x")).wait_original(timeout=60)

    assert "Started video #1" in reply.content
    submitted = await runcomfy.wait_for_submit()
    card = next(m for m in bot_messages(discord, discord.guilds[0].text_channel.id) if m.embeds)
    copy = card.attachments[0]
    assert submitted.body["first_frame_image_url"] == copy.url
    assert len(copy.data) <= discord.guilds[0].upload_limit
    with Image.open(io.BytesIO(copy.data)) as sent:
        assert sent.size[0] == sent.size[1] > 300  # the aspect kept, still a valid frame
        sent.load()


async def test_the_status_card_shows_an_eta_once_a_few_such_videos_were_made(harness, discord, runcomfy):
    harness.overrides["quota_credits_per_day"] = 10_000
    bot = await harness.start()
    for n in range(1, 4):
        await (await harness.animate(image=harness.image(), prompt=f"idea {n}")).wait_original(timeout=20)
        await job_in_state(bot, n, JobState.DELIVERED)
    runcomfy.script(Lifecycle.queued(1, hold=True).completes())

    await (await harness.animate(image=harness.image(), prompt="the fourth")).wait_original(timeout=20)

    card = next(
        m for m in bot_messages(discord, discord.guilds[0].text_channel.id) if "the fourth" in str(m.embeds)
    )
    status = await discord.wait_until(
        lambda: next((f["value"] for f in card.embeds[0]["fields"] if "Expected ready" in f["value"]), None),
        timeout=10,
    )
    assert "<t:" in status and ":R>" in status
    assert "on this server" in status


async def test_a_prompt_past_the_models_advised_length_is_sent_with_a_gentle_note(
    harness, bot, discord, runcomfy
):
    prompt = "The harbour wakes slowly. " * 24  # 624 characters; Seedance 1.5 Pro advises under 500
    reply = await (await harness.animate(image=harness.image(), prompt=prompt)).wait_original(timeout=20)

    assert "Started video #1" in reply.content
    assert "works best with prompts under 500 characters; yours has 623" in reply.content
    assert (await runcomfy.wait_for_submit()).body["prompt"] == prompt.strip()
