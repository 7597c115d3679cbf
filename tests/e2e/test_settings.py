"""/settings end to end: a member saves, sees and clears their own defaults, privately, per server."""

from __future__ import annotations

import pytest

from bot.domain.models import JobState
from tests.doubles.discord_double import GuildSpec, UserSpec
from tests.e2e.conftest import job_in_state

ALICE = UserSpec("alice")
BOB = UserSpec("bob")
HOME, ELSEWHERE = 0, 1  # indexes into discord.guilds


@pytest.fixture
def guilds():
    return [GuildSpec(name="Home", members=[ALICE, BOB]), GuildSpec(name="Elsewhere", members=[ALICE])]


async def settings(discord, command, options=None, *, user=ALICE, guild=HOME):
    interaction = await discord.send_slash_command(
        f"settings {command}", options or {}, user=user, guild=discord.guilds[guild]
    )
    return await interaction.wait_original(timeout=10)


def shown(reply) -> dict[str, str]:
    """The defaults an answer shows, by field name."""
    return {field["name"]: field["value"] for field in reply.embeds[0]["fields"]}


async def test_a_member_saves_defaults_and_sees_them_privately_in_that_server_only(bot, discord):
    saved = await settings(
        discord,
        "set",
        {
            "model": "seedance-2.0-pro",
            "resolution": "480p",
            "duration": 10,
            "audio": False,
            "dm_when_done": True,
        },
    )

    assert saved.ephemeral
    expected = {
        "Model": "Seedance 2.0 Pro",
        "Resolution": "480p",
        "Ratio": "not set (the model's own)",
        "Duration": "10 s",
        "Audio": "off",
        "DM me when done": "yes",
    }
    assert shown(saved) == expected
    assert shown(await settings(discord, "show")) == expected
    # Another member here, and the same member in another server, have nothing set.
    for user, guild in ((BOB, HOME), (ALICE, ELSEWHERE)):
        other = shown(await settings(discord, "show", user=user, guild=guild))
        assert other["Model"] == "not set (Seedance 1.5 Pro)"
        assert other["Duration"] == "not set (the model's own)"
    assert [m for m in discord.all_messages() if m.source == "bot" and not m.ephemeral] == []


async def test_a_default_the_default_model_cannot_use_is_refused_by_name_and_not_saved(bot, discord):
    await settings(discord, "set", {"model": "seedance-1.0-pro", "duration": 8})

    refused = await settings(discord, "set", {"duration": 15})

    assert refused.ephemeral
    assert refused.content == "Seedance 1.0 Pro makes 2–12 s videos; 15 s is outside that."
    assert shown(await settings(discord, "show"))["Duration"] == "8 s"


async def test_reset_clears_one_default_or_all(bot, discord):
    await settings(discord, "set", {"ratio": "9:16", "duration": 6})

    one = shown(await settings(discord, "reset", {"option": "duration"}))
    assert (one["Ratio"], one["Duration"]) == ("9:16", "not set (the model's own)")

    everything = shown(await settings(discord, "reset"))
    assert everything["Ratio"] == "not set (the model's own)"
    assert await bot.runtime.state_store.items("defaults:") == []


async def test_the_model_option_suggests_the_models_on_offer(bot, discord):
    async def suggestions(typed: str) -> list[str]:
        handle = await discord.send_autocomplete(
            "settings set", {"model": typed}, focused="model", user=ALICE
        )
        return [choice["value"] for choice in await handle.wait_autocomplete()]

    assert await suggestions("") == list(bot.runtime.catalogue.keys)
    assert await suggestions("2.0") == ["seedance-2.0-pro"]


async def test_animate_without_options_uses_the_members_defaults(harness, bot, discord, runcomfy):
    await settings(discord, "set", {"model": "seedance-2.0-pro", "resolution": "480p", "duration": 10})
    interaction = await harness.animate(image=harness.image(), prompt="x", ratio="1:1")
    reply = await interaction.wait_original(timeout=20)
    assert "Started video #1" in reply.content
    job = await bot.runtime.store.get(1)
    assert (job.model, job.request.resolution.value, job.request.duration_s) == (
        "seedance-2.0-pro",
        "480p",
        10,
    )
    assert job.request.ratio.value == "1:1"
    submitted = await runcomfy.wait_for_submit()
    assert (submitted.body["resolution"], submitted.body["duration"]) == ("480p", 10)


async def test_a_named_model_skips_the_defaults_it_cannot_use(harness, bot, discord, runcomfy):
    await settings(discord, "set", {"duration": 15, "resolution": "1080p"})
    interaction = await harness.animate(image=harness.image(), prompt="x", model="seedance-1.0-pro")
    await interaction.wait_original(timeout=20)
    job = await bot.runtime.store.get(1)
    assert (job.model, job.request.duration_s, job.request.resolution.value) == (
        "seedance-1.0-pro",
        5,
        "1080p",
    )


async def test_a_member_who_asked_for_it_gets_a_dm_with_the_videos_link(harness, bot, discord, runcomfy):
    await settings(discord, "set", {"dm_when_done": True})
    await (await harness.animate(image=harness.image(), prompt="x")).wait_original(timeout=20)
    job = await job_in_state(bot, 1, JobState.DELIVERED)

    dm = discord.dm_channel(ALICE)
    notice = await discord.wait_until(lambda: next(iter(discord.messages(dm)), None), timeout=10)
    assert notice.content.startswith("Your video #1 is ready: https://discord.com/channels/")
    assert notice.content.endswith(f"/{job.thread_id}/{job.delivery_ref}")
