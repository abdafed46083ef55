"""Per-request DataLoaders: one batched query per relation, never one per row. The batch
functions (the statements) are resolvers/'s, e.g. resolvers/rows.py."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Any, TypeVar

from strawberry.dataloader import DataLoader

K = TypeVar("K")
V = TypeVar("V")

Batch = Callable[[list[K]], Awaitable[Sequence[V]]]


class Loaders:
    """Made fresh for each request (and each subscription event), so nothing goes stale."""

    def __init__(self) -> None:
        self._loaders: dict[Hashable, DataLoader[Any, Any]] = {}

    def batched(self, batch: Batch[K, V]) -> DataLoader[K, V]:
        """The request's loader for a resolvers/ batch function, e.g. rows.accounts: one per
        function, so every field asking through it shares the batch and its cache."""
        key = ("batched", batch)
        if key not in self._loaders:
            self._loaders[key] = DataLoader(load_fn=batch)
        return self._loaders[key]

    def named(
        self, key: Hashable, factory: Callable[[], DataLoader[Any, Any]]
    ) -> DataLoader[Any, Any]:
        """A domain module's own loader, e.g. ("grants_by_listing", first, status)."""
        if key not in self._loaders:
            self._loaders[key] = factory()
        return self._loaders[key]
