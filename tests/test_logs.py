"""Log lines: JSON objects a shipper can parse, with the job's fields; library chatter kept quiet."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from bot.logs import NOISY_LOGGERS, configure_logging


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {name: logging.getLogger(name).level for name in NOISY_LOGGERS}
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    for name, old in levels.items():
        logging.getLogger(name).setLevel(old)


def test_json_lines_carry_time_level_logger_message_and_the_job_fields():
    stream = io.StringIO()
    configure_logging("INFO", "json", stream)
    log = logging.getLogger("bot.jobs.poller")
    log.info("job %s: delivered", 7, extra={"job_id": 7, "guild_id": 42, "provider": "novita"})
    log.info("plain line")
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("it broke\nacross lines")

    lines = stream.getvalue().splitlines()
    assert len(lines) == 3  # a multi-line message and a traceback stay inside one line each
    first, second, third = (json.loads(line) for line in lines)
    assert first["message"] == "job 7: delivered"
    assert (first["level"], first["logger"]) == ("INFO", "bot.jobs.poller")
    assert (first["job_id"], first["guild_id"], first["provider"]) == (7, 42, "novita")
    assert first["time"].endswith("+00:00")
    assert "job_id" not in second
    assert third["level"] == "ERROR" and "ValueError: boom" in third["exception"]


def test_library_chatter_is_hidden_at_info_and_shown_at_debug():
    stream = io.StringIO()
    configure_logging("INFO", "text", stream)
    logging.getLogger("discord.gateway").info("Shard ID None has connected to Gateway")
    logging.getLogger("httpx").info("HTTP Request: GET https://example.test")
    logging.getLogger("bot.app").info("ready: logged in")
    assert stream.getvalue().count("\n") == 1
    assert "bot.app: ready: logged in" in stream.getvalue()

    configure_logging("DEBUG", "text", stream)
    logging.getLogger("discord.gateway").info("Shard ID None has connected to Gateway")
    assert "connected to Gateway" in stream.getvalue()


def test_configuring_twice_does_not_duplicate_lines():
    stream = io.StringIO()
    configure_logging("INFO", "text", stream)
    configure_logging("INFO", "text", stream)
    logging.getLogger("bot").info("once")
    assert stream.getvalue().count("once") == 1
