"""Fixtures the provider client tests share; the helpers they build on are in `helpers.py`."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.providers.helpers import RecordingSleep, Script


@pytest.fixture
def script() -> Script:
    return Script()


@pytest.fixture
def sleep() -> RecordingSleep:
    return RecordingSleep()


@pytest.fixture
async def http(script: Script) -> AsyncIterator[httpx.AsyncClient]:
    """A client whose every request is answered by `script`."""
    async with httpx.AsyncClient(transport=httpx.MockTransport(script)) as client:
        yield client
