"""One job per model and provider, through the Discord double down to the posted MP4; and what each
provider brings of its own: Novita's inline images and missing cancel, ModelArk's content roles, returned
last frames, callbacks and moderation codes."""

from __future__ import annotations

import base64
import socket

import pytest

from bot.domain.models import JobState, ProviderName
from tests.doubles.media import make_image, make_mp4, make_wav, probe_mp4
from tests.doubles.provider_double import Lifecycle
from tests.e2e.conftest import job_in_state


def bot_messages(discord, channel_id):
    return [m for m in discord.messages(channel_id) if m.source == "bot"]


async def run(discord, command, **options):
    interaction = await discord.send_slash_command(command, options)
    await interaction.wait_acknowledged()
    assert interaction.acknowledged_after < 3.0
    return interaction


async def delivered_in_thread(discord):
    channel = discord.guilds[0].text_channel.id
    status = await discord.wait_until(
        lambda: next((m for m in bot_messages(discord, channel) if m.embeds and m.thread_id), None),
        timeout=20,
    )
    video = await discord.wait_until(
        lambda: next((m for m in bot_messages(discord, status.thread_id) if m.attachments), None), timeout=20
    )
    return status, video


def decoded(data_uri: str) -> bytes:
    header, _, payload = data_uri.partition(",")
    assert header.startswith("data:image/") and header.endswith(";base64")
    return base64.b64decode(payload)


def content_roles(body):
    return [(item["type"], item.get("role")) for item in body["content"]]


def with_callbacks(harness) -> int:
    """ModelArk as the only provider, with its callback endpoint on a free port; returns the port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    harness.use(ProviderName.ARK, only=True)
    harness.overrides |= {
        "public_callback_url": f"http://127.0.0.1:{port}/hooks/ark",
        "http_listen_host": "127.0.0.1",
        "http_listen_port": port,
        "poll_interval_s": 600,  # without callbacks, the next look would be ten minutes away
    }
    return port


CASES = [
    # (provider, command, model, options beyond prompt and media)
    (ProviderName.RUNCOMFY, "animate", "seedance-1.0-pro", {"duration": 3}),
    (ProviderName.RUNCOMFY, "animate", "seedance-1.5-pro", {"camera_fixed": False}),
    (ProviderName.RUNCOMFY, "video", "seedance-2.0-pro", {}),
    (ProviderName.NOVITA, "animate", "seedance-1.5-pro", {"tier": "flex", "seed": 7, "watermark": False}),
    (ProviderName.ARK, "animate", "seedance-1.0-pro", {"camera_fixed": True}),
    (ProviderName.ARK, "animate", "seedance-1.0-pro-fast", {"resolution": "480p"}),
    (ProviderName.ARK, "animate", "seedance-1.5-pro", {"audio": False, "return_last_frame": True}),
    (ProviderName.ARK, "video", "seedance-2.0-pro", {"return_last_frame": True}),
]


@pytest.mark.parametrize(
    ("provider", "command", "model", "options"),
    CASES,
    ids=[f"{provider.value}-{model}" for provider, _, model, options in CASES],
)
async def test_one_job_per_model_and_provider_reaches_the_thread_as_an_mp4(
    every_provider, discord, provider, command, model, options
):
    harness = every_provider
    harness.use(provider, only=True)
    double = {
        ProviderName.RUNCOMFY: harness.runcomfy,
        ProviderName.NOVITA: harness.novita,
        ProviderName.ARK: harness.ark,
    }[provider]
    double.script(Lifecycle.queued(1).running(1).completes())
    bot = await harness.start()
    frame = make_image(640, 480)
    if command == "animate":
        media = {"image": discord.add_attachment(frame, "frame.png"), "model": model}
    else:
        media = {
            "image1": discord.add_attachment(frame, "subject.png"),
            "video1": discord.add_attachment(make_mp4(3.0), "motion.mp4"),
            "audio1": discord.add_attachment(make_wav(3.0), "beat.wav"),
        }
    interaction = await run(discord, command, prompt="waves roll onto the shore", **media, **options)
    reply = await interaction.wait_original(timeout=20)
    assert "Started video #1" in reply.content, reply.content
    assert bot.runtime.catalogue.get(model).provider is provider

    job = await double.wait_for_submit()
    status, video = await delivered_in_thread(discord)
    urls = [attachment.url for attachment in status.attachments]
    body = job.body
    match provider:
        case ProviderName.RUNCOMFY:
            key = "images" if command == "video" else "first_frame_image_url"
            assert body[key] in (urls[0], urls[:1])
        case ProviderName.NOVITA:
            assert job.model_id == "seedance-v1.5-pro-i2v"
            assert decoded(body["image"]) == frame  # inline, as base64
            assert (body["service_tier"], body["seed"], body["watermark"]) == ("flex", 7, False)
        case ProviderName.ARK:
            assert body["model"] == bot.runtime.catalogue.get(model).provider_model_id
            if command == "video":
                assert content_roles(body) == [
                    ("text", None),
                    ("image_url", "reference_image"),
                    ("video_url", "reference_video"),
                    ("audio_url", "reference_audio"),
                ]
                assert body["content"][2]["video_url"]["url"] == urls[1]
            else:
                assert content_roles(body) == [("text", None), ("image_url", "first_frame")]
                assert decoded(body["content"][1]["image_url"]["url"]) == frame
            if options.get("return_last_frame"):
                assert body["return_last_frame"] is True
                # The last frame comes back as an image next to the video.
                assert [a.filename for a in video.attachments] == [
                    "seedance-1.mp4",
                    "seedance-1-last-frame.png",
                ]
    assert video.attachments[0].data == double.video
    assert probe_mp4(video.attachments[0].data).codec == "h264"
    final = await job_in_state(bot, 1, JobState.DELIVERED)
    assert final.provider is provider


async def test_modelark_callbacks_wake_a_job_long_before_its_next_poll(every_provider, discord):
    harness = every_provider
    port = with_callbacks(harness)
    harness.ark.script(Lifecycle.queued(1, hold=True).running(1).completes())
    bot = await harness.start()
    await (await run(discord, "animate", image=harness.image(), prompt="x")).wait_original(timeout=20)
    task = await harness.ark.wait_for_submit()
    assert task.body["callback_url"].startswith(f"http://127.0.0.1:{port}/hooks/ark?key=")
    await harness.ark.wait_for_polls(task.id, 1)

    harness.ark.advance(task.id)  # the task starts running: ModelArk calls back, the bot looks at once
    await delivered_in_thread(discord)
    job = await job_in_state(bot, 1, JobState.DELIVERED)
    assert job.provider_job_id == task.id
    deliveries = await harness.ark.wait_for_callbacks(2)
    assert all(delivery.status == 200 for delivery in deliveries if delivery.status is not None)
    assert bot.callbacks is not None and bot.callbacks.server.woken >= 1


async def test_a_forged_callback_changes_nothing(every_provider, discord):
    import httpx

    harness = every_provider
    port = with_callbacks(harness)
    harness.ark.script(Lifecycle.queued(1, hold=True).completes())
    bot = await harness.start()
    await (await run(discord, "animate", image=harness.image(), prompt="x")).wait_original(timeout=20)
    task = await harness.ark.wait_for_submit()
    await harness.ark.wait_for_polls(task.id, 1)
    key = task.body["callback_url"].split("key=")[1]
    async with httpx.AsyncClient() as http:
        # Without the key: refused. With it, a body claiming success: the bot asks ModelArk (queued).
        refused = await http.post(
            f"http://127.0.0.1:{port}/hooks/ark", json={"id": task.id, "status": "succeeded"}
        )
        lied = await http.post(
            f"http://127.0.0.1:{port}/hooks/ark",
            params={"key": key},
            json={"id": task.id, "status": "succeeded", "content": {"video_url": "http://evil.test/x.mp4"}},
        )
    assert (refused.status_code, lied.status_code) == (403, 200)
    await harness.ark.wait_for_polls(task.id, 2)
    job = await bot.runtime.store.get(1)
    assert job.state is JobState.QUEUED
    assert job.video_url is None


async def test_modelark_moderation_is_explained_in_plain_words(every_provider, discord):
    harness = every_provider
    harness.use(ProviderName.ARK, only=True)
    harness.ark.script(
        Lifecycle.running().fails(
            "Input image may contain real person.",
            code="InputImageSensitiveContentDetected.PrivacyInformation",
        )
    )
    bot = await harness.start()
    await (await run(discord, "animate", image=harness.image(), prompt="x")).wait_original(timeout=20)
    job = await job_in_state(bot, 1, JobState.FAILED)
    assert "real person's face" in job.error_message
    status = next(m for m in bot_messages(discord, discord.guilds[0].text_channel.id) if m.embeds)
    notice = await discord.wait_until(
        lambda: next(
            (m for m in bot_messages(discord, status.thread_id) if "real person" in m.content), None
        ),
        timeout=10,
    )
    assert notice


async def test_a_model_the_account_has_not_activated_is_named_and_costs_nothing(every_provider, discord):
    harness = every_provider
    harness.use(ProviderName.ARK, only=True)
    harness.ark.inject("submit", harness.ark.fault_for("model_unavailable"))
    bot = await harness.start()
    interaction = await run(discord, "animate", image=harness.image(), prompt="x")
    reply = await interaction.wait_original(timeout=20)
    assert "not activated" in reply.content
    job = await job_in_state(bot, 1, JobState.FAILED)
    assert job.credits is not None
    quota = await bot.jobs.quota.overview(_member(discord))
    assert quota.usage.member_credits_today == 0  # the reservation was released


def _member(discord):
    from bot.jobs.quota import Member

    guild = discord.guilds[0]
    return Member(
        guild_id=guild.id, user_id=guild.members[0].id, role_ids=(), channel_id=guild.text_channel.id
    )


async def test_novita_jobs_cannot_be_cancelled_and_the_member_is_told_why(every_provider, discord):
    harness = every_provider
    harness.use(ProviderName.NOVITA, only=True)
    harness.novita.script(Lifecycle.queued(1, hold=True).completes())
    bot = await harness.start()
    await (await run(discord, "animate", image=harness.image(), prompt="x")).wait_original(timeout=20)
    await job_in_state(bot, 1, JobState.QUEUED)
    interaction = await run(discord, "cancel", id=1)
    reply = await interaction.wait_original(timeout=10)
    assert "offers no way to cancel" in reply.content
    assert (await bot.runtime.store.get(1)).state is JobState.QUEUED


async def test_the_model_option_suggests_only_what_moderators_allow(every_provider, discord):
    harness = every_provider
    harness.use(ProviderName.ARK)
    bot = await harness.start()

    async def suggestions(typed: str = "") -> list[str]:
        options = {"image": harness.image(), "prompt": "x", "model": typed}
        handle = await discord.send_autocomplete("animate", options, focused="model")
        return [choice["value"] for choice in await handle.wait_autocomplete()]

    assert await suggestions() == list(bot.runtime.catalogue.keys)
    assert await suggestions("fast") == ["seedance-1.0-pro-fast"]
    moderator = discord.guilds[0].members[0]
    allowed = "seedance-1.5-pro, seedance-2.0-pro"
    options = {"models": allowed}
    saved = await discord.send_slash_command("seedance-admin limits set", options, user=moderator)
    await saved.wait_original(timeout=10)
    assert await suggestions() == ["seedance-1.5-pro", "seedance-2.0-pro"]
