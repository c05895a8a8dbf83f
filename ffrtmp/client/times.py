"""Times as people type them: ``10m``, ``2h``, ``1d`` ago, or an ISO 8601 time."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Final

from events.errors import InvalidSpec

_AGO: Final = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd])")  # matched whole: no trailing newline
_UNIT_S: Final = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_time(text: str, now: float, what: str = "--since") -> float:
    """Unix seconds from ``10m``/``2h``/``1d`` (that long ago) or an ISO 8601 time (UTC if bare)."""
    value = text.strip()
    ago = _AGO.fullmatch(value)
    if ago:
        return now - float(ago.group(1)) * _UNIT_S[ago.group(2)]
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidSpec(
            what, f"{text!r} is neither a duration (30s, 10m, 2h, 1d) nor an ISO time"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()
