"""`seedance-bot run` as an operator runs it: a subprocess that stops cleanly on SIGTERM and loses no job."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from tests.doubles.discord_double import DiscordDouble
from tests.doubles.media import make_image
from tests.doubles.runcomfy import Lifecycle, RunComfyDouble
from tests.e2e.conftest import RUNCOMFY_KEY

REPO = Path(__file__).resolve().parents[2]


def bot_environment(discord: DiscordDouble, runcomfy: RunComfyDouble, database: Path) -> dict[str, str]:
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "RUNCOMFY_", "SEEDANCE_"))
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
        POLL_INTERVAL_S="0.05",
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
