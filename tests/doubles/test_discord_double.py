"""Self-tests of the Discord double: a real discord.py ``commands.Bot`` runs against it."""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import discord
import pytest
from discord import app_commands
from discord.ext import commands

from tests.doubles.discord_double import (
    ChannelType,
    DiscordAPIError,
    DiscordDouble,
    GuildSpec,
    UserSpec,
)
from tests.doubles.discord_double.rules import validate_message

PNG_BYTES = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8


class Probe:
    """Lets the test bot's commands report outcomes, and lets the test release a waiting command."""

    def __init__(self) -> None:
        self._results: dict[str, asyncio.Future[Any]] = {}
        self._gates: dict[str, asyncio.Event] = {}

    def _future(self, name: str) -> asyncio.Future[Any]:
        if name not in self._results:
            self._results[name] = asyncio.get_running_loop().create_future()
        return self._results[name]

    def report(self, name: str, value: Any) -> None:
        """Record the outcome (a value or the exception) of command ``name``."""
        future = self._future(name)
        if not future.done():
            future.set_result(value)

    async def result(self, name: str, timeout: float = 5.0) -> Any:
        """Await the outcome of command ``name``."""
        return await asyncio.wait_for(self._future(name), timeout)

    def gate(self, name: str) -> asyncio.Event:
        """The event command ``name`` waits on."""
        return self._gates.setdefault(name, asyncio.Event())


async def _outcome(call: Callable[[], Any]) -> Any:
    """Run ``call`` and return its result, or the discord.HTTPException it raised."""
    try:
        return await call()
    except discord.HTTPException as error:
        return error


def build_bot(guild: GuildSpec, probe: Probe, intents: discord.Intents | None = None) -> commands.Bot:
    """The minimal bot the self-tests drive: guild-synced slash commands exercising each rule."""
    if intents is None:
        intents = discord.Intents.default()
        intents.message_content = False
    bot = commands.Bot(command_prefix="!", intents=intents, guild_ready_timeout=0.05)
    tree = bot.tree

    @tree.command(name="echo", description="Echo text and an image into the channel")
    async def echo(interaction: discord.Interaction, text: str, image: discord.Attachment) -> None:
        await interaction.response.defer(thinking=True)
        data = await image.read()
        posted = await interaction.channel.send(
            text,
            file=discord.File(io.BytesIO(data), image.filename),
            allowed_mentions=discord.AllowedMentions.none(),
        )
        thread = await posted.create_thread(name="echo")
        receipt = discord.File(io.BytesIO(b"receipt"), "receipt.txt")
        followup = await interaction.followup.send("done", file=receipt, wait=True)
        probe.report("echo", (posted, thread, followup))

    @tree.command(name="ack", description="Respond at once")
    async def ack(interaction: discord.Interaction) -> None:
        probe.report("ack", await _outcome(lambda: interaction.response.send_message("ack")))

    @tree.command(name="slowack", description="Respond when the test says so")
    async def slowack(interaction: discord.Interaction) -> None:
        await probe.gate("slowack").wait()
        probe.report("slowack", await _outcome(interaction.response.defer))

    @tree.command(name="slowfollowup", description="Follow up when the test says so")
    async def slowfollowup(interaction: discord.Interaction) -> None:
        await interaction.response.defer()
        await probe.gate("slowfollowup").wait()
        probe.report("slowfollowup", await _outcome(lambda: interaction.followup.send("late", wait=True)))

    @tree.command(name="say", description="Post text and optionally a file of the given size")
    async def say(interaction: discord.Interaction, length: int, upload_bytes: int = 0) -> None:
        await interaction.response.defer(ephemeral=True)
        probe.report("say.filesize_limit", interaction.filesize_limit)
        files = [discord.File(io.BytesIO(b"\0" * upload_bytes), "blob.bin")] if upload_bytes else []
        probe.report("say", await _outcome(lambda: interaction.channel.send("x" * length, files=files)))

    @tree.command(name="twothreads", description="Start two threads on one message")
    async def twothreads(interaction: discord.Interaction) -> None:
        await interaction.response.defer()
        posted = await interaction.channel.send("thread me")
        await posted.create_thread(name="first")
        probe.report("twothreads", await _outcome(lambda: posted.create_thread(name="second")))

    @tree.command(name="progress", description="Report progress by editing the response")
    async def progress(interaction: discord.Interaction) -> None:
        await interaction.response.defer(thinking=True)
        for percent in (50, 100):
            await interaction.edit_original_response(content=f"rendering {percent}%")
        probe.report("progress", await interaction.original_response())

    class Buttons(discord.ui.View):
        @discord.ui.button(label="Cancel", custom_id="cancel")
        async def cancel(self, interaction: discord.Interaction, button: discord.ui.Button[Buttons]) -> None:
            await interaction.response.edit_message(content="cancelled", view=None)

    @tree.command(name="buttons", description="Post a message with a button")
    async def buttons(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("job running", view=Buttons())

    media = app_commands.Group(name="media", description="Media commands")
    video = app_commands.Group(name="video", description="Video commands", parent=media)

    @video.command(name="make", description="Make a video")
    async def make(
        interaction: discord.Interaction, style: str, seconds: int = 5, loop: bool = False
    ) -> None:
        await interaction.response.send_message(f"make {style} {seconds} {loop}")

    @make.autocomplete("style")
    async def style_choices(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        styles = ["calm", "cartoon", "cinematic", "noir"]
        return [app_commands.Choice(name=s, value=s) for s in styles if s.startswith(current)]

    tree.add_command(media)

    @tree.context_menu(name="Animate message")
    async def animate_message(interaction: discord.Interaction, message: discord.Message) -> None:
        names = ",".join(attachment.filename for attachment in message.attachments)
        await interaction.response.send_message(f"{message.content}|{names}", ephemeral=True)

    async def setup_hook() -> None:
        target = discord.Object(guild.id)
        tree.copy_global_to(guild=target)
        await tree.sync(guild=target)

    bot.setup_hook = setup_hook  # type: ignore[method-assign]
    return bot


@contextlib.asynccontextmanager
async def running_bot(
    double: DiscordDouble, probe: Probe | None = None, intents: discord.Intents | None = None
) -> AsyncIterator[commands.Bot]:
    """Log the test bot in, connect it and yield it once ``on_ready`` fired; close it cleanly after."""
    bot = build_bot(double.guilds[0], probe or Probe(), intents)
    with double.patch_client_endpoints():
        connect_task: asyncio.Task[None] | None = None
        ready_task: asyncio.Task[None] | None = None
        try:
            await bot.login(double.token)
            connect_task = asyncio.create_task(bot.connect(reconnect=True))
            ready_task = asyncio.create_task(bot.wait_until_ready())
            done, _ = await asyncio.wait(
                {connect_task, ready_task}, timeout=10, return_when=asyncio.FIRST_COMPLETED
            )
            if connect_task in done:
                connect_task.result()  # surfaces why the bot could not connect
            assert ready_task in done, "the bot never became ready"
            yield bot
        finally:
            if ready_task is not None:
                ready_task.cancel()
            await bot.close()
            if connect_task is not None and not connect_task.done():
                await asyncio.wait_for(connect_task, 5)


@pytest.fixture
async def double() -> AsyncIterator[DiscordDouble]:
    async with DiscordDouble(guilds=[GuildSpec()]) as discord_double:
        yield discord_double


# ---------------------------------------------------------------------- the happy path


async def test_bot_connects_syncs_and_runs_a_full_echo_flow(double: DiscordDouble) -> None:
    probe = Probe()
    guild = double.guilds[0]
    async with running_bot(double, probe) as bot:
        assert bot.is_ready()
        assert [g.id for g in bot.guilds] == [guild.id]
        assert double.identifies[0]["token"] == double.token
        assert double.identifies[0]["intents"] == bot.intents.value
        assert {c["name"] for c in double.commands(guild)} >= {"echo", "media", "Animate message"}
        assert len(double.command_sync_requests()) == 1

        image = double.add_attachment(PNG_BYTES, "cat.png", "image/png")
        inter = await double.send_slash_command("echo", {"text": "look @everyone", "image": image})
        posted, thread, followup = await probe.result("echo")

    callback = await inter.wait_acknowledged()
    assert callback.json["type"] == 5
    assert inter.acknowledged_after is not None
    assert inter.acknowledged_after < double.ack_deadline_s

    stored = double.message(posted.id)
    assert stored.source == "bot"
    assert stored.content == "look @everyone"
    assert stored.attachments[0].data == PNG_BYTES
    assert stored.allowed_mentions == {"parse": []}
    assert not stored.pings_everyone

    async with aiohttp.ClientSession() as http, http.get(posted.attachments[0].url) as response:
        assert response.status == 200
        assert await response.read() == PNG_BYTES

    assert thread.id == posted.id
    assert [t.id for t in double.threads] == [posted.id]
    assert double.message(posted.id).thread_id == posted.id

    # The followup after a deferral fills in the "thinking" message rather than posting another.
    assert followup.id == inter.original.id
    assert inter.followups == [inter.original]
    assert inter.original.content == "done"
    assert inter.original.attachments[0].data == b"receipt"
    assert not inter.original.is_loading
    assert double.unknown_requests == []
    assert double.internal_errors == []


async def test_progress_edits_of_the_original_response(double: DiscordDouble) -> None:
    probe = Probe()
    async with running_bot(double, probe):
        inter = await double.send_slash_command("progress")
        fetched = await probe.result("progress")
    assert fetched.content == "rendering 100%"
    assert [edit["content"] for edit in inter.original.edits] == ["", "rendering 50%"]
    assert inter.original.payload["edited_timestamp"] is not None
    routes = [r.route for r in inter.webhook_requests]
    assert routes == ["/webhooks/{application_id}/{token}/messages/{message_id}"] * 3


async def test_button_click_updates_the_message(double: DiscordDouble) -> None:
    async with running_bot(double):
        command = await double.send_slash_command("buttons")
        job_message = await command.wait_original()
        assert job_message.payload["components"][0]["components"][0]["custom_id"] == "cancel"
        click = await double.send_component(job_message, "cancel")
        await click.wait_acknowledged()
    assert click.response_type == 7
    assert job_message.content == "cancelled"
    assert job_message.payload["components"] == []


async def test_restarting_the_bot_reconnects_with_a_fresh_identify(double: DiscordDouble) -> None:
    async with running_bot(double):
        pass
    async with running_bot(double) as bot:
        assert bot.is_ready()
    assert len(double.identifies) == 2
    # This test bot syncs on every start; a real bot should compare a hash and skip it.
    assert len(double.command_sync_requests()) == 2
    assert double.command_creates(double.guilds[0]) == len(double.commands(double.guilds[0]))


# ---------------------------------------------------------------------- enforced interaction rules


async def test_late_initial_response_gets_10062() -> None:
    probe = Probe()
    async with DiscordDouble(ack_deadline_s=0.2) as double, running_bot(double, probe):
        inter = await double.send_slash_command("slowack")
        await inter.ack_deadline_passed()
        probe.gate("slowack").set()
        error = await probe.result("slowack")
    assert isinstance(error, discord.NotFound)
    assert error.code == 10062
    callback = await inter.wait_callback()
    assert (callback.status, callback.error_code) == (404, 10062)
    assert not inter.acknowledged


async def test_second_bot_instance_answering_the_same_interaction_gets_40060(double: DiscordDouble) -> None:
    first, second = Probe(), Probe()
    async with running_bot(double, first), running_bot(double, second):
        inter = await double.send_slash_command("ack")
        outcomes = [await first.result("ack"), await second.result("ack")]
    errors = [outcome for outcome in outcomes if isinstance(outcome, discord.HTTPException)]
    assert len(errors) == 1
    assert (errors[0].status, errors[0].code) == (400, 40060)
    assert sorted(r.status for r in inter.responses) == [200, 400]


async def test_followup_after_token_lifetime_gets_50027() -> None:
    probe = Probe()
    async with DiscordDouble(token_lifetime_s=0.3) as double, running_bot(double, probe):
        inter = await double.send_slash_command("slowfollowup")
        await inter.wait_acknowledged()
        await inter.token_expired()
        probe.gate("slowfollowup").set()
        error = await probe.result("slowfollowup")
    assert isinstance(error, discord.HTTPException)
    assert (error.status, error.code) == (401, 50027)
    assert inter.followups == []


# ---------------------------------------------------------------------- enforced message rules


@pytest.mark.parametrize(
    ("length", "status", "code"),
    [(2000, 200, None), (2001, 400, 50035), (0, 400, 50006)],
)
async def test_message_content_limits(
    double: DiscordDouble, length: int, status: int, code: int | None
) -> None:
    probe = Probe()
    async with running_bot(double, probe):
        await double.send_slash_command("say", {"length": length})
        outcome = await probe.result("say")
    request = await double.wait_for(lambda r: r.matches("POST", "/channels/{channel_id}/messages"))
    assert (request.status, request.error_code) == (status, code)
    if code is None:
        assert isinstance(outcome, discord.Message)
        assert len(double.messages(double.guilds[0].text_channel)[-1].content) == length
    else:
        assert isinstance(outcome, discord.HTTPException)
        assert outcome.code == code


@pytest.mark.parametrize(("upload_bytes", "status"), [(1024, 200), (1025, 413)])
async def test_upload_over_the_guild_limit_gets_40005(upload_bytes: int, status: int) -> None:
    probe = Probe()
    async with (
        DiscordDouble(guilds=[GuildSpec(upload_limit_bytes=1024)]) as double,
        running_bot(double, probe),
    ):
        await double.send_slash_command("say", {"length": 3, "upload_bytes": upload_bytes})
        outcome = await probe.result("say")
        assert await probe.result("say.filesize_limit") == 1024
    request = await double.wait_for(lambda r: r.matches("POST", "/channels/{channel_id}/messages"))
    assert request.status == status
    assert len(request.files[0].data) == upload_bytes
    if status == 413:
        assert isinstance(outcome, discord.HTTPException)
        assert outcome.code == 40005
    else:
        assert double.hosted_file(outcome.attachments[0].url).size == 1024


async def test_second_thread_on_a_message_gets_160004(double: DiscordDouble) -> None:
    probe = Probe()
    async with running_bot(double, probe):
        await double.send_slash_command("twothreads")
        error = await probe.result("twothreads")
    assert isinstance(error, discord.HTTPException)
    assert (error.status, error.code) == (400, 160004)
    assert [thread.name for thread in double.threads] == ["first"]


async def test_rate_limited_request_is_retried_transparently(double: DiscordDouble) -> None:
    probe = Probe()
    double.rate_limit_next(lambda r: r.matches("POST", "/channels/{channel_id}/messages"), retry_after=0.05)
    async with running_bot(double, probe):
        await double.send_slash_command("say", {"length": 5})
        outcome = await probe.result("say")
    assert isinstance(outcome, discord.Message)
    posts = [r for r in double.requests if r.matches("POST", "/channels/{channel_id}/messages")]
    assert [r.status for r in posts] == [429, 200]
    assert posts[1].at - posts[0].at >= 0.05
    assert len(double.messages(double.guilds[0].text_channel)) == 1


@pytest.mark.parametrize(
    "embeds",
    [
        [{"title": "t" * 257}],
        [{"description": "d" * 4097}],
        [{"fields": [{"name": "n", "value": "v"}] * 26}],
        [{"fields": [{"name": "n" * 257, "value": "v"}]}],
        [{"fields": [{"name": "n", "value": "v" * 1025}]}],
        [{"footer": {"text": "f" * 2049}}],
        [{"description": "d" * 4000}, {"description": "d" * 2001}],
        [{"title": "t"}] * 11,
    ],
    ids=["title", "description", "fields", "field-name", "field-value", "footer", "total", "count"],
)
def test_embed_limits_are_invalid_form_body(embeds: list[dict[str, Any]]) -> None:
    with pytest.raises(DiscordAPIError) as raised:
        validate_message({"embeds": embeds}, [], upload_limit=1024)
    assert (raised.value.status, raised.value.code) == (400, 50035)


def test_embeds_at_the_limits_are_accepted() -> None:
    embed = {
        "title": "t" * 256,
        "description": "d" * 4096,
        "fields": [{"name": "n", "value": "v" * 50}] * 25,
        "footer": {"text": "f" * 100},
    }
    validate_message({"embeds": [embed]}, [], upload_limit=1024)


# ---------------------------------------------------------------------- command shapes


async def test_subcommand_group_options_and_autocomplete(double: DiscordDouble) -> None:
    async with running_bot(double):
        completion = await double.send_autocomplete("media video make", {"style": "c"}, focused="style")
        choices = await completion.wait_autocomplete()
        inter = await double.send_slash_command(
            "media video make", {"style": "noir", "seconds": 8, "loop": True}
        )
        original = await inter.wait_original()
    assert [choice["value"] for choice in choices] == ["calm", "cartoon", "cinematic"]
    assert completion.response_type == 8
    assert original.content == "make noir 8 True"
    with pytest.raises(ValueError, match="required"):
        await double.send_slash_command("media video make", {"seconds": 3})


async def test_message_context_menu_gets_the_resolved_message(double: DiscordDouble) -> None:
    channel = double.guilds[0].text_channel
    photo = double.add_attachment(PNG_BYTES, "photo.png", ephemeral=False)
    async with running_bot(double):
        target = await double.post_user_message(channel, "my photo", attachments=[photo])
        inter = await double.send_message_command("Animate message", target)
        original = await inter.wait_original()
    assert original.content == "my photo|photo.png"
    assert original.ephemeral
    assert original not in double.messages(channel)


async def test_gateway_resume_after_a_dropped_connection(double: DiscordDouble) -> None:
    resumed = asyncio.Event()
    async with running_bot(double) as bot:

        async def on_resumed() -> None:
            resumed.set()

        bot.add_listener(on_resumed)
        session = await double.wait_until_connected()
        assert session.heartbeats >= 1
        await double.disconnect_gateway(code=4000)
        await asyncio.wait_for(resumed.wait(), 5)
        assert [s.resumed for s in double.sessions if s.ready] == [True]
        inter = await double.send_slash_command("ack")
        await inter.wait_acknowledged()
    assert len(double.identifies) == 1


async def test_privileged_intent_not_enabled_closes_with_4014(double: DiscordDouble) -> None:
    intents = discord.Intents.default()
    intents.message_content = True
    with pytest.raises(discord.PrivilegedIntentsRequired):
        async with running_bot(double, intents=intents):
            pass


# ---------------------------------------------------------------------- raw HTTP behaviour


async def _raw(
    double: DiscordDouble, method: str, path: str, *, json: Any = None, prefix: str = "/api/v10"
) -> tuple[int, str, Any]:
    headers = {"Authorization": f"Bot {double.token}"}
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, double.base_url + prefix + path, json=json, headers=headers) as response,
    ):
        body = await response.json(content_type=None) if response.status != 204 else None
        return response.status, response.headers.get("Content-Type", ""), body


async def test_json_content_type_is_exact_and_unknown_routes_are_recorded(double: DiscordDouble) -> None:
    status, content_type, body = await _raw(double, "GET", "/users/@me")
    assert (status, content_type, body["id"]) == (200, "application/json", str(double.bot_user.id))
    status, _, body = await _raw(double, "GET", "/users/@me", prefix="/api/v10/api/v10")
    assert status == 200
    status, _, body = await _raw(double, "GET", "/no/such/route")
    assert (status, body["code"]) == (404, 0)
    assert [r.path for r in double.unknown_requests] == ["/no/such/route"]


async def test_threads_refused_where_discord_refuses_them(double: DiscordDouble) -> None:
    guild = double.guilds[0]
    text = guild.text_channel
    status, _, message = await _raw(double, "POST", f"/channels/{text.id}/messages", json={"content": "hi"})
    assert status == 200
    status, _, thread = await _raw(
        double, "POST", f"/channels/{text.id}/messages/{message['id']}/threads", json={"name": "t"}
    )
    assert status == 200
    status, _, inner = await _raw(
        double, "POST", f"/channels/{thread['id']}/messages", json={"content": "in"}
    )
    assert status == 200
    for channel_id, message_id in [(thread["id"], inner["id"]), (guild.forum_channel.id, message["id"])]:
        status, _, body = await _raw(
            double, "POST", f"/channels/{channel_id}/messages/{message_id}/threads", json={"name": "t"}
        )
        assert (status, body["code"]) == (400, 50024)
    dm = double.dm_channel(guild.members[0])
    status, _, dm_message = await _raw(double, "POST", f"/channels/{dm.id}/messages", json={"content": "dm"})
    status, _, body = await _raw(
        double, "POST", f"/channels/{dm.id}/messages/{dm_message['id']}/threads", json={"name": "t"}
    )
    assert (status, body["code"]) == (400, 50024)
    status, _, body = await _raw(
        double, "POST", f"/channels/{guild.forum_channel.id}/messages", json={"content": "x"}
    )
    assert (status, body["code"]) == (400, 50008)


async def test_daily_command_create_cap() -> None:
    async with DiscordDouble(daily_command_create_cap=2) as double:
        guild = double.guilds[0]
        path = f"/applications/{double.application_id}/guilds/{guild.id}/commands"
        two = [{"name": name, "description": "d", "type": 1} for name in ("a", "b")]
        assert (await _raw(double, "PUT", path, json=two))[0] == 200
        assert (await _raw(double, "PUT", path, json=two))[0] == 200  # unchanged commands are not creates
        status, _, body = await _raw(double, "PUT", path, json=[*two, {"name": "c", "description": "d"}])
        assert (status, body["code"]) == (429, 30034)
        assert double.command_creates(guild) == 2


async def test_cdn_refuses_tampered_expired_or_removed_files(double: DiscordDouble) -> None:
    hosted = double.add_attachment(b"secret", "a.txt")
    async with aiohttp.ClientSession() as http:
        async with http.get(hosted.url) as response:
            assert (response.status, await response.read()) == (200, b"secret")
        async with http.get(hosted.url.replace("hm=", "hm=0")) as response:
            assert response.status == 404
        double.remove_attachment(hosted)
        async with http.get(hosted.url) as response:
            assert response.status == 404


async def test_interaction_payload_carries_what_discord_py_needs() -> None:
    member = UserSpec("bob", locale="fr")
    guild = GuildSpec(premium_tier=2, members=[UserSpec("owner"), member])
    seen: asyncio.Future[discord.Interaction] = asyncio.get_running_loop().create_future()
    async with DiscordDouble(guilds=[guild]) as double, running_bot(double) as bot:

        async def on_interaction(interaction: discord.Interaction) -> None:
            if not seen.done():
                seen.set_result(interaction)

        bot.add_listener(on_interaction)
        inter = await double.send_slash_command("ack", user=member)
        interaction = await asyncio.wait_for(seen, 5)
        await inter.wait_acknowledged()
        assert interaction.filesize_limit == 50 * 1024 * 1024
        assert bot.get_guild(guild.id).filesize_limit == 50 * 1024 * 1024
        assert interaction.locale is discord.Locale.french
        assert interaction.user.id == member.id
        assert interaction.app_permissions.create_public_threads
        assert not interaction.is_expired()
        assert interaction.channel.type is discord.ChannelType.text
        assert guild.forum_channel.type == ChannelType.FORUM
        assert isinstance(bot.get_channel(guild.forum_channel.id), discord.ForumChannel)
