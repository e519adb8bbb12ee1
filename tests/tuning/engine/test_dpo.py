"""DPO training: reference = the starting adapter, resume = uninterrupted, cancel and bad input."""

from __future__ import annotations

import math

import pytest
import torch

from tests.tuning.engine.conftest import read_json
from tests.tuning.engine.data.pairs import polite_rude_pairs
from tuning.engine.dpo import DPOConfig, train_dpo
from tuning.engine.errors import BadInput, Cancelled, TrainingDiverged
from tuning.engine.sources import base_fingerprint

FAST = {"batch_size": 4, "learning_rate": 1e-2, "epochs": 1, "warmup_steps": 0, "lora": {"r": 4, "alpha": 8}}


def _weights(adapter_dir):
    from safetensors.torch import load_file

    return load_file(f"{adapter_dir}/adapter_model.safetensors")


def test_on_an_existing_adapter_the_first_step_has_exactly_zero_rewards(tiny_model, trained_adapter, tmp_path):
    from tuning.engine.reward import implicit_rewards

    rows = polite_rude_pairs(8, seed=11)
    # Against the bare base the trained adapter has clear rewards...
    against_base = implicit_rewards(source=tiny_model, adapter=trained_adapter, parent_adapter=None, rows=rows, beta=0.1)
    assert all(r["chosen"] != 0 for r in against_base)
    # ...but training on top of it starts from it: the reference is base + this same adapter.
    result = train_dpo(source=tiny_model, adapter=trained_adapter, rows=rows, output_dir=tmp_path / "next", config=FAST)
    first = result["history"][0]
    assert first["rewards/chosen"] == 0.0 and first["rewards/rejected"] == 0.0
    assert first["loss"] == pytest.approx(math.log(2))
    # After one update the policy has moved away from its reference.
    assert result["history"][-1]["rewards/chosen"] != 0.0


def test_a_fresh_adapter_learns_the_preference(tiny_model, tmp_path):
    result = train_dpo(
        source=tiny_model,
        rows=polite_rude_pairs(40),
        output_dir=tmp_path / "out",
        config={**FAST, "epochs": 4, "heldout_fraction": 0.25},
    )
    assert result["history"][0]["rewards/margins"] == 0.0
    assert result["metrics"]["eval_rewards/accuracies"] >= 0.9
    assert result["metrics"]["loss"] < math.log(2)
    assert result["steps"] == 4 * 8  # 30 training pairs in batches of 4, four epochs


def test_the_output_folder_holds_the_adapter_and_its_metadata(tiny_model, trained_adapter, tmp_path):
    rows = polite_rude_pairs(8)
    result = train_dpo(source=tiny_model, adapter=trained_adapter, rows=rows, output_dir=tmp_path / "v2", config=FAST)
    meta = read_json(tmp_path / "v2" / "prefloop.json")
    assert meta["parent_adapter"] == trained_adapter
    assert meta["base_fingerprint"] == base_fingerprint(tiny_model)
    assert meta["data_hash"] == result["data_hash"]
    assert meta["hyperparameters"]["learning_rate"] == 1e-2
    assert meta["final_metrics"]["loss"] == result["metrics"]["loss"]
    assert {"torch", "transformers", "trl", "peft"} <= set(meta["library_versions"])
    assert (tmp_path / "v2" / "adapter_model.safetensors").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v2"]


def test_progress_events_carry_the_training_metrics(tiny_model, tmp_path):
    events = []
    train_dpo(source=tiny_model, rows=polite_rude_pairs(8), output_dir=tmp_path / "out", config=FAST, progress=events.append)
    train = [e for e in events if e["phase"] == "train"]
    assert [e["step"] for e in train] == [1, 2]
    expected = {
        "phase", "step", "total_steps", "progress", "eta_s", "loss", "rewards/chosen", "rewards/rejected",
        "rewards/margins", "rewards/accuracies", "learning_rate", "tokens_per_s", "epoch",
    }
    assert expected <= set(train[-1])
    assert train[-1]["progress"] == 1.0 and train[-1]["epoch"] == 1.0


def test_resuming_from_a_checkpoint_repeats_the_uninterrupted_run(tiny_model, tmp_path):
    rows = polite_rude_pairs(16)
    config = {**FAST, "epochs": 2, "checkpoint_every": 3}
    whole = train_dpo(
        source=tiny_model, rows=rows, output_dir=tmp_path / "whole", config=config, checkpoint_dir=tmp_path / "ck1"
    )
    # A second run is interrupted after step 4; the checkpoint of step 3 is kept aside, as a
    # worker that died would have left it (a *cancelled* run removes its own checkpoints).
    with pytest.raises(Cancelled):
        train_dpo(
            source=tiny_model,
            rows=rows,
            output_dir=tmp_path / "split",
            config=config,
            checkpoint_dir=tmp_path / "ck2",
            progress=_keep_checkpoint_and_stop(tmp_path / "ck2" / "step-000003", tmp_path / "kept", at_step=4),
        )
    assert not (tmp_path / "split").exists()
    resumed = train_dpo(
        source=tiny_model,
        rows=rows,
        output_dir=tmp_path / "split",
        config=config,
        resume_from=tmp_path / "kept",
        checkpoint_dir=tmp_path / "ck3",
    )
    assert resumed["steps"] == whole["steps"] == 8
    assert [e["loss"] for e in resumed["history"]] == pytest.approx([e["loss"] for e in whole["history"]], abs=1e-6)
    a, b = _weights(tmp_path / "whole"), _weights(tmp_path / "split")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6)


def _keep_checkpoint_and_stop(checkpoint, keep, *, at_step):
    import shutil

    def progress(event):
        if event["phase"] == "train" and event["step"] == at_step:
            shutil.copytree(checkpoint, keep)
            return True
        return False

    return progress


def test_a_checkpoint_of_another_run_is_refused(tiny_model, tmp_path):
    rows = polite_rude_pairs(8)
    keep = tmp_path / "kept"
    with pytest.raises(Cancelled):
        train_dpo(
            source=tiny_model, rows=rows, output_dir=tmp_path / "a", config={**FAST, "checkpoint_every": 1},
            checkpoint_dir=tmp_path / "ck",
            progress=_keep_checkpoint_and_stop(tmp_path / "ck" / "step-000001", keep, at_step=1),
        )
    with pytest.raises(BadInput, match="belongs to another run: its config differs"):
        train_dpo(source=tiny_model, rows=rows, output_dir=tmp_path / "b", config={**FAST, "beta": 0.5}, resume_from=keep)
    with pytest.raises(BadInput, match="belongs to another run: its data_hash differs"):
        train_dpo(source=tiny_model, rows=rows[:6], output_dir=tmp_path / "b", config=FAST, resume_from=keep)


def test_cancelling_leaves_no_output_and_no_checkpoints(tiny_model, tmp_path):
    with pytest.raises(Cancelled, match="step 2"):
        train_dpo(
            source=tiny_model,
            rows=polite_rude_pairs(16),
            output_dir=tmp_path / "out",
            config={**FAST, "checkpoint_every": 1},
            checkpoint_dir=tmp_path / "ck",
            progress=lambda e: e["phase"] == "train" and e["step"] == 2,
        )
    assert not (tmp_path / "out").exists()
    assert list((tmp_path / "ck").iterdir()) == []
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_nan_loss_stops_the_run_with_a_clear_error(tiny_model, tmp_path):
    with pytest.raises(TrainingDiverged, match=r"loss became nan at step \d+ .*lower the learning rate"):
        train_dpo(
            source=tiny_model,
            rows=polite_rude_pairs(16),
            output_dir=tmp_path / "out",
            config={**FAST, "learning_rate": 1e30, "max_grad_norm": 0.0, "epochs": 3},
        )
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("loss_type", "first_loss"),
    [("sigmoid", math.log(2)), ("robust", math.log(2)), ("sigmoid_norm", math.log(2)), ("hinge", 1.0), ("ipo", 25.0)],
)
def test_every_required_loss_type_trains(tiny_model, tmp_path, loss_type, first_loss):
    result = train_dpo(
        source=tiny_model,
        rows=polite_rude_pairs(8),
        output_dir=tmp_path / "out",
        config={**FAST, "loss_type": loss_type, "label_smoothing": 0.1 if loss_type == "robust" else 0.0},
    )
    # At zero margin: -log sigmoid(0) = log 2, hinge 1 - 0 = 1, IPO (0 - 1/(2 beta))^2 = 25.
    assert result["history"][0]["loss"] == pytest.approx(first_loss)
    assert result["history"][-1]["loss"] < first_loss


def test_an_empty_set_is_refused(tiny_model, tmp_path):
    with pytest.raises(BadInput, match="preference set is empty"):
        train_dpo(source=tiny_model, rows=[], output_dir=tmp_path / "out", config=FAST)


def test_over_long_rows_follow_the_truncation_setting(tiny_model, tmp_path):
    rows = polite_rude_pairs(8)
    rows[3] = {**rows[3], "chosen": [{"role": "assistant", "content": "so " * 200}]}
    truncated = train_dpo(
        source=tiny_model, rows=rows, output_dir=tmp_path / "t", config={**FAST, "max_length": 160}
    )
    assert truncated["data"]["truncated"] == 1 and truncated["data"]["kept"] == 8
    dropped = train_dpo(
        source=tiny_model, rows=rows, output_dir=tmp_path / "d", config={**FAST, "max_length": 160, "truncation": "drop"}
    )
    assert dropped["data"]["dropped_rows"] == [3] and dropped["data"]["kept"] == 7
    with pytest.raises(BadInput, match=r"longer than max_length=160 tokens: row 3"):
        train_dpo(source=tiny_model, rows=rows, output_dir=tmp_path / "e", config={**FAST, "max_length": 160, "truncation": "error"})


def test_a_missing_or_foreign_adapter_is_refused_before_any_work(tiny_model, other_tiny_model, trained_adapter, tmp_path):
    with pytest.raises(BadInput, match="does not exist"):
        train_dpo(source=tiny_model, adapter=tmp_path / "nope", rows=polite_rude_pairs(4), output_dir=tmp_path / "o")
    with pytest.raises(BadInput, match="trained on another base model"):
        train_dpo(source=other_tiny_model, adapter=trained_adapter, rows=polite_rude_pairs(4), output_dir=tmp_path / "o")


def test_bad_settings_are_named(tiny_model, tmp_path):
    with pytest.raises(BadInput, match="unknown DPO settings: lr"):
        DPOConfig.from_value({"lr": 1})
    with pytest.raises(BadInput, match="unknown loss type 'kto'"):
        train_dpo(source=tiny_model, rows=polite_rude_pairs(4), output_dir=tmp_path / "o", config={"loss_type": "kto"})
    with pytest.raises(BadInput, match="batch_size must be >= 1"):
        train_dpo(source=tiny_model, rows=polite_rude_pairs(4), output_dir=tmp_path / "o", config={"batch_size": 0})


@pytest.mark.slow
def test_dpo_teaches_the_default_model_politeness_and_a_follow_up_starts_from_zero(tmp_path):
    """The issue's headline: ~200 polite-vs-rude pairs move held-out accuracy from chance to >= 0.9."""
    from tuning.engine.adapters import new_adapter
    from tuning.engine.evaluation import preference_accuracy

    source = "smollm2-135m-instruct"
    heldout = polite_rude_pairs(40, seed=1, heldout=True)
    fresh = new_adapter(source=source, output_dir=tmp_path / "fresh", lora={"r": 16, "alpha": 32, "layers": "last_third"})
    before = preference_accuracy(source=source, adapter=fresh["output_dir"], parent_adapter=None, rows=heldout)
    assert before["accuracy"] == pytest.approx(0.5, abs=0.1)

    config = {"learning_rate": 5e-4, "epochs": 1, "batch_size": 8, "lora": {"r": 16, "alpha": 32, "layers": "last_third"}}
    result = train_dpo(source=source, rows=polite_rude_pairs(200), output_dir=tmp_path / "polite", config=config)
    assert result["steps"] == 25
    after = preference_accuracy(source=source, adapter=tmp_path / "polite", parent_adapter=None, rows=heldout)
    assert after["accuracy"] >= 0.9

    follow_up = train_dpo(
        source=source,
        adapter=tmp_path / "polite",
        rows=polite_rude_pairs(4, seed=5),
        output_dir=tmp_path / "polite-2",
        config={**config, "batch_size": 4, "max_steps": 1},
    )
    first = follow_up["history"][0]
    assert first["rewards/chosen"] == 0.0 and first["rewards/rejected"] == 0.0


# -- length-aware losses, training metrics, the learned-nothing warning -------------------------


def test_simpo_trains_without_a_reference_pass(tiny_model, tmp_path):
    events = []
    result = train_dpo(
        source=tiny_model,
        rows=polite_rude_pairs(8),
        output_dir=tmp_path / "out",
        config={**FAST, "loss_type": "simpo", "beta": 2.0, "simpo_gamma": 1.0, "epochs": 3},
        progress=events.append,
    )
    assert not [e for e in events if "reference log-probs" in (e.get("message") or "")]
    # No reference: the first step's rewards are beta * average log-prob, not zero.
    first = result["history"][0]
    assert first["rewards/chosen"] < 0 and first["rewards/rejected"] < 0
    assert result["history"][-1]["loss"] < first["loss"]


def test_rdpo_trains_and_its_first_loss_carries_the_length_term(tiny_model, tmp_path):
    from tuning.engine.chat import encode_pairs
    from tuning.engine.loading import load_tokenizer

    rows = polite_rude_pairs(4)
    result = train_dpo(
        source=tiny_model,
        rows=rows,
        output_dir=tmp_path / "rdpo",
        config={**FAST, "loss_type": "rdpo", "length_alpha": 0.05, "epochs": 3},
    )
    # At the first step policy = reference, so only the length term is left in the sigmoid:
    # the loss is the mean of log(1 + exp(-alpha * (|chosen| - |rejected|))) over the 4 pairs.
    pairs, _ = encode_pairs(load_tokenizer(tiny_model), rows, max_length=512)
    gaps = [len(p.chosen) - len(p.rejected) for p in pairs]
    assert all(gap < 0 for gap in gaps)  # the polite answers are the shorter ones
    expected = sum(math.log1p(math.exp(-0.05 * gap)) for gap in gaps) / len(gaps)
    first = result["history"][0]
    assert first["rewards/margins"] == 0.0
    assert first["loss"] == pytest.approx(expected, rel=1e-5)
    assert first["loss"] > math.log(2)
    assert result["history"][-1]["loss"] < first["loss"]


def test_a_tie_counts_half_in_the_training_accuracy(tiny_model, tmp_path):
    result = train_dpo(source=tiny_model, rows=polite_rude_pairs(8), output_dir=tmp_path / "out", config=FAST)
    # A fresh adapter starts as its reference: every pair of the first step is a tie.
    assert result["history"][0]["rewards/margins"] == 0.0
    assert result["history"][0]["rewards/accuracies"] == 0.5


def test_the_final_training_metrics_cover_every_pair_of_the_last_epoch(tiny_model, tmp_path):
    # 12 pairs in 3 batches of 4, two epochs: the last epoch is the last 3 steps.
    result = train_dpo(
        source=tiny_model, rows=polite_rude_pairs(12), output_dir=tmp_path / "out", config={**FAST, "epochs": 2}
    )
    metrics, last_epoch = result["metrics"], result["history"][-3:]
    assert result["steps"] == 6 and metrics["last_epoch/pairs"] == 12
    assert metrics["last_epoch/accuracy"] == pytest.approx(sum(e["rewards/accuracies"] for e in last_epoch) / 3)
    assert metrics["last_epoch/margin"] == pytest.approx(sum(e["rewards/margins"] for e in last_epoch) / 3)
    assert metrics["last_epoch/accuracy_low"] <= metrics["last_epoch/accuracy"] <= metrics["last_epoch/accuracy_high"]
    # The last step's figures stay under their old names for the callers that read them.
    assert metrics["rewards/accuracies"] == result["history"][-1]["rewards/accuracies"]


def test_a_run_resumed_from_a_checkpoint_reports_the_same_last_epoch(tiny_model, tmp_path):
    rows = polite_rude_pairs(12)
    config = {**FAST, "epochs": 2, "checkpoint_every": 5}
    whole = train_dpo(source=tiny_model, rows=rows, output_dir=tmp_path / "whole", config=config, checkpoint_dir=tmp_path / "ck1")
    with pytest.raises(Cancelled):
        train_dpo(
            source=tiny_model, rows=rows, output_dir=tmp_path / "split", config=config, checkpoint_dir=tmp_path / "ck2",
            progress=_keep_checkpoint_and_stop(tmp_path / "ck2" / "step-000005", tmp_path / "kept", at_step=5),
        )
    resumed = train_dpo(source=tiny_model, rows=rows, output_dir=tmp_path / "split", config=config, resume_from=tmp_path / "kept")
    assert resumed["metrics"]["last_epoch/pairs"] == 12
    for key in ("last_epoch/accuracy", "last_epoch/margin"):
        assert resumed["metrics"][key] == pytest.approx(whole["metrics"][key], abs=1e-6)


def test_training_that_learns_nothing_ends_with_a_plain_warning(tiny_model, tmp_path):
    # A learning rate of 1e-9 leaves the adapter where it started: every pair stays near a tie.
    result = train_dpo(
        source=tiny_model,
        rows=polite_rude_pairs(16),
        output_dir=tmp_path / "out",
        config={**FAST, "learning_rate": 1e-9, "epochs": 2},
    )
    assert result["warning"].startswith("training accuracy stayed at chance (0.")
    assert "16 pairs" in result["warning"]
    assert "the adapter learned nothing measurable" in result["warning"]
    assert result["metrics"]["last_epoch/accuracy_low"] <= 0.5


def test_random_labels_end_with_the_warning_too(tiny_model, tmp_path):
    import random

    rows = polite_rude_pairs(16)
    # Each pair's chosen and rejected swapped at random: nothing consistent to learn. A few
    # steps at a moderate rate cannot memorise 16 arbitrary pairs.
    swapped = [
        {**row, "chosen": row["rejected"], "rejected": row["chosen"]} if random.Random(n).random() < 0.5 else row
        for n, row in enumerate(rows)
    ]
    result = train_dpo(source=tiny_model, rows=swapped, output_dir=tmp_path / "out", config={**FAST, "learning_rate": 1e-4})
    assert result["warning"] is not None and "chance" in result["warning"]


def test_training_that_learns_gives_no_warning(tiny_model, tmp_path):
    result = train_dpo(
        source=tiny_model, rows=polite_rude_pairs(24), output_dir=tmp_path / "out", config={**FAST, "epochs": 4}
    )
    assert result["warning"] is None
    assert result["metrics"]["last_epoch/accuracy_low"] > 0.5


def test_a_small_set_gets_enough_passes_for_the_minimum_steps_and_a_large_one_a_single_pass():
    from tuning.engine.dpo import AUTO_MAX_EPOCHS, AUTO_MIN_STEPS, DPOConfig, planned_epochs

    auto = DPOConfig()
    # 18 pairs at batch 4: 5 steps a pass; the cap stops it at AUTO_MAX_EPOCHS passes.
    assert planned_epochs(auto, 5) == AUTO_MAX_EPOCHS
    # The demo's 111 training pairs: 28 steps a pass, so two passes reach AUTO_MIN_STEPS.
    assert planned_epochs(auto, 28) == 2
    assert 28 < AUTO_MIN_STEPS <= 2 * 28
    assert planned_epochs(auto, 250) == 1
    # Gradient accumulation makes fewer steps of the same batches.
    assert planned_epochs(DPOConfig(grad_accum=2), 28) == 4
    assert planned_epochs(DPOConfig(epochs=1), 5) == 1


def test_a_run_with_default_epochs_and_warmup_scales_both_to_the_set(tiny_model, tmp_path):
    config = {k: v for k, v in FAST.items() if k not in ("epochs", "warmup_steps")}
    result = train_dpo(source=tiny_model, rows=polite_rude_pairs(8), output_dir=tmp_path / "out", config=config)
    # 8 pairs at batch 4 make 2 steps a pass: 8 passes, 16 steps.
    assert result["steps"] == 16
    # A tenth of the steps warm up from 0: the first step's learning rate is 0, the third's the peak.
    rates = [event["learning_rate"] for event in result["history"]]
    assert rates[0] == 0.0 and rates[1] < rates[2] == pytest.approx(1e-2)


def test_a_run_that_ranks_every_pair_right_by_a_hair_still_says_it_learned_nothing():
    from tuning.engine.dpo import learned_nothing_warning

    moved = {"last_epoch/accuracy": 1.0, "last_epoch/accuracy_low": 0.76, "last_epoch/accuracy_high": 1.0,
             "last_epoch/pairs": 12, "last_epoch/margin": 0.4}
    assert learned_nothing_warning(moved) is None
    barely = moved | {"last_epoch/margin": 2e-8}
    assert "barely moved" in learned_nothing_warning(barely)

