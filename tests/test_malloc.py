"""The bot asks glibc to give large freed buffers back to the system (see bot/malloc.py)."""

from __future__ import annotations

import ctypes.util
import platform

import pytest

from bot.malloc import return_large_buffers_to_the_system


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_glibc_takes_the_fixed_threshold() -> None:
    assert ctypes.util.find_library("c") is not None
    assert return_large_buffers_to_the_system() is True


def test_without_a_c_library_it_says_so_instead_of_failing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    assert return_large_buffers_to_the_system() is False
