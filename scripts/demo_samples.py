"""Regenerates prefs/demo/demo_samples.jsonl: the default model's own answers to the demo's
training prompts, which the demo's simulated reviewer labels when the demo is seeded.

    .venv/bin/python scripts/demo_samples.py [--k 4] [--max-new-tokens 192]

The answers are on-policy for the bare default model (the demo's starting point), sampled as a
round samples them (temperature 0.8, top-p 0.95, seeded), so the first round learns from the
kind of answer it will be asked to improve. Takes about 10 minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEMO = ROOT / "prefs" / "demo"


def main() -> None:
    from tuning.engine.generation import generate
    from tuning.engine.threads import configure_torch_threads

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=4, help="answers per prompt")
    parser.add_argument("--max-new-tokens", type=int, default=192)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    configure_torch_threads()

    rows = [json.loads(line) for line in (DEMO / "demo_prompts.jsonl").read_text().splitlines() if line.strip()]
    rows = [r for r in rows if r["split"] == "train"]
    started = time.perf_counter()
    samples = generate(
        source="smollm2-135m-instruct",
        prompts=[r["prompt"] for r in rows],
        n=args.k,
        temperature=0.8,
        top_p=0.95,
        max_new_tokens=args.max_new_tokens,
        seed=args.seed,
        batch_size=32,
        cache_dir=ROOT / "var" / "models",
    )
    with open(DEMO / "demo_samples.jsonl", "w", encoding="utf-8") as fh:
        for row, answers in zip(rows, samples, strict=True):
            out = {
                "id": row["id"],
                "prompt": row["prompt"],
                "model": "SmolLM2-135M-Instruct",
                "sampling": {"temperature": 0.8, "top_p": 0.95, "max_new_tokens": args.max_new_tokens, "seed": args.seed},
                "samples": [{"text": a["text"], "tokens": a["tokens"], "finish_reason": a["finish_reason"]} for a in answers],
            }
            fh.write(json.dumps(out, ensure_ascii=False) + "\n")
    print(f"{len(rows)} prompts x {args.k} answers in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
