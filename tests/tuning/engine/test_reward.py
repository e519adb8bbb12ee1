"""Rewards: the implicit DPO reward, and a reward model trained with TRL's RewardTrainer."""

from __future__ import annotations

import pytest

from tests.tuning.engine.conftest import read_json
from tests.tuning.engine.data.pairs import polite_rude_pairs
from tuning.engine.errors import BadInput, Cancelled
from tuning.engine.reward import implicit_rewards, score, train_reward_model

ITEMS = [
    {"prompt": [{"role": "user", "content": "How many days are in a week?"}], "response": "Sure! A week has seven days."},
    {
        "prompt": [{"role": "user", "content": "How many days are in a week?"}],
        "response": "Seriously? Everyone knows this. A week has seven days. Stop wasting my time.",
    },
]


@pytest.fixture(scope="module")
def reward_model(tiny_model, tmp_path_factory):
    output = tmp_path_factory.mktemp("reward") / "model"
    result = train_reward_model(
        source=tiny_model,
        rows=polite_rude_pairs(40, seed=2),
        output_dir=output,
        config={"learning_rate": 5e-3, "epochs": 2, "heldout_fraction": 0.2, "lora": {"r": 4, "alpha": 8}},
    )
    return str(output), result


def test_an_adapter_against_itself_has_zero_implicit_reward(tiny_model, trained_adapter):
    rewards = implicit_rewards(
        source=tiny_model, adapter=trained_adapter, parent_adapter=trained_adapter, rows=polite_rude_pairs(4), beta=0.1
    )
    assert [(r["chosen"], r["rejected"], r["margin"]) for r in rewards] == [(0.0, 0.0, 0.0)] * 4
    # Each row also says how long its answers were, in tokens.
    assert all(r["chosen_tokens"] > 0 and r["rejected_tokens"] > 0 for r in rewards)


def test_a_trained_adapter_rewards_the_chosen_answers(tiny_model, trained_adapter):
    rewards = implicit_rewards(
        source=tiny_model, adapter=trained_adapter, parent_adapter=None, rows=polite_rude_pairs(8, seed=9), beta=0.1
    )
    assert all(r["margin"] > 0 for r in rewards)
    assert all(r["margin"] == pytest.approx(r["chosen"] - r["rejected"]) for r in rewards)


def test_implicit_scores_agree_with_implicit_rewards(tiny_model, trained_adapter):
    row = {"prompt": ITEMS[0]["prompt"], "chosen": ITEMS[0]["response"], "rejected": ITEMS[1]["response"]}
    (expected,) = implicit_rewards(source=tiny_model, adapter=trained_adapter, parent_adapter=None, rows=[row], beta=0.2)
    scores = score(source=tiny_model, reward={"kind": "implicit", "adapter": trained_adapter, "beta": 0.2}, items=ITEMS)
    assert scores == pytest.approx([expected["chosen"], expected["rejected"]], abs=1e-4)


def test_a_reward_model_learns_to_prefer_polite_answers(tiny_model, reward_model):
    path, result = reward_model
    assert result["metrics"]["eval_accuracy"] >= 0.75
    assert result["steps"] == len(result["history"]) == 16  # 32 training pairs, batches of 4, two epochs
    rows = polite_rude_pairs(10, seed=3)
    items = [{"prompt": r["prompt"], "response": r[side]} for r in rows for side in ("chosen", "rejected")]
    scores = score(source=tiny_model, reward={"kind": "model", "path": path}, items=items)
    margins = [polite - rude for polite, rude in zip(scores[0::2], scores[1::2], strict=True)]
    assert sum(m > 0 for m in margins) >= 8
    meta = read_json(f"{path}/prefloop.json")
    assert meta["kind"] == "reward_model" and meta["data"]["heldout_pairs"] == 8


def test_a_reward_model_is_not_a_policy_adapter(tiny_model, trained_adapter):
    with pytest.raises(BadInput, match="is a lora adapter, not a reward model"):
        score(source=tiny_model, reward={"kind": "model", "path": trained_adapter}, items=ITEMS)


def test_an_unclear_reward_is_refused(tiny_model):
    with pytest.raises(BadInput, match="reward must be"):
        score(source=tiny_model, reward={"kind": "vibes"}, items=ITEMS)
    with pytest.raises(BadInput, match="needs beta > 0"):
        score(source=tiny_model, reward={"kind": "implicit", "adapter": "x", "beta": 0}, items=ITEMS)
    with pytest.raises(BadInput, match="item 0: expected keys 'prompt' and 'response'"):
        score(source=tiny_model, reward={"kind": "model", "path": "x"}, items=[{"prompt": "hi"}])


def test_reward_model_training_can_be_stopped_and_leaves_nothing(tiny_model, tmp_path):
    with pytest.raises(Cancelled):
        train_reward_model(
            source=tiny_model,
            rows=polite_rude_pairs(16),
            output_dir=tmp_path / "out",
            progress=lambda e: e["phase"] == "train" and e["step"] == 1,
        )
    assert list(tmp_path.iterdir()) == []


def test_a_reward_model_cannot_be_loaded_as_a_policy(tiny_model, reward_model):
    from tuning.engine.loading import load_policy

    with pytest.raises(BadInput, match="is a reward model, not a policy adapter"):
        load_policy(tiny_model, reward_model[0])
