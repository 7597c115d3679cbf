"""`seedance-bot run` as an operator runs it: a subprocess that stops cleanly on SIGTERM and loses no job."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

from tests.doubles.discord_double import DiscordDouble, InteractionHandle
from tests.doubles.media import make_image
from tests.doubles.runcomfy import Lifecycle, RunComfyDouble
from tests.e2e.conftest import RUNCOMFY_KEY

REPO = Path(__file__).resolve().parents[2]


def bot_environment(discord: DiscordDouble, runcomfy: RunComfyDouble, database: Path) -> dict[str, str]:
    environment = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DISCORD_", "RUNCOMFY_", "SEEDANCE_", "LOG_", "DATABASE_", "HTTP_", "CALLBACK_"))
    }
    environment.update(
        PYTHONPATH=str(REPO),
        DISCORD_TOKEN=discord.token,
        DISCORD_API_BASE_URL=discord.api_base,
        DISCORD_GATEWAY_URL=discord.gateway_url,
        DISCORD_CDN_HOSTS="127.0.0.1",
        RUNCOMFY_API_KEY=RUNCOMFY_KEY,
        RUNCOMFY_BASE_URL=runcomfy.base_url,
        DATABASE_PATH=str(database),
        DOWNLOAD_ALLOW_LOOPBACK="true",  # the double serves videos from 127.0.0.1 over http
        POLL_INTERVAL_S="0.05",
        HTTP_LISTEN_PORT="0",  # a free port: tests run beside other bots (and whatever holds 8080)
    )
    return environment


async def start_bot(environment: dict[str, str], cwd: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        "run",
        env=environment,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )


async def test_sigterm_stops_the_bot_cleanly_and_the_next_start_finishes_the_job(tmp_path):
    async with DiscordDouble() as discord, RunComfyDouble(api_keys=(RUNCOMFY_KEY,)) as runcomfy:
        environment = bot_environment(discord, runcomfy, tmp_path / "bot.sqlite3")
        runcomfy.script(Lifecycle.queued(1, hold=True).completes())

        first = await start_bot(environment, tmp_path)
        await discord.wait_until_connected(timeout=20)
        await discord.wait_until(discord.commands, timeout=20)
        image = discord.add_attachment(make_image(640, 480), "frame.png")
        interaction = await discord.send_slash_command("animate", {"image": image, "prompt": "x"})
        assert "Started video #1" in (await interaction.wait_original(timeout=20)).content
        job = await runcomfy.wait_for_submit()

        first.send_signal(signal.SIGTERM)
        output, _ = await asyncio.wait_for(first.communicate(), 20)
        assert first.returncode == 0, output.decode()
        assert b"Traceback" not in output

        runcomfy.release(job.request_id)
        second = await start_bot(environment, tmp_path)
        try:
            status = next(m for m in discord.all_messages() if m.source == "bot" and m.embeds)
            video = await discord.wait_until(
                lambda: next((m for m in discord.messages(status.thread_id) if m.attachments), None),
                timeout=30,
            )
            assert video.attachments[0].data == runcomfy.video
            assert runcomfy.submit_count == 1
        finally:
            second.send_signal(signal.SIGTERM)
            await asyncio.wait_for(second.communicate(), 20)
        assert second.returncode == 0


async def read_until(
    process: asyncio.subprocess.Process, marker: str, lines: list[str], timeout: float = 20
) -> str:
    """Read the bot's output line by line into `lines` until one contains `marker`; return that line."""
    assert process.stdout is not None
    async with asyncio.timeout(timeout):
        while True:
            raw = await process.stdout.readline()
            if not raw:
                raise AssertionError(f"the bot exited before saying {marker!r}:\n" + "".join(lines))
            line = raw.decode()
            lines.append(line)
            if marker in line:
                return line


async def stop(process: asyncio.subprocess.Process, lines: list[str]) -> None:
    """SIGTERM, then keep the rest of the output."""
    process.send_signal(signal.SIGTERM)
    rest, _ = await asyncio.wait_for(process.communicate(), 20)
    lines.extend(rest.decode().splitlines(keepends=True))
    assert process.returncode == 0, "".join(lines)


async def animate(discord: DiscordDouble) -> InteractionHandle:
    image = discord.add_attachment(make_image(640, 480), "frame.png")
    return await discord.send_slash_command("animate", {"image": image, "prompt": "x"})


async def test_by_default_the_bot_says_once_that_it_is_ready_and_one_line_per_job_milestone(tmp_path):
    async with DiscordDouble() as discord, RunComfyDouble(api_keys=(RUNCOMFY_KEY,)) as runcomfy:
        database = tmp_path / "data" / "bot.sqlite3"
        runcomfy.script(Lifecycle.queued(1).completes())
        process = await start_bot(bot_environment(discord, runcomfy, database), tmp_path)
        lines: list[str] = []
        ready = await read_until(process, "ready:", lines)
        assert "in 1 server(s)" in ready
        assert "commands synced" in ready
        assert "provider(s) runcomfy (default)" in ready
        assert str(database) in ready
        await animate(discord)
        await read_until(process, "job 1: delivered", lines)
        await stop(process, lines)

        # A restart with the same commands says "unchanged", and resumes nothing.
        again = await start_bot(bot_environment(discord, runcomfy, database), tmp_path)
        second: list[str] = []
        assert "commands unchanged" in await read_until(again, "ready:", second)
        await stop(again, second)

    output = "".join(lines)
    assert [line for line in lines if "ready:" in line] == [ready]
    for milestone in ("job 1: submitted to runcomfy as", "job 1: finished", "job 1: delivered"):
        assert output.count(milestone) == 1, output
    assert "Traceback" not in output
    # No voice warnings, and no library chatter (gateway, HTTP requests) at the default level.
    for noise in ("PyNaCl", "davey", "discord.gateway", "discord.client", "httpx", "HTTP Request"):
        assert noise not in output, output


async def test_json_log_lines_carry_the_job_guild_and_provider(tmp_path):
    async with DiscordDouble() as discord, RunComfyDouble(api_keys=(RUNCOMFY_KEY,)) as runcomfy:
        runcomfy.script(Lifecycle.queued(1).fails("Output video flagged by the safety checker"))
        environment = bot_environment(discord, runcomfy, tmp_path / "bot.sqlite3") | {"LOG_FORMAT": "json"}
        process = await start_bot(environment, tmp_path)
        lines: list[str] = []
        await read_until(process, "ready:", lines)
        await animate(discord)
        await read_until(process, "job 1: failed", lines)
        await stop(process, lines)

    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all({"time", "level", "logger", "message"} <= record.keys() for record in records)
    milestones = [record for record in records if record["message"].startswith("job 1: ")]
    assert [record["message"].split(" ")[2] for record in milestones] == ["submitted", "failed"]
    guild_id = discord.guilds[0].id
    for record in milestones:
        assert (record["job_id"], record["guild_id"], record["provider"]) == (1, guild_id, "runcomfy")
        assert record["level"] == "INFO"


async def test_discord_unreachable_is_one_line_and_exit_1(tmp_path):
    async with RunComfyDouble(api_keys=(RUNCOMFY_KEY,)) as runcomfy, DiscordDouble() as discord:
        environment = bot_environment(discord, runcomfy, tmp_path / "bot.sqlite3")
    # The double is closed: nothing listens at its address any more.
    process = await start_bot(environment, tmp_path)
    output, _ = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 1, output.decode()
    [line] = output.decode().strip().splitlines()
    assert line.startswith("error: cannot reach Discord (")
    assert "DISCORD_API_BASE_URL" in line


async def test_an_unusable_database_path_is_one_line_naming_it_and_exit_2(tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    async with DiscordDouble() as discord, RunComfyDouble(api_keys=(RUNCOMFY_KEY,)) as runcomfy:
        environment = bot_environment(discord, runcomfy, tmp_path / "a-file" / "bot.sqlite3")
        process = await start_bot(environment, tmp_path)
        output, _ = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 2, output.decode()
    assert output.decode().strip().splitlines() == [
        f"error: DATABASE_PATH: {tmp_path / 'a-file'} is a file, not a folder."
    ]
