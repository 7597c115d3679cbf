"""A burst of big photos waits its turn: members' files and image decoding stay within the memory budgets,
and every request still goes ahead."""

from __future__ import annotations

import asyncio
import io
import random

from PIL import Image

from bot.aio import MemoryBudget
from bot.domain.catalogue import RequestedOptions
from bot.domain.models import FIRST_FRAME, JobOrigin, JobState, Requester
from bot.jobs import service as service_module
from bot.jobs.memory import MediaMemory
from bot.jobs.service import InputFile, JobService, PostedRequest, VideoOrder

FILE_BYTES = 2_000_000  # what Discord announces for each member's photo


def photo(seed: int) -> bytes:
    """A 640x480 PNG of noise: about 900 KB, which no 100 KB upload limit holds as it is."""
    rng = random.Random(seed)
    image = Image.frombytes("RGB", (640, 480), bytes(rng.getrandbits(8) for _ in range(640 * 480 * 3)))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


class Tracker:
    def track(self, job) -> None:
        pass

    def poll_now(self, job_id: int) -> None:
        pass


class GatedPublisher:
    """Holds every post until the test opens the gate, as a slow or rate-limited channel would."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.posted = 0

    def check_uploads(self, uploads) -> None:
        pass

    async def post_request(self, job, prepared):
        await self.gate.wait()
        self.posted += 1
        return PostedRequest(status_message_id=None, urls={FIRST_FRAME.key: f"https://cdn.test/{job.id}.png"})

    async def open_thread(self, job) -> int | None:
        return None


def build(store, provider, catalogue, memory: MediaMemory) -> JobService:
    return JobService(
        store, {provider.name: provider}, catalogue, tracker=Tracker(), job_timeout_s=600, memory=memory
    )


class Fetches(list[int]):
    """Which members' files were fetched, in order; a test can await a count."""

    def __init__(self) -> None:
        super().__init__()
        self.changed = asyncio.Condition()

    async def record(self, n: int) -> None:
        async with self.changed:
            self.append(n)
            self.changed.notify_all()

    async def reach(self, count: int) -> None:
        async with self.changed:
            await asyncio.wait_for(self.changed.wait_for(lambda: len(self) >= count), 10)


def order(n: int, data: bytes, fetched: Fetches, *, upload_limit: int | None = None) -> VideoOrder:
    async def fetch(limit: int) -> bytes:
        await fetched.record(n)
        return data

    return VideoOrder(
        model="seedance-1.5-pro",
        options=RequestedOptions(prompt=f"member {n}: a fox blinks"),
        inputs=(InputFile(FIRST_FRAME, FILE_BYTES, fetch),),
        requester=Requester(origin=JobOrigin.DISCORD, user_id=100 + n, guild_id=1, channel_id=2),
        upload_limit_bytes=upload_limit,
    )


async def settle() -> None:
    for _ in range(50):
        await asyncio.sleep(0)


async def test_ten_big_files_at_once_are_fetched_only_as_the_files_budget_allows(store, provider, catalogue):
    memory = MediaMemory(files=MemoryBudget(3 * FILE_BYTES), decoding=MemoryBudget(None))
    service, publisher, fetched = build(store, provider, catalogue, memory), GatedPublisher(), Fetches()
    data = photo(1)
    starts = [asyncio.create_task(service.start(order(n, data, fetched), publisher)) for n in range(10)]
    await fetched.reach(3)
    await settle()
    assert len(fetched) == 3  # the other seven wait, holding nothing
    publisher.gate.set()
    jobs = await asyncio.wait_for(asyncio.gather(*starts), 30)
    assert all(job.state is JobState.QUEUED for job in jobs) and publisher.posted == 10
    assert memory.files.peak <= 3 * FILE_BYTES and memory.files.in_use == 0


async def test_a_file_replaced_by_its_small_copy_makes_room_for_the_next_member(store, provider, catalogue):
    memory = MediaMemory(files=MemoryBudget(FILE_BYTES + 200_000), decoding=MemoryBudget(None))
    service, publisher, fetched = build(store, provider, catalogue, memory), GatedPublisher(), Fetches()
    data = photo(2)
    first = asyncio.create_task(service.start(order(1, data, fetched, upload_limit=100_000), publisher))
    await fetched.reach(1)
    second = asyncio.create_task(service.start(order(2, data, fetched, upload_limit=100_000), publisher))
    # The first member's post is held, but only its copy of 100 KB or less is still in memory, which leaves
    # room for the second member's 2 MB: it goes ahead without waiting for the first post.
    await fetched.reach(2)
    assert fetched == [1, 2]
    assert memory.files.in_use <= FILE_BYTES + 100_000
    publisher.gate.set()
    await asyncio.wait_for(asyncio.gather(first, second), 30)


async def test_decoding_waits_for_the_decoding_budget(store, provider, catalogue, monkeypatch):
    memory = MediaMemory(files=MemoryBudget(None), decoding=MemoryBudget(1))  # one image at a time
    service, publisher = build(store, provider, catalogue, memory), GatedPublisher()
    publisher.gate.set()
    running, most = 0, 0
    real_prepare = service_module.prepare_image_async

    async def counting_prepare(*args, **kwargs):
        nonlocal running, most
        running += 1
        most = max(most, running)
        try:
            return await real_prepare(*args, **kwargs)  # in a thread: the others may try to start meanwhile
        finally:
            running -= 1

    monkeypatch.setattr(service_module, "prepare_image_async", counting_prepare)
    data = photo(3)
    jobs = await asyncio.wait_for(
        asyncio.gather(*(service.start(order(n, data, Fetches()), publisher) for n in range(6))), 30
    )
    assert most == 1 and len(jobs) == 6
