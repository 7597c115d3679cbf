"""StateStore: small facts by key, kept across restarts, on every backend."""

from __future__ import annotations

import asyncio


async def test_put_get_replace_and_delete(backend):
    state = (await backend.open()).state
    assert await state.get("commands_hash") is None
    await state.put("commands_hash", "abc")
    await state.put("commands_hash", "def")
    assert await state.get("commands_hash") == "def"
    await state.delete("commands_hash")
    await state.delete("never-there")
    assert await state.get("commands_hash") is None


async def test_items_are_the_keys_with_the_prefix_in_byte_order(backend):
    state = (await backend.open()).state
    # '%' and '_' are no wildcards; "Z" sorts before "a" byte-wise whatever the server's collation.
    for key in ("sync:b", "sync:a", "sync:Z", "sync%x", "syncx", "other:a", "sync:\u00e9"):
        await state.put(key, key.upper())
    assert await state.items("sync:") == [
        ("sync:Z", "SYNC:Z"),
        ("sync:a", "SYNC:A"),
        ("sync:b", "SYNC:B"),
        ("sync:\u00e9", "SYNC:\u00c9"),
    ]
    assert await state.items("sync%") == [("sync%x", "SYNC%X")]
    assert await state.items("none:") == []


async def test_values_survive_the_process(backend):
    first = await backend.open()
    await first.state.put("k", "v")
    await first.close()
    assert await (await backend.open()).state.get("k") == "v"


async def test_put_if_absent_stores_only_the_first_value(backend):
    state = (await backend.open()).state
    assert await state.put_if_absent("alert:day:50", "first") is True
    assert await state.put_if_absent("alert:day:50", "second") is False
    assert await state.get("alert:day:50") == "first"
    await state.delete("alert:day:50")
    assert await state.put_if_absent("alert:day:50", "again") is True


async def test_put_if_absent_has_exactly_one_winner_across_processes(backend):
    first, second = await backend.open(), await backend.open()
    # Twenty callers racing on two processes' connections for the same key, plus one other key.
    results = await asyncio.gather(
        *(
            process.state.put_if_absent("alert:month:80", f"caller {n}")
            for n, process in enumerate([first, second] * 10)
        ),
        first.state.put_if_absent("alert:month:100", "alone"),
    )
    assert results[:-1].count(True) == 1
    assert results[-1] is True
    winner = results.index(True)
    assert await second.state.get("alert:month:80") == f"caller {winner}"
