"""StateStore: small facts by key, kept across restarts, on every backend."""

from __future__ import annotations


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
