"""Loading base models and policies: devices, dtypes, the GGUF cache, adapters on top."""

from __future__ import annotations

import math

import pytest
import torch

from tuning.engine.errors import BadInput
from tuning.engine.loading import load_base, load_policy, materialise, resolve_device_dtype

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without CUDA")


@no_cuda
def test_without_cuda_the_engine_runs_on_cpu_in_fp32():
    assert resolve_device_dtype() == ("cpu", torch.float32)


@no_cuda
def test_asking_for_cuda_where_there_is_none_is_a_clear_error():
    with pytest.raises(BadInput, match="CUDA is not available"):
        resolve_device_dtype("cuda")


def test_dtype_names_are_understood_and_unknown_ones_refused():
    assert resolve_device_dtype("cpu", "bf16") == ("cpu", torch.bfloat16)
    assert resolve_device_dtype("cpu", "float32") == ("cpu", torch.float32)
    with pytest.raises(BadInput, match="unknown dtype 'int3'"):
        resolve_device_dtype("cpu", "int3")


def test_a_base_loads_with_a_chat_template_and_a_pad_token(tiny_model):
    model, tokenizer = load_base(tiny_model)
    assert not model.training
    assert next(model.parameters()).dtype == torch.float32
    assert tokenizer.pad_token_id is not None
    assert tokenizer.padding_side == "left"
    text = tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
    assert text.endswith("<|im_start|>assistant\n")


def test_the_dtype_can_be_forced(tiny_model):
    model, _ = load_base(tiny_model, dtype="bfloat16")
    assert next(model.parameters()).dtype == torch.bfloat16


def test_a_policy_with_an_adapter_answers_differently_from_the_base(tiny_model, trained_adapter):
    ids = torch.tensor([[1, 5, 9, 14, 2]])
    base, _ = load_base(tiny_model)
    policy, _ = load_policy(tiny_model, trained_adapter)
    with torch.no_grad():
        assert not torch.allclose(base(ids).logits, policy(ids).logits)
    assert not any(p.requires_grad for p in policy.parameters())


def test_a_broken_gguf_file_is_reported_and_leaves_no_cache_behind(tmp_path):
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\0" * 64)
    cache = tmp_path / "cache"
    with pytest.raises(BadInput, match="cannot read GGUF model"):
        materialise(broken, cache_dir=cache)
    assert list(cache.iterdir()) == []


@pytest.mark.slow
def test_the_packaged_model_is_cached_once_as_plain_safetensors():
    folder = materialise("smollm2-135m-instruct")
    assert (folder / "model.safetensors").is_file()
    assert (folder / "prefloop-source.json").is_file()
    assert materialise("smollm2-135m-instruct") == folder
    model, tokenizer = load_base("smollm2-135m-instruct")
    assert model.config.num_hidden_layers == 30
    assert "quantization_config" not in model.config.to_dict()
    assert "<|im_start|>" in tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False)


@no_cuda
def test_auto_placement_without_cuda_is_plain_cpu_and_a_dpo_step_runs(tiny_model, rows, tmp_path):
    from tuning.engine.dpo import train_dpo
    from tuning.engine.loading import input_device

    assert resolve_device_dtype("auto") == ("cpu", torch.float32)
    model, _ = load_base(tiny_model, device="auto")
    assert input_device(model) == torch.device("cpu")
    result = train_dpo(
        source=tiny_model,
        rows=rows[:8],
        output_dir=tmp_path / "adapter",
        config={"max_steps": 1, "batch_size": 4, "lora": {"r": 4, "alpha": 8}},
        device="auto",
    )
    assert result["steps"] == 1 and math.isfinite(result["history"][0]["loss"])
    assert (tmp_path / "adapter" / "adapter_model.safetensors").is_file()

