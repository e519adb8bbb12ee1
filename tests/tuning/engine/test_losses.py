"""Our DPO-family losses equal TRL 1.16's DPOTrainer on the same batch and the same adapter."""

from __future__ import annotations

import pytest
import torch

from tests.tuning.engine.data.pairs import polite_rude_pairs
from tuning.engine.losses import LOSS_TYPES, check_loss_settings, dpo_losses

REQUIRED = ("sigmoid", "ipo", "hinge", "robust", "sigmoid_norm")


@pytest.fixture
def policy(tiny_model):
    """Tiny base + an adapter with random (non-zero) A and B."""
    from peft import LoraConfig, get_peft_model

    from tuning.engine.loading import load_base

    model, tokenizer = load_base(tiny_model)
    torch.manual_seed(0)
    config = LoraConfig(r=4, lora_alpha=16, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    return get_peft_model(model, config), tokenizer


def _trainer(model, tokenizer, rows, loss_type, beta, label_smoothing, tmp_path):
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    args = DPOConfig(
        output_dir=str(tmp_path),
        per_device_train_batch_size=len(rows),
        beta=beta,
        loss_type=[loss_type],
        label_smoothing=label_smoothing,
        max_length=None,
        bf16=False,
        use_cpu=True,
        gradient_checkpointing=False,
        report_to=[],
    )
    return DPOTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer)


def _trl_loss(trainer, n):
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(n)])
    with torch.no_grad():
        return float(trainer.compute_loss(trainer.model, batch))


def _our_loss(model, tokenizer, rows, loss_type, beta, label_smoothing):
    from tuning.engine.adapters import active_adapter
    from tuning.engine.chat import encode_pairs
    from tuning.engine.logprobs import pack, sequence_logps

    pairs, _ = encode_pairs(tokenizer, rows, max_length=None)
    batch = pack([(p.prompt, [p.chosen, p.rejected]) for p in pairs], pad_token_id=tokenizer.pad_token_id)
    with torch.no_grad():
        policy_logps = sequence_logps(model, batch)
        with active_adapter(model, "ref"):
            ref_logps = sequence_logps(model, batch)
    result = dpo_losses(
        policy_chosen=policy_logps[0::2],
        policy_rejected=policy_logps[1::2],
        ref_chosen=ref_logps[0::2],
        ref_rejected=ref_logps[1::2],
        chosen_lengths=batch.lengths[0::2],
        rejected_lengths=batch.lengths[1::2],
        beta=beta,
        loss_type=loss_type,
        label_smoothing=label_smoothing,
    )
    return float(result.losses.mean())


@pytest.mark.parametrize("loss_type", REQUIRED + ("exo_pair",))
def test_each_loss_matches_trl_on_the_same_batch(policy, loss_type, tmp_path):
    model, tokenizer = policy
    rows = polite_rude_pairs(4, seed=3)
    smoothing = 0.1 if loss_type in ("robust", "exo_pair") else 0.0
    # Given a PeftModel with an adapter, TRL trains "default" against a frozen copy named "ref";
    # moving "default" afterwards makes policy and reference differ, as after some training.
    trainer = _trainer(model, tokenizer, rows, loss_type, 0.5, smoothing, tmp_path)
    torch.manual_seed(1)
    for name, parameter in model.named_parameters():
        if ".default." in name and "lora_B" in name:
            parameter.data += 0.05 * torch.randn_like(parameter)
    theirs = _trl_loss(trainer, len(rows))
    ours = _our_loss(model, tokenizer, rows, loss_type, 0.5, smoothing)
    assert theirs != pytest.approx(_our_loss_at_zero(loss_type, 0.5, smoothing))
    assert ours == pytest.approx(theirs, rel=1e-4, abs=1e-5)


def test_all_required_loss_types_are_offered():
    assert set(REQUIRED) <= set(LOSS_TYPES)


def test_bad_loss_settings_are_explained():
    assert "unknown loss type 'dpo'" in check_loss_settings("dpo", 0.1, 0.0)
    assert "beta must be > 0" in check_loss_settings("sigmoid", 0.0, 0.0)
    assert "robust loss needs 0 <= label_smoothing < 0.5" in check_loss_settings("robust", 0.1, 0.5)
    assert check_loss_settings("ipo", 0.1, 0.0) is None


def _our_loss_at_zero(loss_type, beta, label_smoothing):
    zero = torch.zeros(1)
    return float(
        dpo_losses(
            policy_chosen=zero, policy_rejected=zero, ref_chosen=zero, ref_rejected=zero,
            chosen_lengths=torch.ones(1), rejected_lengths=torch.ones(1),
            beta=beta, loss_type=loss_type, label_smoothing=label_smoothing,
        ).losses.mean()
    )
