"""Small asyncio helpers shared by the layers."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable, Iterable
from typing import TypeVar

_T = TypeVar("_T")


async def gather_in_order(awaitables: Iterable[Awaitable[_T]]) -> list[_T]:
    """Run `awaitables` together; if any fail, raise the first failure in the given order.

    Unlike a plain `asyncio.gather`, which raises whichever failure comes first in time, the member is always
    told about the same file ("reference image 2") however the downloads or checks happened to race.
    """
    results = await asyncio.gather(*awaitables, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results  # type: ignore[return-value]


class MemoryBudget:
    """An allowance of bytes that memory-heavy work reserves before it starts, so that many requests at
    once wait their turn instead of all holding their bytes together.

    Reservations are granted first come, first served: a big one at the head of the queue is not overtaken
    by smaller ones behind it (which would starve it under a steady flow). One reservation never asks more
    than the whole allowance: a bigger amount is cut to the capacity, so it runs alone rather than never.
    A capacity of None grants everything at once (no budget).
    """

    def __init__(self, capacity: int | None) -> None:
        if capacity is not None and capacity <= 0:
            raise ValueError("a memory budget needs a positive capacity (or None for none)")
        self.capacity = capacity
        self.in_use = 0
        #: The most ever reserved at once: what the budget let through at its busiest.
        self.peak = 0
        self._waiters: collections.deque[tuple[int, asyncio.Future[None]]] = collections.deque()

    def reserve(self, amount: int) -> MemoryReservation:
        """A reservation of `amount` bytes, taken when entered (`async with`) and given back on exit."""
        granted = max(0, amount) if self.capacity is None else min(max(0, amount), self.capacity)
        return MemoryReservation(self, granted)

    async def _acquire(self, amount: int) -> None:
        if not self._waiters and self._fits(amount):
            self._take(amount)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (amount, future)
        self._waiters.append(entry)
        try:
            await future
        except BaseException:
            if future.done() and not future.cancelled():
                self._give_back(amount)  # granted as the wait was cancelled: hand it on
            else:
                self._waiters.remove(entry)
                self._grant_waiters()  # a big waiter leaving may unblock smaller ones behind it
            raise

    def _fits(self, amount: int) -> bool:
        return self.capacity is None or self.in_use + amount <= self.capacity

    def _take(self, amount: int) -> None:
        self.in_use += amount
        self.peak = max(self.peak, self.in_use)

    def _give_back(self, amount: int) -> None:
        self.in_use -= amount
        self._grant_waiters()

    def _grant_waiters(self) -> None:
        while self._waiters and self._fits(self._waiters[0][0]):
            amount, future = self._waiters.popleft()
            self._take(amount)
            future.set_result(None)


class MemoryReservation:
    """Bytes held in a `MemoryBudget` while a piece of work runs; see `MemoryBudget.reserve`."""

    def __init__(self, budget: MemoryBudget, amount: int) -> None:
        self._budget = budget
        self.amount = amount
        self._held = False

    async def __aenter__(self) -> MemoryReservation:
        await self._budget._acquire(self.amount)
        self._held = True
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.release()

    def shrink(self, amount: int) -> None:
        """Keep only `amount` bytes (the work now holds less, e.g. a file replaced by a smaller copy)."""
        if self._held and 0 <= amount < self.amount:
            freed, self.amount = self.amount - amount, amount
            self._budget._give_back(freed)

    def release(self) -> None:
        """Give every byte back (idempotent)."""
        if self._held:
            self._held = False
            self._budget._give_back(self.amount)
