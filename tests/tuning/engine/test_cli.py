"""The command line, run as a user would: a subprocess, files in, JSON out, no database."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.tuning.engine.data.pairs import polite_rude_pairs

ROOT = Path(__file__).resolve().parents[3]


def _engine(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tuning.engine", *args], cwd=ROOT, capture_output=True, text=True, timeout=600
    )


def _write_rows(path: Path, rows: list[dict]) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def test_dpo_then_generate_then_evaluate(tiny_model, tmp_path):
    rows = _write_rows(tmp_path / "rows.jsonl", polite_rude_pairs(12))
    trained = _engine(
        "dpo", "--source", tiny_model, "--rows", str(rows), "--output-dir", str(tmp_path / "adapter"),
        "--learning-rate", "0.01", "--lora-r", "4", "--lora-layers", "last_third", "--batch-size", "4",
        "--epochs", "1",
    )
    assert trained.returncode == 0, trained.stderr
    result = json.loads(trained.stdout)
    assert result["steps"] == 3 and len(result["history"]) == 3
    assert "train:" in trained.stderr  # the progress bar
    assert json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())["layers_to_transform"] == [2]

    prompts = tmp_path / "prompts.json"
    prompts.write_text(json.dumps(["Where is Paris?", [{"role": "user", "content": "hi"}]]))
    sampled = _engine(
        "generate", "--source", tiny_model, "--adapter", str(tmp_path / "adapter"), "--prompts", str(prompts),
        "-n", "3", "--max-new-tokens", "4", "--quiet",
    )
    assert sampled.returncode == 0, sampled.stderr
    assert [len(samples) for samples in json.loads(sampled.stdout)] == [3, 3]

    evaluated = _engine(
        "evaluate", "--source", tiny_model, "--adapter", str(tmp_path / "adapter"), "--rows", str(rows),
        "--output", str(tmp_path / "eval.json"), "--quiet",
    )
    assert evaluated.returncode == 0, evaluated.stderr
    accuracy = json.loads((tmp_path / "eval.json").read_text())["preference_accuracy"]
    assert accuracy["n"] == 12 and accuracy["accuracy"] > 0.5


def test_bad_input_exits_2_with_the_cause(tiny_model, tmp_path):
    rows = _write_rows(tmp_path / "rows.jsonl", polite_rude_pairs(4))
    missing = _engine(
        "dpo", "--source", tiny_model, "--rows", str(rows), "--adapter", str(tmp_path / "nope"),
        "--output-dir", str(tmp_path / "out"),
    )
    assert missing.returncode == 2
    assert "adapter folder" in missing.stderr and "does not exist" in missing.stderr
    empty = _engine("dpo", "--source", tiny_model, "--rows", str(_write_rows(tmp_path / "e.jsonl", [])),
                    "--output-dir", str(tmp_path / "out"))
    assert empty.returncode == 2 and "preference set is empty" in empty.stderr
    assert not (tmp_path / "out").exists()


def test_settings_from_a_config_file_and_progress_as_json_lines_for_a_program_watching(tiny_model, tmp_path):
    rows = _write_rows(tmp_path / "rows.jsonl", polite_rude_pairs(8))
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"batch_size": 2, "max_steps": 5, "learning_rate": 0.01, "lora": {"r": 4, "alpha": 8}}))
    events = tmp_path / "progress.jsonl"
    trained = _engine(
        "dpo", "--source", tiny_model, "--rows", str(rows), "--output-dir", str(tmp_path / "adapter"),
        "--config", str(config), "--max-steps", "3", "--progress-jsonl", str(events), "--quiet",
    )
    assert trained.returncode == 0, trained.stderr
    result = json.loads(trained.stdout)
    # The flag wins over the file; the file's other settings hold.
    assert result["steps"] == 3
    meta = json.loads((tmp_path / "adapter" / "prefloop.json").read_text())
    assert meta["hyperparameters"]["batch_size"] == 2 and meta["lora"]["r"] == 4
    lines = [json.loads(line) for line in events.read_text().splitlines()]
    assert [e["step"] for e in lines if e["phase"] == "train"] == [1, 2, 3]
    assert lines[0]["phase"] == "prepare"
    assert [e["loss"] for e in lines if e["phase"] == "train"] == [e["loss"] for e in result["history"]]


def test_a_config_file_that_is_not_a_json_object_is_bad_input(tiny_model, tmp_path):
    rows = _write_rows(tmp_path / "rows.jsonl", polite_rude_pairs(4))
    config = tmp_path / "config.json"
    config.write_text("[1, 2]")
    refused = _engine(
        "dpo", "--source", tiny_model, "--rows", str(rows), "--output-dir", str(tmp_path / "out"), "--config", str(config),
    )
    assert refused.returncode == 2
    assert "must be one JSON object" in refused.stderr


def test_the_length_aware_losses_are_flags_and_a_run_that_learned_nothing_says_so(tiny_model, tmp_path):
    rows = _write_rows(tmp_path / "rows.jsonl", polite_rude_pairs(8))
    trained = _engine(
        "dpo", "--source", tiny_model, "--rows", str(rows), "--output-dir", str(tmp_path / "rdpo"), "--quiet",
        "--loss-type", "rdpo", "--length-alpha", "-0.02", "--learning-rate", "1e-9", "--lora-r", "4", "--epochs", "1",
    )
    assert trained.returncode == 0, trained.stderr
    meta = json.loads((tmp_path / "rdpo" / "prefloop.json").read_text())
    assert meta["hyperparameters"]["loss_type"] == "rdpo" and meta["hyperparameters"]["length_alpha"] == -0.02
    result = json.loads(trained.stdout)
    assert "training accuracy stayed at chance" in result["warning"]
    assert f"warning: {result['warning']}" in trained.stderr

    simpo = _engine(
        "dpo", "--source", tiny_model, "--rows", str(rows), "--output-dir", str(tmp_path / "simpo"), "--quiet",
        "--loss-type", "simpo", "--beta", "2", "--simpo-gamma", "1", "--lora-r", "4", "--max-steps", "1",
    )
    assert simpo.returncode == 0, simpo.stderr
    assert json.loads((tmp_path / "simpo" / "prefloop.json").read_text())["hyperparameters"]["simpo_gamma"] == 1.0
