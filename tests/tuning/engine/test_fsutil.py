"""Atomic output folders: whole or absent, never half-written."""

from __future__ import annotations

import pytest

from tuning.engine.errors import BadInput
from tuning.engine.fsutil import atomic_dir


def test_the_folder_appears_only_when_the_block_succeeds(tmp_path):
    target = tmp_path / "out"
    with atomic_dir(target) as staging:
        (staging / "a.txt").write_text("done")
        assert not target.exists()
    assert (target / "a.txt").read_text() == "done"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_failure_leaves_nothing_behind(tmp_path):
    target = tmp_path / "out"
    with pytest.raises(RuntimeError), atomic_dir(target) as staging:
        (staging / "a.txt").write_text("half")
        raise RuntimeError("crash")
    assert list(tmp_path.iterdir()) == []


def test_an_existing_non_empty_folder_is_never_overwritten(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    with pytest.raises(BadInput, match="already exists and is not empty"), atomic_dir(target):
        pass
    assert (target / "keep.txt").read_text() == "mine"


def test_an_empty_folder_made_in_advance_is_filled(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    with atomic_dir(target) as staging:
        (staging / "a.txt").write_text("x")
    assert (target / "a.txt").is_file()
