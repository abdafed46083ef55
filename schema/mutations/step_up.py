"""Confirming by device: a challenge signed by the device key, accepted in place of the PIN."""

from __future__ import annotations

import datetime

import strawberry

from core.errors import DomainError
from resolvers import step_up
from schema.context import Info
from schema.errors import UserError, user_errors

StepUpOperation = strawberry.enum(
    step_up.Operation,
    name="StepUpOperation",
    description="A mutation that asks for the PIN, or for the device's signature instead.",
)


@strawberry.input
class StepUpInput:
    challenge_id: strawberry.ID = strawberry.field(description="From beginStepUp.")
    signature: str = strawberry.field(
        description="The Ed25519 signature of the challenge's signingInput by this device's "
        "key (its devicePublicKey at sign-in), base64url without padding."
    )


@strawberry.input
class EnableStepUpInput:
    pin: str = strawberry.field(description="The PIN, once, to vouch for this device's key.")


@strawberry.type
class EnableStepUpPayload:
    ok: bool
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class BeginStepUpInput:
    operation: StepUpOperation  # type: ignore[valid-type]


@strawberry.type
class StepUpChallenge:
    challenge_id: strawberry.ID
    nonce: str = strawberry.field(description="32 random bytes, base64url without padding.")
    operation: StepUpOperation  # type: ignore[valid-type]
    expires_at: datetime.datetime
    signing_input: str = strawberry.field(
        description="The text to sign, as UTF-8: `keybin-step-up:` challengeId `:` nonce `:` "
        "the mutation's name (grantAccess, generateOneDayCode)."
    )


@strawberry.type
class BeginStepUpPayload:
    challenge: StepUpChallenge | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


def confirmation(info: Info, pin: str | None, signed: StepUpInput | None) -> step_up.Confirmation:
    """The input's PIN or signature; a signature counts only for the session's own device."""
    if signed is None:
        return step_up.Confirmation(pin=pin)
    device_pk: int = info.context.require_auth().session.device_id  # type: ignore[attr-defined]
    return step_up.Confirmation(
        pin=pin,
        device=step_up.DeviceSignature(str(signed.challenge_id), signed.signature, device_pk),
    )


@strawberry.type
class StepUpMutation:
    @strawberry.mutation(
        description="Lets this device confirm PIN-protected mutations with its key (the "
        "devicePublicKey of its sign-in) instead of the PIN. Signing in again with another key "
        "turns it off."
    )
    async def enable_step_up(self, info: Info, input: EnableStepUpInput) -> EnableStepUpPayload:
        auth = info.context.require_auth()
        device_pk: int = auth.session.device_id  # type: ignore[attr-defined]
        try:
            await info.context.rate_limit("pin", account=str(auth.account.id))
            await step_up.enable(auth.account, device_pk, input.pin)
        except DomainError as error:
            return EnableStepUpPayload(ok=False, user_errors=user_errors(error))
        return EnableStepUpPayload(ok=True)

    @strawberry.mutation(
        description="A one-time challenge for this device to sign with its key (unlocked by Face "
        "ID or a fingerprint; see enableStepUp) and send as `stepUp` in place of the PIN. It "
        "lasts two minutes and is spent by the first attempt; a refused signature counts as a "
        "wrong PIN."
    )
    async def begin_step_up(self, info: Info, input: BeginStepUpInput) -> BeginStepUpPayload:
        auth = info.context.require_auth()
        device_pk: int = auth.session.device_id  # type: ignore[attr-defined]
        try:
            await info.context.rate_limit("stepUp", account=str(auth.account.id))
            challenge = await step_up.begin(auth.account, device_pk, input.operation)
        except DomainError as error:
            return BeginStepUpPayload(user_errors=user_errors(error))
        return BeginStepUpPayload(
            challenge=StepUpChallenge(
                challenge_id=strawberry.ID(str(challenge.id)),
                nonce=challenge.nonce,
                operation=challenge.operation,
                expires_at=challenge.expires_at,
                signing_input=challenge.signing_input.decode(),
            )
        )
