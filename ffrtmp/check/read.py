"""The checker's edge: read a whole log from the event store and fold it through ``Checker``.

The store's replay yields ``(seq, event)`` without the subject, so records carry ``""`` there:
what the subject says is already applied by the store's one door (``events.admit``), which turns
an event its writer may not write into a ``SetAside`` that names its subject.
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
