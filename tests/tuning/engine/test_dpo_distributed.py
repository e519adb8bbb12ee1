"""Data-parallel DPO on CPU: two real processes (gloo) train exactly what one process trains.

The launchers run as a user would start them, as subprocesses on the tiny model: ``accelerate
launch --multi_gpu`` (which on a machine without CUDA still starts N processes; its ``--cpu`` flag
starts only one unless MPI is set up) and the engine's own ``--processes``. No GPU is involved;
the same code on cards differs only in the backend (NCCL) and each rank's device.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.tuning.engine.data.pairs import polite_rude_pairs
from tuning.engine.dpo import train_dpo

ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent
SETTINGS = {"batch_size": 4, "learning_rate": 1e-2, "epochs": 2, "lora": {"r": 4, "alpha": 8}}
FLAGS = ["--batch-size", "4", "--learning-rate", "0.01", "--epochs", "2", "--lora-r", "4", "--lora-alpha", "8"]


def _child_env() -> dict:
    # One thread per rank: two ranks on a 2-core machine, and no oversubscription.
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run(command: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=ROOT, env=_child_env(), capture_output=True, text=True, timeout=300)


def _rows_file(tmp_path: Path, rows: list[dict]) -> Path:
    path = tmp_path / "rows.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def _weights(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(folder / "adapter_model.safetensors"))


def _assert_same_training(one: dict, two: dict, one_dir: Path, two_dir: Path, *, tolerance: float) -> None:
    assert two["steps"] == one["steps"] and len(two["history"]) == len(one["history"])
    for alone, together in zip(one["history"], two["history"], strict=True):
        for key in ("loss", "rewards/chosen", "rewards/rejected", "rewards/margins", "grad_norm"):
            assert together[key] == pytest.approx(alone[key], rel=tolerance, abs=tolerance), key
        assert together["rewards/accuracies"] == alone["rewards/accuracies"]
    # The ranks' shares of the last epoch join into the very pairs one process scored.
    assert two["metrics"]["last_epoch/pairs"] == one["metrics"]["last_epoch/pairs"]
    for key in ("last_epoch/accuracy", "last_epoch/margin"):
        assert two["metrics"][key] == pytest.approx(one["metrics"][key], rel=tolerance, abs=tolerance), key
    weights_one, weights_two = _weights(one_dir), _weights(two_dir)
    assert weights_one.keys() == weights_two.keys()
    for name, tensor in weights_one.items():
        assert float((tensor - weights_two[name]).abs().max()) <= tolerance, name


def test_two_processes_under_accelerate_launch_train_what_one_process_trains(tiny_model, tmp_path):
    rows = polite_rude_pairs(16)
    # Two micro-batches per step: each rank runs one whole, exactly the pass one process runs.
    settings = {**SETTINGS, "grad_accum": 2}
    alone = train_dpo(source=tiny_model, rows=rows, output_dir=tmp_path / "alone", config=settings)

    launched = _run(
        [
            str(BIN / "accelerate"), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
            "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(_free_port()),
            "-m", "tuning.engine", "dpo", "--source", tiny_model, "--rows", str(_rows_file(tmp_path, rows)),
            "--output-dir", str(tmp_path / "together"), "--checkpoint-dir", str(tmp_path / "checkpoints"),
            "--checkpoint-every", "1", "--grad-accum", "2", *FLAGS,
        ]
    )
    assert launched.returncode == 0, launched.stderr[-3000:]
    # Rank 0 alone prints the result: stdout is one JSON document, not two.
    together = json.loads(launched.stdout)
    assert together["processes"] == 2
    assert together["steps"] == alone["steps"] == 4
    _assert_same_training(alone, together, tmp_path / "alone", tmp_path / "together", tolerance=1e-5)
    # Rank 0 alone writes: a second writer would have found the folders taken and failed the run.
    meta = json.loads((tmp_path / "together" / "prefloop.json").read_text())
    assert meta["processes"] == 2 and meta["steps"] == 4
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step-000002", "step-000003"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    # One progress bar per phase, drawn by rank 0 only.
    assert launched.stderr.count("train:   0%") == 1


def test_ranks_sharing_a_micro_batch_and_a_held_out_split_still_match_one_process(tiny_model, tmp_path):
    rows = polite_rude_pairs(20)
    settings = {**SETTINGS, "heldout_fraction": 0.25}
    alone = train_dpo(source=tiny_model, rows=rows, output_dir=tmp_path / "alone", config=settings)

    launched = _run(
        [
            sys.executable, "-m", "tuning.engine", "dpo", "--processes", "2", "--source", tiny_model,
            "--rows", str(_rows_file(tmp_path, rows)), "--output-dir", str(tmp_path / "together"),
            "--heldout-fraction", "0.25", "--output", str(tmp_path / "result.json"), "--quiet", *FLAGS,
        ]
    )
    assert launched.returncode == 0, launched.stderr[-3000:]
    together = json.loads((tmp_path / "result.json").read_text())
    assert together["processes"] == 2
    # One micro-batch per step split in two: other shapes, so equal to float32 rounding only.
    _assert_same_training(alone, together, tmp_path / "alone", tmp_path / "together", tolerance=1e-4)
    for key in ("eval_loss", "eval_rewards/margins", "eval_rewards/accuracies"):
        assert together["metrics"][key] == pytest.approx(alone["metrics"][key], rel=1e-4, abs=1e-4), key


def test_bad_input_to_several_processes_exits_2_with_the_cause_and_writes_nothing(tiny_model, tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    launched = _run(
        [
            sys.executable, "-m", "tuning.engine", "dpo", "--processes", "2", "--source", tiny_model,
            "--rows", str(empty), "--output-dir", str(tmp_path / "out"), "--quiet",
        ]
    )
    assert launched.returncode == 2, launched.stderr[-3000:]
    assert launched.stderr.count("error: bad input: the preference set is empty") == 1
    assert launched.stdout == ""
    assert not (tmp_path / "out").exists()


def test_a_cancel_on_rank_0_and_a_nan_loss_stop_every_rank_at_the_same_step(tiny_model, tmp_path):
    script = ROOT / "tests" / "tuning" / "engine" / "data" / "ranks_stop_together.py"
    launched = _run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         str(script), tiny_model, str(tmp_path)]
    )
    assert launched.returncode == 0, launched.stderr[-3000:]
    rank0, rank1 = (json.loads((tmp_path / f"rank-{n}.json").read_text()) for n in (0, 1))
    assert rank0["cancelled"] == rank1["cancelled"]
    assert rank0["cancelled"].startswith("Cancelled: stopped on request during train at step 2")
    assert rank0["diverged"] == rank1["diverged"]
    assert rank0["diverged"].startswith("TrainingDiverged: DPO loss became nan at step")
    # The progress callback ran on rank 0 alone.
    assert rank0["events"] > 0 and rank1["events"] == 0
    # Nothing written: no adapters, and the cancelled run's checkpoints were removed.
    assert not (tmp_path / "cancelled").exists() and not (tmp_path / "diverged").exists()
    assert list((tmp_path / "checkpoints").iterdir()) == []
