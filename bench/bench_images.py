"""How much header-first image validation saves: run `python bench/bench_images.py` (about 30 s).

For a large JPEG and PNG (5000x4000, photo-like content) it measures the median time of:

- decode:         `Image.open(...).load()`, the baseline a naive validator pays for every image;
- prepare ok:     `prepare_image` on the valid image (it must decode to prove the file is whole; a JPEG
                  that needs no change is decoded at 1/8 scale, which still reads all of its data);
- refused aspect: `prepare_image` on a 5000x1900 image (ratio 2.63), refused from the header;
- refused size:   `prepare_image` on a 6500x4000 image (over 6000 px), refused from the header;

and the peak memory of one run of each, two ways: the growth of the process's peak resident size (each case
runs in a fresh process; this includes Pillow's pixel buffers, which are allocated in C), and the peak of
Python's own heap as tracemalloc sees it (which misses those C buffers).
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image
from proc_memory import proc_status_kib, reset_peak_rss_kib

REPO_ROOT = Path(__file__).resolve().parents[1]
FORMATS = ("JPEG", "PNG")
CASES = ("decode", "prepare ok", "refused aspect", "refused size")
SIZES = {"prepare ok": (5000, 4000), "refused aspect": (5000, 1900), "refused size": (6500, 4000)}
REPEATS = {"decode": 5, "prepare ok": 5, "refused aspect": 200, "refused size": 200}


def photo_like(width: int, height: int) -> Image.Image:
    """Smooth gradients with grain: compresses like a photo rather than like a flat colour or pure noise."""
    red = Image.linear_gradient("L").resize((width, height))
    green = Image.radial_gradient("L").resize((width, height))
    grain = Image.effect_noise((width, height), 12)
    blue = Image.blend(red, grain, 0.5)
    return Image.merge("RGB", (red, Image.blend(green, grain, 0.25), blue))


def write_samples(folder: Path) -> None:
    for case, (width, height) in SIZES.items():
        image = photo_like(width, height)
        for fmt in FORMATS:
            options = {"quality": 90} if fmt == "JPEG" else {"compress_level": 6}
            image.save(folder / sample_name(fmt, case), fmt, **options)


def sample_name(fmt: str, case: str) -> str:
    size_case = "prepare ok" if case == "decode" else case
    return f"{size_case.replace(' ', '_')}.{fmt.lower()}"


def operation(case: str, data: bytes) -> Callable[[], object]:
    """The work a case measures, on `data` already in memory."""
    # Imported here: the repository root is put on sys.path by main().
    from bot.domain.errors import InvalidImageError
    from bot.domain.images import prepare_image

    if case == "decode":

        def decode() -> object:
            with Image.open(io.BytesIO(data)) as image:
                image.load()
                return image.size

        return decode

    def prepare() -> object:
        try:
            prepared = prepare_image(data)
        except InvalidImageError as error:
            return f"refused: {error.code}"
        return "accepted, unchanged" if prepared.data is data else "accepted, re-encoded"

    return prepare


def measure_one(folder: Path, fmt: str, case: str) -> dict[str, float | str]:
    """Run in a fresh process: peak memory of one run, then the median time of several."""
    data = (folder / sample_name(fmt, case)).read_bytes()
    run = operation(case, data)
    run()  # warm up: the first call imports Pillow's plugins, which is not the cost being measured
    rss_before_kib = reset_peak_rss_kib()
    tracemalloc.start()
    outcome = run()
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    peak_growth_kib = proc_status_kib("VmHWM") - rss_before_kib
    timings = []
    for _ in range(REPEATS[case]):
        started = time.perf_counter()
        run()
        timings.append(time.perf_counter() - started)
    return {
        "median_s": statistics.median(timings),
        "rss_peak_mib": peak_growth_kib / 1024,
        "traced_peak_mib": traced_peak / (1024 * 1024),
        "file_mib": len(data) / (1024 * 1024),
        "outcome": str(outcome),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--child", nargs=3, metavar=("FOLDER", "FORMAT", "CASE"), help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    sys.path.insert(0, str(REPO_ROOT))
    if arguments.child:
        folder, fmt, case = arguments.child
        print(json.dumps(measure_one(Path(folder), fmt, case)))
        return

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_images_") as folder:
        write_samples(Path(folder))
        results: dict[tuple[str, str], dict[str, Any]] = {}
        for fmt in FORMATS:
            for case in CASES:
                child = subprocess.run(
                    [sys.executable, __file__, "--child", folder, fmt, case],
                    check=True,
                    capture_output=True,
                    text=True,
                )
                results[fmt, case] = json.loads(child.stdout)

    print(
        f"{'format':6} {'case':15} {'file MB':>8} {'median ms':>10} {'decode ÷ this':>14} "
        f"{'peak RSS MB':>12} {'traced MB':>10}  outcome"
    )
    for fmt in FORMATS:
        baseline = results[fmt, "decode"]["median_s"]
        for case in CASES:
            result = results[fmt, case]
            print(
                f"{fmt:6} {case:15} {result['file_mib']:8.1f} {result['median_s'] * 1000:10.2f} "
                f"{baseline / result['median_s']:13.1f}x {result['rss_peak_mib']:12.1f} "
                f"{result['traced_peak_mib']:10.2f}  {result['outcome']}"
            )
    print(
        "\nMB = 1,048,576 bytes. Peak RSS: growth of the process's peak resident size during one run "
        "(includes Pillow's C pixel buffers);\n"
        "traced: peak of the Python heap under tracemalloc (misses them). "
        f"Total {time.perf_counter() - started:.0f} s."
    )


if __name__ == "__main__":
    main()
