"""Checkpoints and digests of tenant RocksDBs."""

from pathlib import Path

import pytest

from archival import rocks


def test_checkpoint_has_same_digest_and_digest_sees_every_change(tmp_path: Path) -> None:
    db = tmp_path / "db"
    rocks.build(db, {b"a": b"1", b"b": b"2"}, column_families={"facts": {b"x": b"y"}})
    before = rocks.digest(db)
    assert before.entry_count == 3
    rocks.checkpoint(db, tmp_path / "ckpt")
    assert rocks.digest(tmp_path / "ckpt") == before
    for entries, cfs in [
        ({b"a": b"1", b"b": b"3"}, {"facts": {b"x": b"y"}}),
        ({b"a": b"1", b"b": b"2"}, {"facts": {b"x": b"z"}}),
        ({b"a": b"1", b"b2": b""}, {"facts": {b"x": b"y"}}),
        ({b"a": b"1b", b"": b"2"}, {"facts": {b"x": b"y"}}),
    ]:
        other = tmp_path / f"o{len(list(tmp_path.iterdir()))}"
        rocks.build(other, entries, column_families=cfs)
        assert rocks.digest(other) != before


def test_empty_and_missing(tmp_path: Path) -> None:
    assert rocks.digest(tmp_path / "missing") == rocks.EMPTY
    rocks.build(tmp_path / "empty")
    assert rocks.digest(tmp_path / "empty").entry_count == 0


def test_errors(tmp_path: Path) -> None:
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "file").write_bytes(b"x")
    with pytest.raises(rocks.RocksError, match="not a RocksDB"):
        rocks.digest(tmp_path / "junk")
    with pytest.raises(rocks.RocksError, match="not a RocksDB"):
        rocks.checkpoint(tmp_path / "junk", tmp_path / "c")
