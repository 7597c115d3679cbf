"""`seedance-bot doctor` as an owner runs it: one line per check against the loopback doubles."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import discord as discord_py

from bot.doctor import INVITE_PERMISSIONS, Check, Outcome, exit_code
from tests.doubles.discord_double import DiscordDouble, GuildSpec
from tests.doubles.novita import NovitaDouble
from tests.doubles.runcomfy import RunComfyDouble

REPO = Path(__file__).resolve().parents[1]
RUNCOMFY_KEY = "doctor-runcomfy-key"
NOVITA_KEY = "doctor-novita-key"


async def doctor(environment: dict[str, str], cwd: Path) -> tuple[int, list[str]]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        "doctor",
        env=environment,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    assert stderr.decode() == "", stderr.decode()  # no warnings, no traceback
    return process.returncode, stdout.decode().splitlines()


def environment_for(
    discord: DiscordDouble, runcomfy: RunComfyDouble, novita: NovitaDouble, tmp_path: Path, **values: str
) -> dict[str, str]:
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DISCORD_", "RUNCOMFY_", "NOVITA_", "ARK_", "SEEDANCE_", "DATABASE_", "LOG_"))
    }
    environment.update(
        PYTHONPATH=str(REPO),
        DISCORD_TOKEN=discord.token,
        DISCORD_API_BASE_URL=discord.api_base,
        RUNCOMFY_API_KEY=RUNCOMFY_KEY,
        RUNCOMFY_BASE_URL=runcomfy.base_url,
        NOVITA_API_KEY=NOVITA_KEY,
        NOVITA_BASE_URL=novita.base_url,
        DATABASE_PATH=str(tmp_path / "data" / "bot.sqlite3"),
    )
    environment.update(values)
    return environment


async def test_a_good_setup_passes_every_check_and_pays_for_nothing(tmp_path):
    async with (
        DiscordDouble() as discord,
        RunComfyDouble(api_keys=(RUNCOMFY_KEY,)) as runcomfy,
        NovitaDouble(api_keys=(NOVITA_KEY,)) as novita,
    ):
        code, lines = await doctor(environment_for(discord, runcomfy, novita, tmp_path), tmp_path)
        assert runcomfy.submit_count == 0 and novita.submit_count == 0
    assert code == 0, lines
    assert [line.split(":")[0] for line in lines] == [
        "ok   settings",
        "ok   database",
        "ok   discord",
        "ok   server Test Guild",
        "ok   provider runcomfy",
        "ok   provider novita",
    ]
    assert (tmp_path / "data" / "bot.sqlite3").is_file()  # created and migrated


async def test_a_refused_provider_key_is_named_with_what_to_do_and_exits_2(tmp_path):
    async with (
        DiscordDouble() as discord,
        RunComfyDouble(api_keys=(RUNCOMFY_KEY,)) as runcomfy,
        NovitaDouble(api_keys=(NOVITA_KEY,)) as novita,
    ):
        environment = environment_for(discord, runcomfy, novita, tmp_path, NOVITA_API_KEY="revoked")
        code, lines = await doctor(environment, tmp_path)
    assert code == 2
    failed = [line for line in lines if line.startswith("FAIL")]
    assert failed == [
        "FAIL provider novita: NOVITA_API_KEY was refused: check the key in the novita console."
    ]
    assert "revoked" not in "\n".join(lines)
    assert "ok   provider runcomfy: RUNCOMFY_API_KEY accepted" in lines


async def test_a_refused_token_and_an_unusable_database_are_each_one_line(tmp_path):
    (tmp_path / "a-file").write_text("")
    async with (
        DiscordDouble() as discord,
        RunComfyDouble(api_keys=(RUNCOMFY_KEY,)) as runcomfy,
        NovitaDouble(api_keys=(NOVITA_KEY,)) as novita,
    ):
        environment = environment_for(
            discord,
            runcomfy,
            novita,
            tmp_path,
            DISCORD_TOKEN="not-the-token",
            DATABASE_PATH=str(tmp_path / "a-file" / "bot.sqlite3"),
        )
        code, lines = await doctor(environment, tmp_path)
    assert code == 2
    assert [line for line in lines if line.startswith("FAIL")] == [
        f"FAIL database: DATABASE_PATH: {tmp_path / 'a-file'} is a file, not a folder.",
        "FAIL discord: DISCORD_TOKEN was refused: reset the token in the Developer Portal (Bot tab) "
        "and update it.",
    ]


async def test_discord_unreachable_is_not_blamed_on_the_settings(tmp_path):
    async with (
        RunComfyDouble(api_keys=(RUNCOMFY_KEY,)) as runcomfy,
        NovitaDouble(api_keys=(NOVITA_KEY,)) as novita,
    ):
        async with DiscordDouble() as discord:
            environment = environment_for(discord, runcomfy, novita, tmp_path)
        code, lines = await doctor(environment, tmp_path)  # the Discord double is closed now
    assert code == 1
    [failed] = [line for line in lines if not line.startswith("ok")]
    assert failed.startswith(f"unreachable discord: cannot reach {environment['DISCORD_API_BASE_URL']}")


def test_exit_code_is_the_worst_outcome():
    ok = Check("a", Outcome.OK, "")
    assert exit_code([ok, ok]) == 0
    assert exit_code([ok, Check("b", Outcome.UNREACHABLE, "")]) == 1
    assert exit_code([Check("b", Outcome.UNREACHABLE, ""), Check("c", Outcome.BAD, "")]) == 2


async def test_a_server_where_the_bot_lacks_permissions_is_named_with_what_is_missing_and_how_to_fix_it(
    tmp_path,
):
    lacking = discord_py.Permissions(
        view_channel=True,
        send_messages=True,
        send_messages_in_threads=True,
        create_public_threads=True,
        embed_links=True,
        read_message_history=True,
    ).value
    guilds = [
        GuildSpec(name="Harbour"),
        GuildSpec(name="Workshop", bot_permissions=lacking, everyone_permissions=0),
        GuildSpec(name="Owners", bot_permissions=discord_py.Permissions(administrator=True).value),
    ]
    async with (
        DiscordDouble(guilds=guilds) as discord,
        RunComfyDouble(api_keys=(RUNCOMFY_KEY,)) as runcomfy,
        NovitaDouble(api_keys=(NOVITA_KEY,)) as novita,
    ):
        code, lines = await doctor(environment_for(discord, runcomfy, novita, tmp_path), tmp_path)
        bot_id = discord.bot_user.id
    assert code == 2
    workshop = guilds[1].id
    assert [line for line in lines if line.startswith("FAIL")] == [
        "FAIL server Workshop: missing Attach Files, Add Reactions — re-invite with "
        f"https://discord.com/oauth2/authorize?client_id={bot_id}&scope=bot+applications.commands"
        f"&permissions=309237763136&guild_id={workshop}&disable_guild_select=true "
        "or grant them in Server Settings → Roles"
    ]
    assert "ok   server Harbour: the bot has every permission it needs" in lines
    assert "ok   server Owners: the bot has every permission it needs" in lines


def test_the_invite_permissions_are_the_readmes():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert f"permissions={INVITE_PERMISSIONS}" in readme
