"""Generation throughput: N samples for each of 32 prompts, batched versus one generate() per sample.

Both arms sample from the default model (SmolLM2-135M-Instruct) with the same settings
(temperature 0.7, top-p 0.95, the same maximum of new tokens) on 32 of the engine's everyday
prompts rendered with the chat template. The batched arm is the engine's
`tuning.engine.generation.generate_with`: all prompt x sample jobs sorted by prompt length, left
padded, in batches of `--batch-size` sequences with the KV cache. The plain arm calls
`model.generate` once per sample (batch of one, KV cache on too). Tokens are the generated tokens
of each sample up to and including its end token.

The plain arm is slow, so by default it runs on the first 8 prompts (64 calls) and its rate is
measured there: tokens per second is a rate, and the prompts are alike. `--plain-prompts 32`
measures it on all of them.

    python benchmarks/generation.py
    python benchmarks/generation.py --max-new-tokens 32 --plain-prompts 4   # a quick look
    python benchmarks/generation.py --smoke     # a tiny random model, 2 prompts: does it still run?

Last line: {"ratio", "batched_tokens_per_s", "plain_tokens_per_s", "seconds", ...}.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SOURCE = "smollm2-135m-instruct"


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("-n", type=int, default=8, help="samples per prompt")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64, help="sequences per batched generate call")
    parser.add_argument("--plain-prompts", type=int, default=8, help="prompts the one-call-per-sample arm runs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--smoke", action="store_true",
                        help="a tiny random model, tiny sizes: checks that the script runs (the test suite does)")
    args = parser.parse_args()
    if args.smoke:
        # Options given on the command line still win.
        parser.set_defaults(prompts=2, n=2, max_new_tokens=8, batch_size=4, plain_prompts=1)
        args = parser.parse_args()
    return args


def plain_arm(model, tokenizer, prompts, args) -> tuple[int, float]:
    """One model.generate call per sample; returns (tokens generated, seconds)."""
    import torch

    from tuning.engine.chat import prompt_ids
    from tuning.engine.generation import stop_token_ids

    stops = stop_token_ids(model, tokenizer)
    tokens = 0
    torch.manual_seed(args.seed)
    started = time.perf_counter()
    for prompt in prompts:
        ids = torch.tensor([prompt_ids(tokenizer, prompt)])
        for _ in range(args.n):
            with torch.no_grad():
                output = model.generate(
                    input_ids=ids,
                    attention_mask=torch.ones_like(ids),
                    do_sample=True,
                    temperature=0.7,
                    top_p=0.95,
                    top_k=0,
                    max_new_tokens=args.max_new_tokens,
                    pad_token_id=tokenizer.pad_token_id,
                    eos_token_id=stops,
                    use_cache=True,
                )
            new = output[0, ids.shape[1] :].tolist()
            end = next((k for k, t in enumerate(new) if t in stops), None)
            tokens += len(new) if end is None else end + 1
    return tokens, time.perf_counter() - started


def main() -> None:
    args = _args()
    import torch

    from tuning.engine.evaluation import everyday_prompts
    from tuning.engine.generation import generate_with
    from tuning.engine.loading import load_base

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.smoke:
        from tests.tuning.engine.conftest import build_tiny_model

        # Removed when the interpreter exits.
        scratch = tempfile.TemporaryDirectory(prefix="generation-smoke-")
        source = str(build_tiny_model(Path(scratch.name) / "tiny", seed=1))
    else:
        source = SOURCE
    model, tokenizer = load_base(source)
    prompts = everyday_prompts()[: args.prompts]
    load_before = os.getloadavg()
    print(f"{len(prompts)} prompts x {args.n} samples, max {args.max_new_tokens} new tokens, batch {args.batch_size}, "
          f"torch threads {torch.get_num_threads()}, load average {load_before[0]:.2f}", flush=True)

    started = time.perf_counter()
    results = generate_with(
        model,
        tokenizer,
        prompts,
        n=args.n,
        temperature=0.7,
        top_p=0.95,
        max_new_tokens=args.max_new_tokens,
        seed=args.seed,
        batch_size=args.batch_size,
    )
    batched_seconds = time.perf_counter() - started
    batched_tokens = sum(sample["tokens"] for samples in results for sample in samples)
    stopped = sum(sample["finish_reason"] == "stop" for samples in results for sample in samples)
    batched_rate = batched_tokens / batched_seconds
    print(f"batched: {batched_tokens} tokens in {batched_seconds:.1f} s = {batched_rate:.1f} tokens/s "
          f"({stopped} of {len(prompts) * args.n} samples ended on their own)", flush=True)

    plain_tokens, plain_seconds = plain_arm(model, tokenizer, prompts[: args.plain_prompts], args)
    plain_rate = plain_tokens / plain_seconds
    print(f"one generate per sample ({args.plain_prompts} prompts): {plain_tokens} tokens in {plain_seconds:.1f} s "
          f"= {plain_rate:.1f} tokens/s", flush=True)
    print(f"ratio {batched_rate / plain_rate:.2f}x")
    load_after = os.getloadavg()
    print(json.dumps({
        "ratio": round(batched_rate / plain_rate, 3),
        "batched_tokens_per_s": round(batched_rate, 2),
        "plain_tokens_per_s": round(plain_rate, 2),
        "seconds": round(batched_seconds + plain_seconds, 1),
        "batched_seconds": round(batched_seconds, 1),
        "plain_seconds": round(plain_seconds, 1),
        "prompts": len(prompts),
        "n": args.n,
        "plain_prompts": args.plain_prompts,
        "max_new_tokens": args.max_new_tokens,
        "batch_size": args.batch_size,
        "threads": torch.get_num_threads(),
        "load_average": [round(load_before[0], 2), round(load_after[0], 2)],
    }))


if __name__ == "__main__":
    main()
