"""The checker's edge: read a whole log from the event store and fold it through ``Checker``.

The store's replay yields ``(seq, event)`` without the subject, so records carry ``""`` there;
no invariant here needs it (the writer is named inside every agent's report).
"""

from __future__ import annotations

from events.store import EventStore
from ffrtmp.check.invariants import Checker, CheckSettings, Record, Report


async def check_store(store: EventStore, settings: CheckSettings | None = None) -> Report:
    """Replay the store's log to its end as of the call and check it."""
    checker = Checker(settings)
    async for seq, event in store.replay():
        checker.add(Record(seq, "", event))
    return checker.finish()
