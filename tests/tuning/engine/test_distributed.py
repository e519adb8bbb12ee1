"""How one optimiser step's micro-batches are shared between ranks, and the one-process no-ops.

The ranks' shares are checked as plain data here; test_dpo_distributed.py runs real processes.
"""

from __future__ import annotations

import pytest

from tuning.engine.distributed import SINGLE, join, step_share
from tuning.engine.errors import BadInput


def _pairs_by_rank(micro, world):
    return {rank: step_share(micro, rank, world) for rank in range(world)}


@pytest.mark.parametrize("world", [1, 2, 3, 4, 5, 8])
@pytest.mark.parametrize("micro", [[[0, 1, 2, 3]], [[0, 1, 2, 3], [4, 5, 6, 7]], [[0, 1, 2], [3, 4, 5], [6]]])
def test_the_ranks_together_cover_every_pair_of_the_step_exactly_once(micro, world):
    seen = [
        (position, index)
        for share in _pairs_by_rank(micro, world).values()
        for position, indices in share
        for index in indices
    ]
    assert sorted(seen) == sorted((p, i) for p, batch in enumerate(micro) for i in batch)
    # Each pair is attributed to the micro-batch it belongs to (the loss divides by its size).
    assert all(index in micro[position] for position, index in seen)


def test_with_enough_micro_batches_each_rank_runs_whole_ones_in_turn():
    micro = [[0, 1], [2, 3], [4, 5], [6, 7]]
    assert step_share(micro, 0, 2) == [(0, [0, 1]), (2, [4, 5])]
    assert step_share(micro, 1, 2) == [(1, [2, 3]), (3, [6, 7])]


def test_with_fewer_micro_batches_than_ranks_the_ranks_split_the_pairs():
    assert step_share([[0, 1, 2, 3]], 0, 2) == [(0, [0, 1])]
    assert step_share([[0, 1, 2, 3]], 1, 2) == [(0, [2, 3])]
    # A micro-batch smaller than its number of sharers leaves a rank without work, not an error.
    assert step_share([[0]], 0, 2) == [] and step_share([[0]], 1, 2) == [(0, [0])]


def test_one_process_keeps_the_step_as_it_is():
    micro = [[3, 1], [0, 2]]
    assert step_share(micro, 0, 1) == [(0, [3, 1]), (1, [0, 2])]
    assert SINGLE.step_share(micro) == step_share(micro, 0, 1)


def test_without_a_launcher_there_is_one_process_and_nothing_to_talk_to(monkeypatch):
    import torch

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    ranks = join("cpu")
    assert ranks is SINGLE and ranks.is_main and not ranks.several
    tensor = torch.tensor([1.0, 2.0])
    assert ranks.sum_(tensor) is tensor
    assert ranks.gather("x") == ["x"]
    assert ranks.agree(True) is True

    def callback(event):
        return None

    # The caller's own callback, not a wrapper: one process pays nothing for the machinery.
    assert ranks.relay(callback) is callback


def test_one_model_over_all_cards_cannot_be_combined_with_several_processes(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(BadInput, match="device 'auto'"):
        join("auto")
