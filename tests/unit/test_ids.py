"""Job ids: short, time-sortable, typeable, and found by any unique prefix."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from events import ids
from events.errors import AmbiguousId, InvalidSpec, UnknownId

millis = st.integers(min_value=ids.EPOCH_MS, max_value=ids.EPOCH_MS + 30 * 365 * 86_400_000)
entropy = st.binary(min_size=3, max_size=3)


def new_id(now_ms: int, noise: bytes) -> str:
    """A writer's first id: what ``following`` makes with nothing before it."""
    return ids.id_of(*ids.following(None, now_ms, noise))


@given(millis, entropy)
def test_ids_are_short_lowercase_tokens(now_ms: int, noise: bytes) -> None:
    """A generated id is 12 characters of the Crockford alphabet, a valid caller id too."""
    ident = new_id(now_ms, noise)
    assert len(ident) == 12
    assert set(ident) <= set(ids.ALPHABET)
    assert ids.check_id(ident) == ident


@given(millis, millis, entropy, entropy)
def test_ids_sort_by_creation_time(a_ms: int, b_ms: int, a_noise: bytes, b_noise: bytes) -> None:
    """An id made at an earlier millisecond sorts before one made later."""
    a, b = new_id(a_ms, a_noise), new_id(b_ms, b_noise)
    if a_ms < b_ms:
        assert a < b
    assert ids.created_ms(a) == a_ms


def test_prefix_finds_the_one_match() -> None:
    """Any unique prefix resolves, case-insensitively; an exact id beats longer ones."""
    known = ["0h2k9m3qz7x4", "0h2k9m3qz7y1", "1abc", "1abcd"]
    assert ids.resolve_prefix("0H2K9M3QZ7X", known) == "0h2k9m3qz7x4"
    assert ids.resolve_prefix("1abc", known) == "1abc"


def test_ambiguous_prefix_lists_candidates() -> None:
    """A prefix shared by several ids names them all."""
    with pytest.raises(AmbiguousId) as caught:
        ids.resolve_prefix("0h2k", ["0h2k9m3qz7x4", "0h2k9m3qz7y1"])
    assert caught.value.candidates == ["0h2k9m3qz7x4", "0h2k9m3qz7y1"]
    assert "0h2k9m3qz7y1" in str(caught.value)


@pytest.mark.parametrize("prefix", ["", "zz", "  "])
def test_unknown_prefix_is_an_error(prefix: str) -> None:
    """A prefix nothing starts with, or an empty one, raises UnknownId."""
    with pytest.raises(UnknownId):
        ids.resolve_prefix(prefix, ["0h2k9m3qz7x4"])


@pytest.mark.parametrize("bad", ["", "a.b", "a*", "x>", "has space", "UPPER", "-lead", "é"])
def test_caller_ids_must_be_safe_subject_tokens(bad: str) -> None:
    """A caller-chosen id that would break a subject or need quoting is refused."""
    with pytest.raises(InvalidSpec, match="job id"):
        ids.check_id(bad)


def test_too_little_entropy_is_refused() -> None:
    """The generator needs three bytes of entropy."""
    with pytest.raises(ValueError, match="entropy"):
        new_id(ids.EPOCH_MS, b"\x00")


@given(
    st.lists(st.tuples(st.integers(-3, 3), entropy), min_size=1, max_size=300),
    st.sampled_from([0, 1, ids._NOISE_MAX - 1, ids._NOISE_MAX]),
)
def test_one_writers_ids_never_repeat_and_keep_their_order(
    steps: list[tuple[int, bytes]], start_noise: int
) -> None:
    """Whatever the clock does (the same millisecond, forward, back), each next id is new.

    It sorts after the last, too: the noise counts up within a millisecond and carries into the
    next.
    """
    last = (ids.EPOCH_MS + 1_000, start_noise)
    made = [ids.id_of(*last)]
    clock = last[0]
    for moved, noise in steps:
        clock += moved
        last = ids.following(last, clock, noise)
        made.append(ids.id_of(*last))
    assert made == sorted(made)
    assert len(set(made)) == len(made)


def test_a_burst_in_one_millisecond_has_no_repeated_id() -> None:
    """10,000 ids within one millisecond (a bulk submit's worst case) are all distinct."""
    last = None
    made = set()
    for index in range(10_000):
        last = ids.following(last, ids.EPOCH_MS + 5, (index * 7919 % 2**24).to_bytes(3, "big"))
        made.add(ids.id_of(*last))
    assert len(made) == 10_000
