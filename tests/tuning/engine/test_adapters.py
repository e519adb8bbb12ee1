"""LoRA adapters: their shape, their metadata, and refusing the wrong ones."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from tuning.engine.adapters import LoraSpec, new_adapter, read_metadata
from tuning.engine.errors import BadInput
from tuning.engine.loading import load_base, load_policy
from tuning.engine.sources import base_fingerprint


def test_layers_can_be_all_the_last_third_or_a_range():
    assert LoraSpec().layer_indices(30) is None
    assert LoraSpec(layers="last_third").layer_indices(30) == list(range(20, 30))
    assert LoraSpec(layers=[3, 6]).layer_indices(30) == [3, 4, 5]
    with pytest.raises(BadInput, match=r"out of range: the model has 30 blocks"):
        LoraSpec(layers=[10, 40]).layer_indices(30)
    with pytest.raises(BadInput, match="'all', 'last_third' or"):
        LoraSpec(layers="middle").layer_indices(30)


def test_unknown_lora_settings_are_named():
    with pytest.raises(BadInput, match="unknown LoRA settings: rank"):
        LoraSpec.from_dict({"rank": 8})


def test_a_new_adapter_computes_exactly_what_the_base_does(tiny_model, tmp_path):
    result = new_adapter(source=tiny_model, output_dir=tmp_path / "fresh", lora={"r": 4, "layers": "last_third"})
    config = json.loads((tmp_path / "fresh" / "adapter_config.json").read_text())
    assert config["r"] == 4 and config["layers_to_transform"] == [2]
    metadata = read_metadata(result["output_dir"])
    assert metadata["base_fingerprint"] == base_fingerprint(tiny_model)
    assert metadata["parent_adapter"] is None
    assert set(metadata["library_versions"]) >= {"torch", "transformers", "trl", "peft"}
    ids = torch.tensor([[1, 7, 30, 2]])
    base, _ = load_base(tiny_model)
    policy, _ = load_policy(tiny_model, tmp_path / "fresh")
    with torch.no_grad():
        assert torch.equal(base(ids).logits, policy(ids).logits)


def test_a_missing_adapter_folder_is_named(tiny_model, tmp_path):
    with pytest.raises(BadInput, match=r"adapter folder .*missing-adapter does not exist"):
        load_policy(tiny_model, tmp_path / "missing-adapter")


def test_a_folder_without_an_adapter_is_refused(tiny_model, tmp_path):
    (tmp_path / "notes.txt").write_text("not an adapter")
    with pytest.raises(BadInput, match="adapter_config.json is missing"):
        load_policy(tiny_model, tmp_path)


def test_an_adapter_for_another_base_model_is_refused(other_tiny_model, trained_adapter):
    with pytest.raises(BadInput, match="trained on another base model"):
        load_policy(other_tiny_model, trained_adapter)


def test_a_foreign_peft_adapter_without_metadata_still_loads(tiny_model, trained_adapter, tmp_path):
    foreign = tmp_path / "foreign"
    shutil.copytree(trained_adapter, foreign)
    (foreign / "prefloop.json").unlink()
    assert read_metadata(foreign) == {}
    model, _ = load_policy(tiny_model, foreign)
    assert model.active_adapter == "default"
