"""/video end to end: Seedance 2.0 with reference images, videos and audio, through Discord to the MP4."""

from __future__ import annotations

from bot.domain.models import JobState
from tests.doubles.media import make_image, make_mp4, make_wav, probe_mp4
from tests.doubles.runcomfy import Lifecycle
from tests.e2e.conftest import job_in_state


def bot_messages(discord, channel_id):
    return [m for m in discord.messages(channel_id) if m.source == "bot"]


async def run_video(discord, **options):
    interaction = await discord.send_slash_command("video", options)
    await interaction.wait_acknowledged()
    return interaction


async def test_references_are_reposted_and_sent_in_order_and_the_video_comes_back(
    harness, bot, discord, runcomfy
):
    runcomfy.script(Lifecycle.queued(1).running(1).completes())
    guild = discord.guilds[0]
    interaction = await run_video(
        discord,
        prompt="the dancer from image 1 moves like video 1, to audio 1",
        image1=discord.add_attachment(make_image(640, 480), "dancer.png"),
        image2=discord.add_attachment(make_image(800, 600, fmt="JPEG"), "stage.jpg"),
        video1=discord.add_attachment(make_mp4(3.0), "moves.mp4"),
        audio1=discord.add_attachment(make_wav(4.0), "beat.wav"),
        duration=6,
    )
    assert interaction.acknowledged_after < 3.0
    reply = await interaction.wait_original(timeout=20)
    assert "Started video #1" in reply.content, reply.content

    status = next(m for m in bot_messages(discord, guild.text_channel.id) if m.embeds)
    urls = [attachment.url for attachment in status.attachments]
    assert [a.filename for a in status.attachments] == [
        "image1.png",
        "image2.jpg",
        "video1.mp4",
        "audio1.wav",
    ]
    assert status.attachments[2].data == make_mp4(3.0)
    fields = {field["name"]: field["value"] for field in status.embeds[0]["fields"]}
    assert fields["References"] == "2 images, 1 video, 1 audio clip"

    job = await runcomfy.wait_for_submit()
    assert job.model_id == "bytedance/seedance-2.0/pro"
    assert job.body["images"] == urls[:2]
    assert job.body["videos"] == [urls[2]]
    assert job.body["audios"] == [urls[3]]
    assert job.body["duration"] == 6

    delivered = await discord.wait_until(
        lambda: next((m for m in bot_messages(discord, status.thread_id) if m.attachments), None), timeout=20
    )
    assert probe_mp4(delivered.attachments[0].data).codec == "h264"


async def test_a_prompt_alone_makes_a_video(harness, bot, discord, runcomfy):
    interaction = await run_video(discord, prompt="a paper boat sails across a puddle")
    await interaction.wait_original(timeout=20)
    job = await runcomfy.wait_for_submit()
    assert "images" not in job.body and "videos" not in job.body
    await job_in_state(bot, 1, JobState.DELIVERED)


async def test_fifteen_references_take_two_messages_and_all_reach_the_provider(
    harness, bot, discord, runcomfy
):
    guild = discord.guilds[0]
    options: dict[str, object] = {"prompt": "a montage"}
    for n in range(1, 10):
        options[f"image{n}"] = discord.add_attachment(make_image(320 + 8 * n, 320), f"i{n}.png")
    for n in range(1, 4):
        options[f"video{n}"] = discord.add_attachment(make_mp4(2.0 + n), f"v{n}.mp4")
        options[f"audio{n}"] = discord.add_attachment(make_wav(2.0 + n), f"a{n}.wav")
    interaction = await run_video(discord, **options)
    await interaction.wait_original(timeout=30)
    job = await runcomfy.wait_for_submit()
    posted = bot_messages(discord, guild.text_channel.id)
    assert [len(m.attachments) for m in posted] == [10, 5]
    urls = [a.url for m in posted for a in m.attachments]
    assert job.body["images"] == urls[:9]
    # Images, then videos, then audio clips, each in the member's order.
    assert job.body["videos"] == urls[9:12]
    assert job.body["audios"] == urls[12:15]
    names = [a.filename for m in posted for a in m.attachments]
    assert names[9:] == ["video1.mp4", "video2.mp4", "video3.mp4", "audio1.wav", "audio2.wav", "audio3.wav"]


async def test_media_is_judged_by_its_contents_not_its_name(harness, bot, discord, runcomfy):
    guild = discord.guilds[0]
    cases = [
        ({"audio1": discord.add_attachment(make_mp4(3.0), "song.mp3")}, "MP4"),
        ({"video1": discord.add_attachment(make_mp4(16.0, fps=4), "clip.mp4")}, "16"),
        ({"video1": discord.add_attachment(make_image(640, 480), "clip.mov")}, "PNG"),
    ]
    for attachments, named in cases:
        interaction = await run_video(discord, prompt="x", image1=harness.image(), **attachments)
        reply = await interaction.wait_original(timeout=20)
        assert reply.ephemeral
        assert named in reply.content, reply.content
    assert bot_messages(discord, guild.text_channel.id) == []
    assert runcomfy.submit_count == 0
