"""Settings from the environment, generated development secrets, production refusals."""

import pytest
from cryptography.fernet import Fernet

from vault import create_app
from vault.config import ConfigError, settings_from_env

REAL_SECRETS = {"SECRET_KEY": "s" * 40, "VAULT_ENCRYPTION_KEY": Fernet.generate_key().decode()}


def test_defaults_match_the_spec():
    settings = settings_from_env({})
    assert settings["GEMINI_BASE_URL"] == "https://generativelanguage.googleapis.com"
    assert settings["VAULT_DEFAULT_BALANCE"] == 10**9
    assert settings["GEMINI_API_KEYS"] == () and settings["REDIS_URL"] is None


def test_values_are_parsed():
    settings = settings_from_env({"GEMINI_API_KEYS": "a, b,,c\nd", "VAULT_DEFAULT_BALANCE": "2.5",
                                  "VAULT_TOKEN_TTL_SECONDS": "60", "VAULT_BOOTSTRAP": "no"})
    assert settings["GEMINI_API_KEYS"] == ("a", "b", "c", "d")
    assert settings["VAULT_DEFAULT_BALANCE"] == 2_500_000_000
    assert settings["VAULT_TOKEN_TTL_SECONDS"] == 60 and settings["VAULT_BOOTSTRAP"] is False


@pytest.mark.parametrize("environ", [{"VAULT_TOKEN_TTL_SECONDS": "soon"}, {"VAULT_BOOTSTRAP": "maybe"},
                                     {"VAULT_DEFAULT_BALANCE": "lots"}])
def test_unparseable_values_name_the_variable(environ):
    with pytest.raises(ConfigError, match=next(iter(environ))):
        settings_from_env(environ)


def development(tmp_path, **environ):
    return create_app({"VAULT_INSTANCE_PATH": str(tmp_path), "VAULT_BOOTSTRAP": False}, environ=environ)


def test_development_generates_secrets_once_and_keeps_them(tmp_path):
    first, second = development(tmp_path), development(tmp_path)
    assert len(first.config["SECRET_KEY"]) >= 32
    assert first.config["SECRET_KEY"] == second.config["SECRET_KEY"]
    assert first.config["VAULT_ENCRYPTION_KEY"] == second.config["VAULT_ENCRYPTION_KEY"]
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0
    assert first.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path}/vault.sqlite3"
    assert first.config["SESSION_COOKIE_SECURE"] is False


@pytest.mark.parametrize(("environ", "message"), [
    ({}, "SECRET_KEY"),
    ({"SECRET_KEY": "change-me", "VAULT_ENCRYPTION_KEY": REAL_SECRETS["VAULT_ENCRYPTION_KEY"]}, "SECRET_KEY"),
    ({"SECRET_KEY": "short", "VAULT_ENCRYPTION_KEY": REAL_SECRETS["VAULT_ENCRYPTION_KEY"]}, "SECRET_KEY"),
    ({"SECRET_KEY": "s" * 40}, "VAULT_ENCRYPTION_KEY"),
    ({"SECRET_KEY": "s" * 40, "VAULT_ENCRYPTION_KEY": "not-a-fernet-key"}, "VAULT_ENCRYPTION_KEY"),
])
def test_production_refuses_to_start_without_real_secrets(tmp_path, environ, message):
    with pytest.raises(ConfigError, match=message):
        development(tmp_path, VAULT_ENV="production", **environ)
    assert not (tmp_path / "secret_key").exists()


def test_production_starts_with_real_secrets_and_secure_cookies(tmp_path):
    app = development(tmp_path, VAULT_ENV="production", **REAL_SECRETS)
    assert app.config["SECRET_KEY"] == REAL_SECRETS["SECRET_KEY"]
    assert app.config["SESSION_COOKIE_SECURE"] and app.config["REMEMBER_COOKIE_SECURE"]


def test_encryption_keys_can_rotate(tmp_path):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    from vault.security import SecretBox

    token = SecretBox(old).encrypt("AIza-secret-value")
    assert SecretBox(f"{new},{old}").decrypt(token) == "AIza-secret-value"
    development(tmp_path, VAULT_ENCRYPTION_KEY=f"{new},{old}")


@pytest.mark.parametrize("environ", [{"VAULT_ARGON2_MEMORY_KIB": "1024"}, {"VAULT_ARGON2_TIME_COST": "1"},
                                     {"VAULT_ARGON2_PARALLELISM": "0"}])
def test_password_cost_below_owasp_minimum_is_refused(tmp_path, environ):
    with pytest.raises(ConfigError):
        development(tmp_path, **environ)


def test_postgres_urls_use_psycopg3(tmp_path):
    app_url = development(tmp_path, DATABASE_URL="postgres://u@db:5432/vault").config["SQLALCHEMY_DATABASE_URI"]
    assert app_url == "postgresql+psycopg://u@db:5432/vault"
