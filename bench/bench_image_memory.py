"""Memory of the bot when members send big photos at once: run `.venv/bin/python bench/bench_image_memory.py`
(about 3 minutes, most of it making the sample files once; they are kept in the system's temp folder).

The bot runs as `python -m bot.cli run` in a subprocess against the loopback Discord and RunComfy doubles
served by this process, with production settings (a server without boosts: a 10 MiB upload limit). Ten
members, each in their own channel, run /animate at the same moment with the same kind of big image:

- `jpeg`: a 5999x5999 photo-like JPEG of about 29 MB (just under the providers' 30 MB);
- `png`:  a 5999x5999 photo-like PNG with an alpha channel (RGBA), under 30 MB.

Both are over the upload limit, so besides being checked each is recompressed to fit it (the copy RunComfy
fetches): the heaviest path an image takes. For each kind it prints the bot's resident size just before the
burst (after one small warm-up request, so lazily loaded libraries are counted in the baseline), the peak
during the burst (VmHWM, reset just before it), the growth, and how long members waited for "Started video"
(median and slowest, from the command to the answer). It exits non-zero when the peak is at or over the
`--limit-mb` target (400 MB) or a member was not answered "Started video".

`--bot-src DIR` runs the bot of another checkout (`git archive <rev> | tar -x -C DIR`) to compare releases.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from PIL import Image  # noqa: E402

from tests.doubles.discord_double import ChannelSpec, DiscordDouble, GuildSpec, UserSpec  # noqa: E402
from tests.doubles.media import make_image  # noqa: E402
from tests.doubles.runcomfy import Lifecycle, RunComfyDouble  # noqa: E402
from tests.e2e.crash_harness import STARTED_RE, BotProcess, bot_environment  # noqa: E402

SIDE = 5999
JPEG_TARGET_BYTES = (28_500_000, 29_900_000)
SAMPLES_DIR = Path(tempfile.gettempdir()) / "seedance-bench-images"
MIB = 1024 * 1024


def photo_like(mode: str, grain: float) -> Image.Image:
    """Gradients with grain: compresses like a photo rather than like a flat colour or pure noise."""
    red = Image.linear_gradient("L").resize((SIDE, SIDE))
    green = Image.radial_gradient("L").resize((SIDE, SIDE))
    noise = Image.effect_noise((SIDE, SIDE), grain)
    bands = [red, Image.blend(green, noise, 0.25), Image.blend(red, noise, 0.5)]
    if mode == "RGBA":
        bands.append(green.point(lambda value: 128 + value // 2))  # a soft vignette of transparency
    return Image.merge(mode, bands)


def sample(kind: str) -> bytes:
    """The sample file of `kind`, made once and kept (making a 36-megapixel image takes a while)."""
    SAMPLES_DIR.mkdir(exist_ok=True)
    path = SAMPLES_DIR / f"big.{kind}"
    if not path.exists():
        buffer = io.BytesIO()
        if kind == "jpeg":
            image = photo_like("RGB", 48)
            low, high = 90, 100
            while low < high:  # the best quality whose file stays in the target band
                quality = (low + high + 1) // 2
                buffer = io.BytesIO()
                image.save(buffer, "JPEG", quality=quality)
                if buffer.tell() > JPEG_TARGET_BYTES[1]:
                    high = quality - 1
                else:
                    low = quality
            buffer = io.BytesIO()
            image.save(buffer, "JPEG", quality=low)
        else:
            photo_like("RGBA", 2).save(buffer, "PNG", compress_level=6)
        if buffer.tell() >= 30_000_000:
            raise SystemExit(f"the {kind} sample is {buffer.tell():,} bytes: over the 30 MB the bot accepts")
        path.write_bytes(buffer.getvalue())
    return path.read_bytes()


def proc_kib(pid: int, field: str) -> int:
    """A memory figure of process `pid` from /proc (KiB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise LookupError(field)


def reset_peak(pid: int) -> None:
    """Reset process `pid`'s peak resident size (VmHWM) to its current one (Linux 4.0+)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


@dataclass
class Burst:
    """What one burst of ten requests measured."""

    kind: str
    file_bytes: int
    before_kib: int
    peak_kib: int
    waits_s: list[float]
    answers: list[str]

    @property
    def started(self) -> int:
        return sum(1 for answer in self.answers if STARTED_RE.search(answer))


class MemoryRun:
    """The doubles, the bot process and the bursts."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.directory = Path(tempfile.mkdtemp(prefix="bench-image-memory-"))
        self.channels = [ChannelSpec(f"photos-{n}") for n in range(args.members)]
        self.members = [UserSpec(f"member-{n}") for n in range(args.members)]
        self.guild = GuildSpec("Photographers", channels=list(self.channels), members=list(self.members))
        self.discord = DiscordDouble(guilds=[self.guild])
        self.runcomfy = RunComfyDouble(api_keys=("bench-runcomfy-key",))

    def bot_process(self) -> BotProcess:
        environment = bot_environment(
            self.discord,
            self.runcomfy.base_url,
            self.directory / "bot.sqlite3",
            extra={
                "QUOTA_CONCURRENT_JOBS": "100",
                "RUNCOMFY_API_KEY": "bench-runcomfy-key",
                **dict(setting.split("=", 1) for setting in self.args.env),
            },
        )
        bot = BotProcess(environment, log_dir=self.directory, overrides={})
        if self.args.bot_src is not None:
            environment["PYTHONPATH"] = str(self.args.bot_src)
            bot.cwd = self.args.bot_src
        return bot

    async def request(self, n: int, data: bytes, filename: str, content_type: str) -> tuple[float, str]:
        """Member `n` runs /animate with `data`; returns the wait for the answer and the answer."""
        channel = self.channels[n]
        hosted = self.discord.add_attachment(data, filename, content_type, channel=channel)
        sent = time.monotonic()
        handle = await self.discord.send_slash_command(
            "animate",
            {"image": hosted, "prompt": f"member {n}: the light slowly moves across the room"},
            user=self.members[n],
            channel=channel,
        )
        try:
            original = await handle.wait_original(timeout=self.args.timeout)
        except TimeoutError:
            return float("inf"), "no answer"
        waited = time.monotonic() - sent
        answer = original.content or " ".join(
            str(embed.get("description", "")) for embed in original.embeds or ()
        )
        return waited, answer

    async def burst(self, bot: BotProcess, kind: str, data: bytes) -> Burst:
        assert bot.pid is not None
        filename, content_type = (f"photo.{kind}", f"image/{kind}")
        before = proc_kib(bot.pid, "VmRSS")
        reset_peak(bot.pid)
        results = await asyncio.gather(
            *(self.request(n, data, filename, content_type) for n in range(self.args.members))
        )
        return Burst(
            kind=kind,
            file_bytes=len(data),
            before_kib=before,
            peak_kib=proc_kib(bot.pid, "VmHWM"),
            waits_s=[wait for wait, _ in results],
            answers=[answer for _, answer in results],
        )

    async def run(self) -> int:
        samples = {kind: sample(kind) for kind in self.args.kinds}
        await self.discord.start()
        await self.runcomfy.start()
        for _ in range(self.args.members * (len(samples) + 1) + 1):
            self.runcomfy.script(Lifecycle.queued(1, hold=True))  # the jobs never need to finish
        bot = self.bot_process()
        try:
            await bot.start(self.discord)
            await bot.wait_ready(self.discord, timeout=60)
            warm_up = await self.request(0, make_image(640, 480), "small.png", "image/png")
            if not STARTED_RE.search(warm_up[1]):
                raise SystemExit(f"the warm-up request was not started: {warm_up[1]!r}\n{bot.tail()}")
            bursts = []
            for kind, data in samples.items():
                bursts.append(await self.burst(bot, kind, data))
            await bot.terminate(timeout=60)
        finally:
            if bot.alive:
                bot.kill("bench teardown")
                await bot.wait_exit()
            await self.runcomfy.close()
            await self.discord.close()
        return self.report(bursts)

    def report(self, bursts: list[Burst]) -> int:
        limit_kib = self.args.limit_mb * 1_000_000 // 1024
        failed = False
        source = self.args.bot_src or REPO_ROOT
        print(f"bench_image_memory: {self.args.members} members at once, bot from {source}")
        columns = ("file", "RSS before", "peak", "growth", "wait p50", "slowest")
        widths = (9, 11, 9, 9, 9, 8)
        print(
            f"{'image':<6} "
            + " ".join(f"{name:>{width}}" for name, width in zip(columns, widths, strict=True))
        )
        for burst in bursts:
            growth = burst.peak_kib - burst.before_kib
            print(
                f"{burst.kind:<6} {burst.file_bytes / 1e6:>6.1f} MB {burst.before_kib / 1024:>7.0f} MiB "
                f"{burst.peak_kib / 1024:>5.0f} MiB {growth / 1024:>5.0f} MiB "
                f"{statistics.median(burst.waits_s):>7.1f} s {max(burst.waits_s):>6.1f} s"
            )
            if burst.started != len(burst.answers):
                failed = True
                others = [answer for answer in burst.answers if not STARTED_RE.search(answer)]
                print(f"  {len(others)} member(s) not started, e.g. {others[0][:300]!r}")
            if burst.peak_kib >= limit_kib:
                failed = True
                print(f"  peak over the {self.args.limit_mb} MB target")
        return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--members", type=int, default=10, help="members sending at once (10)")
    parser.add_argument("--kinds", nargs="+", default=["jpeg", "png"], choices=["jpeg", "png"])
    parser.add_argument("--limit-mb", type=int, default=400, help="the peak RSS target, decimal MB (400)")
    parser.add_argument(
        "--env", action="append", default=[], metavar="NAME=VALUE", help="an extra setting for the bot"
    )
    parser.add_argument("--timeout", type=float, default=300.0, help="s to wait for each answer (300)")
    parser.add_argument(
        "--bot-src",
        type=lambda value: Path(value).resolve(),
        default=None,
        help="run the bot of another checkout (e.g. a `git archive` of a commit); default: this one",
    )
    os.environ.setdefault("PYTHONHASHSEED", "0")
    return asyncio.run(MemoryRun(parser.parse_args()).run())


if __name__ == "__main__":
    sys.exit(main())
