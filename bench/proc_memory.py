"""Process memory figures for the benchmarks (Linux /proc)."""

from __future__ import annotations

from pathlib import Path


def proc_status_kib(field: str) -> int:
    """A memory figure of this process from /proc/self/status (Linux), in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise LookupError(field)


def reset_peak_rss_kib() -> int:
    """Reset the peak resident size (VmHWM) to the current one, which is returned (KiB).

    getrusage's ru_maxrss cannot be used: Linux carries the parent's peak across fork and exec.
    """
    Path("/proc/self/clear_refs").write_text("5")  # "5" resets VmHWM (Linux 4.0+)
    return proc_status_kib("VmRSS")
