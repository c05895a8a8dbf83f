"""A store under test that counts how its appends went: atomic batches, or one by one."""

from __future__ import annotations

from collections.abc import Sequence

from events.store import Append, EventStore


class CountingStore:
    """Delegates to ``store``, counting the batches it stored and the items sent one by one."""

    def __init__(self, store: EventStore) -> None:
        """Count the appends made through this wrapper of ``store``."""
        self.store = store
        self.batches: list[int] = []
        self.singly = 0

    async def append_batch(self, items: Sequence[Append]) -> list[int]:
        """The store's atomic batch, counted when it was stored."""
        seqs = await self.store.append_batch(items)
        self.batches.append(len(items))
        return seqs

    async def append_many(self, items: Sequence[Append]) -> list[int | Exception]:
        """The store's one-by-one appends, counted."""
        self.singly += len(items)
        return await self.store.append_many(items)

    def __getattr__(self, name: str) -> object:
        return getattr(self.store, name)
