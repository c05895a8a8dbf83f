"""The exporter's tally of stored dead letters by source and kind, kept up at each scrape.

The kind is in each letter's headers, not its subject, so the tally reads each letter once, in
order, and remembers its ``(source, kind)`` by sequence; a scrape reads the letters stored since
the last one (at most ``READ_PER_SCRAPE``, so a flood is caught up over a few scrapes) and forgets
those the stream has dropped (older than a week, or past its bounds). The gauge is then what
the stream holds now, with a 0 for each source and kind that can occur and has none (a
dashboard or alert sees "none" rather than "no data"). A farm without the stream yet has no
samples.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Final

from nats.aio.client import Client as NatsClient

from events.deadletter import AGENT_SOURCE, CMD_SOURCE, Aside
from events.errors import FfrtmpError
from events.natserrors import FAILURES
from events.subjects import Subjects
from ffrtmp.client.deadletters import bounds, letters

_log = logging.getLogger(__name__)

READ_PER_SCRAPE: Final = 512
EXPECTED: Final = (
    (CMD_SOURCE, Aside.MALFORMED.value),
    (CMD_SOURCE, Aside.CONFLICTING.value),
    (AGENT_SOURCE, Aside.MALFORMED.value),
)
"""The ``(source, kind)`` pairs ffrtmp itself sets aside: shown at 0 when the stream has none."""


class DeadLetterTally:
    """``(source, kind)`` of each stored letter, by sequence, read forward."""

    def __init__(self, subjects: Subjects) -> None:
        """An empty tally of this farm's dead-letter stream."""
        self._subjects = subjects
        self._keys: dict[int, tuple[str, str]] = {}  # in sequence order: the oldest first
        self._upto = 0  # the last sequence read
        self._stream = False  # whether the last refresh found the stream

    def counts(self) -> dict[tuple[str, str], int]:
        """Stored letters by ``(source, kind)`` as of the last refresh (none without a stream)."""
        if not self._stream:
            return {}
        return {**dict.fromkeys(EXPECTED, 0), **Counter(self._keys.values())}

    async def refresh(self, nc: NatsClient) -> None:
        """Read what the stream stored since the last refresh; forget what it dropped."""
        try:
            await self._refresh(nc)
        except (*FAILURES, FfrtmpError) as exc:  # a scrape answers with what it has
            _log.debug("dead letters unreadable: %s", exc)

    async def _refresh(self, nc: NatsClient) -> None:
        known = await bounds(nc, self._subjects)
        self._stream = known is not None
        if known is None or known.last < self._upto:  # no stream, or one made anew
            self._keys.clear()
            self._upto = 0
        if known is None:
            return
        while self._keys and next(iter(self._keys)) < known.first:
            del self._keys[next(iter(self._keys))]
        start = max(self._upto + 1, known.first)
        end = min(known.last, start + READ_PER_SCRAPE - 1)
        for letter in await letters(nc, self._subjects, range(start, end + 1)):
            self._keys[letter.seq] = (letter.source, letter.kind)
        self._upto = max(self._upto, end)
