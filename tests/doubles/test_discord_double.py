"""Self-tests of the Discord double: a real discord.py ``commands.Bot`` runs against it."""

from __future__ import annotations

import asyncio
import contextlib
import io
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import aiohttp
import discord
import pytest
from discord import app_commands
from discord.ext import commands

from tests.doubles.discord_double import (
    ChannelSpec,
    ChannelType,
    DiscordAPIError,
    DiscordDouble,
    GuildSpec,
    RecordedRequest,
    StoredMessage,
    UserSpec,
    is_message_create,
    is_message_delete,
    is_message_edit,
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


async def test_my_guilds_lists_each_guild_with_the_bots_guild_level_permissions_paged_by_id() -> None:
    lacking = discord.Permissions(view_channel=True, send_messages=True).value
    guilds = [
        GuildSpec(name="Full"),
        GuildSpec(name="Bare", bot_permissions=lacking, everyone_permissions=0),
        GuildSpec(name="Admin", bot_permissions=discord.Permissions(administrator=True).value),
    ]
    async with DiscordDouble(guilds=guilds) as double:
        status, _, listed = await _raw(double, "GET", "/users/@me/guilds")
        by_name = {guild["name"]: int(guild["permissions"]) for guild in listed}
        first_id = min(guild.id for guild in guilds)
        _, _, rest = await _raw(double, "GET", f"/users/@me/guilds?after={first_id}&limit=1")
    assert status == 200
    assert by_name["Bare"] == lacking
    assert discord.Permissions(by_name["Full"]).attach_files
    assert by_name["Admin"] == discord.Permissions.all().value
    assert len(rest) == 1 and int(rest[0]["id"]) > first_id


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


# ---------------------------------------------------------------------- natural rate limits

MESSAGES = "/channels/{channel_id}/messages"
RATE_LIMIT_HEADERS = (
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
    "X-RateLimit-Reset-After",
    "X-RateLimit-Bucket",
)


def _bucket_requests(double: DiscordDouble) -> list[RecordedRequest]:
    return [r for r in double.requests if r.route is not None and r.route.startswith(MESSAGES)]


async def _raw_with_headers(
    double: DiscordDouble, method: str, path: str, *, json: Any = None
) -> tuple[int, Any, Mapping[str, str]]:
    headers = {"Authorization": f"Bot {double.token}"}
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, double.api_base + path, json=json, headers=headers) as response,
    ):
        body = await response.json(content_type=None) if response.status != 204 else None
        return response.status, body, response.headers.copy()


async def test_discord_py_paces_itself_by_the_channel_bucket_headers() -> None:
    # Discord's figures are 5 per 5 s; a 1 s window keeps the test short and exercises the same logic.
    async with DiscordDouble(channel_rate_limit=(5, 1.0)) as double, running_bot(double) as bot:
        channel_spec = double.guilds[0].text_channel
        channel = bot.get_channel(channel_spec.id)
        sent = await asyncio.gather(*(channel.send(f"message {n}") for n in range(12)))

    assert sorted(m.content for m in double.messages(channel_spec)) == sorted(m.content for m in sent)
    stats = double.rate_limit_stats()
    assert (stats.limit, stats.period_s) == (5, 1.0)
    channel_stats = stats.channel(channel_spec)
    assert (channel_stats.accepted, channel_stats.windows, channel_stats.peak_per_window) == (12, 3, 5)
    # discord.py waited for each reset instead of running into the limit.
    assert channel_stats.rate_limited == stats.rate_limited == 0
    posts = _bucket_requests(double)
    assert len(posts) == 12
    for request in posts:
        assert set(RATE_LIMIT_HEADERS) <= request.response_headers.keys()
        assert request.response_headers["X-RateLimit-Limit"] == "5"
        assert 0 < float(request.response_headers["X-RateLimit-Reset-After"]) <= 1.0
    assert len({r.response_headers["X-RateLimit-Bucket"] for r in posts}) == 1
    # Every window names one reset time and counts its remaining requests down.
    windows: dict[str, list[int]] = {}
    for request in posts:
        reset = request.response_headers["X-RateLimit-Reset"]
        windows.setdefault(reset, []).append(int(request.response_headers["X-RateLimit-Remaining"]))
    assert [sorted(remaining, reverse=True) for remaining in windows.values()] == [
        [4, 3, 2, 1, 0],
        [4, 3, 2, 1, 0],
        [4, 3],
    ]
    resets = [float(reset) for reset in windows]
    assert resets == sorted(resets)
    assert resets[1] - resets[0] >= 1.0
    assert posts[5].at - posts[0].at >= 1.0


async def test_create_edit_and_delete_share_one_bucket_per_channel_and_the_429_is_discords() -> None:
    async with DiscordDouble(channel_rate_limit=(5, 5.0)) as double:
        text = double.guilds[0].text_channel
        messages = f"/channels/{text.id}/messages"
        status, first, headers = await _raw_with_headers(double, "POST", messages, json={"content": "a"})
        assert status == 200
        assert (headers["X-RateLimit-Limit"], headers["X-RateLimit-Remaining"]) == ("5", "4")
        assert 4.9 < float(headers["X-RateLimit-Reset-After"]) <= 5.0
        assert abs(float(headers["X-RateLimit-Reset"]) - time.time() - 5.0) < 0.5
        bucket = headers["X-RateLimit-Bucket"]
        await _raw_with_headers(double, "PATCH", f"{messages}/{first['id']}", json={"content": "b"})
        _, second, _ = await _raw_with_headers(double, "POST", messages, json={"content": "c"})
        await _raw_with_headers(double, "DELETE", f"{messages}/{second['id']}")
        too_long = {"content": "x" * 2001}
        status, _, headers = await _raw_with_headers(
            double, "PATCH", f"{messages}/{first['id']}", json=too_long
        )
        assert (status, headers["X-RateLimit-Remaining"]) == (400, "0")  # errors count and carry headers

        status, body, headers = await _raw_with_headers(double, "POST", messages, json={"content": "d"})
        assert status == 429
        assert headers["Content-Type"] == "application/json"
        assert set(body) == {"message", "retry_after", "global"}
        assert (body["message"], body["global"]) == ("You are being rate limited.", False)
        assert 4.5 < body["retry_after"] <= 5.0
        assert headers["Retry-After"] == "5"
        assert (headers["X-RateLimit-Scope"], headers["X-RateLimit-Remaining"]) == ("user", "0")
        assert headers["X-RateLimit-Bucket"] == bucket
        assert float(headers["X-RateLimit-Reset-After"]) == body["retry_after"]
        assert headers["Via"]  # without it discord.py takes a 429 for a Cloudflare ban
        assert [m.content for m in double.messages(text)] == ["b"]

        # Another channel (here a thread) has a bucket of its own with the same hash.
        _, thread, _ = await _raw_with_headers(
            double, "POST", f"{messages}/{first['id']}/threads", json={"name": "t"}
        )
        status, _, headers = await _raw_with_headers(
            double, "POST", f"/channels/{thread['id']}/messages", json={"content": "in thread"}
        )
        assert (status, headers["X-RateLimit-Remaining"], headers["X-RateLimit-Bucket"]) == (200, "4", bucket)

    stats = double.rate_limit_stats()
    assert stats.channel(text).accepted == 5
    assert stats.channel(text).rate_limited == stats.rate_limited == 1
    assert stats.channel(text).peak_per_window == stats.peak_per_window == 5
    assert stats.channel(int(thread["id"])).accepted == 1
    # Reading messages and threads is not in this bucket.
    assert all(not r.response_headers for r in double.requests if r.route and r.route.endswith("/threads"))


async def test_interaction_responses_and_followups_are_not_bound_by_the_channel_bucket() -> None:
    probe = Probe()
    async with DiscordDouble(channel_rate_limit=(1, 5.0)) as double, running_bot(double, probe):
        path = f"/channels/{double.guilds[0].text_channel.id}/messages"
        assert (await _raw_with_headers(double, "POST", path, json={"content": "the only one"}))[0] == 200
        assert (await _raw_with_headers(double, "POST", path, json={"content": "one too many"}))[0] == 429
        inter = await double.send_slash_command("progress")
        fetched = await probe.result("progress")
    assert fetched.content == "rendering 100%"
    assert len(inter.webhook_requests) == 3
    for request in [*inter.responses, *inter.webhook_requests]:
        assert request.ok
        assert "X-RateLimit-Limit" not in request.response_headers
    assert double.rate_limit_stats().rate_limited == 1


async def test_default_rate_limit_and_nonce_window_are_discords_and_can_be_turned_off() -> None:
    async with DiscordDouble() as double:
        assert (double.channel_rate_limit, double.nonce_window_s) == ((5, 5.0), 300.0)
        path = f"/channels/{double.guilds[0].text_channel.id}/messages"
        statuses = [
            (await _raw_with_headers(double, "POST", path, json={"content": "x"}))[0] for _ in range(6)
        ]
        assert statuses == [200] * 5 + [429]
    async with DiscordDouble(channel_rate_limit=None) as double:
        path = f"/channels/{double.guilds[0].text_channel.id}/messages"
        for _ in range(8):
            status, _, headers = await _raw_with_headers(double, "POST", path, json={"content": "x"})
            assert status == 200
            assert "X-RateLimit-Limit" not in headers
        stats = double.rate_limit_stats()
        assert (stats.limit, stats.channels, stats.rate_limited) == (None, {}, 0)


# ---------------------------------------------------------------------- injected faults


async def test_fail_next_503_surfaces_as_a_server_error_and_creates_nothing(double: DiscordDouble) -> None:
    text = double.guilds[0].text_channel
    double.fail_next(is_message_create(text, with_files=True))
    async with running_bot(double) as bot:
        channel = bot.get_channel(text.id)
        plain = await channel.send("no file: not matched")
        with pytest.raises(discord.DiscordServerError) as raised:
            await channel.send("with a file", file=discord.File(io.BytesIO(PNG_BYTES), "cat.png"))
        retried = await channel.send("with a file", file=discord.File(io.BytesIO(PNG_BYTES), "cat.png"))
    assert (raised.value.status, raised.value.code) == (503, 0)
    assert raised.value.text.startswith("upstream connect error")
    assert [m.id for m in double.messages(text)] == [plain.id, retried.id]
    failed = [r for r in _bucket_requests(double) if r.status == 503]
    assert len(failed) == 1  # discord.py does not retry a 503
    assert failed[0].files[0].filename == "cat.png"
    assert not failed[0].response_headers  # Discord's edge answered, not its API


async def test_fail_next_500_is_discords_json_and_counts_down(double: DiscordDouble) -> None:
    path = f"/channels/{double.guilds[0].text_channel.id}/messages"
    double.fail_next(is_message_create(), status=500, count=2)
    for _ in range(2):
        status, body, headers = await _raw_with_headers(double, "POST", path, json={"content": "x"})
        assert (status, body, headers["Content-Type"]) == (
            500,
            {"message": "500: Internal Server Error", "code": 0},
            "application/json",
        )
    assert (await _raw_with_headers(double, "POST", path, json={"content": "x"}))[0] == 200
    assert len(double.messages(double.guilds[0].text_channel)) == 1


async def test_drop_after_accept_creates_the_message_but_the_client_sees_a_dropped_connection(
    double: DiscordDouble,
) -> None:
    text = double.guilds[0].text_channel
    double.drop_after_accept_next(is_message_create(text))
    async with running_bot(double) as bot:
        channel = bot.get_channel(text.id)
        on_gateway = asyncio.create_task(bot.wait_for("message", timeout=5))
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await channel.send("accepted but unanswered", nonce="delivery-1")
        announced = await on_gateway
        # The same nonce within the window returns the message Discord already created.
        retried = await channel.send("accepted but unanswered", nonce="delivery-1")
        double.drop_after_accept_next(is_message_edit(text, retried.id))
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await retried.edit(content="edited, unanswered")
    [stored] = double.messages(text)
    assert stored.id == retried.id == announced.id
    assert stored.content == "edited, unanswered"
    dropped = [r for r in double.requests if r.dropped]
    assert [(r.method, r.status) for r in dropped] == [("POST", 200), ("PATCH", 200)]
    assert dropped[0].response["id"] == str(stored.id)


async def test_a_dropped_delete_is_resent_by_aiohttp_and_then_unknown(double: DiscordDouble) -> None:
    text = double.guilds[0].text_channel
    async with running_bot(double) as bot:
        message = await bot.get_channel(text.id).send("to delete")
        double.drop_after_accept_next(is_message_delete(text, message.id))
        # aiohttp resends an idempotent DELETE once when a kept-alive connection drops: the message is
        # already gone, so discord.py reports 404 / 10008 although the delete succeeded.
        with pytest.raises(discord.NotFound) as raised:
            await message.delete()
    assert raised.value.code == 10008
    assert double.messages(text) == []
    deletes = [r for r in _bucket_requests(double) if r.method == "DELETE"]
    assert [(r.status, r.dropped) for r in deletes] == [(204, True), (404, False)]


async def test_hold_next_pauses_a_request_before_it_is_applied(double: DiscordDouble) -> None:
    text = double.guilds[0].text_channel
    handle = double.hold_next(is_message_create(text, with_files=True))
    async with running_bot(double) as bot:
        channel = bot.get_channel(text.id)
        upload = asyncio.create_task(
            channel.send("video", file=discord.File(io.BytesIO(b"mp4"), "job-7.mp4"))
        )
        held = await handle.arrived()
        assert held.files[0].filename == "job-7.mp4"
        assert handle.held
        assert not upload.done()
        assert double.messages(text) == []
        handle.release()
        message = await upload
    assert [m.id for m in double.messages(text)] == [message.id]
    assert [(r.status, r.held) for r in _bucket_requests(double)] == [(200, True)]


async def test_a_held_request_can_be_dropped_or_outlive_its_client(double: DiscordDouble) -> None:
    text = double.guilds[0].text_channel
    dropped, outlived = double.hold_next(is_message_create(text)), double.hold_next(is_message_create(text))
    async with running_bot(double) as bot:
        channel = bot.get_channel(text.id)
        upload = asyncio.create_task(channel.send("never applied"))
        await dropped.arrived()
        dropped.drop()
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await upload
        assert double.messages(text) == []

        # The client dies while its request is held (a killed bot process): Discord had the whole
        # request, so it still creates the message, and nobody reads the answer.
        upload = asyncio.create_task(channel.send("applied after the client died"))
        await outlived.arrived()
        upload.cancel()
        await outlived.client_gone()
        outlived.release()
        [stored] = await double.wait_until(lambda: double.messages(text) or None)
    assert stored.content == "applied after the client died"
    assert upload.cancelled()
    assert [(r.status, r.dropped) for r in _bucket_requests(double)] == [(0, True), (200, False)]


async def test_on_message_created_runs_before_the_response_is_written(double: DiscordDouble) -> None:
    text = double.guilds[0].text_channel
    seen: list[tuple[str, bool, bool]] = []
    async with running_bot(double) as bot:
        channel = bot.get_channel(text.id)
        upload = asyncio.create_task(channel.send("status card"))

        def crash(message: StoredMessage) -> None:
            answered = any(r.matches("POST", MESSAGES) for r in double.requests)
            seen.append((message.content, answered, upload.done()))
            upload.cancel()  # "kill the bot" the moment Discord has created its message

        remove = double.on_message_created(crash, lambda message: message.source == "bot")
        with pytest.raises(asyncio.CancelledError):
            await upload
        remove()
        await channel.send("after the hook was removed")
    assert seen == [("status card", False, False)]
    assert [m.content for m in double.messages(text)] == ["status card", "after the hook was removed"]


# ---------------------------------------------------------------------- nonces and history


async def test_nonce_dedup_holds_within_the_window_only() -> None:
    async with DiscordDouble(nonce_window_s=0.5) as double, running_bot(double) as bot:
        text = double.guilds[0].text_channel
        channel = bot.get_channel(text.id)
        first = await channel.send("video ready", nonce="job-7")
        again = await channel.send("video ready", nonce="job-7")
        other = await channel.send("video ready", nonce="job-8")
        await double.nonce_window_over(double.message(first.id))
        late = await channel.send("video ready", nonce="job-7")
        # Without enforce_nonce Discord does not deduplicate at all.
        path = f"/channels/{text.id}/messages"
        _, unenforced, _ = await _raw_with_headers(
            double, "POST", path, json={"content": "x", "nonce": "job-8"}
        )
    assert _bucket_requests(double)[0].json["enforce_nonce"] is True  # discord.py sets it with nonce=
    assert again.id == first.id
    assert first.nonce == again.nonce == "job-7"  # the create response echoes the nonce
    assert len({first.id, other.id, late.id, int(unenforced["id"])}) == 4
    assert [m.id for m in double.messages(text)] == [first.id, other.id, late.id, int(unenforced["id"])]


async def test_history_is_newest_first_without_nonces_and_pages_like_discord() -> None:
    # The member's photo is read back through REST: only an app granted Message Content sees it.
    async with DiscordDouble(message_content_intent_granted=True) as double:
        await _history_pages_like_discord(double)


async def _history_pages_like_discord(double: DiscordDouble) -> None:
    text = double.guilds[0].text_channel
    photo = double.add_attachment(PNG_BYTES, "photo.png", ephemeral=False)
    async with running_bot(double) as bot:
        channel = bot.get_channel(text.id)
        posted_by_member = await double.post_user_message(text, "my photo", attachments=[photo])
        video = await channel.send(
            "job 7 done",
            file=discord.File(io.BytesIO(b"mp4"), "seedance-7.mp4"),
            embed=discord.Embed(title="Job 7"),
            nonce="job-7",
        )
        await (await channel.send("deleted")).delete()
        latest = await channel.send("latest")
        newest = [m async for m in channel.history(limit=10)]
        right_after_member = [
            m async for m in channel.history(after=discord.Object(posted_by_member.id), limit=1)
        ]
        around = [m async for m in channel.history(around=video, limit=3)]
        before_latest = [m async for m in channel.history(before=latest, limit=1)]
        fetched = await channel.fetch_message(video.id)
        status, raw, _ = await _raw_with_headers(double, "GET", f"/channels/{text.id}/messages")
        too_many = await _raw_with_headers(double, "GET", f"/channels/{text.id}/messages?limit=101")
    assert [m.id for m in newest] == [latest.id, video.id, posted_by_member.id]
    assert (newest[1].author.id, newest[1].content) == (bot.user.id, "job 7 done")
    assert [a.filename for a in newest[1].attachments] == ["seedance-7.mp4"]
    assert [e.title for e in newest[1].embeds] == ["Job 7"]
    assert (newest[2].author.id, newest[2].attachments[0].filename) == (
        double.guilds[0].owner.id,
        "photo.png",
    )
    assert [m.id for m in right_after_member] == [video.id]  # the oldest after it, not the newest
    assert sorted(m.id for m in around) == [posted_by_member.id, video.id, latest.id]
    assert [m.id for m in before_latest] == [video.id]
    # Discord echoes a nonce when the message is created, never when it is read back.
    assert video.nonce == "job-7"
    assert fetched.nonce is None
    assert status == 200
    assert [m["id"] for m in raw] == [str(latest.id), str(video.id), str(posted_by_member.id)]
    assert all("nonce" not in m for m in raw)
    assert (too_many[0], too_many[1]["code"]) == (400, 50035)


async def test_history_without_read_message_history_is_empty() -> None:
    no_history = discord.Permissions(read_message_history=True).value
    guild = GuildSpec(channels=[ChannelSpec("general", bot_denied_permissions=no_history)])
    async with DiscordDouble(guilds=[guild]) as double:
        path = f"/channels/{guild.text_channel.id}/messages"
        assert (await _raw_with_headers(double, "POST", path, json={"content": "posted"}))[0] == 200
        assert (await _raw_with_headers(double, "GET", path))[:2] == (200, [])
