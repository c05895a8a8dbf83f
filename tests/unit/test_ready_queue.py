"""The ready queue keeps placement order under pushes, moves and removals."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ffrtmp.scheduler.ready import ReadyQueue

ops = st.lists(
    st.tuples(st.sampled_from(["push", "remove"]), st.sampled_from("abcdef"), st.integers(0, 5)),
    max_size=60,
)


@given(ops)
def test_matches_a_sorted_model(steps: list[tuple[str, str, int]]) -> None:
    """After any pushes and removals, the order is the model's: by key, then first pushed."""
    queue, model, serial = ReadyQueue(), {}, 0
    for op, job, key in steps:
        if op == "push":
            queue.push(job, float(key))
            model[job] = (key, serial)
            serial += 1
        else:
            queue.remove(job)
            model.pop(job, None)
    expected = sorted(model, key=lambda j: model[j])
    assert list(queue.in_order()) == expected
    assert len(queue) == len(expected)
    assert queue.peek() == (expected[0] if expected else None)
    assert all(job in queue for job in expected)


def test_fifo_among_equal_keys() -> None:
    """Jobs with the same key come out in the order they were pushed."""
    queue = ReadyQueue()
    for job in ("x", "y", "z"):
        queue.push(job, 1.0)
    assert list(queue.in_order()) == ["x", "y", "z"]


@given(ops, st.integers(0, 6))
def test_pop_and_put_back_keep_the_order(steps: list[tuple[str, str, int]], taken: int) -> None:
    """Popping some jobs yields them in order; putting them back restores the same order."""
    queue = ReadyQueue()
    for op, job, key in steps:
        if op == "push":
            queue.push(job, float(key))
        else:
            queue.remove(job)
    before = list(queue.in_order())
    popped = [entry for entry in (queue.pop() for _ in range(taken)) if entry is not None]
    assert [job for job, _ in popped] == before[: len(popped)]
    assert len(queue) == len(before) - len(popped)
    for job, entry in reversed(popped):
        queue.put_back(job, entry)
    assert list(queue.in_order()) == before
