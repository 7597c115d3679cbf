"""Settings: defaults, parsing, and one clear line for a bad value."""

from __future__ import annotations

import pytest

from bot.domain.models import ProviderName
from bot.settings import ConfigurationError, load_settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch, tmp_path):
    # No .env and no inherited variables leak into these tests.
    monkeypatch.chdir(tmp_path)
    for name in (
        "DISCORD_TOKEN",
        "RUNCOMFY_API_KEY",
        "POLL_INTERVAL_S",
        "DISCORD_CDN_HOSTS",
        "LOG_LEVEL",
        "SEEDANCE_PROVIDER",
        "RUNCOMFY_BASE_URL",
        "DATABASE_PATH",
        "JOB_TIMEOUT_S",
        "NOVITA_API_KEY",
        "ARK_API_KEY",
        "ARK_MODEL_IDS",
        "PUBLIC_CALLBACK_URL",
        "DISCORD_SHARD_COUNT",
        "DISCORD_SHARD_IDS",
    ):
        monkeypatch.delenv(name, raising=False)


def test_defaults_are_production_values():
    settings = load_settings()
    assert settings.discord_api_base_url == "https://discord.com/api/v10"
    assert settings.discord_gateway_url == "wss://gateway.discord.gg/"
    assert settings.runcomfy_base_url == "https://model-api.runcomfy.net"
    assert settings.seedance_provider is ProviderName.RUNCOMFY
    assert str(settings.database_path) == "data/seedance-bot.sqlite3"
    assert "cdn.discordapp.com" in settings.discord_cdn_hosts


def test_values_come_from_environment_and_dotenv(monkeypatch, tmp_path):
    (tmp_path / ".env").write_text("RUNCOMFY_API_KEY=from-dotenv\nPOLL_INTERVAL_S=1.5\n")
    monkeypatch.setenv("DISCORD_CDN_HOSTS", "cdn.example.test, Media.Example.test")
    monkeypatch.setenv("LOG_LEVEL", "debug")
    settings = load_settings()
    assert settings.require_provider_key().get_secret_value() == "from-dotenv"
    assert settings.poll_interval_s == 1.5
    assert settings.discord_cdn_hosts == ("cdn.example.test", "media.example.test")
    assert settings.log_level == "DEBUG"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("POLL_INTERVAL_S", "soon"),
        ("POLL_INTERVAL_S", "0"),
        ("SEEDANCE_PROVIDER", "sora"),
        ("RUNCOMFY_BASE_URL", "model-api.runcomfy.net"),
        ("JOB_TIMEOUT_S", "-5"),
    ],
)
def test_a_malformed_setting_is_one_line_naming_it(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith(f"{name}:")
    assert "\n" not in message


def test_missing_keys_are_named_when_needed():
    settings = load_settings()
    with pytest.raises(ConfigurationError, match="RUNCOMFY_API_KEY is not set"):
        settings.require_provider_key()
    with pytest.raises(ConfigurationError, match="DISCORD_TOKEN is not set"):
        settings.require_discord_token()


def test_secrets_are_not_echoed(monkeypatch):
    monkeypatch.setenv("RUNCOMFY_API_KEY", "super-secret-value")
    settings = load_settings()
    assert "super-secret-value" not in repr(settings)
    assert "super-secret-value" not in str(settings.runcomfy_api_key)


def test_credit_weights_are_configurable_per_model(monkeypatch):
    from bot.domain.catalogue import RequestedOptions
    from bot.domain.quota import credits_for
    from bot.runtime import build_catalogue

    monkeypatch.setenv("CREDIT_WEIGHTS", '{"seedance-2.0-pro": {"720p": 3}}')
    catalogue = build_catalogue(load_settings())
    two, one_five = catalogue.get("seedance-2.0-pro"), catalogue.get("seedance-1.5-pro")
    assert (
        credits_for(two, catalogue.validate(two.key, RequestedOptions(prompt="x", resolution="720p"))) == 15
    )
    assert credits_for(two, catalogue.validate(two.key, RequestedOptions(prompt="x", resolution="480p"))) == 5
    assert credits_for(one_five, catalogue.validate(one_five.key, RequestedOptions(prompt="x"))) == 5


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('{"sora": {"720p": 3}}', "no model called “sora”"),
        ('{"seedance-2.0-pro": {"4k": 3}}', "'480p'"),
        ('{"seedance-2.0-pro": {"720p": -1}}', "cannot be negative"),
        ("not json", "CREDIT_WEIGHTS"),
    ],
)
def test_bad_credit_weights_are_named(monkeypatch, value, message):
    from bot.runtime import build_catalogue

    monkeypatch.setenv("CREDIT_WEIGHTS", value)
    with pytest.raises(ConfigurationError, match=message) as caught:
        build_catalogue(load_settings())
    assert str(caught.value).startswith("CREDIT_WEIGHTS")


def test_each_provider_names_its_own_key(monkeypatch):
    for provider in ("novita", "ark"):
        monkeypatch.setenv("SEEDANCE_PROVIDER", provider)
        with pytest.raises(ConfigurationError, match=f"{provider.upper()}_API_KEY is not set"):
            load_settings().require_provider_key()


def test_every_provider_with_a_key_is_configured_the_default_first(monkeypatch):
    monkeypatch.setenv("SEEDANCE_PROVIDER", "ark")
    monkeypatch.setenv("ARK_API_KEY", "a")
    monkeypatch.setenv("RUNCOMFY_API_KEY", "r")
    monkeypatch.setenv("NOVITA_API_KEY", "")  # set but empty: not configured
    settings = load_settings()
    assert [p.value for p in settings.configured_providers] == ["ark", "runcomfy"]


def test_model_ids_are_json_and_a_wrong_model_is_named(monkeypatch):
    from bot.runtime import build_catalogue

    monkeypatch.setenv("SEEDANCE_PROVIDER", "ark")
    monkeypatch.setenv("ARK_API_KEY", "a")
    monkeypatch.setenv("ARK_MODEL_IDS", '{"seedance-1.5-pro": "doubao-seedance-1-5-pro-251215"}')
    catalogue = build_catalogue(load_settings())
    assert catalogue.get("seedance-1.5-pro").provider_model_id == "doubao-seedance-1-5-pro-251215"
    monkeypatch.setenv("ARK_MODEL_IDS", '{"seedance-9": "x"}')
    with pytest.raises(ConfigurationError, match="ARK_MODEL_IDS: ark does not serve “seedance-9”"):
        build_catalogue(load_settings())


def test_the_callback_url_must_be_http(monkeypatch):
    monkeypatch.setenv("PUBLIC_CALLBACK_URL", "bot.example.com/cb")
    with pytest.raises(ConfigurationError, match="PUBLIC_CALLBACK_URL"):
        load_settings()
    monkeypatch.setenv("PUBLIC_CALLBACK_URL", "")
    assert load_settings().public_callback_url is None


def test_the_http_listener_is_loopback_8080_and_the_callback_names_still_work(monkeypatch):
    settings = load_settings()
    assert (settings.http_listen_host, settings.http_listen_port) == ("127.0.0.1", 8080)
    # Owners who set the callback endpoint's variables before it shared the listener keep their address.
    monkeypatch.setenv("CALLBACK_LISTEN_HOST", "0.0.0.0")
    monkeypatch.setenv("CALLBACK_LISTEN_PORT", "9000")
    settings = load_settings()
    assert (settings.http_listen_host, settings.http_listen_port) == ("0.0.0.0", 9000)
    monkeypatch.setenv("HTTP_LISTEN_PORT", "9100")  # the current name wins when both are set
    assert load_settings().http_listen_port == 9100
    monkeypatch.setenv("HTTP_LISTEN_PORT", "70000")
    with pytest.raises(ConfigurationError, match="HTTP_LISTEN_PORT"):
        load_settings()


def test_shards_are_unset_by_default_and_ids_default_to_every_shard(monkeypatch):
    assert load_settings().discord_shards is None
    monkeypatch.setenv("DISCORD_SHARD_COUNT", "3")
    assert load_settings().discord_shards == (0, 1, 2)
    monkeypatch.setenv("DISCORD_SHARD_IDS", " 2, 0 ")
    settings = load_settings()
    assert (settings.discord_shard_count, settings.discord_shard_ids) == (3, (2, 0))
    assert settings.discord_shards == (2, 0)


@pytest.mark.parametrize(
    ("count", "ids", "message"),
    [
        (None, "0", "DISCORD_SHARD_IDS: Value error, needs DISCORD_SHARD_COUNT"),
        ("2", "0,2", "DISCORD_SHARD_IDS: Value error, shard ids must be from 0 to 1"),
        ("2", "-1", "DISCORD_SHARD_IDS: Value error, shard ids must be from 0 to 1"),
        ("2", "1,1", "DISCORD_SHARD_IDS: Value error, names a shard twice"),
        ("2", ",", "DISCORD_SHARD_IDS: Input should be a valid integer"),
        ("2", "zero", "DISCORD_SHARD_IDS: Input should be a valid integer"),
        ("0", None, "DISCORD_SHARD_COUNT: Input should be greater than or equal to 1"),
    ],
)
def test_bad_shard_settings_are_one_line(monkeypatch, count, ids, message):
    if count is not None:
        monkeypatch.setenv("DISCORD_SHARD_COUNT", count)
    if ids is not None:
        monkeypatch.setenv("DISCORD_SHARD_IDS", ids)
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)
