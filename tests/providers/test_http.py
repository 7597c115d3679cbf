"""The shared HTTP core on its own: one exchange, retried reads, a submit sent at most once, redaction."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from bot.providers.errors import (
    ProviderError,
    ProviderInvalidRequestError,
    ProviderProtocolError,
    ProviderServerError,
    ProviderTransportError,
    SubmitOutcomeUnknownError,
)
from bot.providers.http import JsonApi, Reply, clip, data_uri, json_or_none
from bot.providers.retry import RetryPolicy
from tests.providers.helpers import RecordingSleep, Script

KEY = "core-key-91b7"


def parse_errors(
    status_code: int,
    payload: object,
    *,
    request_id: str | None,
    retry_after_s: float | None,
    redact: Callable[[str], str],
) -> ProviderError | None:
    """A minimal provider rule: 2xx is success, 5xx a server error, anything else an invalid request."""
    if 200 <= status_code < 300:
        return None
    kind = ProviderServerError if status_code >= 500 else ProviderInvalidRequestError
    text = payload.get("message", "") if isinstance(payload, dict) else ""
    return kind(
        f"Acme: {redact(str(text))}",
        status_code=status_code,
        request_id=request_id,
        retry_after_s=retry_after_s,
    )


@pytest.fixture
def api(http: httpx.AsyncClient, sleep: RecordingSleep) -> JsonApi:
    return make_api(http, sleep)


def make_api(client: httpx.AsyncClient, sleep: RecordingSleep, **options: Any) -> JsonApi:
    return JsonApi(
        client,
        base_url="https://acme.test/api/",
        api_key=SecretStr(KEY),
        provider_label="Acme",
        error_parser=parse_errors,
        sleep=sleep,
        rng=lambda: 1.0,
        **options,
    )


def receipt(reply: Reply) -> str:
    job = reply.payload.get("id")
    if not isinstance(job, str):
        raise ProviderProtocolError("no id")
    return job


async def test_an_exchange_sends_the_key_and_keeps_the_request_id(api: JsonApi, script: Script) -> None:
    script.answers.append(httpx.Response(200, json={"ok": True}, headers={"X-Request-Id": "r-1"}))
    reply = await api.exchange("GET", "/things", params={"a": "1", "b": ["x", "y"]})
    [request] = script.requests
    assert str(request.url) == "https://acme.test/api/things?a=1&b=x&b=y"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert reply == Reply(payload={"ok": True}, request_id="r-1")


async def test_the_request_id_may_come_from_another_header(script: Script, sleep: RecordingSleep) -> None:
    script.answers.append(httpx.Response(200, json={}, headers={"X-Tt-Logid": "log-7"}))
    async with httpx.AsyncClient(transport=httpx.MockTransport(script)) as client:
        api = make_api(client, sleep, request_id_headers=("x-request-id", "x-tt-logid"))
        assert (await api.exchange("GET", "/")).request_id == "log-7"


async def test_a_body_that_is_not_an_object_is_a_protocol_error(api: JsonApi, script: Script) -> None:
    script.answers.append(httpx.Response(200, json=[1, 2]))
    with pytest.raises(ProviderProtocolError, match="Acme answered HTTP 200"):
        await api.exchange("GET", "/")


async def test_reads_are_retried_with_backoff(api: JsonApi, script: Script, sleep: RecordingSleep) -> None:
    script.answers += [httpx.Response(502), httpx.ReadTimeout("slow"), httpx.Response(200, json={"n": 1})]
    assert (await api.read("GET", "/x")).payload == {"n": 1}
    assert sleep.delays == [0.5, 1.0]


async def test_a_per_call_error_parser_wins(api: JsonApi, script: Script) -> None:
    script.answers.append(httpx.Response(404, json={}))

    def everything_is_a_server_error(status_code: int, payload: object, **_: Any) -> ProviderError | None:
        return ProviderServerError("custom", status_code=status_code)

    with pytest.raises(ProviderServerError, match="custom"):
        await api.exchange("GET", "/", error_parser=everything_is_a_server_error)


@pytest.mark.parametrize(
    "answer",
    [httpx.Response(500, json={}), httpx.ReadTimeout("slow"), httpx.Response(200, json={"no": "id"})],
    ids=["5xx", "read timeout", "receipt unreadable"],
)
async def test_a_submit_that_may_have_arrived_is_never_resent(
    api: JsonApi, script: Script, sleep: RecordingSleep, answer: httpx.Response | Exception
) -> None:
    script.answers.append(answer)
    with pytest.raises(SubmitOutcomeUnknownError, match="may have reached Acme"):
        await api.submit("POST", "/jobs", {"p": 1}, receipt=receipt)
    assert len(script.requests) == 1
    assert sleep.delays == []


async def test_a_submit_refused_for_its_contents_is_not_resent(api: JsonApi, script: Script) -> None:
    script.answers.append(httpx.Response(400, json={"message": "bad"}))
    with pytest.raises(ProviderInvalidRequestError):
        await api.submit("POST", "/jobs", {"p": 1}, receipt=receipt)
    assert len(script.requests) == 1


async def test_a_submit_whose_connection_never_opened_is_resent(
    api: JsonApi, script: Script, sleep: RecordingSleep
) -> None:
    script.answers += [httpx.ConnectError("refused"), httpx.Response(200, json={"id": "j-1"})]
    assert await api.submit("POST", "/jobs", {"p": 1}, receipt=receipt) == "j-1"
    assert sleep.delays == [0.5]


async def test_the_key_is_scrubbed_from_transport_errors(script: Script, sleep: RecordingSleep) -> None:
    script.answers.append(httpx.ConnectError(f"proxy said Bearer {KEY}"))
    async with httpx.AsyncClient(transport=httpx.MockTransport(script)) as client:
        api = make_api(client, sleep, retry=RetryPolicy(max_attempts=1))
        with pytest.raises(ProviderTransportError) as raised:
            await api.read("GET", "/")
    assert KEY not in str(raised.value)
    assert "[redacted]" in str(raised.value)


async def test_an_unusable_base_url_is_a_plain_provider_error(sleep: RecordingSleep) -> None:
    async with httpx.AsyncClient() as client:
        api = JsonApi(
            client,
            base_url="ftp://acme.test",
            api_key=SecretStr(KEY),
            provider_label="Acme",
            error_parser=parse_errors,
        )
        with pytest.raises(ProviderError, match="base URL cannot be used") as raised:
            await api.read("GET", "/")
    assert type(raised.value) is ProviderError


async def test_an_empty_key_is_refused() -> None:
    async with httpx.AsyncClient() as client:
        with pytest.raises(ValueError, match="the Acme API key is empty"):
            JsonApi(
                client,
                base_url="https://acme.test",
                api_key=SecretStr(""),
                provider_label="Acme",
                error_parser=parse_errors,
            )


def test_helpers() -> None:
    assert (
        data_uri(b"\x00\xff", "image/png")
        == "data:image/png;base64," + base64.b64encode(b"\x00\xff").decode()
    )
    assert json_or_none(b"") is None
    assert json_or_none(b"<html>") is None
    assert json_or_none(b"\xff\xfe") is None
    assert json_or_none(b'{"a": 1}') == {"a": 1}
    assert clip("short") == "short"
    assert len(clip("x" * 1000)) == 500
