"""Per-request DataLoaders: one batched query per relation, never one per row."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any, TypeVar

from strawberry.dataloader import DataLoader
from tortoise.models import Model

from models import prepared

M = TypeVar("M", bound=Model)


def by_id_loader(model: type[M], cache: bool = True) -> DataLoader[Any, M | None]:
    """Rows by primary key, a batch per tick; None for ids that are gone."""

    async def load(ids: list[Any]) -> Sequence[M | None]:
        rows = {row.pk: row for row in await prepared.by_ids(model, ids)}
        return [rows.get(i) for i in ids]

    return DataLoader(load_fn=load, cache=cache)


class Loaders:
    """Made fresh for each request (and each subscription event), so nothing goes stale."""

    def __init__(self) -> None:
        self._loaders: dict[Hashable, DataLoader[Any, Any]] = {}

    def by_id(self, model: type[M]) -> DataLoader[Any, M | None]:
        key = ("by_id", model)
        if key not in self._loaders:
            self._loaders[key] = by_id_loader(model)
        return self._loaders[key]

    def named(
        self, key: Hashable, factory: Callable[[], DataLoader[Any, Any]]
    ) -> DataLoader[Any, Any]:
        """A domain module's own loader, e.g. ("grants_by_listing", first, status)."""
        if key not in self._loaders:
            self._loaders[key] = factory()
        return self._loaders[key]
