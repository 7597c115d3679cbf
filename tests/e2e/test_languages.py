"""Members hear refusals in their own language (the interaction's locale), with the same numbers, end to end
through the Discord double."""

from __future__ import annotations

import pytest

from bot.domain.models import ProviderName
from tests.doubles.discord_double import GuildSpec, UserSpec

FRENCH = UserSpec("amelie", locale="fr")
JAPANESE = UserSpec("haruto", locale="ja")
ENGLISH = UserSpec("alice")
SPANISH = UserSpec("lucia", locale="es-ES")


@pytest.fixture
def guilds() -> list[GuildSpec]:
    return [GuildSpec(members=[FRENCH, JAPANESE, ENGLISH, SPANISH])]


async def _animate(harness, discord, user: UserSpec, **options: object):
    interaction = await discord.send_slash_command("animate", options, user=user)
    await interaction.wait_acknowledged()
    return await interaction.wait_original(timeout=10)


async def test_a_french_member_hears_why_a_too_small_image_is_refused_in_french(
    harness, bot, discord, runcomfy
) -> None:
    reply = await _animate(harness, discord, FRENCH, image=harness.image(200, 200), prompt="un chat")
    assert reply.ephemeral
    assert "La première image fait 200×200 px" in reply.content
    assert "dépasser 300 px" in reply.content
    assert "width and height" not in reply.content
    assert runcomfy.requests_to("submit") == []


async def test_a_japanese_member_hears_why_an_option_is_refused_in_japanese(
    harness, bot, discord, runcomfy
) -> None:
    reply = await _animate(
        harness, discord, JAPANESE, image=harness.image(), prompt="猫", model="seedance-1.5-pro", duration=2
    )
    assert "Seedance 1.5 Proで作れる動画は4～12秒です。2 sはこの範囲外です。" in reply.content
    assert runcomfy.requests == []


async def test_an_english_member_still_hears_the_english_sentence(harness, bot, discord, runcomfy) -> None:
    reply = await _animate(harness, discord, ENGLISH, image=harness.image(200, 200), prompt="a cat")
    assert "The first frame is 200×200 px; width and height must each be more than 300 px." in reply.content


async def test_a_spanish_member_hears_in_spanish_that_video_needs_a_model_this_bot_lacks(
    harness, discord, novita, runcomfy
) -> None:
    # Novita alone: it serves no Seedance 2.0 Pro, the model /video needs.
    harness.novita = novita
    harness.use(ProviderName.NOVITA, only=True)
    await harness.start()
    interaction = await discord.send_slash_command(
        "video", {"prompt": "un gato baila", "image1": harness.image()}, user=SPANISH
    )
    await interaction.wait_acknowledged()
    reply = await interaction.wait_original(timeout=10)
    assert reply.ephemeral
    assert reply.content.startswith(
        "/video necesita Seedance 2.0 Pro, que no ofrece ninguno de los servicios de vídeo de este bot."
    ), reply.content
    assert "needs" not in reply.content
    assert novita.requests == [] and runcomfy.requests == []
