"""The buttons on results and status cards, end to end: Re-roll, Extend, Variations, Delete and Cancel — each
pressed through the Discord double, after a restart too, by the requester and by other members."""

from __future__ import annotations

import pytest

from bot.domain.models import Derivation, JobState
from tests.doubles.discord_double import GuildSpec, UserSpec
from tests.doubles.media import make_mp4, probe_mp4
from tests.doubles.runcomfy import Lifecycle
from tests.e2e.conftest import job_in_state

ALICE = UserSpec("alice")  # the guild owner (first member): every permission, a moderator
BOB = UserSpec("bob")  # @everyone permissions only
CAROL = UserSpec("carol")


@pytest.fixture
def guilds() -> list[GuildSpec]:
    return [GuildSpec(members=[ALICE, BOB, CAROL])]


def bot_posts(discord, channel_id):
    return [m for m in discord.messages(channel_id) if m.source == "bot"]


def custom_ids(message) -> list[str]:
    return [
        component.get("custom_id")
        for row in message.payload.get("components") or []
        for component in row.get("components") or []
    ]


async def first_video(harness, bot, discord, runcomfy, *, user=ALICE, prompt="boats rock gently", **options):
    """A member makes a video; returns the video's post once the job is delivered."""
    interaction = await discord.send_slash_command(
        "animate", {"image": harness.image(800, 600), "prompt": prompt, **options}, user=user
    )
    await interaction.wait_original(timeout=20)
    card = next(m for m in bot_posts(discord, discord.guilds[0].text_channel.id) if m.embeds)
    await job_in_state(bot, 1, JobState.DELIVERED)
    return next(m for m in bot_posts(discord, card.thread_id) if m.attachments)


async def press(discord, message, custom_id, *, user, values=None):
    """A member presses a button (or picks in a menu); returns their private answer."""
    kind = 3 if values is not None else 2
    interaction = await discord.send_component(
        message, custom_id, user=user, component_type=kind, values=values
    )
    await interaction.wait_acknowledged()
    assert interaction.acknowledged_after < 3.0
    return await interaction.wait_original(timeout=20)


async def test_every_result_carries_its_buttons_and_the_card_drops_cancel_when_done(
    harness, bot, discord, runcomfy
):
    video = await first_video(harness, bot, discord, runcomfy)

    assert custom_ids(video)[:3] == ["seedance:reroll:1", "seedance:extend:1", "seedance:delete:1"]
    assert "seedance:vary:1" in custom_ids(video)
    card = next(m for m in bot_posts(discord, discord.guilds[0].text_channel.id) if m.embeds)
    await discord.wait_until(lambda: "Done" in card.embeds[0]["title"], timeout=10)
    assert custom_ids(card) == []


async def test_reroll_after_a_restart_is_a_new_job_of_the_member_who_pressed(harness, bot, discord, runcomfy):
    video = await first_video(harness, bot, discord, runcomfy, seed=7, model="seedance-2.0-pro")
    first = await runcomfy.wait_for_submit()
    await harness.stop()
    bot = await harness.start()

    answer = await press(discord, video, "seedance:reroll:1", user=BOB)

    assert answer.ephemeral and "Started video #2" in answer.content
    job = await job_in_state(bot, 2, JobState.QUEUED, JobState.RUNNING, JobState.DELIVERED)
    assert job.requester.user_id == BOB.id
    assert job.lineage is not None and (job.lineage.parent_job_id, job.lineage.derivation) == (
        1,
        Derivation.REROLL,
    )
    second = await runcomfy.wait_for_submit(2)
    assert second.body["prompt"] == first.body["prompt"]
    assert second.body["seed"] != first.body["seed"]
    # The same image: the new card re-posted the first card's copy, byte for byte.
    delivered = await job_in_state(bot, 2, JobState.DELIVERED)
    assert delivered.requester.user_id == BOB.id


async def test_a_variation_changes_one_option_and_keeps_the_rest(harness, bot, discord, runcomfy):
    video = await first_video(harness, bot, discord, runcomfy, duration=6, resolution="720p")
    await harness.stop()
    bot = await harness.start()

    answer = await press(discord, video, "seedance:vary:1", user=ALICE, values=["resolution=480p"])

    assert "Started video #2" in answer.content
    submitted = await runcomfy.wait_for_submit(2)
    assert (submitted.body["duration"], submitted.body["resolution"]) == (6, "480p")
    job = await bot.runtime.store.get(2)
    assert job.lineage.derivation is Derivation.VARIATION


async def test_delete_is_refused_to_a_stranger_and_removes_the_post_for_the_requester(
    harness, bot, discord, runcomfy
):
    video = await first_video(harness, bot, discord, runcomfy, user=BOB)
    await harness.stop()
    bot = await harness.start()

    refused = await press(discord, video, "seedance:delete:1", user=CAROL)
    assert "Only the member who asked for video #1" in refused.content
    assert not video.deleted

    answer = await press(discord, video, "seedance:delete:1", user=BOB)
    assert answer.content == "Deleted video #1."
    assert video.deleted
    job = await bot.runtime.store.get(1)
    assert job.removed_at is not None and job.state is JobState.DELIVERED


async def test_cancel_on_the_status_card_while_queued(harness, bot, discord, runcomfy):
    runcomfy.script(Lifecycle.queued(1, hold=True).completes())
    interaction = await harness.animate(image=harness.image(), prompt="x")
    await interaction.wait_original(timeout=20)
    await runcomfy.wait_for_submit()
    card = next(m for m in bot_posts(discord, discord.guilds[0].text_channel.id) if m.embeds)
    await job_in_state(bot, 1, JobState.QUEUED)
    await discord.wait_until(lambda: "seedance:cancel:1" in custom_ids(card), timeout=10)
    await harness.stop()
    bot = await harness.start()

    stranger = await press(discord, card, "seedance:cancel:1", user=CAROL)
    assert "no job #1" in stranger.content
    answer = await press(discord, card, "seedance:cancel:1", user=ALICE)

    assert answer.content == "Cancelled video #1."
    await job_in_state(bot, 1, JobState.CANCELLED)
    await discord.wait_until(lambda: custom_ids(card) == [], timeout=10)


async def test_extend_posts_one_video_as_long_as_both_clips(harness, bot, discord, runcomfy):
    runcomfy.video = make_mp4(2.0, width=320, height=240, audio=True)
    video = await first_video(harness, bot, discord, runcomfy)
    await harness.stop()
    bot = await harness.start()

    answer = await press(discord, video, "seedance:extend:1", user=BOB)

    assert "Started video #2" in answer.content
    submitted = await runcomfy.wait_for_submit(2)
    job = await job_in_state(bot, 2, JobState.DELIVERED)
    assert job.lineage.derivation is Derivation.EXTEND
    # The new clip starts from the first video's last frame, re-posted on the new card for the provider.
    assert (
        submitted.body["first_frame_image_url"]
        != (await runcomfy.wait_for_submit(1)).body["first_frame_image_url"]
    )
    thread_posts = [m for m in discord.all_messages() if m.source == "bot" and m.attachments]
    extended = next(m for m in thread_posts if any(a.filename == "seedance-2.mp4" for a in m.attachments))
    joined = probe_mp4(next(a for a in extended.attachments if a.filename == "seedance-2.mp4").data)
    single = probe_mp4(runcomfy.video)
    assert joined.duration_s == pytest.approx(2 * single.duration_s, abs=0.1)
    assert joined.has_audio
    assert "continues video #1" in extended.content


async def test_history_pages_through_past_videos_with_links_after_a_restart(harness, discord, runcomfy):
    harness.overrides["quota_credits_per_day"] = 10_000
    bot = await harness.start()
    for n in range(1, 7):
        await (await harness.animate(image=harness.image(), prompt=f"idea {n}")).wait_original(timeout=20)
        await job_in_state(bot, n, JobState.DELIVERED)

    listing = await (await discord.send_slash_command("history")).wait_original(timeout=20)

    assert listing.ephemeral
    assert [embed["title"].split(" · ")[0] for embed in listing.embeds] == [
        f"Video #{n}" for n in (6, 5, 4, 3, 2)
    ]
    newest = await bot.runtime.store.get(6)
    assert listing.embeds[0]["url"].endswith(f"/{newest.thread_id}/{newest.delivery_ref}")
    assert listing.embeds[0]["thumbnail"]["url"].startswith(discord.cdn)
    assert "idea 6" in listing.embeds[0]["description"]
    await harness.stop()
    await harness.start()

    older = await discord.send_component(listing, "seedance:history:1")
    await older.wait_acknowledged()
    await discord.wait_until(lambda: len(listing.embeds) == 1, timeout=10)
    assert listing.embeds[0]["title"].startswith("Video #1")
    assert [c["disabled"] for row in listing.payload["components"] for c in row["components"]] == [
        False,
        True,
    ]


async def test_job_shows_a_finished_video_with_the_buttons_of_its_result(harness, bot, discord, runcomfy):
    await first_video(harness, bot, discord, runcomfy)

    details = await (await discord.send_slash_command("job", {"id": 1})).wait_original(timeout=10)

    assert "seedance:reroll:1" in custom_ids(details)
    answer = await press(discord, details, "seedance:reroll:1", user=ALICE)
    assert "Started video #2" in answer.content
