"""How much memory members' files may take at once, so a burst of big photos waits instead of piling up.

Two budgets, always taken in this order (files, then decoding), so that no request can hold one while waiting
for the other in a cycle:

- `files`: the bytes of members' files held in memory, from the download until the request has been posted
  and submitted (the fitted copies, once an original is replaced). Reserved at the size Discord announced
  (the most allowed for that kind of file when it announced none), shrunk to what is left after fitting.
- `decoding`: the pixel buffers of the image being checked or recompressed, as estimated from its header
  (`bot.domain.images.prepare_memory_estimate` and `fit_memory_estimate`).

A quarter of the total goes to files and the rest to decoding: a single 36-megapixel PNG being recompressed
takes about 200 MB of pixels, while its file is under 30 MB.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.aio import MemoryBudget

_FILES_SHARE = 0.25


@dataclass(frozen=True)
class MediaMemory:
    """The process's budgets for members' files and for image decoding (see the module's docstring)."""

    files: MemoryBudget
    decoding: MemoryBudget

    @classmethod
    def within(cls, total_bytes: int | None) -> MediaMemory:
        """Budgets sharing `total_bytes` (None: no limit, every request at once)."""
        if total_bytes is None:
            return cls(files=MemoryBudget(None), decoding=MemoryBudget(None))
        files = max(1, int(total_bytes * _FILES_SHARE))
        return cls(files=MemoryBudget(files), decoding=MemoryBudget(max(1, total_bytes - files)))
