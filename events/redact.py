"""Hiding secrets in text: the password or token of every URL, before anything prints it.

Pure, and below everything else in ``events`` (``errors`` uses it), so no message ffrtmp builds
can carry a NATS password to a log, a terminal or a ``ps`` listing of a child.
"""

from __future__ import annotations

import re
from typing import Final

_USERINFO: Final = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<info>[^@/ \t\r\n,]+)@")


def redact(text: str) -> str:
    """``text`` with the password (or token) of every URL in it replaced by ``***``."""

    def hide(match: re.Match[str]) -> str:
        user, colon, _ = match["info"].partition(":")
        shown = f"{user}:***" if colon else "***"  # a lone token is a secret too
        return f"{match['scheme']}{shown}@"

    return _USERINFO.sub(hide, text)
