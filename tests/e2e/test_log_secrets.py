"""The check every e2e test runs (tests/conftest.py): no log line carries the Discord token or a key."""

from __future__ import annotations

import logging

import pytest

from tests.conftest import e2e_secrets, secrets_in_logs
from tests.e2e.conftest import ARK_KEY, NOVITA_KEY, RUNCOMFY_KEY


def test_the_checker_flags_a_key_in_a_message_an_argument_or_a_traceback():
    def record(msg, *args, exc_info=None):
        return logging.LogRecord("bot.x", logging.DEBUG, __file__, 1, msg, args, exc_info)

    try:
        raise RuntimeError(f"Authorization: Bearer {NOVITA_KEY}")
    except RuntimeError as error:
        failure = (RuntimeError, error, error.__traceback__)
    records = [
        record("calling with key %s", RUNCOMFY_KEY),
        record(f"token={ARK_KEY}"),
        record("request failed", exc_info=failure),
        record("nothing secret here"),
    ]
    leaks = secrets_in_logs(records, [RUNCOMFY_KEY, NOVITA_KEY, ARK_KEY])
    assert len(leaks) == 3
    assert not any(RUNCOMFY_KEY in leak or ARK_KEY in leak for leak in leaks)  # the report masks them


@pytest.mark.leaks_secret_on_purpose
async def test_the_check_runs_on_e2e_tests_and_sees_the_bots_debug_lines(bot, discord, no_secrets_in_logs):
    recorder = no_secrets_in_logs
    assert recorder is not None, "the autouse check is not running on e2e tests"
    assert any(r.name.startswith(("bot", "cogs", "discord")) for r in recorder.records)
    secrets = e2e_secrets({"discord": discord})
    assert discord.token in secrets and RUNCOMFY_KEY in secrets

    logging.getLogger("bot.providers.runcomfy").debug("submitting with key %s", RUNCOMFY_KEY)
    logging.getLogger("discord.http").debug("Authorization: Bot %s", discord.token)

    leaks = secrets_in_logs(recorder.records, secrets)
    assert len(leaks) == 2
