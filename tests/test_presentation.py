"""What members read: cards, thread names and notices stay within Discord's limits and say what happened."""

from __future__ import annotations

import pytest

from bot.domain.models import (
    ImageInfo,
    Job,
    JobState,
    Ratio,
    Resolution,
    VideoRequest,
)
from bot.jobs.eta import EstimateScope, JobProgress
from bot.presentation import (
    EMBED_DESCRIPTION_LIMIT,
    EMBED_FIELD_LIMIT,
    about_duration,
    ended_message,
    progress_bar,
    progress_text,
    request_card,
    status_card,
    thread_name,
    too_large_message,
)
from tests.factories import make_job

REQUEST = VideoRequest(
    model="seedance-1.5-pro",
    prompt="a fox blinks",
    resolution=Resolution.P720,
    ratio=Ratio.ADAPTIVE,
    duration_s=5,
    generate_audio=True,
    camera_fixed=False,
)


def job(**changes) -> Job:
    return make_job(REQUEST, **changes)


def fields(card) -> dict[str, str]:
    return {field.name: field.value for field in card.fields}


def test_a_queued_card_shows_position_options_and_a_live_timestamp():
    card = status_card(job(queue_position=3), "Seedance 1.5 Pro")
    assert card.title == "Video #7 · Queued"
    assert fields(card)["Status"] == "Queued · position 3"
    assert fields(card)["Model"] == "Seedance 1.5 Pro"
    assert (fields(card)["Audio"], fields(card)["Camera fixed"], fields(card)["Duration"]) == (
        "on",
        "no",
        "5 s",
    )
    assert fields(card)["Started"] == "<t:1700000000:R>"


@pytest.mark.parametrize("state", [JobState.FAILED, JobState.TIMED_OUT, JobState.UNKNOWN, JobState.EXPIRED])
def test_a_card_that_ended_badly_says_what_happened(state):
    card = status_card(
        job(state=state, error_message="The safety filter refused it.", finished_at=1.7e9 + 60),
        "Seedance 1.5 Pro",
    )
    assert fields(card)["What happened"] == "The safety filter refused it."
    assert "Ended" in fields(card)


def test_image_notes_reach_the_member():
    info = ImageInfo(
        "GIF", 640, 480, 1000, "P", frames=12, notes=("animated GIF with 12 frames: the first is used",)
    )
    assert "animated GIF" in fields(status_card(job(first_frame=info), "m"))["Image"]


def test_long_prompts_are_cut_to_discord_limits():
    long_prompt = "word " * 2000
    card = request_card(VideoRequest(**{**REQUEST.__dict__, "prompt": long_prompt}), "m", "<@1>")
    assert len(card.description) <= EMBED_DESCRIPTION_LIMIT
    name = thread_name(12, "line one\nline two " + "x" * 200)
    assert len(name) <= 100 and "\n" not in name and name.startswith("#12 line one line two")


def test_progress_text_only_shows_what_is_known():
    assert progress_text(job(state=JobState.RUNNING, progress_percent=42.4)) == "Generating · 42%"
    assert progress_text(job(state=JobState.RUNNING)) == "Generating"


def test_notices_mention_only_the_member_and_say_why():
    assert ended_message(job(state=JobState.CANCELLED), "<@1>") == (
        "<@1> video #7 was cancelled. No video will come for it."
    )
    failed = ended_message(job(state=JobState.FAILED, error_message="Out of credit."), "<@1>")
    assert failed.startswith("<@1>") and failed.endswith("Out of credit.")
    link = too_large_message(job(), "<@1>", 14_200_000, 10_485_760, "https://files.example/v.mp4")
    assert (
        "14.2 MB" in link and "10.5 MB upload limit" in link and link.endswith("https://files.example/v.mp4")
    )


def test_a_card_with_progress_shows_position_bar_and_when_it_should_be_ready():
    progress = JobProgress(
        computed_at=1_700_000_030.0,
        expected_total_s=300.0,
        eta_at=1_700_000_300.0,
        queue_position=3,
        fraction=0.1,
        fraction_estimated=True,
        sample_size=12,
        scope=EstimateScope.SERVER,
    )
    assert fields(status_card(job(), "Seedance 1.5 Pro", progress))["Status"].splitlines() == [
        "Queued",
        "Queue position: 3",
        "▰▱▱▱▱▱▱▱▱▱ about 10%",
        "Expected ready <t:1700000300:R> (videos like this usually take about 5 min on this server)",
    ]


def test_the_bar_shows_the_providers_own_progress_as_is():
    progress = JobProgress(computed_at=0.0, fraction=0.42)
    running = job(state=JobState.RUNNING, progress_percent=42.0)
    assert fields(status_card(running, "m", progress))["Status"] == "Generating\n▰▰▰▰▱▱▱▱▱▱ 42%"


def test_an_estimate_from_all_servers_does_not_claim_to_be_this_servers():
    progress = JobProgress(
        computed_at=0.0,
        expected_total_s=5_400.0,
        eta_at=6_000.0,
        sample_size=3,
        scope=EstimateScope.ALL_SERVERS,
    )
    status = fields(status_card(job(state=JobState.RUNNING), "m", progress))["Status"]
    assert status.endswith("Expected ready <t:6000:R> (videos like this usually take about 1 h 30 min)")


def test_a_late_job_says_so_instead_of_a_time_in_the_past():
    progress = JobProgress(
        computed_at=700.0,
        expected_total_s=120.0,
        eta_at=600.0,
        fraction=0.95,
        fraction_estimated=True,
        overdue=True,
        sample_size=5,
        scope=EstimateScope.SERVER,
    )
    status = fields(status_card(job(state=JobState.RUNNING), "m", progress))["Status"]
    assert (
        status.splitlines()[-1]
        == "Taking longer than usual (videos like this usually take about 2 min on this server)"
    )
    assert "<t:" not in status


def test_without_an_estimate_the_card_has_no_time_line():
    status = fields(status_card(job(queue_position=0), "m", JobProgress(computed_at=0.0, queue_position=0)))
    assert status["Status"] == "Queued\nQueue position: next"


def test_a_delivered_card_shows_a_full_bar():
    delivered = job(state=JobState.DELIVERED, finished_at=1.7e9 + 90)
    status = fields(status_card(delivered, "m", JobProgress(computed_at=0.0, fraction=1.0)))["Status"]
    assert status == "Done\n▰▰▰▰▰▰▰▰▰▰ 100%"
    assert len(status) <= EMBED_FIELD_LIMIT


@pytest.mark.parametrize(
    ("fraction", "bar"),
    [(0.0, "▱▱▱▱▱▱▱▱▱▱ 0%"), (0.29, "▰▰▱▱▱▱▱▱▱▱ 29%"), (0.3, "▰▰▰▱▱▱▱▱▱▱ 30%"), (0.95, "▰▰▰▰▰▰▰▰▰▱ 95%")],
)
def test_a_cell_fills_only_once_it_is_reached(fraction, bar):
    assert progress_bar(fraction) == bar


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (45, "under a minute"),
        (61, "about 1 min"),
        (150, "about 2 min"),
        (3_540, "about 59 min"),
        (3_590, "about 1 h"),
        (3_600, "about 1 h"),
        (9_000, "about 2 h 30 min"),
    ],
)
def test_durations_are_rounded_as_a_member_would_say_them(seconds, text):
    assert about_duration(seconds) == text
