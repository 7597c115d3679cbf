"""gather_in_order: a member hears of the first bad file in their order; MemoryBudget: heavy work waits."""

from __future__ import annotations

import asyncio

import pytest

from bot.aio import MemoryBudget, gather_in_order


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


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_budget_never_lets_more_than_its_capacity_run_at_once():
    budget = MemoryBudget(100)
    running = 0
    most_running = 0
    release = asyncio.Event()

    async def work(amount: int) -> None:
        nonlocal running, most_running
        async with budget.reserve(amount):
            running += amount
            most_running = max(most_running, running)
            await release.wait()
            running -= amount

    tasks = [asyncio.create_task(work(amount)) for amount in (60, 30, 30, 50, 10)]
    await _settle()
    assert most_running == 90  # 60 + 30; the second 30 waits (120 > 100), and the 10 behind it too
    release.set()
    await asyncio.gather(*tasks)
    assert budget.in_use == 0 and budget.peak <= 100


async def test_a_big_reservation_first_in_line_is_not_overtaken_by_small_ones():
    budget = MemoryBudget(100)
    order: list[int] = []
    first = budget.reserve(70)
    await first.__aenter__()

    async def work(amount: int) -> None:
        async with budget.reserve(amount):
            order.append(amount)

    big = asyncio.create_task(work(80))
    await _settle()
    small = asyncio.create_task(work(20))  # would fit now (70 + 20), but the 80 asked first
    await _settle()
    assert order == []
    first.release()
    await asyncio.gather(big, small)
    assert order == [80, 20]


async def test_more_than_the_capacity_runs_alone_instead_of_never():
    budget = MemoryBudget(100)
    async with budget.reserve(500) as reservation:
        assert reservation.amount == 100 and budget.in_use == 100
    assert budget.in_use == 0


async def test_shrinking_a_reservation_lets_waiting_work_start():
    budget = MemoryBudget(100)
    started = asyncio.Event()

    async def waiting() -> None:
        async with budget.reserve(60):
            started.set()

    async with budget.reserve(90) as file_bytes:
        task = asyncio.create_task(waiting())
        await _settle()
        assert not started.is_set()
        file_bytes.shrink(30)  # the 90 MB original was replaced by a 30 MB copy
        await asyncio.wait_for(started.wait(), 1)
    await task
    assert budget.in_use == 0


async def test_a_cancelled_wait_takes_nothing_and_unblocks_the_line():
    budget = MemoryBudget(100)
    holder = budget.reserve(50)
    await holder.__aenter__()
    big = asyncio.create_task(budget.reserve(80).__aenter__())
    await _settle()
    small_started = asyncio.Event()

    async def small() -> None:
        async with budget.reserve(40):
            small_started.set()

    small_task = asyncio.create_task(small())
    await _settle()
    assert not small_started.is_set()  # behind the 80
    big.cancel()
    await asyncio.wait_for(small_started.wait(), 1)  # the 80 left the line: 50 + 40 fits
    await small_task
    holder.release()
    assert budget.in_use == 0


async def test_no_capacity_means_no_waiting():
    budget = MemoryBudget(None)
    async with budget.reserve(10**12), budget.reserve(10**12):
        assert budget.in_use == 2 * 10**12
