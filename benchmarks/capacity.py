"""Capacity: LoRA DPO throughput and memory per base model and GPU, from measured FLOPs.

    python benchmarks/capacity.py                   # the estimate table (about a minute, no weights)
    python benchmarks/capacity.py --measure         # also measure this machine's CPU paths
    python benchmarks/capacity.py --tokens 1024 --batch 8 --mfu 0.4 --lora-r 64
    python benchmarks/capacity.py --smoke           # one model, 32 tokens, --measure on a tiny
                                                    # random model: does it still run?

Method (docs/capacity.md explains it; every number below can be redone with this script):

1. FLOPs and memory are *measured*, not taken from a rule of thumb: each architecture is built
   from its published config on PyTorch's meta device (shapes only, no weights, no download),
   wrapped in the same LoRA adapter the engine makes (tuning.engine.adapters.DEFAULT_TARGETS,
   rank r), and run forward and backward on one sequence under torch's FlopCounterMode, with a
   saved-tensors hook adding up the activations autograd keeps (weights excluded, and the S x S
   attention matrices too, which a GPU's flash attention never stores). A 1-layer
   and a 2-layer model give the per-layer cost and the rest (embeddings, head), so the full
   depth costs `rest + layers * per_layer` without building it.
2. One DPO pair is one packed sequence of `--tokens` tokens (the engine runs the prompt once for
   both answers). Training it costs a policy forward and backward (LoRA: the backward computes
   activation gradients only, about one forward) plus one reference forward (computed once per
   pair), plus one more forward with gradient checkpointing.
3. Samples per hour per GPU = 3600 x peak bf16 FLOP/s x MFU / FLOPs per pair. Peak is the
   datasheet's dense bf16 figure; MFU (the share of it a real run achieves) is an assumption,
   `--mfu`, 0.30 by default: measure yours and pass it.
4. Memory = bf16 weights + LoRA (fp32 weights, gradients and two Adam moments: 16 bytes a
   parameter) + activations for `--batch` pairs (with and without gradient checkpointing, where
   only each layer's input is kept and one layer is recomputed at a time) + 1.5 GiB for the CUDA
   context, cuBLAS workspace and allocator slack.

The last line is one JSON object: {"models": {...}, "cpu": {...} | null}.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GIB = 2**30
# CUDA context, cuBLAS workspace and the caching allocator's slack, in bytes (a typical figure).
OVERHEAD_BYTES = int(1.5 * GIB)

# Published configs (the models' config.json), so nothing is downloaded. `params` is the
# published total, to check the build against.
ARCHS = {
    "SmolLM2-135M": dict(arch="llama", hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                         num_attention_heads=9, num_key_value_heads=3, vocab_size=49152, tie_word_embeddings=True, params=134.5e6),
    "Qwen2.5-0.5B": dict(arch="qwen2", hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                         num_attention_heads=14, num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True, params=0.494e9),
    "Qwen2.5-1.5B": dict(arch="qwen2", hidden_size=1536, intermediate_size=8960, num_hidden_layers=28,
                         num_attention_heads=12, num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True, params=1.54e9),
    "Qwen2.5-7B": dict(arch="qwen2", hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
                       num_attention_heads=28, num_key_value_heads=4, vocab_size=152064, tie_word_embeddings=False, params=7.62e9),
    "Llama-3.1-8B": dict(arch="llama", hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                         num_attention_heads=32, num_key_value_heads=8, vocab_size=128256, tie_word_embeddings=False, params=8.03e9),
}
# Dense bf16 tensor-core peaks from the vendors' datasheets (no sparsity), FLOP/s, and memory.
GPUS = {
    "L4 24GB": (121e12, 24 * GIB),
    "A100 80GB": (312e12, 80 * GIB),
    "H100 SXM 80GB": (989e12, 80 * GIB),
}


# -- measuring FLOPs and activations on the meta device ------------------------------------------


def _build(spec: dict, layers: int, lora_r: int):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, Qwen2Config

    from tuning.engine.adapters import DEFAULT_TARGETS

    kwargs = {k: v for k, v in spec.items() if k not in ("arch", "params")}
    kwargs["num_hidden_layers"] = layers
    config = (LlamaConfig if spec["arch"] == "llama" else Qwen2Config)(**kwargs)
    # SDPA, as the engine runs: no attention matrix is kept for the backward pass.
    config._attn_implementation = "sdpa"
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model = get_peft_model(model, LoraConfig(r=lora_r, lora_alpha=2 * lora_r, target_modules=list(DEFAULT_TARGETS)))
    return model


def _cost(spec: dict, layers: int, tokens: int, lora_r: int) -> dict:
    """FLOPs (forward, backward) and saved activation bytes of one `tokens`-long sequence."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    model = _build(spec, layers, lora_r)
    params = {id(p) for p in model.parameters()}
    saved: dict[int, int] = {}
    keep = []

    def pack(tensor):
        base = tensor._base if tensor._base is not None else tensor
        # Attention matrices (S x S per head) and the causal mask: on the meta device attention
        # runs PyTorch's math kernel, which keeps them; on a GPU the flash / memory-efficient
        # kernels keep only the output and a log-sum-exp per row, so they are left out.
        square = base.dim() >= 2 and base.shape[-1] == tokens and base.shape[-2] == tokens
        if id(base) not in params and not square:
            saved[id(base)] = base.numel() * base.element_size()
            keep.append(base)  # keeps ids unique while counting
        return tensor

    ids = torch.zeros(1, tokens, dtype=torch.long, device="meta")
    with FlopCounterMode(display=False) as counter:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            logits = model(input_ids=ids).logits
            # The engine takes log-probabilities in fp32.
            loss = torch.log_softmax(logits.float(), dim=-1).mean()
        forward = counter.get_total_flops()
        loss.backward()
        total = counter.get_total_flops()
    return {
        "params": sum(p.numel() for p in model.base_model.model.parameters() if not p.requires_grad),
        "lora_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "forward": forward,
        "backward": total - forward,
        "activations": sum(saved.values()),
    }


def measure_arch(name: str, *, tokens: int, lora_r: int) -> dict:
    spec = ARCHS[name]
    one, two = _cost(spec, 1, tokens, lora_r), _cost(spec, 2, tokens, lora_r)
    layers = spec["num_hidden_layers"]

    def full(key: str) -> float:
        per_layer = two[key] - one[key]
        return one[key] - per_layer + layers * per_layer

    per_layer_act = two["activations"] - one["activations"]
    rest_act = one["activations"] - per_layer_act
    return {
        "params": full("params"),
        "published_params": spec["params"],
        "lora_params": full("lora_params"),
        "forward_flops_per_token": full("forward") / tokens,
        "backward_flops_per_token": full("backward") / tokens,
        "activations_bytes": full("activations"),
        # Checkpointing keeps each layer's input (bf16 hidden states) and recomputes one layer.
        "activations_gc_bytes": layers * tokens * spec["hidden_size"] * 2 + per_layer_act + rest_act,
    }


def estimate(name: str, *, tokens: int, batch: int, lora_r: int, mfu: float) -> dict:
    cost = measure_arch(name, tokens=tokens, lora_r=lora_r)
    fwd, bwd = cost["forward_flops_per_token"], cost["backward_flops_per_token"]
    # Policy forward + backward + the reference forward; checkpointing adds one more forward.
    per_pair = tokens * (2 * fwd + bwd)
    per_pair_gc = tokens * (3 * fwd + bwd)
    fixed = cost["params"] * 2 + cost["lora_params"] * 16 + OVERHEAD_BYTES
    memory = fixed + batch * cost["activations_bytes"]
    memory_gc = fixed + batch * cost["activations_gc_bytes"]
    gpus = {}
    for gpu, (peak, capacity) in GPUS.items():
        checkpointing = memory > capacity
        fits = memory_gc <= capacity
        flops = per_pair_gc if checkpointing else per_pair
        gpus[gpu] = {
            "fits": fits,
            "gradient_checkpointing": checkpointing,
            "samples_per_hour": round(3600 * peak * mfu / flops) if fits else None,
        }
    return {
        **{k: cost[k] for k in ("params", "published_params", "lora_params")},
        "fwd_gflops_per_token": round(fwd / 1e9, 3),
        "bwd_over_fwd": round(bwd / fwd, 3),
        "flops_over_2n": round(fwd / (2 * cost["params"]), 3),
        "tflops_per_pair": round(per_pair / 1e12, 3),
        "weights_gib": round(cost["params"] * 2 / GIB, 2),
        "lora_state_gib": round(cost["lora_params"] * 16 / GIB, 3),
        "activations_gib_per_pair": round(cost["activations_bytes"] / GIB, 3),
        "activations_gc_gib_per_pair": round(cost["activations_gc_bytes"] / GIB, 3),
        "memory_gib": round(memory / GIB, 1),
        "memory_gc_gib": round(memory_gc / GIB, 1),
        "gpus": gpus,
    }


# -- measuring this machine's CPU paths with the real default model --------------------------------


def _hh_rows(count: int) -> list[dict]:
    import gzip

    from prefs.formats import hh

    path = Path(os.environ.get("PREFLOOP_HH_FILE", "/work/shared/data/hh-rlhf-harmless-base-test.jsonl.gz"))
    if not path.exists():
        raise SystemExit(f"{path} is missing; set PREFLOOP_HH_FILE to the HH test file")
    rows = []
    with gzip.open(path, "rt") as handle:
        for line in handle:
            record = hh.parse(json.loads(line))
            # HH rows name the preferred answer (0: a, 1: b).
            chosen, rejected = (record.a, record.b) if record.preference in (0, "a", "A") else (record.b, record.a)
            rows.append({"prompt": record.prompt, "chosen": chosen.text, "rejected": rejected.text})
            if len(rows) == count:
                break
    return rows


def _smoke_rows(count: int) -> list[dict]:
    """Made-up short pairs in _hh_rows' shape, for --smoke (no HH file needed)."""
    from benchmarks.job_overhead import _pairs

    return [{"prompt": messages, "chosen": chosen, "rejected": rejected} for messages, chosen, rejected in _pairs(count, "tiny")]


def measure_cpu(*, steps: int, batch: int, smoke: bool = False) -> dict:
    """DPO pairs/s and generation tokens/s of the default model (SmolLM2-135M) on this CPU.

    With `smoke`, of a tiny random model on made-up pairs: the same calls, in seconds."""
    import torch

    from tuning.engine.dpo import train_dpo
    from tuning.engine.generation import generate
    from tuning.engine.sources import DEFAULT_SOURCE

    cache = Path(os.environ.get("PREFLOOP_MODEL_CACHE", ROOT / "var" / "models"))
    source, pairs, max_length = DEFAULT_SOURCE, _hh_rows, 512
    if smoke:
        from tests.tuning.engine.conftest import build_tiny_model

        # Removed when the interpreter exits.
        scratch = tempfile.TemporaryDirectory(prefix="capacity-smoke-")
        source, pairs, max_length = str(build_tiny_model(Path(scratch.name) / "tiny", seed=1)), _smoke_rows, 64
    rows = pairs(steps * batch)
    # Other work on the machine slows every figure here; the load average says how much there was.
    load_before = os.getloadavg()[0]
    stamps: list[float] = []

    def progress(event: dict) -> None:
        if event.get("phase") == "train" and "loss" in event:
            stamps.append(time.perf_counter())

    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        result = train_dpo(
            source=source,
            rows=rows,
            output_dir=Path(folder) / "adapter",
            config={"batch_size": batch, "max_steps": steps, "max_length": max_length, "heldout_fraction": 0.0},
            cache_dir=cache,
            progress=progress,
        )
        wall = time.perf_counter() - started
    # Steady state: from the end of the first step to the end of the last (load, reference pass
    # and the first step's warm-up left out).
    steady = (len(stamps) - 1) * batch / (stamps[-1] - stamps[0]) if len(stamps) > 1 else None
    tokens_per_s = [e["tokens_per_s"] for e in result["history"] if e.get("tokens_per_s")]

    prompts = [row["prompt"] for row in pairs(16)]
    started = time.perf_counter()
    samples = generate(source=source, prompts=prompts, n=1, max_new_tokens=8 if smoke else 64, temperature=0.7,
                       seed=0, batch_size=16, cache_dir=cache)
    gen_seconds = time.perf_counter() - started
    generated = sum(s["tokens"] for row in samples for s in row)
    return {
        "threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
        "load_average_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "dpo_batch": batch,
        "dpo_steps": steps,
        "dpo_samples_per_s": round(steady, 3) if steady else None,
        "dpo_samples_per_s_with_load": result["samples_per_s"],
        "dpo_train_tokens_per_s": round(sum(tokens_per_s) / len(tokens_per_s), 1) if tokens_per_s else None,
        "dpo_seconds": round(wall, 1),
        "generate_prompts": len(prompts),
        "generate_tokens": generated,
        "generate_tokens_per_s": round(generated / gen_seconds, 1),
        "generate_seconds_with_load": round(gen_seconds, 1),
    }


# -- printing -------------------------------------------------------------------------------------


def print_table(models: dict, *, tokens: int, batch: int, mfu: float) -> None:
    print(f"LoRA DPO, {tokens} tokens per packed pair, batch {batch} pairs, MFU {mfu:.2f}\n")
    print(f"{'model':<14} {'params':>7} {'GF/tok':>7} {'weights':>8} {'act/pair':>9} {'act/pair GC':>12} "
          f"{'memory':>8} {'mem GC':>7}  " + "  ".join(f"{g:>15}" for g in GPUS))
    for name, row in models.items():
        cells = []
        for gpu in GPUS:
            g = row["gpus"][gpu]
            cells.append(f"{'-' if not g['fits'] else format(g['samples_per_hour'], ',') + (' GC' if g['gradient_checkpointing'] else ''):>15}")
        print(f"{name:<14} {row['params'] / 1e9:>6.2f}B {row['fwd_gflops_per_token']:>7.2f} {row['weights_gib']:>6.1f}Gi "
              f"{row['activations_gib_per_pair']:>7.2f}Gi {row['activations_gc_gib_per_pair']:>10.3f}Gi "
              f"{row['memory_gib']:>6.1f}Gi {row['memory_gc_gib']:>5.1f}Gi  " + "  ".join(cells))
    print("\nsamples per hour per GPU; '-' = does not fit even with gradient checkpointing; GC = needs it")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=512, help="tokens of one packed pair (prompt + both answers)")
    parser.add_argument("--batch", type=int, default=4, help="pairs per step (the DPO job's default)")
    parser.add_argument("--lora-r", type=int, default=16, help="LoRA rank (the engine's default)")
    parser.add_argument("--mfu", type=float, default=0.30, help="assumed share of the GPU's peak achieved")
    parser.add_argument("--models", default=",".join(name for name in ARCHS if name != "SmolLM2-135M"))
    parser.add_argument("--measure", action="store_true", help="also measure DPO and generation on this CPU")
    parser.add_argument("--steps", type=int, default=8, help="DPO steps measured with --measure")
    parser.add_argument("--smoke", action="store_true",
                        help="one model, tiny sizes, --measure on a tiny random model: checks that the script runs (the test suite does)")
    args = parser.parse_args(argv)
    if args.smoke:
        # Options given on the command line still win.
        parser.set_defaults(tokens=32, batch=2, models="Qwen2.5-0.5B", measure=True, steps=2)
        args = parser.parse_args(argv)

    models = {name: estimate(name, tokens=args.tokens, batch=args.batch, lora_r=args.lora_r, mfu=args.mfu)
              for name in args.models.split(",")}
    print_table(models, tokens=args.tokens, batch=args.batch, mfu=args.mfu)
    cpu = None
    if args.measure:
        cpu = measure_cpu(steps=args.steps, batch=args.batch, smoke=args.smoke)
        small = estimate("SmolLM2-135M", tokens=args.tokens, batch=args.batch, lora_r=args.lora_r, mfu=args.mfu)
        cpu["smollm2_tflops_per_pair_at_tokens"] = small["tflops_per_pair"]
        print("\nthis machine's CPU:", json.dumps(cpu))
    print(json.dumps({"tokens": args.tokens, "batch": args.batch, "mfu": args.mfu, "lora_r": args.lora_r,
                      "models": models, "cpu": cpu}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
