"""Logging set-up: readable lines by default, one JSON object per line for log shippers (`LOG_FORMAT=json`).

Log calls that concern a job pass `extra=job_fields(job)`, so a JSON line carries `job_id`, `guild_id` and
`provider` as fields a shipper can index, while the text line keeps them in its message.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Literal, TextIO

from bot.domain.models import Job

LogFormat = Literal["text", "json"]

#: The record attributes copied into a JSON line when a log call carries them (`extra={...}`).
CONTEXT_FIELDS: tuple[str, ...] = ("job_id", "guild_id", "provider")

#: Libraries that log every request or heartbeat at INFO: kept at WARNING unless LOG_LEVEL=DEBUG.
NOISY_LOGGERS: tuple[str, ...] = ("discord", "httpx", "httpcore", "aiosqlite", "aiohttp")

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def job_fields(job: Job) -> dict[str, object]:
    """The `extra` of a log call about `job`: its id, its server (None outside Discord) and its provider."""
    return {"job_id": job.id, "guild_id": job.requester.guild_id, "provider": job.provider.value}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, and the context fields the call carried."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON (a traceback, if any, is a string field, not extra lines)."""
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(level: str, log_format: LogFormat = "text", stream: TextIO | None = None) -> None:
    """Send every record at `level` or above to `stream` (stderr) as text or JSON lines.

    Replaces any handler installed before (a second call reconfigures, it does not duplicate lines).
    """
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    numeric = root.getEffectiveLevel()
    for name in NOISY_LOGGERS:
        # At DEBUG everything is wanted; otherwise their INFO chatter would drown the bot's own lines.
        logging.getLogger(name).setLevel(
            logging.NOTSET if numeric <= logging.DEBUG else max(logging.WARNING, numeric)
        )
