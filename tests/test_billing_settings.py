"""Billing's configuration: all of it or none (then billing is off), prices per association
in cents, and the API key sent in clear only to a server on this host."""

from __future__ import annotations

from pathlib import Path

import pytest

from settings import ConfigurationError, from_env

ON = {
    "STRIPE_SECRET_KEY": "sk_test_x",
    "STRIPE_WEBHOOK_SECRET": "whsec_x",
    "BILLING_PRICES": "*=2500; Dayton REALTORS, Inc.=2200",
}


def env(tmp_path: Path, **values: str) -> dict[str, str]:
    return {"KEYBIN_DATA_DIR": str(tmp_path), **values}


def test_without_stripe_billing_is_off(tmp_path: Path) -> None:
    # when
    settings = from_env(env(tmp_path))
    # then
    assert settings.billing_configured is False
    assert settings.monthly_price("Anything") is None


def test_prices_per_association_with_a_default(tmp_path: Path) -> None:
    # when
    settings = from_env(env(tmp_path, **ON, BILLING_GRACE_DAYS="10", BILLING_CURRENCY="USD"))
    # then
    assert settings.billing_configured is True
    assert settings.monthly_price("Dayton REALTORS, Inc.") == 2200
    assert settings.monthly_price("Cincinnati Area Board") == 2500
    assert (settings.billing_grace_days, settings.billing_currency) == (10, "usd")
    assert settings.stripe_api_base == "https://api.stripe.com"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"STRIPE_SECRET_KEY": "sk_test_x"}, "set STRIPE_WEBHOOK_SECRET, BILLING_PRICES too"),
        ({**ON, "BILLING_PRICES": "*=25.00"}, "is not Association=cents"),
        ({**ON, "BILLING_PRICES": "Dayton=0"}, "is not Association=cents"),
        ({**ON, "BILLING_PRICES": "A=1;A=2"}, "'A' is priced twice"),
        ({**ON, "BILLING_CURRENCY": "dollars"}, "three-letter ISO code"),
        ({**ON, "BILLING_GRACE_DAYS": "-1"}, "must be 0 or more"),
        ({**ON, "STRIPE_API_BASE": "http://stripe.example.com"}, "unless it is on loopback"),
        ({**ON, "BILLING_ROUND_SECONDS": "0"}, "BILLING_ROUND_SECONDS must be more than 0"),
    ],
)
def test_a_wrong_or_half_configuration_stops_start_up(
    tmp_path: Path, values: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigurationError) as refused:
        from_env(env(tmp_path, **values))
    assert message in str(refused.value)


def test_a_test_server_on_loopback_is_spoken_to_in_clear(tmp_path: Path) -> None:
    settings = from_env(env(tmp_path, **ON, STRIPE_API_BASE="http://127.0.0.1:8123/"))
    assert settings.stripe_api_base == "http://127.0.0.1:8123"
