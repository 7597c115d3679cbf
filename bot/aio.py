"""Small asyncio helpers shared by the layers."""

from __future__ import annotations

import asyncio
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
