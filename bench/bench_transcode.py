"""What the video processing costs: run `python bench/bench_transcode.py` (about two minutes on two cores).

On grainy synthetic footage (a drifting gradient under fresh random grain, which costs encoders more than
most real video; 24 fps, AAC tone), it measures the median wall time of:

- fit 720p:         `fit_video` of a 10 s 720p clip of about 12 MB into 5 MB;
- join 2x5 s:       `join_clips` of two 5 s 720p clips (the second without sound, so silence is written);
- last frame:       `last_frame_png` of the 10 s clip, keyframes every 2 s (it seeks near the end);
- last frame, 1 kf: the same of a 10 s clip with a keyframe only at the start (it must decode everything);
- fit image:        `fit_image` of a ~27 MB noise JPEG (5600x4200) into 10 MB.

and the peak memory of one run of each: the growth of the process's peak resident size (each case runs in
a fresh process, so FFmpeg's and x264's C buffers are counted, as is nothing left over from another case).
"""

from __future__ import annotations

import argparse
import io
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image
from proc_memory import proc_status_kib, reset_peak_rss_kib

REPO_ROOT = Path(__file__).resolve().parents[1]
CASES = ("fit 720p", "join 2x5 s", "last frame", "last frame, 1 kf", "fit image")
REPEATS = {"fit 720p": 3, "join 2x5 s": 3, "last frame": 10, "last frame, 1 kf": 10, "fit image": 3}
FIT_LIMIT = 5_000_000
IMAGE_LIMIT = 10_000_000


def write_samples(folder: Path) -> None:
    """The clips and the image, written once and shared by every child process."""
    from tests.doubles.media import make_noisy_mp4

    clip = {"width": 1280, "height": 720, "crf": 23}
    samples = {
        "long.mp4": make_noisy_mp4(10.0, audio=True, keyframe_interval=48, **clip),
        "long_one_keyframe.mp4": make_noisy_mp4(10.0, audio=True, **clip),
        "first.mp4": make_noisy_mp4(5.0, audio=True, **clip),
        "second.mp4": make_noisy_mp4(5.0, grain=10.0, **clip),
    }
    for name, data in samples.items():
        (folder / name).write_bytes(data)
    noise = Image.frombytes("RGB", (5600, 4200), random.Random(1).randbytes(5600 * 4200 * 3))
    noise.save(folder / "big.jpg", "JPEG", quality=92)


def operation(case: str, folder: Path, output: Path) -> Callable[[], str]:
    """The work a case measures; it returns a one-line description of its result."""
    # Imported here: the repository root is put on sys.path by main().
    from bot.domain.images import fit_image, prepare_image
    from bot.domain.transcode import fit_video, join_clips, last_frame_png

    if case == "fit 720p":

        def fit() -> str:
            fitted = fit_video(folder / "long.mp4", output, FIT_LIMIT)
            if fitted is None:
                return "no rendition fits"
            return (
                f"{fitted.size_bytes / 1e6:.2f} MB, {fitted.width}x{fitted.height}, "
                f"{fitted.video_bitrate / 1e6:.2f} Mbit/s, {fitted.passes} pass(es)"
            )

        return fit
    if case == "join 2x5 s":

        def join() -> str:
            joined = join_clips(folder / "first.mp4", folder / "second.mp4", output)
            return (
                f"{joined.size_bytes / 1e6:.2f} MB, {joined.duration_s:.3f} s, {joined.width}x{joined.height}"
            )

        return join
    if case.startswith("last frame"):
        source = folder / ("long.mp4" if case == "last frame" else "long_one_keyframe.mp4")

        def last_frame() -> str:
            png = last_frame_png(source)
            with Image.open(io.BytesIO(png)) as image:
                return f"PNG {len(png) / 1e6:.2f} MB, {image.width}x{image.height}"

        return last_frame
    prepared = prepare_image((folder / "big.jpg").read_bytes())

    def fit_picture() -> str:
        fitted = fit_image(prepared, IMAGE_LIMIT)
        return (
            f"{prepared.info.size_bytes / 1e6:.1f} MB -> {fitted.info.size_bytes / 1e6:.2f} MB, "
            + "; ".join(fitted.info.notes)
        )

    return fit_picture


def measure_one(folder: Path, case: str) -> dict[str, float | str]:
    """Run in a fresh process: peak memory of the first run, then the median time of several."""
    with tempfile.TemporaryDirectory(prefix="bench_transcode_out_") as out:
        run = operation(case, folder, Path(out) / "out.mp4")
        rss_before_kib = reset_peak_rss_kib()
        started = time.perf_counter()
        outcome = run()
        timings = [time.perf_counter() - started]
        peak_growth_kib = proc_status_kib("VmHWM") - rss_before_kib
        for _ in range(REPEATS[case] - 1):
            started = time.perf_counter()
            run()
            timings.append(time.perf_counter() - started)
    return {
        "median_s": statistics.median(timings),
        "rss_peak_mib": peak_growth_kib / 1024,
        "outcome": outcome,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--child", nargs=2, metavar=("FOLDER", "CASE"), help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    sys.path.insert(0, str(REPO_ROOT))
    if arguments.child:
        folder, case = arguments.child
        print(json.dumps(measure_one(Path(folder), case)))
        return

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_transcode_") as folder:
        write_samples(Path(folder))
        sizes = {path.name: path.stat().st_size for path in Path(folder).iterdir()}
        results: dict[str, dict[str, Any]] = {}
        for case in CASES:
            child = subprocess.run(
                [sys.executable, __file__, "--child", folder, case],
                check=True,
                capture_output=True,
                text=True,
            )
            results[case] = json.loads(child.stdout)

    print(
        "samples: " + ", ".join(f"{name} {size / 1e6:.1f} MB" for name, size in sorted(sizes.items())) + "\n"
    )
    print(f"{'case':17} {'runs':>4} {'median s':>9} {'peak RSS MiB':>13}  result")
    for case in CASES:
        result = results[case]
        print(
            f"{case:17} {REPEATS[case]:4} {result['median_s']:9.3f} {result['rss_peak_mib']:13.1f}  "
            f"{result['outcome']}"
        )
    print(
        "\nMB = 1,000,000 bytes, MiB = 1,048,576. Peak RSS: growth of the peak resident size during "
        f"the first run (C buffers included). Total {time.perf_counter() - started:.0f} s."
    )


if __name__ == "__main__":
    main()
