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


# -- length-aware losses ------------------------------------------------------------------------


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_simpo_matches_trl_cpo_trainer_on_the_same_batch(policy, label_smoothing, tmp_path):
    """SimPO is TRL's CPOTrainer with loss_type="simpo" and cpo_alpha=0 (no SFT term)."""
    import warnings

    from datasets import Dataset

    from tuning.engine.logprobs import pack, sequence_logps

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from trl.experimental.cpo import CPOConfig, CPOTrainer

    model, tokenizer = policy
    rows = polite_rude_pairs(4, seed=3)
    beta, gamma = 2.0, 1.2
    args = CPOConfig(
        output_dir=str(tmp_path),
        per_device_train_batch_size=len(rows),
        loss_type="simpo",
        cpo_alpha=0.0,
        beta=beta,
        simpo_gamma=gamma,
        label_smoothing=label_smoothing,
        max_length=1024,
        bf16=False,
        use_cpu=True,
        report_to=[],
    )
    trainer = CPOTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer)
    examples = [trainer.train_dataset[i] for i in range(len(rows))]
    with torch.no_grad():
        theirs, their_metrics = trainer.get_batch_loss_metrics(trainer.model, trainer.data_collator(examples))

    # Our log-probs on exactly TRL's tokens (its tokenizer adds an end token ours does not).
    groups = []
    for example in examples:
        prompt = example["prompt_input_ids"]
        responses = []
        for side in ("chosen", "rejected"):
            ids, labels = example[f"{side}_input_ids"], example[f"{side}_labels"]
            assert ids[: len(prompt)] == prompt and all(label == -100 for label in labels[: len(prompt)])
            responses.append(ids[len(prompt) :])
        groups.append((prompt, responses))
    batch = pack(groups, pad_token_id=tokenizer.pad_token_id)
    with torch.no_grad():
        logps = sequence_logps(model, batch)
    ours = dpo_losses(
        policy_chosen=logps[0::2],
        policy_rejected=logps[1::2],
        ref_chosen=None,
        ref_rejected=None,
        chosen_lengths=batch.lengths[0::2],
        rejected_lengths=batch.lengths[1::2],
        beta=beta,
        loss_type="simpo",
        label_smoothing=label_smoothing,
        simpo_gamma=gamma,
    )
    assert float(ours.losses.mean()) == pytest.approx(float(theirs), rel=1e-4, abs=1e-5)
    # Rewards are beta * average log-prob, as TRL logs them.
    assert float(ours.chosen_rewards.mean()) == pytest.approx(their_metrics["rewards/chosen"], rel=1e-4)
    assert float(ours.rejected_rewards.mean()) == pytest.approx(their_metrics["rewards/rejected"], rel=1e-4)
    # Summed instead of averaged log-probs would give another loss on this batch.
    summed = dpo_losses(
        policy_chosen=logps[0::2], policy_rejected=logps[1::2], ref_chosen=None, ref_rejected=None,
        chosen_lengths=torch.ones(len(rows)), rejected_lengths=torch.ones(len(rows)),
        beta=beta, loss_type="simpo", label_smoothing=label_smoothing, simpo_gamma=gamma,
    )
    assert float(summed.losses.mean()) != pytest.approx(float(theirs), rel=1e-2)


def test_rdpo_equals_the_papers_formula_on_a_fixed_batch():
    # Park et al. 2024, R-DPO: -log sigmoid(beta * delta + alpha * (|y_w| - |y_l|)).
    # Pair 1: policy -10 / -14, reference -11 / -12, lengths 5 / 9:
    #   delta = (-10 + 11) - (-14 + 12) = 3; logit = 0.1 * 3 + 0.05 * (5 - 9) = 0.1
    #   loss = log(1 + e^-0.1) = 0.64439666
    # Pair 2: policy -20 / -8, reference -19 / -9, lengths 12 / 4:
    #   delta = -1 - 1 = -2; logit = -0.2 + 0.05 * 8 = 0.2; loss = log(1 + e^-0.2) = 0.59813887
    result = dpo_losses(
        policy_chosen=torch.tensor([-10.0, -20.0]),
        policy_rejected=torch.tensor([-14.0, -8.0]),
        ref_chosen=torch.tensor([-11.0, -19.0]),
        ref_rejected=torch.tensor([-12.0, -9.0]),
        chosen_lengths=torch.tensor([5, 12]),
        rejected_lengths=torch.tensor([9, 4]),
        beta=0.1,
        loss_type="rdpo",
        length_alpha=0.05,
    )
    assert result.losses.tolist() == pytest.approx([0.64439666, 0.59813887], abs=1e-6)
    # Implicit rewards stay DPO's: beta * (log pi - log ref).
    assert result.chosen_rewards.tolist() == pytest.approx([0.1, -0.1])
    assert result.rejected_rewards.tolist() == pytest.approx([-0.2, 0.1])


def test_rdpo_without_a_length_term_is_sigmoid_dpo():
    torch.manual_seed(0)
    logps = {name: torch.randn(6) * 5 for name in ("policy_chosen", "policy_rejected", "ref_chosen", "ref_rejected")}
    lengths = {"chosen_lengths": torch.randint(1, 30, (6,)), "rejected_lengths": torch.randint(1, 30, (6,))}
    rdpo = dpo_losses(**logps, **lengths, beta=0.3, loss_type="rdpo", length_alpha=0.0)
    sigmoid = dpo_losses(**logps, **lengths, beta=0.3, loss_type="sigmoid")
    torch.testing.assert_close(rdpo.losses, sigmoid.losses)


def test_simpo_needs_no_reference_and_the_others_do():
    zero = torch.zeros(2)
    lengths = {"chosen_lengths": torch.ones(2), "rejected_lengths": torch.ones(2)}
    simpo = dpo_losses(
        policy_chosen=zero, policy_rejected=zero, ref_chosen=None, ref_rejected=None, **lengths,
        beta=2.0, loss_type="simpo", simpo_gamma=1.0,
    )
    # Equal answers fall short of the margin gamma: -log sigmoid(-1).
    assert simpo.losses.tolist() == pytest.approx([1.31326169] * 2)
    with pytest.raises(ValueError, match="needs the reference"):
        dpo_losses(
            policy_chosen=zero, policy_rejected=zero, ref_chosen=None, ref_rejected=None, **lengths,
            beta=0.1, loss_type="rdpo",
        )


def test_length_aware_losses_are_offered():
    assert {"simpo", "rdpo"} <= set(LOSS_TYPES)
    assert "simpo loss needs 0 <= label_smoothing < 0.5" in check_loss_settings("simpo", 2.0, 0.5)
