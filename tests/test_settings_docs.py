"""Every setting is documented where an owner looks: `.env.example` and README.md's configuration table.

A setting added to `bot.settings.Settings` without a line in both fails here, so the docs cannot drift.
"""

from __future__ import annotations

import re
from pathlib import Path

from bot.settings import Settings

REPO = Path(__file__).resolve().parents[1]
SETTINGS = sorted(name.upper() for name in Settings.model_fields)


def env_example_names() -> set[str]:
    """Names set (`NAME=`) or shown commented out (`# NAME=`) in .env.example."""
    text = (REPO / ".env.example").read_text(encoding="utf-8")
    return set(re.findall(r"^(?:#\s*)?([A-Z][A-Z0-9_]*)=", text, flags=re.MULTILINE))


def readme_table_names() -> set[str]:
    """Names in the first cell of README table rows; `…_VIDEO_FIELD` after a full name shares its stem."""
    names: set[str] = set()
    for line in (REPO / "README.md").read_text(encoding="utf-8").splitlines():
        if not line.startswith("| `"):
            continue
        first_cell = line.split("|")[1]
        full = re.findall(r"`([A-Z][A-Z0-9_]*)`", first_cell)
        names.update(full)
        for suffix in re.findall(r"`…(_[A-Z0-9_]+)`", first_cell):
            if full:  # RUNCOMFY_V2_IMAGE_FIELD + …_VIDEO_FIELD -> RUNCOMFY_V2_VIDEO_FIELD
                kept = full[0].split("_")[: -len(suffix.strip("_").split("_"))]
                names.add("_".join(kept) + suffix)
    return names


def test_every_setting_has_a_line_in_env_example():
    missing = [name for name in SETTINGS if name not in env_example_names()]
    assert missing == [], f"add a commented line to .env.example for: {', '.join(missing)}"


def test_every_setting_has_a_row_in_the_readmes_configuration_table():
    missing = [name for name in SETTINGS if name not in readme_table_names()]
    assert missing == [], f"add a row to README.md's configuration table for: {', '.join(missing)}"


def test_the_readme_table_reader_expands_the_shorthand_rows():
    # The test above is only as good as its reader: the grouped RunComfy row must count for all three.
    assert {
        "RUNCOMFY_V2_VIDEO_FIELD",
        "RUNCOMFY_V2_AUDIO_FIELD",
        "CALLBACK_LISTEN_PORT",
    } <= readme_table_names()
