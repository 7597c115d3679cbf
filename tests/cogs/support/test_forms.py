"""Open "Animate image" forms in the state store: taken once, by their member, and forgotten when stale."""

from __future__ import annotations

import time

import pytest

from bot.storage import open_stores
from cogs.support.forms import FORM_TTL_S, FormExpiredError, ImageForm, ImageForms


@pytest.fixture
async def forms(tmp_path):
    stores = await open_stores(tmp_path / "bot.sqlite3")
    yield ImageForms(stores.state), stores.state
    await stores.close()


def form(*, user_id=1, opened_at=None) -> ImageForm:
    at = time.time() if opened_at is None else opened_at
    return ImageForm("https://cdn.discordapp.com/a.png", "a.png", 1000, 1, 1, user_id, at)


async def test_a_form_is_taken_once_and_only_by_its_member(forms):
    store, _ = forms
    token = await store.remember(form(user_id=1))
    with pytest.raises(FormExpiredError):
        await store.take(token, user_id=2)  # another member's submit: refused, and the form is gone
    mine = await store.remember(form(user_id=1))
    assert (await store.take(mine, user_id=1)).name == "a.png"
    with pytest.raises(FormExpiredError):
        await store.take(mine, user_id=1)


async def test_forms_nobody_sent_are_forgotten_after_a_day(forms):
    store, state = forms
    await store.remember(form(opened_at=time.time() - FORM_TTL_S - 60))
    fresh = await store.remember(form())

    assert await store.forget_stale() == 1
    assert [key for key, _ in await state.items("form:")] == [f"form:{fresh}"]
