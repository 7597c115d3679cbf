"""Posts in the member's language, end to end through the Discord double: a Japanese member's status card,
private answer and result are in Japanese; a Spanish member's /history, /jobs and /job answers are in Spanish;
the Animate-image form opens in French for a French member; a mention reply uses the language the member last
used with the bot, else the server's preferred one."""

from __future__ import annotations

import pytest

from bot.domain.models import JobState
from bot.i18n import Language
from tests.doubles.discord_double import GuildSpec, UserSpec
from tests.doubles.media import make_image
from tests.e2e.conftest import eventually, job_in_state

HANA = UserSpec("hana", locale="ja")  # Discord in Japanese
KLAUS = UserSpec("klaus", locale="de")  # Discord in German; he will mention the bot after a command
NEWCOMER = UserSpec("newcomer", locale="ja")  # never used a command: the bot cannot know his language
ELENA = UserSpec("elena", locale="es-ES")  # Discord in Spanish
AMELIE = UserSpec("amelie", locale="fr")  # Discord in French


@pytest.fixture
def guilds() -> list[GuildSpec]:
    return [
        GuildSpec(members=[HANA, KLAUS, NEWCOMER, ELENA, AMELIE], locale="fr")
    ]  # a French-speaking server


def bot_messages(discord, channel_id):
    return [m for m in discord.messages(channel_id) if m.source == "bot"]


def labels(message) -> list[str]:
    return [
        component.get("label") or component.get("placeholder")
        for row in message.components
        for component in row.get("components", [])
    ]


async def mention(discord, text, *, user):
    return await discord.post_user_message(
        discord.guilds[0].text_channel, f"<@{discord.bot_user.id}> {text}".rstrip(), user=user
    )


async def reply_to(discord, message):
    def found():
        return next(
            (m for m in bot_messages(discord, message.channel_id) if m.reference_id == message.id), None
        )

    return await discord.wait_until(found, timeout=10)


async def test_a_japanese_members_card_and_result_are_in_japanese(harness, bot, discord, runcomfy):
    interaction = await discord.send_slash_command(
        "animate", {"image": harness.image(), "prompt": "桜が舞う"}, user=HANA
    )
    await interaction.wait_acknowledged()
    job = await job_in_state(bot, 1, JobState.DELIVERED)
    started = await interaction.wait_original(timeout=10)
    assert started.ephemeral
    assert started.content.startswith(
        f"動画 #1 の作成を開始しました。完成したら <#{job.thread_id}> に投稿されます："
    )

    card = discord.message(job.status_message_id)
    assert card.content == f"<@{HANA.id}> さんが動画をリクエストしました"
    assert card.embeds[0]["description"] == "桜が舞う"
    done = await discord.wait_until(lambda: card.embeds[0]["title"] == "動画 #1 · 完了", timeout=10)
    assert done
    fields = {field["name"]: field["value"] for field in card.embeds[0]["fields"]}
    assert {"ステータス", "モデル", "長さ", "開始", "終了"} <= set(fields)
    assert card.embeds[0]["footer"]["text"].startswith("ジョブ #1 · ")

    video = next(m for m in bot_messages(discord, job.thread_id) if m.attachments)
    assert video.content == f"<@{HANA.id}> 動画 #1 の準備ができました。"
    assert video.pinged_user_ids == [HANA.id]
    assert labels(video)[:3] == ["作り直す", "延長", "削除"]
    assert "バリエーション…" in labels(video)


async def test_a_mention_reply_uses_the_language_the_member_last_used(harness, bot, discord, runcomfy):
    used = await discord.send_slash_command("jobs", {}, user=KLAUS)
    await used.wait_original(timeout=10)
    await eventually(lambda: _known(bot, KLAUS.id, Language.GERMAN))
    stored = await bot.runtime.state_store.get(f"locale:{KLAUS.id}")
    assert stored == "de"  # durable: a restart keeps it

    asked = await mention(discord, "", user=KLAUS)
    reply = await reply_to(discord, asked)

    assert reply.content.startswith("Erwähnen Sie mich mit einer Beschreibung")
    assert reply.pinged_user_ids == [KLAUS.id]


async def test_an_unknown_members_mention_reply_uses_the_servers_language(harness, bot, discord, runcomfy):
    asked = await mention(discord, "the boats rock gently", user=NEWCOMER)
    reply = await reply_to(discord, asked)

    # No image, and the bot never heard from him: the server's preferred language (French), not English.
    assert reply.content == (
        "Quand vous me mentionnez, joignez une image à votre message ou répondez à un message qui en "
        "contient une."
    )
    assert runcomfy.submit_count == 0


async def _known(bot, user_id, language):
    return await bot.languages.of_member(user_id) is language


async def test_a_spanish_members_history_jobs_and_job_answers_are_in_spanish(harness, bot, discord, runcomfy):
    started = await discord.send_slash_command(
        "animate", {"image": harness.image(), "prompt": "las olas rompen"}, user=ELENA
    )
    await started.wait_original(timeout=20)
    await job_in_state(bot, 1, JobState.DELIVERED)

    history = await (await discord.send_slash_command("history", {}, user=ELENA)).wait_original(timeout=20)
    entry = history.embeds[0]
    assert entry["title"].startswith("Vídeo #1 · ")
    assert [field["name"] for field in entry["fields"]] == ["Opciones"]
    assert "Duración 5 s" in entry["fields"][0]["value"]
    assert labels(history) == ["◀ Más recientes", "Más antiguos ▶"]

    recent = await (await discord.send_slash_command("jobs", {}, user=ELENA)).wait_original(timeout=10)
    assert recent.embeds[0]["title"] == "Sus vídeos recientes"
    assert recent.embeds[0]["description"].startswith("**#1** · Listo · ")

    details = await (await discord.send_slash_command("job", {"id": 1}, user=ELENA)).wait_original(timeout=10)
    assert details.embeds[0]["title"] == "Vídeo #1 · Listo"
    assert details.embeds[0]["footer"]["text"].startswith("Trabajo #1 · ")
    assert labels(details)[:3] == ["Volver a generar", "Alargar", "Eliminar"]

    gone = await discord.send_slash_command("history", {}, user=HANA)  # nothing of hers: in Japanese
    assert (await gone.wait_original(timeout=10)).content == (
        "ここにはまだ完成した動画がありません。/animate で作成できます。"
    )


async def test_the_animate_image_form_opens_in_french_and_refuses_in_french(harness, bot, discord, runcomfy):
    channel = discord.guilds[0].text_channel
    hosted = discord.add_attachment(make_image(800, 600, fmt="JPEG"), "port.jpg")
    message = await discord.post_user_message(channel, "regardez", user=HANA, attachments=[hosted])

    menu = await discord.send_message_command("Animate image", message, user=AMELIE)
    form = await menu.wait_modal()

    assert form.title == "Animer l'image"
    assert [field.label for field in form.fields] == [
        "Que doit-il se passer dans la vidéo ?",
        "Secondes (facultatif)",
        "Autres options (facultatif)",
    ]
    submit = await discord.submit_modal(
        menu, {"prompt": "les bateaux tanguent", "duration": "dix"}, user=AMELIE
    )
    refused = await submit.wait_original(timeout=10)
    assert refused.ephemeral
    assert refused.content == "« dix » n'est pas un nombre de secondes : écrivez-le comme `8`."
    assert runcomfy.submit_count == 0
