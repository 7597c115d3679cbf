"""gather_in_order: the member hears about the first bad file in their order, not the first to fail."""

from __future__ import annotations

import asyncio

import pytest

from bot.aio import gather_in_order


async def test_results_keep_their_order():
    async def value(n: int, wait: asyncio.Event | None = None) -> int:
        if wait is not None:
            await wait.wait()
        return n

    later = asyncio.Event()
    task = asyncio.ensure_future(gather_in_order([value(1, later), value(2)]))
    await asyncio.sleep(0)
    later.set()
    assert await task == [1, 2]


async def test_the_first_failure_in_order_wins_over_the_first_in_time():
    second_failed = asyncio.Event()

    async def first() -> None:
        await second_failed.wait()
        raise ValueError("image 1")

    async def second() -> None:
        second_failed.set()
        raise ValueError("image 2")

    with pytest.raises(ValueError, match="image 1"):
        await gather_in_order([first(), second()])
