"""Settings: defaults, parsing, the .env file, errors naming the variable, and the hidden token."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.app import make_intents
from bot.settings import (
    DEFAULT_API_BASE,
    DEFAULT_GATEWAY_URL,
    PARSERS,
    Secret,
    Settings,
    SettingsError,
    load_settings,
)
from model.checkpoint import DEFAULT_CHECKPOINT
from model.vocab import UnknownPolicy

TOKEN = "MTA5.fake-token.Zx9_secret"


def load(**env: str) -> Settings:
    return load_settings(env, env_file=None)


def problems(**env: str) -> dict[str, str]:
    with pytest.raises(SettingsError) as caught:
        load(**env)
    return caught.value.problems


def test_defaults_without_any_variable():
    settings = load()
    assert settings.token is None and not settings.has_token
    assert settings.command_prefix == "!"
    assert settings.model_path == DEFAULT_CHECKPOINT
    assert settings.device == "auto"
    assert settings.api_base == DEFAULT_API_BASE
    assert settings.gateway_url == DEFAULT_GATEWAY_URL
    assert settings.shard_count is None
    assert settings.owner_ids == frozenset()
    assert settings.unknown_chars is UnknownPolicy.REPLACE
    assert settings.sync_commands is False
    assert settings.schedule_check_seconds == 30.0
    assert settings.max_schedules_per_server == 10


def test_every_value_parsed(tmp_path: Path, tiny_checkpoint: Path):
    settings = load(
        DISCORD_TOKEN=TOKEN,
        COMMAND_PREFIX="?",
        MODEL_PATH=str(tiny_checkpoint),
        DEVICE="CPU",
        DB_PATH=str(tmp_path / "q.db"),
        MAX_SEED_CHARS="50",
        MAX_QUOTE_CHARS="120",
        QUOTE_COOLDOWN_SECONDS="2.5",
        GENERATION_QUEUE_SIZE="4",
        GENERATION_BATCH_SIZE="3",
        GENERATION_BATCH_WAIT_MS="2.5",
        GENERATION_THREADS="3",
        OWNER_IDS="12, 34,56",
        SHARD_COUNT="2",
        LOG_LEVEL="debug",
        DISCORD_API_BASE="http://127.0.0.1:8080/api/v10/",
        DISCORD_GATEWAY_URL="ws://localhost:8080/gateway",
        UNKNOWN_CHARS="drop",
        SYNC_COMMANDS="yes",
        SCHEDULE_CHECK_SECONDS="0.05",
        MAX_SCHEDULES_PER_SERVER="3",
    )
    assert settings.token == Secret(TOKEN)
    assert settings.token.get() == TOKEN
    assert settings.command_prefix == "?"
    assert settings.model_path == tiny_checkpoint
    assert settings.device == "cpu"
    assert settings.db_path == tmp_path / "q.db"
    assert (settings.max_seed_chars, settings.max_quote_chars) == (50, 120)
    assert settings.cooldown_seconds == 2.5
    assert (settings.queue_size, settings.batch_size) == (4, 3)
    assert (settings.batch_wait_ms, settings.generation_threads) == (2.5, 3)
    assert settings.owner_ids == {12, 34, 56}
    assert settings.shard_count == 2
    assert settings.log_level == "DEBUG"
    assert settings.api_base == "http://127.0.0.1:8080/api/v10"  # trailing slash removed
    assert settings.gateway_url == "ws://localhost:8080/gateway"
    assert settings.unknown_chars is UnknownPolicy.DROP
    assert settings.sync_commands is True
    assert settings.schedule_check_seconds == 0.05
    assert settings.max_schedules_per_server == 3


def test_every_variable_has_a_parser_for_a_field():
    fields = set(Settings.__dataclass_fields__)
    assert {attr for attr, _ in PARSERS.values()} == fields


def test_env_file_read_and_environment_wins(tmp_path: Path):
    env_file = tmp_path / ".env"
    env_file.write_text("COMMAND_PREFIX=$\nMAX_SEED_CHARS=80\n# a comment\n", encoding="utf-8")
    settings = load_settings({"MAX_SEED_CHARS": "60"}, env_file=env_file)
    assert settings.command_prefix == "$"
    assert settings.max_seed_chars == 60


def test_empty_values_keep_defaults():
    assert load(DISCORD_TOKEN="", COMMAND_PREFIX="  ", SHARD_COUNT="").command_prefix == "!"


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("MAX_SEED_CHARS", "lots", "not a whole number"),
        ("MAX_SEED_CHARS", "0", "between 1 and 1000"),
        ("MAX_QUOTE_CHARS", "5000", "between 10 and 1900"),
        ("QUOTE_COOLDOWN_SECONDS", "nan", "finite"),
        ("QUOTE_COOLDOWN_SECONDS", "-1", "0 or more"),
        ("GENERATION_QUEUE_SIZE", "0", "between 1"),
        ("GENERATION_BATCH_SIZE", "1.5", "not a whole number"),
        ("GENERATION_BATCH_WAIT_MS", "soon", "milliseconds"),
        ("GENERATION_BATCH_WAIT_MS", "5000", "from 0 to 1000"),
        ("GENERATION_THREADS", "-1", "between 0"),
        ("OWNER_IDS", "12,bob", "'bob' is not a Discord user id"),
        ("SHARD_COUNT", "0", "between 1"),
        ("LOG_LEVEL", "loud", "DEBUG, INFO"),
        ("DEVICE", "tpu", "unknown device"),
        ("MODEL_PATH", "/nowhere/model.pt", "no model file"),
        ("UNKNOWN_CHARS", "ignore", "replace, drop, refuse"),
        ("SYNC_COMMANDS", "maybe", "true/false"),
        ("COMMAND_PREFIX", "a b", "space"),
        ("SCHEDULE_CHECK_SECONDS", "0", "from 0.01 to 600"),
        ("SCHEDULE_CHECK_SECONDS", "inf", "from 0.01 to 600"),
        ("SCHEDULE_CHECK_SECONDS", "often", "not a number of seconds"),
        ("MAX_SCHEDULES_PER_SERVER", "0", "between 1 and 1000"),
    ],
)
def test_wrong_value_names_the_variable(name: str, value: str, words: str):
    found = problems(**{name: value})
    assert list(found) == [name]
    assert words in found[name]
    assert name in str(SettingsError(found))


def test_all_problems_reported_at_once():
    found = problems(MAX_SEED_CHARS="x", LOG_LEVEL="loud")
    assert set(found) == {"MAX_SEED_CHARS", "LOG_LEVEL"}


def test_seed_limit_must_be_below_quote_limit():
    found = problems(MAX_SEED_CHARS="300", MAX_QUOTE_CHARS="300")
    assert "MAX_QUOTE_CHARS" in found["MAX_SEED_CHARS"]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DISCORD_API_BASE", "https://discord.example/api/v10"),
        ("DISCORD_API_BASE", "http://127.0.0.5:9000/api"),
        ("DISCORD_API_BASE", "http://[::1]:9000/api"),
        ("DISCORD_GATEWAY_URL", "wss://gateway.example/"),
        ("DISCORD_GATEWAY_URL", "ws://127.0.0.1:9000/"),
    ],
)
def test_secure_or_loopback_urls_accepted(name: str, value: str):
    load(**{name: value})


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("DISCORD_API_BASE", "http://discord.example/api", "only for a loopback"),
        ("DISCORD_API_BASE", "http://10.0.0.1/api", "only for a loopback"),
        ("DISCORD_API_BASE", "ftp://127.0.0.1/api", "must start with https://"),
        ("DISCORD_API_BASE", "wss://discord.example/api", "must start with https://"),
        ("DISCORD_API_BASE", "discord.com/api", "not a URL with a host"),
        ("DISCORD_GATEWAY_URL", "ws://gateway.example/", "only for a loopback"),
        ("DISCORD_GATEWAY_URL", "https://gateway.example/", "must start with wss://"),
        ("DISCORD_GATEWAY_URL", "ws://127.0.0.1.evil.example/", "only for a loopback"),
    ],
)
def test_insecure_remote_urls_refused(name: str, value: str, words: str):
    found = problems(**{name: value})
    assert words in found[name]


@pytest.mark.parametrize("bad", [f"Bot {TOKEN}", f"{TOKEN} extra", f"{TOKEN}\u00e9"])
def test_bad_token_refused_without_showing_it(bad: str):
    with pytest.raises(SettingsError) as caught:
        load(DISCORD_TOKEN=bad)
    assert "DISCORD_TOKEN" in caught.value.problems
    assert TOKEN not in str(caught.value)
    assert "fake-token" not in str(caught.value)


def test_token_never_in_repr_or_str():
    settings = load(DISCORD_TOKEN=TOKEN)
    for text in (
        repr(settings),
        str(settings),
        repr(settings.token),
        str(settings.token),
        f"{settings.token}",
    ):
        assert TOKEN not in text
    assert "********" in repr(settings.token)


def test_settings_are_frozen():
    settings = load()
    with pytest.raises(AttributeError):
        settings.command_prefix = "?"  # type: ignore[misc]


# --- per-server models and retraining ----------------------------------------------------------------


def test_retrain_defaults():
    settings = load()
    assert settings.models_dir == Path("models")
    assert settings.max_loaded_models == 8
    assert (settings.retrain_min_votes, settings.retrain_min_quotes) == (1, 20)
    assert (settings.retrain_minutes, settings.retrain_time_limit_minutes) == (10.0, 20.0)
    assert settings.retrain_max_concurrent == 1
    assert (settings.retrain_score_margin, settings.retrain_loop_target) == (0.1, 0.1)
    assert settings.retrain_base_corpus is None


def test_retrain_values_parsed(tmp_path: Path):
    corpus = tmp_path / "base.txt"
    corpus.write_text("To be.\n", encoding="utf-8")
    settings = load(
        MODELS_DIR=str(tmp_path / "models"),
        MAX_LOADED_MODELS="3",
        RETRAIN_MIN_VOTES="2",
        RETRAIN_MIN_QUOTES="5",
        RETRAIN_MINUTES="0.5",
        RETRAIN_TIME_LIMIT_MINUTES="2",
        RETRAIN_MAX_CONCURRENT="4",
        RETRAIN_SCORE_MARGIN="0",
        RETRAIN_LOOP_TARGET="0.25",
        RETRAIN_BASE_CORPUS=str(corpus),
    )
    assert settings.models_dir == tmp_path / "models"
    assert settings.max_loaded_models == 3
    assert (settings.retrain_min_votes, settings.retrain_min_quotes) == (2, 5)
    assert (settings.retrain_minutes, settings.retrain_time_limit_minutes) == (0.5, 2.0)
    assert settings.retrain_max_concurrent == 4
    assert (settings.retrain_score_margin, settings.retrain_loop_target) == (0.0, 0.25)
    assert settings.retrain_base_corpus == corpus


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("MAX_LOADED_MODELS", "0", "between 1 and 1000"),
        ("RETRAIN_MIN_VOTES", "0", "between 1"),
        ("RETRAIN_MIN_QUOTES", "1", "between 2"),
        ("RETRAIN_MINUTES", "0", "above 0"),
        ("RETRAIN_MINUTES", "soon", "not a number of minutes"),
        ("RETRAIN_TIME_LIMIT_MINUTES", "inf", "above 0"),
        ("RETRAIN_MAX_CONCURRENT", "100", "between 1 and 64"),
        ("RETRAIN_SCORE_MARGIN", "-0.1", "from 0 to 1"),
        ("RETRAIN_SCORE_MARGIN", "nan", "from 0 to 1"),
        ("RETRAIN_LOOP_TARGET", "1.5", "from 0 to 1"),
        ("RETRAIN_BASE_CORPUS", "/nowhere/base.txt", "no corpus file"),
    ],
)
def test_wrong_retrain_value_names_the_variable(name: str, value: str, words: str):
    found = problems(**{name: value})
    assert list(found) == [name]
    assert words in found[name]


def test_models_dir_must_not_be_a_file(tmp_path: Path):
    afile = tmp_path / "models"
    afile.write_text("", encoding="utf-8")
    assert "is a file" in problems(MODELS_DIR=str(afile))["MODELS_DIR"]


def test_time_limit_must_leave_room_for_the_training_budget():
    found = problems(RETRAIN_MINUTES="15", RETRAIN_TIME_LIMIT_MINUTES="15")
    assert (
        list(found) == ["RETRAIN_TIME_LIMIT_MINUTES"]
        and "RETRAIN_MINUTES (15)" in found["RETRAIN_TIME_LIMIT_MINUTES"]
    )


def test_the_message_content_intent_is_a_setting():
    assert load_settings({}, env_file=None).message_content_intent is True  # compatible default
    off = load_settings({"MESSAGE_CONTENT_INTENT": "false"}, env_file=None)
    assert off.message_content_intent is False
    assert make_intents(off.message_content_intent).message_content is False
    assert make_intents().message_content is True and make_intents().guild_reactions


def test_operations_defaults_and_values():
    settings = load()
    assert settings.log_format == "text" and settings.health_port is None  # no endpoint unless asked
    assert settings.health_host == "127.0.0.1" and settings.shutdown_timeout_seconds == 30
    settings = load(
        LOG_FORMAT="JSON", HEALTH_HOST="0.0.0.0", HEALTH_PORT="9100", SHUTDOWN_TIMEOUT_SECONDS="5.0"
    )
    assert (settings.log_format, settings.health_host, settings.health_port) == ("json", "0.0.0.0", 9100)
    assert settings.shutdown_timeout_seconds == 5
    assert load(HEALTH_HOST="metrics.internal").health_host == "metrics.internal"


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("LOG_FORMAT", "xml", "text, json"),
        ("HEALTH_PORT", "70000", "between 1 and 65535"),
        ("HEALTH_PORT", "http", "not a whole number"),
        ("HEALTH_HOST", "bad host", "not an IP address or a host name"),
        ("SHUTDOWN_TIMEOUT_SECONDS", "-1", "seconds"),
    ],
)
def test_wrong_operations_value_names_the_variable(name: str, value: str, words: str):
    assert words in problems(**{name: value})[name]


@pytest.mark.parametrize(
    ("raw", "ids"), [("0,1", (0, 1)), ("0-3", (0, 1, 2, 3)), ("5, 0-1", (0, 1, 5)), ("7", (7,))]
)
def test_shard_ids_lists_and_ranges(raw: str, ids: tuple[int, ...]):
    settings = load(SHARD_COUNT="8", SHARD_IDS=raw)
    assert settings.shard_ids == ids


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"SHARD_COUNT": "4", "SHARD_IDS": "0,4"}, "from 0 to 3"),
        ({"SHARD_COUNT": "4", "SHARD_IDS": "0-2,2"}, "more than once"),
        ({"SHARD_COUNT": "4", "SHARD_IDS": "3-1"}, "empty"),
        ({"SHARD_COUNT": "4", "SHARD_IDS": "one"}, "not a shard id"),
        ({"SHARD_IDS": "0,1"}, "needs SHARD_COUNT"),
    ],
)
def test_bad_shard_ids_refused(env: dict[str, str], words: str):
    assert words in problems(**env)["SHARD_IDS"]


def test_database_url_selects_postgresql_and_never_shows_its_password():
    url = "postgresql://bot:hunter2-secret@db.example:5432/quotes"
    settings = load(DATABASE_URL=url, DB_PATH="ignored.db")
    assert settings.store_target == url
    assert "hunter2" not in repr(settings) and "hunter2" not in str(settings.database_url)
    assert load().store_target == Path("quotebot.db")


def test_a_database_url_that_is_not_postgresql_is_refused_without_repeating_it():
    found = problems(DATABASE_URL="mysql://bot:hunter2-secret@db/quotes")
    assert "postgresql://" in found["DATABASE_URL"]
    assert "hunter2" not in found["DATABASE_URL"]
