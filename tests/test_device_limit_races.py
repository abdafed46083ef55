"""The device limit holds against sign-ins from new devices sent all at once, on the real server."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from models.accounts import Account, AccountEvent, Device, Session
from models.enums import AccountEventKind
from resolvers import auth
from tests.factories import PASSWORD, SIGN_IN, GraphQLClient, make_agent

# The per-account rate limit (a later wall) is off: these tests are about the device limit.
NO_RATE_LIMIT = {"rate_limit_per_account_per_minute": 0}


async def sign_ins_at_once(
    live_gql: GraphQLClient, agent: Account, devices: int
) -> list[dict[str, Any]]:
    """One sign-in with the right password per new device id, all sent together."""

    async def sign_in(device_id: str) -> dict[str, Any]:
        variables = {
            "input": {
                "login": agent.email,
                "password": PASSWORD,
                "deviceId": device_id,
                "deviceName": "Phone",
            }
        }
        payload: dict[str, Any] = (await live_gql(SIGN_IN, variables))["signIn"]
        return payload

    return await asyncio.gather(*(sign_in(f"phone-{n:02d}") for n in range(devices)))


def error_codes(answers: list[dict[str, Any]]) -> set[str]:
    return {error["code"] for answer in answers for error in answer["userErrors"]}


async def registered(agent: Account) -> tuple[int, int, int]:
    """Devices, sessions and device-registered events of the agent."""
    events = AccountEvent.filter(account_id=agent.id, kind=AccountEventKind.DEVICE_REGISTERED.value)
    return (
        await Device.filter(account_id=agent.id).count(),
        await Session.filter(account_id=agent.id).count(),
        await events.count(),
    )


def passwords_checked_together(monkeypatch: pytest.MonkeyPatch, sign_ins: int) -> None:
    """Each sign-in goes on past its password check only once all of them have checked theirs,
    so they reach the device registration together. (The answers for one account are checked
    one after another, so they wait once each is settled, not during the check.)"""
    together = asyncio.Barrier(sign_ins)
    settled = auth.attempt_succeeded

    async def succeeded(attempt: auth.Attempt) -> None:
        await settled(attempt)
        await asyncio.wait_for(together.wait(), 30)

    monkeypatch.setattr("resolvers.auth.attempt_succeeded", succeeded)


@pytest.mark.parametrize("settings_overrides", [{**NO_RATE_LIMIT, "device_limit": 2}])
async def test_new_devices_signing_in_at_once_register_up_to_the_limit(
    live_gql: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given an agent with no device yet, allowed two, and four new phones
    # (fewer than the wrong passwords that lock: every one of them has its password checked)
    agent = await make_agent()
    passwords_checked_together(monkeypatch, 4)
    # when they all sign in at once
    answers = await sign_ins_at_once(live_gql, agent, 4)
    # then two signed in, each on its own new device, and the others were told the limit
    signed_in = [answer for answer in answers if answer["token"]]
    refused = [answer for answer in answers if not answer["token"]]
    assert len(signed_in) == 2
    assert all(answer["userErrors"] == [] for answer in signed_in)
    assert error_codes(refused) == {"DEVICE_LIMIT_REACHED"}
    assert await registered(agent) == (2, 2, 2)


@pytest.mark.parametrize("settings_overrides", [NO_RATE_LIMIT])
async def test_a_burst_of_twelve_new_devices_registers_five(live_gql: GraphQLClient) -> None:
    # given an agent with no device yet, and twelve new phones
    agent = await make_agent()
    # when they all sign in at once
    answers = await sign_ins_at_once(live_gql, agent, 12)
    # then five signed in, and no other got a session or a device
    signed_in = [answer for answer in answers if answer["token"]]
    refused = [answer for answer in answers if not answer["token"]]
    assert len(signed_in) == 5
    assert all(answer["userErrors"] == [] for answer in signed_in)
    # Past the limit, or refused while five passwords were being checked (each counts as a
    # wrong one until it is found right): the lockout lets no more be checked at once.
    assert error_codes(refused) <= {"DEVICE_LIMIT_REACHED", "ACCOUNT_LOCKED"}
    assert await registered(agent) == (5, 5, 5)
