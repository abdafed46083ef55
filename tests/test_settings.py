"""Settings from the environment, the kept SECRET_KEY, and the SQLite PRAGMAs keybin relies on."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from tortoise import Tortoise

import db
from cli import proxy_options
from core.sqlite import driver as sqlite3
from settings import ConfigurationError, from_env
from tests.conftest import POSTGRES_URL


def test_defaults_and_a_secret_kept_beside_the_database(tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite://{tmp_path}/k.sqlite3"}
    first, second = from_env(env), from_env(env)
    assert first.device_limit == 5 and first.max_grant_days == 30
    assert first.rate_limit_per_minute == 300 and first.env == "development"
    assert first.rate_limit_per_account_per_minute == 20
    assert first.trusted_proxies == ()
    assert first.answer_cache is False  # on only when asked for (KEYBIN_ANSWER_CACHE=on)
    assert len(first.secret_key) >= 32
    assert first.secret_key == second.secret_key
    assert (tmp_path / "keybin.secret").read_text().strip() == first.secret_key
    assert (tmp_path / "keybin.secret").stat().st_mode & 0o077 == 0


def test_environment_values_are_read(tmp_path: Path) -> None:
    settings = from_env(
        {
            "DATABASE_URL": f"sqlite://{tmp_path}/k.sqlite3",
            "DEVICE_LIMIT": "3",
            "MAX_GRANT_DAYS": "7",
            "SMTP_HOST": "mail.example.com",
            "SMTP_PORT": "2525",
            "SMTP_STARTTLS": "true",
            "PUBLIC_URL": "https://keys.example.com/",
            "KEYBIN_ANSWER_CACHE": "on",
        }
    )
    assert (settings.device_limit, settings.max_grant_days) == (3, 7)
    assert (settings.smtp_host, settings.smtp_port, settings.smtp_starttls) == (
        "mail.example.com",
        2525,
        True,
    )
    assert settings.public_url == "https://keys.example.com"
    assert settings.answer_cache is True


@pytest.mark.parametrize(
    ("env", "complaint"),
    [
        ({"KEYBIN_ENV": "production", "SMTP_HOST": "m"}, "SECRET_KEY"),
        ({"KEYBIN_ENV": "production", "SECRET_KEY": "short", "SMTP_HOST": "m"}, "SECRET_KEY"),
        ({"KEYBIN_ENV": "production", "SECRET_KEY": "s" * 40}, "SMTP_HOST"),
        ({"KEYBIN_ENV": "production", "SECRET_KEY": "s" * 40, "SMTP_HOST": "m"}, "SMS_BACKEND"),
        (
            {
                "KEYBIN_ENV": "production",
                "SECRET_KEY": "s" * 40,
                "SMTP_HOST": "m",
                "SMS_BACKEND": "console",
            },
            "SMS_BACKEND=http and SMS_HTTP_URL",
        ),
        ({"SMS_BACKEND": "http"}, "SMS_HTTP_URL"),
        ({"SMS_BACKEND": "pigeon"}, "SMS_BACKEND"),
        ({"TRUSTED_PROXIES": "10.0.0.1, proxy.internal"}, "TRUSTED_PROXIES"),
        ({"TRUSTED_PROXIES": "*"}, "TRUSTED_PROXIES"),
    ],
)
def test_unsafe_or_incomplete_settings_are_refused(
    tmp_path: Path, env: dict[str, str], complaint: str
) -> None:
    with pytest.raises(ConfigurationError, match=complaint):
        from_env({"DATABASE_URL": f"sqlite://{tmp_path}/k.sqlite3", **env})
    assert not (tmp_path / "keybin.secret").exists() or "SECRET_KEY" not in env


def test_production_starts_with_a_relay_and_an_sms_gateway_development_without(
    tmp_path: Path,
) -> None:
    # given the same database, once in development with nothing set, once in production
    database = {"DATABASE_URL": f"sqlite://{tmp_path}/k.sqlite3"}
    production = {
        **database,
        "KEYBIN_ENV": "production",
        "SECRET_KEY": "s" * 40,
        "SMTP_HOST": "mail.example.com",
        "SMS_BACKEND": "http",
        "SMS_HTTP_URL": "https://sms.example.com/send",
    }
    # when / then development keeps logging SMS, production sends them through its gateway
    assert from_env(database).sms_backend == "console"
    assert from_env(production).sms_backend == "http"


def test_trusted_proxies_are_addresses_or_networks_handed_to_uvicorn(tmp_path: Path) -> None:
    # given proxies written with spaces, an IPv6 address and a network with host bits
    env = {
        "DATABASE_URL": f"sqlite://{tmp_path}/k.sqlite3",
        "TRUSTED_PROXIES": " 10.0.0.7 ,::1, 10.1.2.3/16,",
        "RATE_LIMIT_PER_ACCOUNT_PER_MINUTE": "7",
    }
    # when read
    settings = from_env(env)
    # then each is written the way uvicorn matches it, and `keybin serve` trusts those only
    assert settings.trusted_proxies == ("10.0.0.7", "::1", "10.1.0.0/16")
    assert settings.rate_limit_per_account_per_minute == 7
    assert proxy_options(settings) == {
        "proxy_headers": True,
        "forwarded_allow_ips": ["10.0.0.7", "::1", "10.1.0.0/16"],
    }
    # and with none, X-Forwarded-For is not read at all (not even from loopback)
    assert proxy_options(from_env({"DATABASE_URL": env["DATABASE_URL"]})) == {
        "proxy_headers": False,
        "forwarded_allow_ips": [],
    }


def test_keybin_migrate_then_the_pragmas(tmp_path: Path) -> None:
    database = tmp_path / "fresh.sqlite3"
    keybin = str(Path(sys.executable).parent / "keybin")
    env = {"DATABASE_URL": f"sqlite://{database}", "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [keybin, "migrate"], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "up to date" in result.stdout
    with sqlite3.connect(database) as connection:
        applied = [r[0] for r in connection.execute("SELECT name FROM tortoise_migrations")]
        assert applied[0] == "0001_initial"
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.mark.skipif(bool(POSTGRES_URL), reason="SQLite's PRAGMAs; the SQLite run checks them")
async def test_connections_use_foreign_keys_secure_delete_and_a_busy_timeout(orm: None) -> None:
    connection = Tortoise.get_connection("default")
    for pragma, expected in (("foreign_keys", 1), ("secure_delete", 1), ("busy_timeout", 5000)):
        rows = await connection.execute_query_dict(f"PRAGMA {pragma}")
        assert list(rows[0].values())[0] == expected, pragma


def test_help_names_every_command() -> None:
    keybin = str(Path(sys.executable).parent / "keybin")
    out = subprocess.run([keybin, "--help"], capture_output=True, text=True, check=True).stdout
    for command in ("serve", "migrate", "import", "staff", "schema", "keys", "lockbox"):
        assert command in out


@pytest.mark.skipif(not POSTGRES_URL, reason="PostgreSQL's pool: runs in the `postgres` tox env")
async def test_pooled_connections_skip_the_reset_query_but_never_keep_a_transaction(
    orm: None,
) -> None:
    # given: Tortoise's asyncpg pool, as configured by keybin (made on first use)
    client = Tortoise.get_connection("default")
    await client.execute_query("SELECT 1")
    pool = client._pool
    assert pool._reset is db.keep_session
    # when: a connection goes back with a transaction still open
    async with pool.acquire() as connection:
        await connection.execute("BEGIN")
        await connection.execute("CREATE TEMP TABLE left_behind (n int)")
        assert connection.is_in_transaction()
    # then: asyncpg rolled it back on release all the same
    for _ in range(pool.get_size()):
        async with pool.acquire() as connection:
            assert not connection.is_in_transaction()
            found = await connection.fetchval("SELECT to_regclass('pg_temp.left_behind')")
            assert found is None
