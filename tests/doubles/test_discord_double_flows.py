"""The Discord double's rules for the bot's newer flows, driven by a real discord.py client.

Modals (classic and Label forms, after a defer, from a button), replies that mention the bot under the
Message Content rules (gateway and REST), privileged intents, reactions and their bucket, component
validation and what a member can click, deleting messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import discord
import pytest
from discord.ext import commands

from tests.doubles.discord_double import (
    CallbackRejectedError,
    ChannelSpec,
    DiscordAPIError,
    DiscordDouble,
    GuildSpec,
    InteractionHandle,
    StoredMessage,
    UserSpec,
)
from tests.doubles.discord_double.components import validate_modal
from tests.doubles.discord_double.rules import validate_message

PNG_BYTES = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


class Outcomes:
    """Lets the test bot's callbacks report what happened, keyed by name."""

    def __init__(self) -> None:
        self._futures: dict[str, asyncio.Future[Any]] = {}

    def _future(self, name: str) -> asyncio.Future[Any]:
        if name not in self._futures:
            self._futures[name] = asyncio.get_running_loop().create_future()
        return self._futures[name]

    def report(self, name: str, value: Any) -> None:
        """Record the first outcome of ``name``."""
        future = self._future(name)
        if not future.done():
            future.set_result(value)

    async def result(self, name: str, timeout: float = 5.0) -> Any:
        """Await the outcome of ``name``."""
        return await asyncio.wait_for(self._future(name), timeout)


async def _outcome(call: Callable[[], Any]) -> Any:
    """Run ``call``; its result, or the discord.py exception it raised."""
    try:
        return await call()
    except (discord.HTTPException, discord.InteractionResponded) as error:
        return error


# ---------------------------------------------------------------------- the test bot


class Describe(discord.ui.Modal, title="Describe the video"):
    """The classic form: one text input per action row."""

    prompt: discord.ui.TextInput[Describe] = discord.ui.TextInput(
        label="Prompt", custom_id="prompt", style=discord.TextStyle.paragraph, min_length=3, max_length=200
    )
    seconds: discord.ui.TextInput[Describe] = discord.ui.TextInput(
        label="Seconds", custom_id="seconds", required=False, default="5", max_length=2
    )

    def __init__(self, outcomes: Outcomes) -> None:
        super().__init__()
        self.outcomes = outcomes

    async def on_submit(self, interaction: discord.Interaction) -> None:
        self.outcomes.report("describe", (self.prompt.value, self.seconds.value))
        await interaction.response.send_message(f"{self.prompt.value}|{self.seconds.value}", ephemeral=True)


class DescribeWithLabels(discord.ui.Modal, title="Animate"):
    """The newer form: Labels wrapping a text input and a string select, plus a text display."""

    notice = discord.ui.TextDisplay("Videos take a few minutes.")  # type: ignore[var-annotated]
    prompt: discord.ui.Label[DescribeWithLabels] = discord.ui.Label(
        text="Prompt",
        description="What should happen in the video",
        component=discord.ui.TextInput(custom_id="prompt", style=discord.TextStyle.paragraph, max_length=300),
    )
    model: discord.ui.Label[DescribeWithLabels] = discord.ui.Label(
        text="Model",
        component=discord.ui.Select(
            custom_id="model",
            options=[
                discord.SelectOption(label="Lite", value="lite"),
                discord.SelectOption(label="Pro", value="pro", default=True),
            ],
        ),
    )

    def __init__(self, outcomes: Outcomes) -> None:
        super().__init__()
        self.outcomes = outcomes

    async def on_submit(self, interaction: discord.Interaction) -> None:
        prompt = self.prompt.component
        model = self.model.component
        assert isinstance(prompt, discord.ui.TextInput) and isinstance(model, discord.ui.Select)
        self.outcomes.report("labels", (prompt.value, model.values))
        await interaction.response.defer(ephemeral=True, thinking=True)
        await interaction.followup.send(f"{prompt.value}|{','.join(model.values)}")


class EditPrompt(discord.ui.Modal, title="Edit prompt"):
    """Opened from a button: the submit edits the job card it came from."""

    prompt: discord.ui.TextInput[EditPrompt] = discord.ui.TextInput(label="Prompt", custom_id="prompt")

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await interaction.response.edit_message(content=f"prompt: {self.prompt.value}")


class JobCard(discord.ui.View):
    """A status card with a button that opens a modal, a disabled button and a model select."""

    def __init__(self) -> None:
        super().__init__(timeout=None)

    @discord.ui.button(label="Edit prompt", custom_id="edit")
    async def edit(self, interaction: discord.Interaction, button: discord.ui.Button[JobCard]) -> None:
        await interaction.response.send_modal(EditPrompt())

    @discord.ui.button(label="Locked", custom_id="locked", disabled=True)
    async def locked(self, interaction: discord.Interaction, button: discord.ui.Button[JobCard]) -> None:
        raise AssertionError("a disabled button cannot be clicked")

    @discord.ui.select(
        custom_id="model",
        options=[
            discord.SelectOption(label="Lite", value="lite"),
            discord.SelectOption(label="Pro", value="pro"),
        ],
    )
    async def model(self, interaction: discord.Interaction, select: discord.ui.Select[JobCard]) -> None:
        await interaction.response.edit_message(content=f"model: {select.values[0]}")


def build_bot(guild: GuildSpec, outcomes: Outcomes, intents: discord.Intents) -> commands.Bot:
    """A bot with the commands and listeners these tests drive, synced to ``guild``."""
    bot = commands.Bot(command_prefix="!", intents=intents, guild_ready_timeout=0.05)
    tree = bot.tree

    @tree.context_menu(name="Describe")
    async def describe(interaction: discord.Interaction, message: discord.Message) -> None:
        await interaction.response.send_modal(Describe(outcomes))

    @tree.context_menu(name="Describe with labels")
    async def describe_with_labels(interaction: discord.Interaction, message: discord.Message) -> None:
        await interaction.response.send_modal(DescribeWithLabels(outcomes))

    @tree.command(name="slowmodal", description="Defer, then try to open a modal")
    async def slowmodal(interaction: discord.Interaction) -> None:
        await interaction.response.defer(thinking=True)
        outcomes.report(
            "slowmodal", await _outcome(lambda: interaction.response.send_modal(Describe(outcomes)))
        )

    @tree.command(name="badmodal", description="Open a modal whose title is too long")
    async def badmodal(interaction: discord.Interaction) -> None:
        modal = Describe(outcomes)
        modal.title = "t" * 46
        outcomes.report("badmodal", await _outcome(lambda: interaction.response.send_modal(modal)))

    @tree.command(name="silent", description="Never answer (the test answers by hand)")
    async def silent(interaction: discord.Interaction) -> None:
        outcomes.report("silent", interaction.id)

    @tree.command(name="card", description="Post a job card")
    async def card(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("job 7: running", view=JobCard())

    @tree.command(name="twins", description="Post two buttons with one custom id")
    async def twins(interaction: discord.Interaction) -> None:
        view = discord.ui.View()
        view.add_item(discord.ui.Button(label="a", custom_id="same"))
        view.add_item(discord.ui.Button(label="b", custom_id="same"))
        outcomes.report("twins", await _outcome(lambda: interaction.response.send_message("x", view=view)))

    async def on_message(message: discord.Message) -> None:
        outcomes.report(f"message:{message.id}", message)

    bot.add_listener(on_message)

    async def setup_hook() -> None:
        target = discord.Object(guild.id)
        tree.copy_global_to(guild=target)
        await tree.sync(guild=target)

    bot.setup_hook = setup_hook  # type: ignore[method-assign]
    return bot


def message_intents(*, content: bool = False) -> discord.Intents:
    """Guilds + guild messages (to receive MESSAGE_CREATE), with or without Message Content."""
    intents = discord.Intents.none()
    intents.guilds = True
    intents.guild_messages = True
    intents.message_content = content
    return intents


@contextlib.asynccontextmanager
async def running_bot(
    double: DiscordDouble, outcomes: Outcomes | None = None, intents: discord.Intents | None = None
) -> AsyncIterator[commands.Bot]:
    """Log the test bot in, connect it, yield it once ready; close it cleanly after."""
    bot = build_bot(double.guilds[0], outcomes or Outcomes(), intents or message_intents())
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


async def _raw(
    double: DiscordDouble, method: str, path: str, *, json: Any = None
) -> tuple[int, Any, dict[str, str]]:
    """A request with the bot's token, outside discord.py (to send what discord.py would refuse to)."""
    headers = {"Authorization": f"Bot {double.token}"}
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, double.api_base + path, json=json, headers=headers) as response,
    ):
        body = await response.json(content_type=None) if response.status != 204 else None
        return response.status, body, dict(response.headers)


def _callback_path(handle: InteractionHandle) -> str:
    return f"/interactions/{handle.id}/{handle.token}/callback"


VALID_MODAL: dict[str, Any] = {
    "custom_id": "m",
    "title": "Title",
    "components": [{"type": 1, "components": [{"type": 4, "custom_id": "p", "style": 1, "label": "Prompt"}]}],
}


# ---------------------------------------------------------------------- modals


async def test_message_command_opens_a_classic_modal_and_its_submit_reaches_the_bot(
    double: DiscordDouble,
) -> None:
    outcomes = Outcomes()
    text = double.guilds[0].text_channel
    async with running_bot(double, outcomes):
        target = await double.post_user_message(text, "my photo")
        inter = await double.send_message_command("Describe", target)
        modal = await inter.wait_modal()
        assert (modal.title, [f.custom_id for f in modal.fields], modal.uses_labels) == (
            "Describe the video",
            ["prompt", "seconds"],
            False,
        )
        # What the Discord client would not let a member submit.
        for values, reason in [
            ({"prompt": "ab"}, "outside"),
            ({"prompt": "x" * 201}, "outside"),
            ({"seconds": "7"}, "required"),
            ({"prompt": "a cat", "seconds": "123"}, "outside"),
            ({"prompt": "a cat", "style": "noir"}, "no inputs"),
        ]:
            with pytest.raises(ValueError, match=reason):
                await double.submit_modal(inter, values)
        with pytest.raises(ValueError, match="shown to"):
            await double.submit_modal(inter, {"prompt": "a cat"}, user=UserSpec("mallory"))

        submit = await double.submit_modal(inter, {"prompt": "a cat surfing"})
        assert await outcomes.result("describe") == ("a cat surfing", "5")  # untouched input: its default
        original = await submit.wait_original()
        with pytest.raises(ValueError, match="already submitted"):
            await double.submit_modal(inter, {"prompt": "again"})

    assert (inter.response_type, submit.response_type) == (9, 4)
    assert original.content == "a cat surfing|5"
    assert original.ephemeral
    assert submit.type == 5
    assert (submit.modal_source, submit.submitted_modal, inter.modal_submits) == (inter, modal, [submit])
    assert submit.id != inter.id and submit.token != inter.token
    assert submit.payload["data"] == {
        "custom_id": modal.custom_id,
        "components": [
            {
                "type": 1,
                "id": 1,
                "components": [{"type": 4, "id": 2, "custom_id": "prompt", "value": "a cat surfing"}],
            },
            {"type": 1, "id": 3, "components": [{"type": 4, "id": 4, "custom_id": "seconds", "value": "5"}]},
        ],
    }
    assert "message" not in submit.payload  # opened from a command, not from a message's component
    assert double.internal_errors == []


async def test_label_form_modal_with_a_select_and_a_text_display(double: DiscordDouble) -> None:
    outcomes = Outcomes()
    async with running_bot(double, outcomes):
        target = await double.post_user_message(double.guilds[0].text_channel, "my photo")
        inter = await double.send_message_command("Describe with labels", target)
        modal = await inter.wait_modal()
        assert modal.uses_labels
        assert modal.field("prompt").label == "Prompt"
        assert modal.field("model").options == ("lite", "pro")
        with pytest.raises(ValueError, match="not among the options"):
            await double.submit_modal(inter, {"prompt": "waves", "model": ["ultra"]})
        with pytest.raises(ValueError, match="between 1 and 1"):
            await double.submit_modal(inter, {"prompt": "waves", "model": ["lite", "pro"]})
        with pytest.raises(TypeError, match="list of option values"):
            await double.submit_modal(inter, {"prompt": "waves", "model": "lite"})
        submit = await double.submit_modal(inter, {"prompt": "waves at dusk", "model": ["lite"]})
        assert await outcomes.result("labels") == ("waves at dusk", ["lite"])
        followup = await submit.wait_followup()

    assert followup.content == "waves at dusk|lite"
    components = submit.payload["data"]["components"]
    assert components[0] == {"type": 10, "id": 1}
    assert components[1] == {
        "type": 18,
        "id": 2,
        "component": {"type": 4, "id": 3, "custom_id": "prompt", "value": "waves at dusk"},
    }
    assert components[2] == {
        "type": 18,
        "id": 4,
        "component": {"type": 3, "id": 5, "custom_id": "model", "values": ["lite"]},
    }


async def test_an_untouched_select_submits_its_default_option(double: DiscordDouble) -> None:
    outcomes = Outcomes()
    async with running_bot(double, outcomes):
        target = await double.post_user_message(double.guilds[0].text_channel, "my photo")
        inter = await double.send_message_command("Describe with labels", target)
        await inter.wait_modal()
        await double.submit_modal(inter, {"prompt": "rain"})
        assert await outcomes.result("labels") == ("rain", ["pro"])


async def test_a_modal_after_a_defer_is_refused_with_40060(double: DiscordDouble) -> None:
    outcomes = Outcomes()
    async with running_bot(double, outcomes):
        inter = await double.send_slash_command("slowmodal")
        local = await outcomes.result("slowmodal")
        # discord.py refuses on its own; a client that tried anyway gets Discord's answer.
        status, body, _ = await _raw(
            double, "POST", _callback_path(inter), json={"type": 9, "data": VALID_MODAL}
        )
    assert isinstance(local, discord.InteractionResponded)
    assert (status, body["code"]) == (400, 40060)
    assert inter.response_type == 5
    assert inter.modal is None
    with pytest.raises(ValueError, match="no modal"):
        await double.submit_modal(inter, {"p": "x"})


async def test_an_invalid_modal_is_refused_with_discords_50035(double: DiscordDouble) -> None:
    outcomes = Outcomes()
    async with running_bot(double, outcomes):
        inter = await double.send_slash_command("badmodal")
        error = await outcomes.result("badmodal")
        with pytest.raises(CallbackRejectedError):
            await inter.wait_modal()
    assert isinstance(error, discord.HTTPException)
    assert (error.status, error.code) == (400, 50035)
    assert (
        inter.responses[0].response["errors"]["data"]["title"]["_errors"][0]["code"] == "BASE_TYPE_BAD_LENGTH"
    )
    assert not inter.acknowledged


async def test_a_modal_from_a_button_carries_the_message_and_can_update_it(double: DiscordDouble) -> None:
    async with running_bot(double):
        command = await double.send_slash_command("card")
        card = await command.wait_original()
        click = await double.send_component(card, "edit")
        modal = await click.wait_modal()
        submit = await double.submit_modal(click, {"prompt": "a fox"})
        await submit.wait_acknowledged()
    assert modal.title == "Edit prompt"
    assert submit.payload["message"]["id"] == str(card.id)
    assert submit.response_type == 7
    assert card.content == "prompt: a fox"


async def test_a_modal_submit_has_its_own_deadline() -> None:
    outcomes = Outcomes()
    async with DiscordDouble(ack_deadline_s=0.3) as double, running_bot(double, outcomes):
        target = await double.post_user_message(double.guilds[0].text_channel, "my photo")
        inter = await double.send_message_command("Describe", target)
        await inter.wait_modal()
        await inter.ack_deadline_passed()  # the member took their time typing
        submit = await double.submit_modal(inter, {"prompt": "slow typist"})
        await submit.wait_acknowledged()
    assert submit.acknowledged_after is not None and submit.acknowledged_after < 0.3


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ({**VALID_MODAL, "custom_id": "c" * 101}, ["data", "custom_id"]),
        ({**VALID_MODAL, "title": ""}, ["data", "title"]),
        ({**VALID_MODAL, "components": []}, ["data", "components"]),
        ({**VALID_MODAL, "components": VALID_MODAL["components"] * 6}, ["data", "components"]),
        (
            {
                **VALID_MODAL,
                "components": [{"type": 1, "components": [{"type": 2, "style": 1, "custom_id": "b"}]}],
            },
            ["data", "components", "0", "components", "0", "type"],
        ),
        (
            {
                **VALID_MODAL,
                "components": [{"type": 1, "components": [{"type": 4, "custom_id": "p", "style": 1}]}],
            },
            ["data", "components", "0", "components", "0", "label"],
        ),
        (
            {
                **VALID_MODAL,
                "components": [
                    {"type": 1, "components": [{"type": 4, "custom_id": "p", "style": 3, "label": "x" * 46}]}
                ],
            },
            ["data", "components", "0", "components", "0", "style"],
        ),
        (
            {
                **VALID_MODAL,
                "components": [
                    {
                        "type": 18,
                        "label": "L",
                        "component": {"type": 4, "custom_id": "p", "style": 1, "max_length": 4001},
                    }
                ],
            },
            ["data", "components", "0", "component", "max_length"],
        ),
        (
            {
                **VALID_MODAL,
                "components": [
                    {
                        "type": 18,
                        "label": "L",
                        "component": {"type": 4, "custom_id": "p", "style": 1, "placeholder": "p" * 101},
                    }
                ],
            },
            ["data", "components", "0", "component", "placeholder"],
        ),
        (
            {
                **VALID_MODAL,
                "components": [
                    {"type": 18, "label": "L" * 46, "component": {"type": 4, "custom_id": "p", "style": 1}},
                ],
            },
            ["data", "components", "0", "label"],
        ),
        (
            {
                **VALID_MODAL,
                "components": [
                    {"type": 18, "label": "L", "component": {"type": 4, "custom_id": "p", "style": 1}},
                    {"type": 18, "label": "M", "component": {"type": 4, "custom_id": "p", "style": 2}},
                ],
            },
            ["data", "components", "1", "component", "custom_id"],
        ),
        (
            {
                **VALID_MODAL,
                "components": [
                    {
                        "type": 18,
                        "label": "L",
                        "component": {
                            "type": 3,
                            "custom_id": "s",
                            "disabled": True,
                            "options": [{"label": "a", "value": "a"}],
                        },
                    }
                ],
            },
            ["data", "components", "0", "component", "disabled"],
        ),
    ],
    ids=[
        "custom-id",
        "title",
        "no-components",
        "six-components",
        "button-in-modal",
        "classic-needs-label",
        "style",
        "max-length",
        "placeholder",
        "label-text",
        "duplicate-custom-id",
        "disabled-select",
    ],
)
def test_modal_rules(data: dict[str, Any], path: list[str]) -> None:
    with pytest.raises(DiscordAPIError) as raised:
        validate_modal(data)
    assert (raised.value.status, raised.value.code) == (400, 50035)
    node: Any = raised.value.errors
    for key in path:
        node = node[key]
    assert node["_errors"]


def test_a_valid_modal_gets_discords_component_ids() -> None:
    modal = validate_modal(
        {
            **VALID_MODAL,
            "components": [
                {"type": 10, "content": "hello", "id": 2},
                {
                    "type": 18,
                    "label": "Prompt",
                    "component": {"type": 4, "custom_id": "p", "style": 2, "label": None},
                },
            ],
        }
    )
    assert [c["id"] for c in modal.components] == [2, 1]  # a taken id is skipped
    assert (modal.field("p").wrapper_id, modal.field("p").id) == (1, 3)


# ---------------------------------------------------------------------- replies, mentions, Message Content


async def test_a_reply_that_mentions_the_bot_without_the_intent(double: DiscordDouble) -> None:
    outcomes = Outcomes()
    text = double.guilds[0].text_channel
    photo = double.add_attachment(PNG_BYTES, "photo.png", ephemeral=False)
    async with running_bot(double, outcomes, message_intents(content=False)) as bot:
        original = await double.post_user_message(text, "my photo", attachments=[photo])
        seen_original: discord.Message = await outcomes.result(f"message:{original.id}")
        reply = await double.post_user_message(
            text, f"<@{double.bot_user.id}> animate this", reference=original
        )
        seen_reply: discord.Message = await outcomes.result(f"message:{reply.id}")

    # Another member's message without a mention: blanked for a bot without Message Content.
    assert (seen_original.content, seen_original.attachments) == ("", [])
    # The mention makes the reply itself readable...
    assert seen_reply.content == f"<@{double.bot_user.id}> animate this"
    assert bot.user in seen_reply.mentions
    assert seen_reply.type is discord.MessageType.reply
    assert isinstance(seen_reply.author, discord.Member)
    # ...but not the message it replies to.
    assert seen_reply.reference is not None and seen_reply.reference.message_id == original.id
    resolved = seen_reply.reference.resolved
    assert isinstance(resolved, discord.Message)
    assert (resolved.id, resolved.content, resolved.attachments) == (original.id, "", [])
    # The stored messages keep everything.
    assert reply.payload["message_reference"] == {
        "type": 0,
        "message_id": str(original.id),
        "channel_id": str(text.id),
        "guild_id": str(double.guilds[0].id),
    }
    assert reply.reference_id == original.id
    assert original.attachments[0].data == PNG_BYTES


async def test_a_reply_with_the_intent_granted_and_requested_shows_the_referenced_message() -> None:
    outcomes = Outcomes()
    async with (
        DiscordDouble(message_content_intent_granted=True) as double,
        running_bot(double, outcomes, message_intents(content=True)),
    ):
        text = double.guilds[0].text_channel
        photo = double.add_attachment(PNG_BYTES, "photo.png", ephemeral=False)
        original = await double.post_user_message(text, "my photo", attachments=[photo])
        reply = await double.post_user_message(
            text, f"<@{double.bot_user.id}> animate this", reference=original
        )
        seen_reply: discord.Message = await outcomes.result(f"message:{reply.id}")
    assert seen_reply.reference is not None
    resolved = seen_reply.reference.resolved
    assert isinstance(resolved, discord.Message)
    assert (resolved.content, [a.filename for a in resolved.attachments]) == ("my photo", ["photo.png"])


async def test_a_reply_to_the_bot_is_readable_only_while_it_pings_the_bot(double: DiscordDouble) -> None:
    outcomes = Outcomes()
    text = double.guilds[0].text_channel
    async with running_bot(double, outcomes) as bot:
        posted = await bot.get_channel(text.id).send("job 7 done")  # type: ignore[union-attr]
        pinging = await double.post_user_message(text, "make it longer", reference=double.message(posted.id))
        silent = await double.post_user_message(
            text, "make it longer", reference=double.message(posted.id), ping_replied_author=False
        )
        seen_pinging: discord.Message = await outcomes.result(f"message:{pinging.id}")
        seen_silent: discord.Message = await outcomes.result(f"message:{silent.id}")
    assert seen_pinging.content == "make it longer"
    assert seen_silent.content == ""
    for seen in (seen_pinging, seen_silent):
        # The bot's own message is always readable, also as a referenced message.
        assert seen.reference is not None and isinstance(seen.reference.resolved, discord.Message)
        assert seen.reference.resolved.content == "job 7 done"


async def test_message_create_needs_the_guild_messages_intent(double: DiscordDouble) -> None:
    intents = discord.Intents.none()
    intents.guilds = True
    async with running_bot(double, intents=intents):
        session = await double.wait_until_connected()
        await double.post_user_message(double.guilds[0].text_channel, f"<@{double.bot_user.id}> hello")
    # The double has dispatched the event (or not) by the time post_user_message returns.
    assert [event for event, _ in session.dispatched if event == "MESSAGE_CREATE"] == []


async def test_requesting_message_content_needs_it_granted() -> None:
    async with DiscordDouble() as double:
        with pytest.raises(discord.PrivilegedIntentsRequired):
            async with running_bot(double, intents=message_intents(content=True)):
                pass
        assert double.identifies == []
        double.message_content_intent_granted = True
        async with running_bot(double, intents=message_intents(content=True)) as bot:
            assert bot.is_ready()
        assert double.identifies[0]["intents"] & discord.Intents(message_content=True).value


@pytest.mark.parametrize("granted", [False, True], ids=["not-granted", "granted"])
async def test_rest_reads_blank_other_members_messages_unless_the_intent_is_granted(granted: bool) -> None:
    async with DiscordDouble(message_content_intent_granted=granted) as double:
        text = double.guilds[0].text_channel
        photo = double.add_attachment(PNG_BYTES, "photo.png", ephemeral=False)
        # The bot identifies without Message Content: REST follows the portal setting, not the session.
        async with running_bot(double) as bot:
            channel = bot.get_channel(text.id)
            assert isinstance(channel, discord.TextChannel)
            plain = await double.post_user_message(text, "my photo", attachments=[photo])
            mention = await double.post_user_message(text, f"<@{double.bot_user.id}> hi", reference=plain)
            own = await channel.send("job 7 done")
            fetched_plain = await channel.fetch_message(plain.id)
            fetched_mention = await channel.fetch_message(mention.id)
            history = {m.id: m async for m in channel.history(limit=10)}

    assert (fetched_plain.content, len(fetched_plain.attachments)) == (
        ("my photo", 1) if granted else ("", 0)
    )
    assert history[plain.id].content == ("my photo" if granted else "")
    assert fetched_mention.content == history[mention.id].content == f"<@{double.bot_user.id}> hi"
    assert history[own.id].content == "job 7 done"
    assert fetched_mention.reference is not None
    resolved = fetched_mention.reference.resolved
    assert isinstance(resolved, discord.Message)
    assert resolved.content == ("my photo" if granted else "")


async def test_a_member_can_post_an_image_embed_hosted_on_the_cdn(double: DiscordDouble) -> None:
    outcomes = Outcomes()
    photo = double.add_attachment(PNG_BYTES, "photo.png", ephemeral=False)
    async with running_bot(double, outcomes):
        posted = await double.post_user_message(
            double.guilds[0].text_channel,
            f"<@{double.bot_user.id}> {photo.url}",
            embeds=[double.image_embed(photo)],
        )
        seen: discord.Message = await outcomes.result(f"message:{posted.id}")
        [embed] = seen.embeds
        assert embed.type == "image"
        assert embed.thumbnail.url == photo.url
        async with aiohttp.ClientSession() as http, http.get(str(embed.thumbnail.url)) as response:
            assert await response.read() == PNG_BYTES
    assert double.image_embed(photo, link=False)["image"]["url"] == photo.url


async def test_a_bot_reply_pings_the_replied_author_and_needs_an_existing_message(
    double: DiscordDouble,
) -> None:
    text = double.guilds[0].text_channel
    async with running_bot(double) as bot:
        channel = bot.get_channel(text.id)
        assert isinstance(channel, discord.TextChannel)
        target = await double.post_user_message(text, "my photo")
        reply = await channel.send("on it", reference=channel.get_partial_message(target.id))
        quiet = await channel.send(
            "on it",
            reference=channel.get_partial_message(target.id),
            allowed_mentions=discord.AllowedMentions.none(),
        )
        gone = await channel.send("gone")
        await gone.delete()
        with pytest.raises(discord.HTTPException) as raised:
            await channel.send("x", reference=channel.get_partial_message(gone.id))
        loose = await channel.send(
            "x",
            reference=discord.MessageReference(
                message_id=gone.id, channel_id=text.id, fail_if_not_exists=False
            ),
        )
    stored = double.message(reply.id)
    assert stored.payload["type"] == 19
    assert stored.pinged_user_ids == [target.author_id]  # discord.py pings the replied-to author by default
    assert double.message(quiet.id).pinged_user_ids == []
    assert (raised.value.status, raised.value.code) == (400, 50035)
    assert (loose.type, loose.reference) == (discord.MessageType.default, None)


async def test_a_reply_needs_read_message_history() -> None:
    denied = discord.Permissions(read_message_history=True).value
    guild = GuildSpec(channels=[ChannelSpec("general", bot_denied_permissions=denied)])
    async with DiscordDouble(guilds=[guild]) as double:
        text = guild.text_channel
        target = await double.post_user_message(text, "my photo")
        path = f"/channels/{text.id}/messages"
        status, body, _ = await _raw(
            double,
            "POST",
            path,
            json={"content": "on it", "message_reference": {"message_id": str(target.id)}},
        )
        assert (status, body["code"]) == (403, 50013)
        assert (await _raw(double, "POST", path, json={"content": "plain"}))[0] == 200
        # Fetching one message needs it too.
        status, body, _ = await _raw(double, "GET", f"{path}/{target.id}")
        assert (status, body["code"]) == (403, 50001)


# ---------------------------------------------------------------------- reactions


async def test_reactions_are_recorded_validated_and_awaitable(double: DiscordDouble) -> None:
    text = double.guilds[0].text_channel
    async with running_bot(double) as bot:
        target = await double.post_user_message(text, "my photo")
        partial = bot.get_partial_messageable(text.id).get_partial_message(target.id)
        await partial.add_reaction("🎬")
        assert await double.wait_reaction(target, "🎬") == "🎬"
        await partial.add_reaction("🎬")  # idempotent
        await partial.add_reaction("✅")
        with pytest.raises(discord.HTTPException) as unknown:
            await partial.add_reaction("not-an-emoji")
        await partial.remove_reaction("🎬", discord.Object(double.bot_user.id))
        fetched = await bot.get_channel(text.id).fetch_message(target.id)  # type: ignore[union-attr]
    assert target.reactions == ["✅"]
    assert (unknown.value.status, unknown.value.code) == (400, 10014)
    assert [(str(r.emoji), r.me, r.count) for r in fetched.reactions] == [("✅", True, 1)]


async def test_reactions_need_add_reactions_and_read_message_history() -> None:
    for denied in (
        discord.Permissions(add_reactions=True),
        discord.Permissions(read_message_history=True),
    ):
        guild = GuildSpec(channels=[ChannelSpec("general", bot_denied_permissions=denied.value)])
        async with DiscordDouble(guilds=[guild]) as double, running_bot(double) as bot:
            target = await double.post_user_message(guild.text_channel, "my photo")
            partial = bot.get_partial_messageable(guild.text_channel.id).get_partial_message(target.id)
            with pytest.raises(discord.Forbidden) as raised:
                await partial.add_reaction("👍")
        assert raised.value.code == 50013
        assert target.reactions == []


async def test_reactions_have_their_own_stricter_bucket(double: DiscordDouble) -> None:
    text = double.guilds[0].text_channel
    async with running_bot(double) as bot:
        target = await double.post_user_message(text, "my photo")
        partial = bot.get_partial_messageable(text.id).get_partial_message(target.id)
        for emoji in ("1️⃣", "2️⃣", "3️⃣"):
            await partial.add_reaction(emoji)
        await bot.get_channel(text.id).send("messages are in another bucket")  # type: ignore[union-attr]
    puts = [r for r in double.requests if r.method == "PUT" and r.route and "/reactions/" in r.route]
    assert [r.status for r in puts] == [204] * 3
    assert {r.response_headers["X-RateLimit-Limit"] for r in puts} == {"1"}
    # discord.py waited out each 0.25 s window instead of running into a 429.
    assert all(later.at - earlier.at >= 0.24 for earlier, later in itertools.pairwise(puts))
    stats = double.rate_limit_stats()
    assert (stats.reaction_channels[text.id].accepted, stats.reaction_rate_limited) == (3, 0)
    assert stats.channel(text).accepted == 1
    assert target.reactions == ["1️⃣", "2️⃣", "3️⃣"]


async def test_a_reaction_burst_gets_a_429_from_the_reaction_bucket(double: DiscordDouble) -> None:
    text = double.guilds[0].text_channel
    target = await double.post_user_message(text, "my photo")
    path = f"/channels/{text.id}/messages/{target.id}/reactions/%F0%9F%91%8D/@me"
    first = await _raw(double, "PUT", path)
    second = await _raw(double, "PUT", path)
    assert first[0] == 204
    assert second[0] == 429
    assert 0 < second[1]["retry_after"] <= 0.25
    assert second[2]["X-RateLimit-Bucket"] == first[2]["X-RateLimit-Bucket"]
    assert double.rate_limit_stats().reaction_rate_limited == 1


# ---------------------------------------------------------------------- components


async def test_send_component_refuses_what_a_member_cannot_click(double: DiscordDouble) -> None:
    async with running_bot(double):
        command = await double.send_slash_command("card")
        card = await command.wait_original()
        for custom_id, values, error in [
            ("nope", None, "no button or select"),
            ("locked", None, "disabled"),
            ("edit", ["x"], "takes no values"),
            ("model", None, "pass the values"),
            ("model", ["ultra"], "not among the options"),
            ("model", ["lite", "pro"], "between 1 and 1"),
        ]:
            with pytest.raises(ValueError, match=error):
                await double.send_component(card, custom_id, values=values)
        with pytest.raises(ValueError, match="type 2, not 3"):
            await double.send_component(card, "edit", component_type=3)
        pick = await double.send_component(card, "model", values=["pro"])
        await pick.wait_acknowledged()
    assert pick.payload["data"] == {"custom_id": "model", "component_type": 3, "values": ["pro"]}
    assert card.content == "model: pro"
    # Discord numbers the components it stores.
    assert all(isinstance(row["id"], int) for row in card.components)
    assert len(double.interactions) == 2  # the refused clicks never reached the bot


async def test_duplicate_custom_ids_are_refused(double: DiscordDouble) -> None:
    outcomes = Outcomes()
    async with running_bot(double, outcomes):
        await double.send_slash_command("twins")
        error = await outcomes.result("twins")
    assert isinstance(error, discord.HTTPException)
    assert (error.status, error.code) == (400, 50035)
    assert "components.0.components.1.custom_id" in str(error)


def _button(**fields: Any) -> dict[str, Any]:
    return {"type": 2, "style": 1, "label": "Go", "custom_id": "go", **fields}


def _select(**fields: Any) -> dict[str, Any]:
    return {"type": 3, "custom_id": "pick", "options": [{"label": "A", "value": "a"}], **fields}


def _row(*components: dict[str, Any]) -> dict[str, Any]:
    return {"type": 1, "components": list(components)}


@pytest.mark.parametrize(
    ("components", "path"),
    [
        ([_row(_button(custom_id=f"b{n}")) for n in range(6)], ["components"]),
        ([_button()], ["components", "0", "type"]),
        ([_row(*(_button(custom_id=f"b{n}") for n in range(6)))], ["components", "0", "components"]),
        ([_row()], ["components", "0", "components"]),
        ([_row(_select(), _button())], ["components", "0", "components"]),
        ([_row(_button(style=7))], ["components", "0", "components", "0", "style"]),
        ([_row(_button(style=5))], ["components", "0", "components", "0", "url"]),
        (
            [_row(_button(style=5, url="https://example.com"))],
            ["components", "0", "components", "0", "custom_id"],
        ),
        ([_row(_button(custom_id=None))], ["components", "0", "components", "0", "custom_id"]),
        ([_row(_button(custom_id="c" * 101))], ["components", "0", "components", "0", "custom_id"]),
        ([_row(_button(label="l" * 81))], ["components", "0", "components", "0", "label"]),
        ([_row(_button()), _row(_button())], ["components", "1", "components", "0", "custom_id"]),
        ([_row(_select(custom_id="c" * 101))], ["components", "0", "components", "0", "custom_id"]),
        ([_row(_select(options=[]))], ["components", "0", "components", "0", "options"]),
        (
            [_row(_select(options=[{"label": str(n), "value": str(n)} for n in range(26)]))],
            ["components", "0", "components", "0", "options"],
        ),
        (
            [_row(_select(options=[{"label": "l" * 101, "value": "a"}]))],
            ["components", "0", "components", "0", "options", "0", "label"],
        ),
        (
            [_row(_select(options=[{"label": "a", "value": "v" * 101}]))],
            ["components", "0", "components", "0", "options", "0", "value"],
        ),
        (
            [_row(_select(options=[{"label": "a", "value": "a", "description": "d" * 101}]))],
            ["components", "0", "components", "0", "options", "0", "description"],
        ),
        ([_row(_select(max_values=26))], ["components", "0", "components", "0", "max_values"]),
        ([_row(_select(min_values=-1))], ["components", "0", "components", "0", "min_values"]),
        ([_row(_select(max_values=2))], ["components", "0", "components", "0", "max_values"]),
        (
            [_row({"type": 4, "custom_id": "t", "style": 1, "label": "T"})],
            ["components", "0", "components", "0", "type"],
        ),
    ],
    ids=[
        "six-rows",
        "not-a-row",
        "six-buttons",
        "empty-row",
        "select-and-button",
        "style",
        "link-without-url",
        "link-with-custom-id",
        "button-without-custom-id",
        "custom-id-length",
        "label-length",
        "duplicate-custom-id",
        "select-custom-id",
        "no-options",
        "26-options",
        "option-label",
        "option-value",
        "option-description",
        "max-values",
        "min-values",
        "max-values-over-options",
        "text-input-in-message",
    ],
)
def test_message_component_rules(components: list[dict[str, Any]], path: list[str]) -> None:
    with pytest.raises(DiscordAPIError) as raised:
        validate_message({"content": "x", "components": components}, [], upload_limit=1024)
    assert (raised.value.status, raised.value.code) == (400, 50035)
    node: Any = raised.value.errors
    for key in path:
        node = node[key]
    assert node["_errors"]


def test_components_at_the_limits_are_accepted() -> None:
    buttons = [_row(*(_button(custom_id=f"b{r}{n}", label="l" * 80) for n in range(5))) for r in range(4)]
    link = _button(style=5, url="https://example.com", custom_id=None)
    options = [{"label": "l" * 100, "value": f"{n}", "description": "d" * 100} for n in range(25)]
    select = _select(custom_id="c" * 100, options=options, min_values=0, max_values=25)
    validate_message({"components": [*buttons[:3], _row(link), _row(select)]}, [], upload_limit=1024)


async def test_an_edit_with_invalid_components_is_refused_and_changes_nothing(double: DiscordDouble) -> None:
    text = double.guilds[0].text_channel
    status, created, _ = await _raw(
        double,
        "POST",
        f"/channels/{text.id}/messages",
        json={"content": "card", "components": [_row(_button())]},
    )
    assert status == 200
    assert created["components"][0]["components"][0]["id"] == 2
    path = f"/channels/{text.id}/messages/{created['id']}"
    status, body, _ = await _raw(double, "PATCH", path, json={"components": [_row(_button(style=0))]})
    assert (status, body["code"]) == (400, 50035)
    assert double.message(int(created["id"])).components == created["components"]


# ---------------------------------------------------------------------- deleting


async def test_deleting_other_members_messages_needs_manage_messages(double: DiscordDouble) -> None:
    text = double.guilds[0].text_channel
    deleted: asyncio.Future[discord.RawMessageDeleteEvent] = asyncio.get_running_loop().create_future()
    async with running_bot(double) as bot:

        async def on_raw_message_delete(event: discord.RawMessageDeleteEvent) -> None:
            if not deleted.done():
                deleted.set_result(event)

        bot.add_listener(on_raw_message_delete)
        channel = bot.get_channel(text.id)
        assert isinstance(channel, discord.TextChannel)
        member_message = await double.post_user_message(text, "my photo")
        with pytest.raises(discord.Forbidden) as raised:
            await channel.get_partial_message(member_message.id).delete()
        own = await channel.send("job 7 done")
        await own.delete()
        event = await asyncio.wait_for(deleted, 5)
        history = [m.id async for m in channel.history(limit=10)]
    assert raised.value.code == 50013
    assert not member_message.deleted
    assert event.message_id == own.id
    assert history == [member_message.id]


async def test_a_bot_with_manage_messages_can_delete_a_members_message() -> None:
    guild = GuildSpec(
        bot_permissions=discord.Permissions(
            view_channel=True, read_message_history=True, manage_messages=True
        ).value
    )
    async with DiscordDouble(guilds=[guild]) as double, running_bot(double) as bot:
        member_message = await double.post_user_message(guild.text_channel, "spam")
        await (
            bot.get_partial_messageable(guild.text_channel.id).get_partial_message(member_message.id).delete()
        )
    assert member_message.deleted
    assert double.messages(guild.text_channel) == []


def test_stored_message_helpers() -> None:
    # Keeps the public StoredMessage helpers honest without a client.
    message = StoredMessage(
        payload={"id": "1", "channel_id": "2", "author": {"id": "3"}, "content": "", "embeds": []},
        attachments=[],
        allowed_mentions=None,
        source="user",
    )
    assert (message.author_id, message.reference_id, message.components) == (3, None, [])
