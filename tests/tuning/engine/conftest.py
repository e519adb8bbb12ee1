"""Tiny random Llama-style models in temporary folders, shared by the engine's unit tests.

Each is a real Hugging Face folder (config, safetensors weights, a byte-level BPE tokenizer with a
ChatML template), so the engine loads it exactly like a real base model, in milliseconds.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.tuning.engine.data.pairs import polite_rude_pairs

CORPUS = [
    "Hello! How can I help you today?",
    "Thank you for asking, here is a short answer.",
    "Go away, that is a stupid question.",
    "Could you please tell me the time?",
    "The capital of France is Paris.",
    "I would be happy to help with that recipe.",
    "Write a haiku about the sea and the wind.",
    "No. Figure it out yourself.",
    "Please summarise this paragraph in one sentence.",
    "Sure! Water boils at 100 degrees Celsius at sea level.",
] * 20

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content']"
    " + '<|im_end|>' + '\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def build_tiny_model(folder: Path, *, seed: int, vocab_size: int = 320) -> Path:
    """Write a tiny random Llama (3 blocks, 32 wide) and its tokenizer into ``folder``."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(
        CORPUS,
        trainers.BpeTrainer(
            vocab_size=vocab_size,
            special_tokens=SPECIALS,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        ),
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token="<|im_end|>",
        unk_token="<|endoftext|>",
    )
    tokenizer.chat_template = CHATML
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        # Weights ten times the usual scale, so the random model's output depends on its
        # input (at 0.02 it mostly echoes the last token and ignores the conversation).
        initializer_range=0.2,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> str:
    """A tiny random base model folder (the unit tests' base source)."""
    return str(build_tiny_model(tmp_path_factory.mktemp("tiny") / "model", seed=1))


@pytest.fixture(scope="session")
def other_tiny_model(tmp_path_factory) -> str:
    """Same architecture as ``tiny_model``, other random weights: a different base."""
    return str(build_tiny_model(tmp_path_factory.mktemp("other") / "model", seed=2))


@pytest.fixture
def rows() -> list[dict]:
    """24 small polite-versus-rude preference rows."""
    return polite_rude_pairs(24)


def read_json(path: str | Path) -> dict:
    return json.loads(Path(path).read_text())


@pytest.fixture(scope="session")
def trained_adapter(tiny_model, tmp_path_factory) -> str:
    """An adapter DPO-trained on the tiny model to prefer polite answers (a few seconds)."""
    from tuning.engine.dpo import train_dpo

    output = tmp_path_factory.mktemp("trained") / "adapter"
    train_dpo(
        source=tiny_model,
        rows=polite_rude_pairs(32, seed=7),
        output_dir=output,
        config={"learning_rate": 1e-2, "epochs": 2, "batch_size": 4, "lora": {"r": 4, "alpha": 8}},
    )
    return str(output)
