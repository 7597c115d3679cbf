"""The CLI as a member would run it: a subprocess against the loopback RunComfy double.

From image to saved MP4, bad input that never reaches the provider, provider failures, an unconfirmed
submit, and a restart in the middle of a job.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import os
import re
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.cli import build_parser
from tests.doubles.media import make_image, probe_mp4
from tests.doubles.runcomfy import Fault, Lifecycle, RunComfyDouble

REPO = Path(__file__).resolve().parents[1]
API_KEY = "cli-test-key"


@dataclass
class Finished:
    code: int
    stdout: str
    stderr: str


@pytest.fixture
async def double():
    async with RunComfyDouble(api_keys=(API_KEY,)) as server:
        yield server


@pytest.fixture
def env(double, tmp_path):
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("RUNCOMFY_", "DISCORD_", "SEEDANCE_", "DATABASE_", "POLL_", "JOB_"))
    }
    environment.update(
        PYTHONPATH=str(REPO),
        RUNCOMFY_API_KEY=API_KEY,
        RUNCOMFY_BASE_URL=double.base_url,
        DOWNLOAD_ALLOW_LOOPBACK="true",  # the double serves videos from 127.0.0.1 over http
        DATABASE_PATH=str(tmp_path / "cli.sqlite3"),
        POLL_INTERVAL_S="0.05",
        LOG_LEVEL="WARNING",
    )
    return environment


async def start_cli(args: list[str], env: dict[str, str], cwd: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        *args,
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        # A run started in the background by a non-interactive shell inherits an ignored SIGINT, and Python
        # then keeps it ignored: give the CLI the SIGINT a member's terminal would deliver.
        preexec_fn=_default_sigint,
    )


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


async def run_cli(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 60) -> Finished:
    process = await start_cli(args, env, cwd)
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout)
    assert process.returncode is not None
    return Finished(process.returncode, stdout.decode(), stderr.decode())


async def test_an_image_url_becomes_a_saved_playable_mp4_with_the_served_bytes(double, env, tmp_path):
    image_url = double.host_file(make_image(1280, 720, fmt="JPEG"), "image/jpeg", "harbour.jpg")
    double.script(Lifecycle.queued(2).running(1).completes(cost=0.25))
    out = tmp_path / "videos" / "harbour.mp4"

    result = await run_cli(
        [
            "animate",
            "--image-url",
            image_url,
            "--prompt",
            "boats rock gently",
            "--duration",
            "4",
            "--resolution",
            "720p",
            "--no-audio",
            "--out",
            str(out),
        ],
        env,
        tmp_path,
    )

    assert result.code == 0, result.stderr
    assert result.stdout.strip() == str(out)
    job = next(iter(double.jobs.values()))
    assert out.read_bytes() == double.video
    info = probe_mp4(out.read_bytes())
    assert info.codec == "h264" and info.frames > 0
    assert job.body["first_frame_image_url"] == image_url
    assert (job.body["duration"], job.body["resolution"], job.body["generate_audio"]) == (4, "720p", False)
    assert double.submit_count == 1
    assert "image ok: 1280×720 JPEG" in result.stderr
    assert "position 2 in the queue" in result.stderr
    assert re.search(r"\[\d+:\d\d\] job #\d+ running", result.stderr)


@pytest.mark.parametrize(
    ("width", "height", "message"),
    [(200, 400, "more than 300"), (3000, 1000, "between 0.4 and 2.5")],
)
async def test_a_bad_image_is_refused_with_numbers_and_never_reaches_the_provider(
    double, env, tmp_path, width, height, message
):
    image_url = double.host_file(make_image(width, height), "image/png", "bad.png")
    result = await run_cli(["animate", "--image-url", image_url, "--prompt", "x"], env, tmp_path)
    assert result.code == 2
    assert message in result.stderr
    assert f"{width}×{height}" in result.stderr
    assert double.requests_to("submit") == []


async def test_a_local_file_is_validated_then_refused_for_a_url_only_provider(double, env, tmp_path):
    image = tmp_path / "cat.png"
    image.write_bytes(make_image(640, 640))
    result = await run_cli(["animate", str(image), "--prompt", "the cat yawns"], env, tmp_path)
    assert result.code == 2
    assert "--image-url" in result.stderr
    assert "passed validation" in result.stderr
    assert double.requests_to("submit") == []


async def test_a_broken_local_file_is_named_as_broken(double, env, tmp_path):
    image = tmp_path / "cat.png"
    image.write_bytes(make_image(640, 640)[:200])
    result = await run_cli(["animate", str(image), "--prompt", "x"], env, tmp_path)
    assert result.code == 2
    assert "damaged" in result.stderr or "cut short" in result.stderr
    assert double.requests_to("submit") == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "seedance-1.0-pro", "--duration", "13"], "2 to 12 seconds"),
        (["--model", "seedance-1.0-pro", "--audio"], "has no `audio` option"),
        (["--model", "seedance-2.0-pro", "--resolution", "1080p"], "Allowed: 480p, 720p"),
        (["--model", "seedance-1.5-pro", "--web-search"], "has no `web_search` option"),
        (["--model", "seedance-1.5-pro", "--prompt", "x" * 2001], "Seedance 1.5 Pro takes at most 2,000"),
    ],
)
async def test_a_wrong_option_is_refused_before_any_request(double, env, tmp_path, args, message):
    result = await run_cli(
        [
            "animate",
            "--image-url",
            double.host_file(make_image(640, 640), "image/png"),
            "--prompt",
            "x",
            *args,
        ],
        env,
        tmp_path,
    )
    assert result.code == 2
    assert message in result.stderr
    assert double.requests == []


async def test_seedance_2_0_takes_a_thousand_word_prompt_and_web_search(double, env, tmp_path):
    image_url = double.host_file(make_image(640, 640), "image/png", "f.png")
    words = ("golden", "light", "drifts", "across", "the", "terrace;", "a", "barista", "explains", "today's")
    prompt = " ".join(words[i % len(words)] for i in range(1000))
    assert len(prompt) > 6000  # more than a Discord option carries: the CLI is the way in for such prompts
    out = tmp_path / "long.mp4"
    result = await run_cli(
        [
            "animate",
            "--image-url",
            image_url,
            "--model",
            "seedance-2.0-pro",
            "--prompt",
            prompt,
            "--web-search",
            "--out",
            str(out),
        ],
        env,
        tmp_path,
    )
    assert result.code == 0, result.stderr
    job = next(iter(double.jobs.values()))
    assert (job.body["prompt"], job.body["tools"]) == (prompt, True)
    assert out.read_bytes() == double.video


async def test_a_failed_generation_exits_1_with_the_providers_reason(double, env, tmp_path):
    double.script(Lifecycle.queued(1).fails("Output video flagged by the safety checker"))
    result = await run_cli(
        ["animate", "--image-url", double.host_file(make_image(640, 640), "image/png"), "--prompt", "x"],
        env,
        tmp_path,
    )
    assert result.code == 1
    assert "failed" in result.stderr
    assert "safety checker" in result.stderr
    assert list(tmp_path.glob("*.mp4")) == []


async def test_a_submit_whose_answer_is_lost_is_not_resent_and_exits_3(double, env, tmp_path):
    double.inject("submit", Fault.drop())
    result = await run_cli(
        ["animate", "--image-url", double.host_file(make_image(640, 640), "image/png"), "--prompt", "x"],
        env,
        tmp_path,
    )
    assert result.code == 3
    assert "not be sent again" in result.stderr or "not charged twice" in result.stderr
    assert double.submit_count == 1
    assert len(double.requests_to("submit")) == 1


async def test_a_missing_api_key_is_one_line_naming_it(double, env, tmp_path):
    del env["RUNCOMFY_API_KEY"]
    result = await run_cli(["animate", "--image-url", "https://x.test/a.png", "--prompt", "x"], env, tmp_path)
    assert result.code == 2
    assert result.stderr.strip().splitlines() == [
        "error: RUNCOMFY_API_KEY is not set: it is needed when SEEDANCE_PROVIDER=runcomfy."
    ]
    assert double.requests == []


async def test_a_killed_run_is_resumed_by_a_new_process_and_the_video_saved(double, env, tmp_path):
    double.script(Lifecycle.queued(1).running(1, hold=True).completes())
    image_url = double.host_file(make_image(640, 640), "image/png")
    first = await start_cli(["animate", "--image-url", image_url, "--prompt", "x"], env, tmp_path)
    job = await asyncio.wait_for(double.wait_for_submit(), 30)
    await asyncio.wait_for(double.wait_for_polls(job.request_id, 3), 30)
    first.send_signal(signal.SIGKILL)
    await first.wait()
    assert list(tmp_path.glob("*.mp4")) == []

    double.release(job.request_id)
    out = tmp_path / "resumed.mp4"
    result = await run_cli(["wait", "1", "--out", str(out)], env, tmp_path)

    assert result.code == 0, result.stderr
    assert out.read_bytes() == double.video
    assert double.submit_count == 1
    assert "resumed job #1 running" in result.stderr


async def test_with_modelark_a_local_image_and_last_frame_go_inline_and_the_last_frame_is_saved(
    env, tmp_path
):
    from tests.doubles.ark import ArkDouble

    first, last = tmp_path / "first.png", tmp_path / "last.jpg"
    first.write_bytes(make_image(640, 480))
    last.write_bytes(make_image(640, 480, fmt="JPEG"))
    async with ArkDouble(api_keys=("ark-cli-key",)) as ark:
        env = env | {"SEEDANCE_PROVIDER": "ark", "ARK_API_KEY": "ark-cli-key", "ARK_BASE_URL": ark.base_url}
        ark.script(Lifecycle.queued(1).completes())
        out = tmp_path / "clip.mp4"
        done = await run_cli(
            [
                "animate",
                str(first),
                "--last-frame",
                str(last),
                "--prompt",
                "dusk falls",
                "--model",
                "seedance-1.5-pro",
                "--tier",
                "flex",
                "--return-last-frame",
                "--out",
                str(out),
            ],
            env,
            tmp_path,
        )
        assert done.code == 0, done.stderr
        task = next(iter(ark.jobs.values()))
        roles = [item.get("role") for item in task.body["content"]]
        assert roles == [None, "first_frame", "last_frame"]
        assert task.body["service_tier"] == "flex"
        assert probe_mp4(out.read_bytes()).codec == "h264"
        assert out.with_suffix(".last-frame.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


async def test_an_option_the_provider_lacks_costs_nothing(double, env, tmp_path):
    image_url = double.host_file(make_image(640, 480), "image/png", "f.png")
    done = await run_cli(
        ["animate", "--image-url", image_url, "--prompt", "x", "--tier", "flex"], env, tmp_path
    )
    assert done.code == 2
    assert "has no `tier` option" in done.stderr
    assert double.submit_count == 0


async def test_an_unwritable_out_path_is_refused_before_anything_is_paid_for(double, env, tmp_path):
    image_url = double.host_file(make_image(640, 640), "image/png")
    result = await run_cli(
        ["animate", "--image-url", image_url, "--prompt", "x", "--out", "/proc/nope/x.mp4"], env, tmp_path
    )
    assert result.code == 2
    assert result.stderr.strip().startswith("error: cannot save the video in /proc/nope")
    assert double.requests_to("submit") == []


async def test_a_video_that_cannot_be_saved_after_it_was_made_is_kept_for_wait_and_never_loops(
    double, env, tmp_path
):
    double.script(Lifecycle.queued(1, hold=True).completes())
    image_url = double.host_file(make_image(640, 640), "image/png")
    folder = tmp_path / "videos"
    process = await start_cli(
        ["animate", "--image-url", image_url, "--prompt", "x", "--out", str(folder / "x.mp4")], env, tmp_path
    )
    job = await asyncio.wait_for(double.wait_for_submit(), 30)
    # The folder becomes a file while the video is made: the save fails for good on this run.
    folder.rmdir()
    folder.write_text("not a folder")
    double.release(job.request_id)
    _, stderr = await asyncio.wait_for(process.communicate(), 30)

    assert process.returncode == 4, stderr.decode()
    assert "seedance-bot wait 1 --out FILE" in stderr.decode()
    assert stderr.decode().count("could not be saved") == 1  # said once: no retry loop
    assert "Traceback" not in stderr.decode()

    out = tmp_path / "saved.mp4"
    result = await run_cli(["wait", "1", "--out", str(out)], env, tmp_path)
    assert result.code == 0, result.stderr
    assert out.read_bytes() == double.video
    assert double.submit_count == 1


async def test_a_refused_api_key_is_a_configuration_error_exit_2_naming_the_variable(double, env, tmp_path):
    image_url = double.host_file(make_image(640, 640), "image/png")
    env = env | {"RUNCOMFY_API_KEY": "a-revoked-key"}
    result = await run_cli(["animate", "--image-url", image_url, "--prompt", "x"], env, tmp_path)
    assert result.code == 2, result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "error: RUNCOMFY_API_KEY was refused by runcomfy: check the key."
    )
    assert double.submit_count == 0


async def test_env_file_that_does_not_exist_is_named_with_its_full_path(double, env, tmp_path):
    result = await run_cli(["--env-file", "conf/bot.env", "wait", "1"], env, tmp_path)
    assert result.code == 2
    assert result.stderr.strip().splitlines() == [
        f"configuration error: --env-file: no such file: {tmp_path / 'conf' / 'bot.env'}"
    ]


async def test_env_file_elsewhere_is_read_instead_of_the_current_folders(double, env, tmp_path):
    (tmp_path / ".env").write_text("POLL_INTERVAL_S=0.05\n")
    elsewhere = tmp_path / "conf" / "bot.env"
    elsewhere.parent.mkdir()
    elsewhere.write_text("POLL_INTERVAL_S=not-a-number\n")
    del env["POLL_INTERVAL_S"]
    assert (await run_cli(["wait", "1"], env, tmp_path)).stderr.strip() == (
        f"error: There is no job #1 in {env['DATABASE_PATH']}."
    )
    result = await run_cli(["--env-file", str(elsewhere), "wait", "1"], env, tmp_path)
    assert result.code == 2
    assert result.stderr.startswith("configuration error: POLL_INTERVAL_S:")
    assert "not-a-number" in result.stderr


async def test_an_unusable_database_path_is_one_line_naming_it_before_any_request(double, env, tmp_path):
    (tmp_path / "a-file").write_text("")
    env = env | {"DATABASE_PATH": str(tmp_path / "a-file" / "cli.sqlite3")}
    image_url = double.host_file(make_image(640, 640), "image/png")
    result = await run_cli(["animate", "--image-url", image_url, "--prompt", "x"], env, tmp_path)
    assert result.code == 2
    assert result.stderr.strip().splitlines() == [
        f"error: DATABASE_PATH: {tmp_path / 'a-file'} is a file, not a folder."
    ]
    assert double.requests_to("submit") == []


def without_other_providers(env: dict[str, str]) -> dict[str, str]:
    return {key: value for key, value in env.items() if not key.startswith(("NOVITA_", "ARK_"))}


async def test_version_is_the_installed_packages(env, tmp_path):
    result = await run_cli(["--version"], env, tmp_path)
    assert result.code == 0
    assert result.stdout.strip() == f"seedance-bot {importlib.metadata.version('seedance-bot')}"


def test_every_option_of_every_command_says_what_it_does():
    parser = build_parser()
    [commands] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    undocumented = [
        f"{name} {action.dest}"
        for name, command in [("seedance-bot", parser), *commands.choices.items()]
        for action in command._actions
        if not isinstance(action, argparse._SubParsersAction) and not (action.help or "").strip()
    ]
    assert undocumented == []
    assert all(choice.help for choice in commands._choices_actions)  # each command in the list


async def test_models_names_the_configured_providers_and_who_serves_each_model(env, tmp_path):
    env = without_other_providers(env) | {"NOVITA_API_KEY": "novita-key"}
    result = await run_cli(["models"], env, tmp_path)
    assert result.code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:2] == [
        "configured providers: RunComfy (RUNCOMFY_API_KEY, default), Novita (NOVITA_API_KEY)",
        "not configured: ModelArk (ARK_API_KEY)",
    ]
    assert sum("seedance-1.5-pro (default)" in line for line in lines) == 1
    offers = lines[lines.index("seedance-1.5-pro (default): Seedance 1.5 Pro") + 1 :][:3]
    assert [line.split(" (")[0].strip() for line in offers] == ["RunComfy", "Novita", "ModelArk"]
    assert "(serves it;" in offers[0] and "last_frame" not in offers[0]
    assert "(configured, used with --provider novita;" in offers[1] and "last_frame" in offers[1]
    assert "(not configured, set ARK_API_KEY;" in offers[2]


async def test_models_with_provider_puts_that_provider_first(env, tmp_path):
    env = without_other_providers(env) | {"NOVITA_API_KEY": "novita-key"}
    result = await run_cli(["models", "--provider", "novita"], env, tmp_path)
    assert result.code == 0, result.stderr
    assert result.stdout.splitlines()[0] == (
        "configured providers: Novita (NOVITA_API_KEY, default), RunComfy (RUNCOMFY_API_KEY)"
    )
    assert "    Novita (serves it; seedance-v1.5-pro-i2v)" in result.stdout


async def test_a_model_only_an_unconfigured_provider_has_is_refused_naming_that_provider(
    double, env, tmp_path
):
    result = await run_cli(
        [
            "animate",
            "--image-url",
            "https://x.test/a.png",
            "--prompt",
            "x",
            "--model",
            "seedance-1.0-pro-fast",
        ],
        without_other_providers(env),
        tmp_path,
    )
    assert result.code == 2
    assert result.stderr.strip() == (
        "error: seedance-1.0-pro-fast is offered by ModelArk (ARK_API_KEY), which is not configured."
    )
    assert double.requests == []


@pytest.mark.parametrize(
    ("extra", "hint"),
    [
        ({}, "Novita offers it (NOVITA_API_KEY), which is not configured."),
        ({"NOVITA_API_KEY": "novita-key"}, "Novita offers it: add --provider novita."),
    ],
)
async def test_an_option_another_provider_has_is_refused_naming_that_provider(
    double, env, tmp_path, extra, hint
):
    result = await run_cli(
        ["animate", "--image-url", "https://x.test/a.png", "--prompt", "x", "--seed", "7"],
        without_other_providers(env) | extra,
        tmp_path,
    )
    assert result.code == 2
    assert "Seedance 1.5 Pro has no `seed` option." in result.stderr
    assert result.stderr.strip().endswith(hint)
    assert double.requests == []


async def test_provider_flag_overrides_seedance_provider(double, env, tmp_path):
    double.script(Lifecycle.queued(1).completes())
    image_url = double.host_file(make_image(640, 640), "image/png")
    env = without_other_providers(env) | {"SEEDANCE_PROVIDER": "novita"}  # no Novita key: would exit 2
    out = tmp_path / "v.mp4"
    result = await run_cli(
        ["animate", "--provider", "runcomfy", "--image-url", image_url, "--prompt", "x", "--out", str(out)],
        env,
        tmp_path,
    )
    assert result.code == 0, result.stderr
    assert out.read_bytes() == double.video


async def test_an_interrupted_run_exits_130_and_says_how_to_pick_the_job_up(double, env, tmp_path):
    double.script(Lifecycle.queued(1, hold=True).completes())
    image_url = double.host_file(make_image(640, 640), "image/png")
    process = await start_cli(["animate", "--image-url", image_url, "--prompt", "x"], env, tmp_path)
    job = await asyncio.wait_for(double.wait_for_submit(), 30)
    await asyncio.wait_for(double.wait_for_polls(job.request_id, 2), 30)
    process.send_signal(signal.SIGINT)
    _, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 130, stderr.decode()
    assert "job #1 goes on at the provider; run `seedance-bot wait 1` to pick it up." in stderr.decode()
    assert "Traceback" not in stderr.decode()
    assert double.submit_count == 1
