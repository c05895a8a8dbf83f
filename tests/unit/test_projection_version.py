"""A database written under another projection version, or from another stream, is rebuilt."""

from __future__ import annotations

from pathlib import Path

import pytest

from events.errors import FfrtmpError
from events.job_events import JobAssigned, JobSubmitted
from events.spec import JobSpec
from projections import Projector, schema
from projections.rows import Item
from tests.projection_support import snapshot

SPEC = JobSpec(scenario="720p-h264")
ITEMS: list[Item] = [
    (1, JobSubmitted(job="a", at=1.0, spec=SPEC)),
    (2, JobSubmitted(job="b", at=2.0, spec=SPEC)),
    (3, JobAssigned(job="a", at=3.0, agent="x", attempt=1, budget_s=10.0)),
]


def _written(path: Path, prefix: str = "ffrtmp") -> dict[str, list[list[object]]]:
    projector = Projector(path, prefix)
    projector.apply(ITEMS)
    found = snapshot(projector)
    projector.close()
    return found


def test_same_version_keeps_the_database(tmp_path: Path) -> None:
    """Reopening under the same version keeps rows and checkpoint."""
    path = tmp_path / "p.duckdb"
    before = _written(path)
    projector = Projector(path)
    assert not projector.rebuilt
    assert projector.checkpoint() == 3
    assert snapshot(projector) == before


def test_a_version_bump_drops_and_rebuilds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A new version starts from an empty database at checkpoint 0; replaying gives the tables."""
    path = tmp_path / "p.duckdb"
    before = _written(path)
    monkeypatch.setattr(schema, "VERSION", schema.VERSION + 1)
    projector = Projector(path)
    assert projector.rebuilt
    assert (projector.checkpoint(), projector.status().version) == (0, schema.VERSION)
    assert projector.query("SELECT count(*) FROM jobs").rows == [[0]]
    projector.apply(ITEMS)
    after = snapshot(projector)
    assert after.pop("_checkpoint") != before.pop("_checkpoint")  # the version column
    assert after == before


def test_another_streams_database_is_rebuilt(tmp_path: Path) -> None:
    """A database folded from another prefix's stream is not mistaken for this one's."""
    path = tmp_path / "p.duckdb"
    _written(path, prefix="other")
    projector = Projector(path, "ffrtmp")
    assert projector.rebuilt
    assert projector.checkpoint() == 0


def test_a_database_locked_by_a_projector_is_one_clear_error(tmp_path: Path) -> None:
    """Two projectors cannot own one file; the second is told why (in another process)."""
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415

    path = tmp_path / "p.duckdb"
    holder = Projector(path)
    try:
        code = f"from projections import Projector; Projector({str(path)!r})"
        done = subprocess.run(  # noqa: S603 -- our own library
            [sys.executable, "-c", code], capture_output=True, check=False, timeout=60
        )
    finally:
        holder.close()
    assert done.returncode != 0
    assert b"is a projector running on it? stop it first" in done.stderr


def test_a_new_database_in_a_missing_directory_is_created(tmp_path: Path) -> None:
    """``projector run --db ./data/farm.duckdb`` with no ``data/`` yet: the directory is made."""
    db = tmp_path / "data" / "deeper" / "farm.duckdb"
    assert _written(db) == _written(tmp_path / "flat.duckdb")
    assert db.is_file()


def test_a_database_under_a_file_is_one_clear_error(tmp_path: Path) -> None:
    """A parent that is a file cannot hold the database: an FfrtmpError naming the path."""
    (tmp_path / "data").write_text("not a directory")
    with pytest.raises(FfrtmpError, match=r"cannot create the projection database .*data"):
        Projector(tmp_path / "data" / "farm.duckdb")
