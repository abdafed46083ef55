"""The contract's enums, exposed from the domain's own (same names, same values)."""

import strawberry

from models import enums

AccountStatus = strawberry.enum(enums.AccountStatus)
ContractorRole = strawberry.enum(enums.ContractorRole)
ListingSource = strawberry.enum(enums.ListingSource)
ListingStatus = strawberry.enum(enums.ListingStatus)
AccessMethod = strawberry.enum(enums.AccessMethod)
AccessOutcome = strawberry.enum(enums.AccessOutcome)
MessageKind = strawberry.enum(enums.MessageKind)
PushPlatform = strawberry.enum(enums.PushPlatform)
