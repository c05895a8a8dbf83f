"""Ids people can read and type: short, time-sortable, lowercase, safe as a NATS subject token.

A generated id is 12 characters of Crockford base32: 8 for the milliseconds since 2025-01-01
(good until 2059) and 4 of entropy (about a million per millisecond). Sorting ids sorts by
creation time, and any unique prefix names one id, as in git. Pure: the clock and the entropy
are arguments; the edges (CLI, scheduler) supply them.

One writer makes its ids in sequence (``following``, as ULID's monotonic mode does): within a
millisecond it adds one to the last id's entropy instead of drawing again. Random draws within
one millisecond collided: a bulk submit makes hundreds of ids a millisecond, and 20 random bits
then repeat within a few thousand ids (a command id repeated is dropped by the server's dedup,
so a job submitted is silently not).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

from events.errors import AmbiguousId, InvalidSpec, UnknownId

ALPHABET: Final = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford: no i, l, o, u
EPOCH_MS: Final = 1_735_689_600_000  # 2025-01-01T00:00:00Z
TIME_CHARS: Final = 8
ENTROPY_CHARS: Final = 4
ID_LENGTH: Final = TIME_CHARS + ENTROPY_CHARS
ENTROPY_BYTES: Final = 3  # 24 bits, of which 20 are used
# Ids a caller chooses (idempotent submit): a NATS subject token a shell needs no quotes for.
# Matched whole (``fullmatch``): a pattern ending in ``$`` would accept a trailing newline.
_CALLER_ID: Final = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


def _base32(value: int, width: int) -> str:
    chars = []
    for _ in range(width):
        chars.append(ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


_NOISE_MAX: Final = (1 << (5 * ENTROPY_CHARS)) - 1


def following(last: tuple[int, int] | None, now_ms: int, entropy: bytes) -> tuple[int, int]:
    """The (milliseconds, noise) of a writer's next id after ``last``: never the same one twice.

    A later millisecond draws fresh noise; the same one, or a clock that stepped back, takes the
    last noise plus one (and the next millisecond when the noise runs out), so one writer's ids
    are distinct and in order whatever its clock does. ``now_ms`` is the writer's clock
    (milliseconds since the Unix epoch), ``entropy`` random bytes.
    """
    if len(entropy) < ENTROPY_BYTES:
        raise ValueError(f"need {ENTROPY_BYTES} bytes of entropy, got {len(entropy)}")
    noise = int.from_bytes(entropy[:ENTROPY_BYTES], "big") & _NOISE_MAX
    if last is None or now_ms > last[0]:
        return now_ms, noise
    at, previous = last
    return (at, previous + 1) if previous < _NOISE_MAX else (at + 1, noise)


def id_of(at_ms: int, noise: int) -> str:
    """The id for these milliseconds and noise (``following``'s answer)."""
    since = max(0, at_ms - EPOCH_MS) % (1 << (5 * TIME_CHARS))
    return _base32(since, TIME_CHARS) + _base32(noise & _NOISE_MAX, ENTROPY_CHARS)


def created_ms(ident: str) -> int | None:
    """The creation time encoded in a generated id, or None for a caller-chosen one."""
    if len(ident) != ID_LENGTH or any(c not in ALPHABET for c in ident):
        return None
    value = 0
    for char in ident[:TIME_CHARS]:
        value = value * 32 + ALPHABET.index(char)
    return EPOCH_MS + value


def check_id(ident: str, kind: str = "job") -> str:
    """Accept a caller-chosen id only if it is a safe subject token; return it unchanged."""
    if not _CALLER_ID.fullmatch(ident):
        raise InvalidSpec(
            f"{kind} id",
            f"{ident[:80]!r} must be 1-64 of a-z, 0-9, '_', '-', starting with a letter or digit",
        )
    return ident


def resolve_prefix(prefix: str, known: Iterable[str], kind: str = "job") -> str:
    """Find the one id that starts with ``prefix``; an exact match wins over longer ones."""
    typed = prefix.strip().lower()
    if not typed:
        raise UnknownId(kind, prefix)
    matches = sorted(ident for ident in known if ident.startswith(typed))
    if typed in matches:
        return typed
    if not matches:
        raise UnknownId(kind, prefix)
    if len(matches) > 1:
        raise AmbiguousId(kind, prefix, matches)
    return matches[0]
