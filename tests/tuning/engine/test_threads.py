"""Torch's thread count follows the cores this process may use: affinity, cgroup quota, override."""

from __future__ import annotations

from pathlib import Path

import pytest

from tuning.engine.errors import BadInput
from tuning.engine.threads import (
    OVERRIDE_ENV,
    cgroup_cpu_limit,
    chosen_threads,
    configure_torch_threads,
    usable_cores,
)


def _files(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def _self(tmp_path: Path, text: str) -> Path:
    return _files(tmp_path / "proc", {"cgroup": text}) / "cgroup"


def test_a_cgroup_v2_quota_limits_the_cores(tmp_path):
    root = _files(tmp_path / "cg", {"cgroup.controllers": "cpu memory", "cpu.max": "150000 100000"})
    own = _self(tmp_path, "0::/\n")
    assert cgroup_cpu_limit(root, own) == 1.5
    # 1.5 CPUs on an 8-core mask: one thread (a fractional core rounds down, never below 1).
    assert usable_cores(root=root, self_cgroup=own, affinity=8) == 1


def test_without_a_quota_the_affinity_mask_decides(tmp_path):
    root = _files(tmp_path / "cg", {"cgroup.controllers": "cpu", "cpu.max": "max 100000"})
    own = _self(tmp_path, "0::/\n")
    assert cgroup_cpu_limit(root, own) is None
    assert usable_cores(root=root, self_cgroup=own, affinity=3) == 3


def test_a_nested_cgroup_is_bounded_by_its_parents(tmp_path):
    root = _files(
        tmp_path / "cg",
        {
            "cgroup.controllers": "cpu",
            "jobs/cpu.max": "200000 100000",
            "jobs/worker/cpu.max": "max 100000",
        },
    )
    own = _self(tmp_path, "0::/jobs/worker\n")
    assert cgroup_cpu_limit(root, own) == 2.0
    assert usable_cores(root=root, self_cgroup=own, affinity=16) == 2


def test_a_cgroup_v1_quota_limits_the_cores(tmp_path):
    root = _files(
        tmp_path / "cg",
        {"cpu,cpuacct/cpu.cfs_quota_us": "300000\n", "cpu,cpuacct/cpu.cfs_period_us": "100000\n"},
    )
    own = _self(tmp_path, "12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n")
    assert cgroup_cpu_limit(root, own) == 3.0
    assert usable_cores(root=root, self_cgroup=own, affinity=64) == 3


def test_a_cgroup_v1_without_a_quota_says_minus_one(tmp_path):
    root = _files(tmp_path / "cg", {"cpu/cpu.cfs_quota_us": "-1", "cpu/cpu.cfs_period_us": "100000"})
    own = _self(tmp_path, "4:cpu:/\n")
    assert cgroup_cpu_limit(root, own) is None


def test_no_cgroup_files_at_all_means_no_limit(tmp_path):
    assert cgroup_cpu_limit(tmp_path / "missing", tmp_path / "missing-self") is None
    assert usable_cores(root=tmp_path / "missing", self_cgroup=tmp_path / "missing-self", affinity=2) == 2


def test_the_override_wins_and_omp_num_threads_is_left_alone(tmp_path):
    root = _files(tmp_path / "cg", {"cgroup.controllers": "cpu", "cpu.max": "400000 100000"})
    own = _self(tmp_path, "0::/\n")
    where = {"root": root, "self_cgroup": own, "affinity": 8}
    assert chosen_threads(environ={}, **where) == 4
    assert chosen_threads(environ={"OMP_NUM_THREADS": "2"}, **where) is None
    assert chosen_threads(environ={OVERRIDE_ENV: "1", "OMP_NUM_THREADS": "2"}, **where) == 1
    for bad in ("0", "two", "-3"):
        with pytest.raises(BadInput, match=f"{OVERRIDE_ENV} must be a whole number >= 1"):
            chosen_threads(environ={OVERRIDE_ENV: bad}, **where)


def test_configuring_sets_torchs_thread_count():
    import torch

    before = torch.get_num_threads()
    try:
        assert configure_torch_threads(environ={OVERRIDE_ENV: "1"}) == 1 == torch.get_num_threads()
        assert configure_torch_threads(environ={OVERRIDE_ENV: "2"}) == 2 == torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


def test_loading_a_model_applies_the_override(tiny_model, monkeypatch):
    import torch

    from tuning.engine.loading import load_base

    before = torch.get_num_threads()
    monkeypatch.setenv(OVERRIDE_ENV, "2" if before == 1 else "1")
    try:
        load_base(tiny_model)
        assert torch.get_num_threads() == (2 if before == 1 else 1)
    finally:
        torch.set_num_threads(before)
