"""Quotas through Discord: members meet each limit with a clear answer; only moderators change them."""

from __future__ import annotations

import csv
import io

import pytest

from bot.domain.models import JobState
from tests.doubles.discord_double import ChannelSpec, GuildSpec, UserSpec
from tests.doubles.runcomfy import Lifecycle
from tests.e2e.conftest import job_in_state

MODERATOR = UserSpec("modkat")  # the guild owner (first member): every permission
MEMBER = UserSpec("bob")  # @everyone permissions only
OTHER_CHANNEL = ChannelSpec("showroom")


@pytest.fixture
def guilds():
    return [GuildSpec(members=[MODERATOR, MEMBER], channels=[ChannelSpec("general"), OTHER_CHANNEL])]


async def animate(harness, user=MEMBER, **options):
    options.setdefault("image", harness.image())
    options.setdefault("prompt", "a lighthouse blinks")
    interaction = await harness.discord.send_slash_command("animate", options, user=user)
    return await interaction.wait_original(timeout=20)


async def admin(discord, command, options=None, user=MODERATOR):
    interaction = await discord.send_slash_command(f"seedance-admin {command}", options or {}, user=user)
    return await interaction.wait_original(timeout=10)


def public_bot_posts(discord):
    return [m for m in discord.all_messages() if m.source == "bot" and not m.ephemeral]


async def test_the_daily_credit_limit_names_usage_and_reset_before_anything_is_posted(
    harness, discord, runcomfy
):
    harness.overrides["quota_credits_per_day"] = 9  # a default video is 5 s at 480p: 5 credits
    await harness.start()
    assert "Started video #1" in (await animate(harness)).content
    downloads = len(discord.cdn_downloads)
    assert downloads >= 1  # the accepted request fetched its image (and the provider its re-posted copy)
    posted = len(public_bot_posts(discord))

    refused = await animate(harness)

    assert refused.ephemeral
    assert "5 of your 9 credits today" in refused.content
    assert "<t:" in refused.content  # when it frees up, in the member's own time zone
    assert len(public_bot_posts(discord)) == posted
    assert runcomfy.submit_count == 1
    assert len(discord.cdn_downloads) == downloads  # the refused one downloaded nothing


async def test_videos_at_a_time_and_quota_lists_the_running_one(harness, discord, runcomfy):
    harness.overrides.update(quota_concurrent_jobs=1, quota_cooldown_s=0)
    await harness.start()
    runcomfy.script(Lifecycle.queued(1, hold=True).completes())
    await animate(harness)
    refused = await animate(harness)
    assert "1 video" in refused.content and "in progress" in refused.content
    assert runcomfy.submit_count == 1
    quota = await (await discord.send_slash_command("quota", user=MEMBER)).wait_original(timeout=10)
    running = next(f for f in quota.embeds[0]["fields"] if f["name"] == "Videos in progress")
    assert running["value"].startswith("1 of 1 at a time") and "#1" in running["value"]


async def test_cooldown_between_requests(harness, discord, runcomfy):
    harness.overrides["quota_cooldown_s"] = 600
    await harness.start()
    await animate(harness)
    refused = await animate(harness)
    assert "one video every 10 min" in refused.content and "<t:" in refused.content
    assert runcomfy.submit_count == 1


async def test_credits_of_a_failed_video_are_given_back(harness, discord, runcomfy):
    harness.overrides["quota_credits_per_day"] = 5
    await harness.start()
    runcomfy.script(Lifecycle.queued(1).fails("GPU fell over"))
    await animate(harness)
    await job_in_state(harness.bot, 1, JobState.FAILED)
    assert "Started video #2" in (await animate(harness)).content
    quota = await (await discord.send_slash_command("quota", user=MEMBER)).wait_original(timeout=10)
    today = next(f for f in quota.embeds[0]["fields"] if f["name"] == "Today")
    assert today["value"].startswith("0 of 5 credits left")


async def test_a_moderator_sets_limits_and_the_member_meets_them(harness, discord, runcomfy):
    await harness.start()
    saved = await admin(discord, "limits set", {"member": MEMBER, "max_duration_s": 4, "credits_per_day": 50})
    assert saved.ephemeral and "saved" in saved.embeds[0]["title"]

    refused = await animate(harness, duration=6)
    assert "6" in refused.content and "4" in refused.content
    assert runcomfy.requests_to("submit") == []
    assert "Started" in (await animate(harness, duration=4)).content

    await admin(discord, "words add", {"words": "explosion, gore"})
    assert (await admin(discord, "words list")).content == "`explosion`, `gore`"
    refused = await animate(harness, prompt="A big EXPLOSION in the harbour", duration=4)
    assert "explosion" in refused.content.lower()

    await admin(discord, "channels allow", {"channel": OTHER_CHANNEL})
    refused = await animate(harness, duration=4)
    assert "channel" in refused.content.lower()
    await admin(discord, "channels clear")

    await admin(discord, "ban", {"member": MEMBER})
    refused = await animate(harness, duration=4)
    assert refused.ephemeral
    assert refused.content == "You are not allowed to make videos on this server."
    assert runcomfy.submit_count == 1


@pytest.mark.parametrize(
    ("command", "options"),
    [("limits set", {"credits_per_day": 1000}), ("ban", {"member": MODERATOR}), ("usage", {}), ("jobs", {})],
)
async def test_a_non_moderator_is_refused_even_if_discord_showed_them_the_command(
    harness, discord, command, options
):
    await harness.start()
    reply = await admin(discord, command, options, user=MEMBER)
    assert reply.ephemeral and "Only members with the Manage Server permission" in reply.content
    config = await harness.bot.jobs.quota.store.config(discord.guilds[0].id)
    assert config.members == {} and config.rules.banned_user_ids == frozenset()


async def test_usage_report_is_an_embed_and_a_csv(harness, discord, runcomfy):
    await harness.start()
    await animate(harness, duration=4, resolution="720p")  # 8 credits
    await job_in_state(harness.bot, 1, JobState.DELIVERED)

    reply = await admin(discord, "usage", {"days": 7})

    assert "8 credits" in reply.embeds[0]["title"]
    assert f"<@{MEMBER.id}>" in reply.embeds[0]["description"]
    table = list(csv.DictReader(io.StringIO(reply.attachments[0].data.decode())))
    assert table == [
        {
            "user_id": str(MEMBER.id),
            "model": "seedance-1.5-pro",
            "jobs": "1",
            "credits_committed": "8",
            "credits_reserved": "0",
            "credits_released": "0",
            "cost_usd": table[0]["cost_usd"],
        }
    ]


async def test_moderators_see_and_cancel_any_job_in_the_server(harness, discord, runcomfy):
    await harness.start()
    runcomfy.script(Lifecycle.queued(1, hold=True).completes())
    await animate(harness)
    listing = await admin(discord, "jobs")
    assert "#1" in listing.embeds[0]["description"]
    reply = await admin(discord, "cancel", {"id": 1})
    assert "Cancelled video #1" in reply.content
    await job_in_state(harness.bot, 1, JobState.CANCELLED)


@pytest.mark.parametrize(
    ("command", "options", "request_options", "expected"),
    [
        ("limits set", {"models": "seedance-1.0-pro"}, {}, "Seedance 1.5 Pro"),
        ("limits set", {"max_resolution": "480p"}, {"resolution": "720p"}, "480p"),
        ("budget", {"credits_per_day": 7}, {}, "server"),
    ],
)
async def test_model_resolution_and_server_budget_limits(
    harness, discord, runcomfy, command, options, request_options, expected
):
    await harness.start()
    await admin(discord, command, options)
    if command == "budget":
        assert "Started" in (await animate(harness, user=MODERATOR)).content  # 5 of the server's 7 credits
    refused = await animate(harness, **request_options)
    assert refused.ephemeral
    assert expected in refused.content
    assert runcomfy.submit_count == (1 if command == "budget" else 0)


async def test_a_request_that_loses_the_race_for_the_last_credits_leaves_no_status_message(
    harness, discord, runcomfy, monkeypatch
):
    harness.overrides["quota_credits_per_day"] = 5
    await harness.start()
    quota = harness.bot.jobs.quota
    real_precheck = quota.precheck

    async def passes_then_someone_else_spends(member, spec, request):
        cost = await real_precheck(member, spec, request)
        monkeypatch.setattr(quota, "precheck", real_precheck)
        # Another request of the same member is admitted between the early check and this one's admission.
        assert "Started video #1" in (await animate(harness)).content
        return cost

    monkeypatch.setattr(quota, "precheck", passes_then_someone_else_spends)
    refused = await animate(harness)

    assert "5 of your 5 credits today" in refused.content
    statuses = [m for m in public_bot_posts(discord) if m.embeds and not m.deleted]
    assert len(statuses) == 1  # only video #1's; the loser's was taken back
    assert runcomfy.submit_count == 1
