"""Quotas, moderators and the audit channel in the reader's language, end to end through the Discord double:
a French member over their daily credits is refused in French with the same numbers; moderators' answers
follow the moderator's locale (German, French); audit lines and budget alerts use the language a moderator set
for the server; that setting answers members the bot never heard from, but never switches a member's own card
out of their language."""

from __future__ import annotations

import re

import discord as discord_py
import pytest

from bot.domain.models import JobState
from bot.i18n import Language
from tests.doubles.discord_double import ChannelSpec, GuildSpec, UserSpec
from tests.e2e.conftest import job_in_state

GRETA = UserSpec("greta", locale="de")  # the owner, a moderator with Discord in German
MARGAUX = UserSpec("margaux", locale="fr", permissions=discord_py.Permissions(manage_guild=True).value)
AMELIE = UserSpec("amelie", locale="fr")  # a member with Discord in French
HANA = UserSpec("hana", locale="ja")  # a member with Discord in Japanese
BOB = UserSpec("bob")  # a member with Discord in English
NEWCOMER = UserSpec("newcomer", locale="ja")  # never used a command: the bot cannot know his language
AUDIT = ChannelSpec("spend-audit")


@pytest.fixture
def guilds() -> list[GuildSpec]:
    # Discord's preferred locale of the server is English: whatever else a post is in comes from elsewhere.
    return [
        GuildSpec(
            members=[GRETA, MARGAUX, AMELIE, HANA, BOB, NEWCOMER],
            channels=[ChannelSpec("general"), AUDIT],
            locale="en-US",
        )
    ]


async def animate(harness, user, **options):
    options.setdefault("image", harness.image())
    options.setdefault("prompt", "a lighthouse blinks")
    interaction = await harness.discord.send_slash_command("animate", options, user=user)
    return await interaction.wait_original(timeout=20)


async def admin(discord, command, options=None, user=GRETA):
    interaction = await discord.send_slash_command(f"seedance-admin {command}", options or {}, user=user)
    return await interaction.wait_original(timeout=10)


def fields(message) -> dict[str, str]:
    return {field["name"]: field["value"] for field in message.embeds[0]["fields"]}


def audit_lines(discord) -> list[str]:
    return [message.content for message in discord.messages(AUDIT)]


async def test_a_french_member_over_their_daily_credits_is_refused_in_french_with_the_same_numbers(
    harness, discord, runcomfy
):
    harness.overrides["quota_credits_per_day"] = 9  # a default video is 5 s at 480p: 5 credits
    await harness.start()
    assert (await animate(harness, AMELIE)).content.startswith("La vidéo #1 est lancée.")

    refused = await animate(harness, AMELIE)

    assert refused.ephemeral
    # The English says "You have used 5 of your 9 credits today; this video costs 5. Your daily credits
    # reset <t:…:R>.": the same numbers and the same timestamp, in a French sentence.
    assert re.fullmatch(
        r"Vous avez utilisé 5 de vos 9 crédits aujourd'hui ; cette vidéo en coûte 5\. "
        r"Vos crédits quotidiens se renouvellent <t:\d+:R>\.",
        refused.content,
    ), refused.content
    assert runcomfy.submit_count == 1

    quota = await (await discord.send_slash_command("quota", user=AMELIE)).wait_original(timeout=10)
    assert quota.embeds[0]["title"] == "Votre quota Seedance sur ce serveur"
    assert fields(quota)["Aujourd'hui"].startswith("4 crédits restants sur 9 · renouvellement <t:")


async def test_moderators_get_answers_in_their_own_language(harness, discord, runcomfy):
    await harness.start()
    await animate(harness, BOB)

    usage = await admin(discord, "usage", user=GRETA)  # a German moderator
    assert usage.embeds[0]["title"] == "Nutzung, letzte 30 Tage: 5 Credits"
    assert usage.embeds[0]["description"] == f"<@{BOB.id}> · Seedance 1.5 Pro · 1 Videos · 5 Credits"
    assert usage.embeds[0]["footer"]["text"].endswith("UTC · vollständige Tabelle im Anhang")
    # The CSV is data for spreadsheets: its header stays the same in every language.
    [table] = usage.attachments
    assert table.data.startswith(b"user_id,model,jobs,")

    saved = await admin(discord, "budget", {"credits_per_day": 100}, user=MARGAUX)  # a French moderator
    assert saved.embeds[0]["title"] == "Règles du serveur enregistrées"
    assert fields(saved)["Crédits du serveur par jour"] == "100"
    assert fields(saved)["Salon d'audit"] == "Aucun"

    both = await admin(discord, "limits reset", {"member": BOB}, user=MARGAUX)
    assert both.content == f"Limites de {BOB.username} supprimées : le niveau suivant s'applique de nouveau."

    # Asking for the setting (no option): the German moderator reads it in German.
    setting = await admin(discord, "language", user=GRETA)
    assert setting.content.startswith("Für diesen Server ist keine Sprache festgelegt")


async def test_audit_lines_and_budget_alerts_follow_the_language_a_moderator_set(
    harness, bot, discord, runcomfy
):
    await harness.start()
    await admin(discord, "audit", {"channel": AUDIT})
    await admin(discord, "budget", {"credits_per_day": 10})
    answer = await admin(discord, "language", {"language": "fr"})
    assert answer.content.startswith("Öffentliche Beiträge auf diesem Server sind auf Französisch")

    await animate(harness, BOB)  # an English member: the audit channel is the server's, not his
    await job_in_state(bot, 1, JobState.DELIVERED)
    lines = await discord.wait_until(lambda: len(audit_lines(discord)) >= 3 and audit_lines(discord), 20)

    alert, started, finished = sorted(lines, key=lambda line: ("⚠️" not in line, "Lancée" not in line))
    assert re.fullmatch(
        r"⚠️ Ce serveur a utilisé 50 % de son budget quotidien : 5 crédits sur 10 \(\d{4}-\d\d-\d\d, UTC\)\.",
        alert,
    ), alert
    assert started == f"▶️ Lancée · #1 · <@{BOB.id}> · Seedance 1.5 Pro · 5 s · 480p · 5 crédits"
    assert finished == (
        f"✅ Terminée · #1 · <@{BOB.id}> · Seedance 1.5 Pro · 5 s · 480p · 5 crédits · "
        "coût chez le fournisseur $0.1000"
    )


async def test_the_server_language_answers_newcomers_but_never_switches_a_members_own_card(
    harness, bot, discord, runcomfy
):
    await harness.start()
    await admin(discord, "language", {"language": "fr"})

    # Hana used /animate in Japanese: her card reads Japanese from its first post to its last edit.
    await animate(harness, HANA, prompt="桜が舞う")
    job = await job_in_state(bot, 1, JobState.DELIVERED)
    card = discord.message(job.status_message_id)
    assert card.content == f"<@{HANA.id}> さんが動画をリクエストしました"
    assert await discord.wait_until(lambda: card.embeds[0]["title"] == "動画 #1 · 完了", timeout=10)

    # A member the bot never heard from: the language the moderators set, not Discord's English.
    asked = await discord.post_user_message(
        discord.guilds[0].text_channel, f"<@{discord.bot_user.id}> the boats rock gently", user=NEWCOMER
    )
    reply = await discord.wait_until(
        lambda: next(
            (
                m
                for m in discord.messages(asked.channel_id)
                if m.source == "bot" and m.reference_id == asked.id
            ),
            None,
        ),
        timeout=10,
    )
    assert reply.content.startswith("Quand vous me mentionnez, joignez une image")

    # "Automatic" clears it: Discord's preferred locale of the server (English) again.
    cleared = await admin(discord, "language", {"language": "automatic"})
    assert "(Englisch (Vereinigte Staaten))" in cleared.content
    guild_id = discord.guilds[0].id
    assert await bot.languages.of_server(guild_id) is None
    assert await bot.post_language(None, guild_id) is Language.ENGLISH
