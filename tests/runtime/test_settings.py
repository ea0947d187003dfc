"""Settings from FORMFLOW_* variables, refusing insecure defaults in production."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.settings import DEVELOPMENT_SECRET_KEY, Settings, SettingsError, load_settings

SECRET = "s" * 40


def test_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings({})
    assert settings.data_dir == tmp_path / "data"
    assert settings.database_url == f"sqlite:///{tmp_path / 'data' / 'formflow.db'}"
    assert settings.database_url.startswith("sqlite:////")  # an absolute path
    assert settings.is_sqlite
    assert settings.environment == "development"
    assert settings.statement_timeout_ms == 15000
    assert settings.max_page_size == 500
    assert settings.max_body_bytes == 10 * 1024 * 1024
    assert settings.secret_key.get_secret_value() == DEVELOPMENT_SECRET_KEY
    assert DEVELOPMENT_SECRET_KEY not in repr(settings)


def test_values_come_from_the_given_mapping_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FORMFLOW_MAX_PAGE_SIZE", "7")
    assert load_settings({}).max_page_size == 500
    assert load_settings().max_page_size == 7
    settings = load_settings(
        {
            "FORMFLOW_DATA_DIR": str(tmp_path / "var"),
            "formflow_max_page_size": "50",
            "FORMFLOW_STATEMENT_TIMEOUT_MS": "0",
            "FORMFLOW_ENVIRONMENT": "Development",
            "FORMFLOW_SECRET_KEY": "",  # empty counts as unset
            "OTHER": "ignored",
        }
    )
    assert settings.database_url == f"sqlite:///{tmp_path / 'var' / 'formflow.db'}"
    assert settings.max_page_size == 50
    assert settings.statement_timeout_ms == 0
    assert settings.environment == "development"


def test_explicit_database_url_wins_over_data_dir(tmp_path: Path) -> None:
    url = "postgresql+psycopg://app:pw@db.example/formflow"
    settings = load_settings({"FORMFLOW_DATA_DIR": str(tmp_path), "FORMFLOW_DATABASE_URL": url})
    assert settings.database_url == url
    assert not settings.is_sqlite


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"FORMFLOW_ENVIRONMENT": "production"}, "FORMFLOW_SECRET_KEY must be set"),
        (
            {"FORMFLOW_ENVIRONMENT": "production", "FORMFLOW_SECRET_KEY": DEVELOPMENT_SECRET_KEY},
            "FORMFLOW_SECRET_KEY must be set",
        ),
        (
            {"FORMFLOW_ENVIRONMENT": "production", "FORMFLOW_SECRET_KEY": "x" * 31},
            "too short (31 characters)",
        ),
        ({"FORMFLOW_ENVIRONMENT": "staging"}, "FORMFLOW_ENVIRONMENT:"),
        ({"FORMFLOW_MAX_PAGE_SIZE": "0"}, "FORMFLOW_MAX_PAGE_SIZE:"),
        ({"FORMFLOW_MAX_BODY_BYTES": "lots"}, "FORMFLOW_MAX_BODY_BYTES:"),
        ({"FORMFLOW_DATABASE_URL": "not a url"}, "FORMFLOW_DATABASE_URL: not a database URL"),
    ],
)
def test_bad_settings_are_refused_with_the_variable_named(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(env)
    assert message in str(caught.value)


def test_production_with_a_long_secret() -> None:
    settings = load_settings({"FORMFLOW_ENVIRONMENT": "production", "FORMFLOW_SECRET_KEY": SECRET})
    assert settings.environment == "production"
    assert settings.secret_key.get_secret_value() == SECRET
    assert SECRET not in repr(settings)


def test_with_database_url_keeps_the_rest_and_checks_again() -> None:
    settings = load_settings({"FORMFLOW_ENVIRONMENT": "production", "FORMFLOW_SECRET_KEY": SECRET})
    other = settings.with_database_url("postgresql+psycopg://u@h/db")
    assert other.database_url == "postgresql+psycopg://u@h/db"
    assert other.environment == "production"
    assert other.secret_key.get_secret_value() == SECRET
    assert other.data_dir == settings.data_dir


def test_settings_are_immutable_and_ignore_the_process_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FORMFLOW_MAX_PAGE_SIZE", "7")
    settings = Settings(max_page_size=20)
    assert settings.max_page_size == 20
    assert Settings().max_page_size == 500
    with pytest.raises(ValueError, match="frozen"):
        settings.max_page_size = 1  # type: ignore[misc]
