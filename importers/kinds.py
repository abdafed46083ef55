"""The import kinds the command line offers, each with its import function."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from importers.listings import import_listings
from importers.lockboxes import import_lockboxes
from importers.members import import_members
from importers.regions import import_regions
from importers.report import ImportReport

Importer = Callable[[Path, ImportReport], Awaitable[ImportReport]]
# Members and listings come from one association's feed, which the command line may name.
AssociationImporter = Callable[[Path, ImportReport, str | None], Awaitable[ImportReport]]

# In the order a new installation loads them: listings need their agents first.
IMPORTERS: dict[str, Importer] = {
    "regions": import_regions,
    "members": import_members,
    "listings": import_listings,
    "lockboxes": import_lockboxes,
}
FROM_AN_ASSOCIATION: dict[str, AssociationImporter] = {
    "members": import_members,
    "listings": import_listings,
}
