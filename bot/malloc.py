"""Make glibc give large freed buffers back to the system, so a burst of big images does not leave the bot
holding its peak memory for good.

glibc serves an allocation of at least M_MMAP_THRESHOLD from its own mapping, unmapped again when freed. By
default that threshold adapts: after a 16 MB block is freed it rises to 16 MB, and later blocks of that size
come from the heap arenas, one per thread, which keep freed memory for reuse. Pillow decodes in worker
threads in blocks of up to 16 MB, so after ten big photos at once the bot stayed at 800 MB resident with
nothing in use (bench/bench_image_memory.py). Fixing the threshold at 1 MiB keeps it from adapting: pixel
buffers and large files are mapped and unmapped, at the cost of a system call and page faults each.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

_M_MMAP_THRESHOLD = -3  # mallopt's parameter number in glibc's malloc.h
MMAP_THRESHOLD_BYTES = 1024 * 1024


def return_large_buffers_to_the_system(threshold_bytes: int = MMAP_THRESHOLD_BYTES) -> bool:
    """Fix glibc's mmap threshold at `threshold_bytes`; True when done, False on another C library."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt), or no C library to load
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    applied = bool(mallopt(_M_MMAP_THRESHOLD, threshold_bytes))
    log.debug("glibc mmap threshold fixed at %d bytes: %s", threshold_bytes, applied)
    return applied
