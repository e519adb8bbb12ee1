"""DPO throughput: our engine's DPO path against a plain TRL `DPOTrainer` script, in one run.

Both arms train a fresh LoRA adapter (same rank, alpha, targets, seed) on the default model
(SmolLM2-135M-Instruct) with the same HH preference pairs from /work/shared/data, the same batch
size, learning rate and schedule (AdamW, linear decay, no warm-up, gradients clipped at 1.0),
beta, sigmoid loss, maximum length, precision (fp32 on CPU, bf16 on CUDA) and gradient
checkpointing setting, for one epoch over the same rows (rows longer than the maximum length
are left out beforehand, so neither side truncates). The TRL arm is TRL's documented recipe:
`DPOTrainer(model, args=DPOConfig(...), train_dataset=..., peft_config=...)`, random batches,
reference forward pass at every step.

Our arm does the same math differently: each pair's prompt runs once for both responses
(shared-prompt packing), pairs are batched with pairs of similar length (little padding), and the
reference log-probabilities are computed once, before training, with the same batches. The loss
curves of both arms are printed side by side; their batches differ (random vs length-grouped), so
step-by-step values differ, but their level and trend must agree (compare the quarter means).

Each arm is timed over its whole call: dataset preparation, the reference pass (ours) and
training. samples/s = pairs trained / seconds.

    python benchmarks/dpo_throughput.py                 # 64 pairs, batch 4: 16 steps per arm
    python benchmarks/dpo_throughput.py --steps 40      # longer loss curves (about 20 minutes)
    python benchmarks/dpo_throughput.py --smoke         # a tiny random model, made-up pairs, 2 steps:
                                                        # does it still run?

Last line: {"ratio", "ours_samples_per_s", "trl_samples_per_s", "seconds", ...}.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

HH = Path("/work/shared/data/hh-rlhf-harmless-base-test.jsonl.gz")
SOURCE = "smollm2-135m-instruct"


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=16, help="optimisation steps per arm (one epoch)")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--learning-rate", type=float, default=2e-4)
    parser.add_argument("--beta", type=float, default=0.1)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--lora-r", type=int, default=16)
    parser.add_argument("--gradient-checkpointing", action="store_true", help="on both arms")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--first", choices=("trl", "ours"), default="trl", help="which arm runs first")
    parser.add_argument("--smoke", action="store_true",
                        help="a tiny random model, made-up pairs, tiny sizes: checks that the script runs (the test suite does)")
    args = parser.parse_args()
    if args.smoke:
        # Options given on the command line still win.
        parser.set_defaults(steps=2, batch_size=2, max_length=64, lora_r=4)
        args = parser.parse_args()
    return args


def hh_rows() -> list[dict]:
    """Anthropic HH pairs as trl-conversational rows (pairs whose prompts differ are skipped)."""

    def parse(text: str) -> list[dict]:
        parts = re.split(r"\n\n(Human|Assistant): ", text)
        return [
            {"role": "user" if parts[i] == "Human" else "assistant", "content": parts[i + 1].strip()}
            for i in range(1, len(parts) - 1, 2)
        ]

    rows = []
    with gzip.open(HH, "rt") as handle:
        for line in handle:
            record = json.loads(line)
            chosen, rejected = parse(record["chosen"]), parse(record["rejected"])
            if not chosen or chosen[:-1] != rejected[:-1] or chosen[-1]["role"] != "assistant":
                continue
            if chosen[-1]["content"] == rejected[-1]["content"] or chosen[0]["role"] != "user":
                continue
            rows.append({"prompt": chosen[:-1], "chosen": [chosen[-1]], "rejected": [rejected[-1]]})
    return rows


def smoke_rows(n: int) -> list[dict]:
    """Made-up short pairs as trl-conversational rows, for --smoke (no HH file needed)."""
    from benchmarks.job_overhead import _pairs

    return [
        {"prompt": messages, "chosen": [{"role": "assistant", "content": chosen}],
         "rejected": [{"role": "assistant", "content": rejected}]}
        for messages, chosen, rejected in _pairs(n, "tiny")
    ]


def select_rows(args, tokenizer) -> list[dict]:
    """steps * batch_size pairs, seeded, each fitting max_length whole (nobody truncates)."""
    import random

    from tuning.engine.chat import encode_pairs

    rows = smoke_rows(args.steps * args.batch_size * 2) if args.smoke else hh_rows()
    random.Random(args.seed).shuffle(rows)
    wanted = args.steps * args.batch_size
    pairs, _ = encode_pairs(tokenizer, rows[: wanted * 2], max_length=args.max_length, truncation="drop")
    chosen = [rows[p.index] for p in pairs][:wanted]
    if len(chosen) < wanted:
        raise SystemExit(f"only {len(chosen)} HH pairs fit max_length={args.max_length}; lower --steps")
    return chosen


def run_trl(args, rows, folder: Path, device: str, dtype) -> dict:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, PrinterCallback, TrainerCallback
    from trl import DPOConfig, DPOTrainer

    from tuning.engine.adapters import DEFAULT_TARGETS
    from tuning.engine.loading import load_tokenizer

    step_times: list[float] = []

    class StepClock(TrainerCallback):
        def on_step_begin(self, *a, **k):
            self.started = time.perf_counter()

        def on_step_end(self, *a, **k):
            step_times.append(time.perf_counter() - self.started)

    started = time.perf_counter()
    tokenizer = load_tokenizer(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype).to(device)
    scratch = tempfile.TemporaryDirectory(prefix="trl-dpo-bench-")
    config = DPOConfig(
        output_dir=scratch.name,
        per_device_train_batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        lr_scheduler_type="linear",
        warmup_steps=0,
        weight_decay=0.0,
        max_grad_norm=1.0,
        num_train_epochs=1,
        beta=args.beta,
        loss_type=["sigmoid"],
        max_length=args.max_length,
        bf16=dtype == torch.bfloat16,
        use_cpu=device == "cpu",
        gradient_checkpointing=args.gradient_checkpointing,
        seed=args.seed,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        disable_tqdm=True,
    )
    peft_config = LoraConfig(
        r=args.lora_r, lora_alpha=2 * args.lora_r, lora_dropout=0.0, target_modules=list(DEFAULT_TARGETS), task_type="CAUSAL_LM"
    )
    trainer = DPOTrainer(
        model=model,
        args=config,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=[StepClock()],
    )
    trainer.remove_callback(PrinterCallback)
    trainer.train()
    seconds = time.perf_counter() - started
    scratch.cleanup()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    return {"seconds": seconds, "losses": losses, "steps": trainer.state.global_step, "step_times": step_times}


def run_ours(args, rows, source: str, device: str, dtype) -> dict:
    from tuning.engine.dpo import train_dpo

    step_times: list[float] = []
    last = [time.perf_counter()]

    def progress(event: dict) -> None:
        if event.get("phase") == "train":
            now = time.perf_counter()
            step_times.append(now - last[0])
            last[0] = now
        else:
            last[0] = time.perf_counter()

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ours-dpo-bench-") as scratch:
        result = train_dpo(
            source=source,
            rows=rows,
            output_dir=Path(scratch) / "adapter",
            config={
                "batch_size": args.batch_size,
                "learning_rate": args.learning_rate,
                "beta": args.beta,
                "loss_type": "sigmoid",
                "max_length": args.max_length,
                "epochs": 1,
                "seed": args.seed,
                "gradient_checkpointing": args.gradient_checkpointing,
                "lora": {"r": args.lora_r, "alpha": 2 * args.lora_r, "dropout": 0.0},
            },
            device=device,
            dtype=dtype,
            progress=progress,
        )
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "losses": [event["loss"] for event in result["history"]],
        "steps": result["steps"],
        "step_times": step_times,
    }


def quarter_means(losses: list[float]) -> list[float]:
    size = max(1, len(losses) // 4)
    return [round(statistics.fmean(losses[i : i + size]), 4) for i in range(0, size * 4, size) if losses[i : i + size]]


def main() -> None:
    args = _args()
    if not args.smoke and not HH.is_file():
        print(json.dumps({"skipped": f"{HH} is missing"}))
        return
    import torch

    from tuning.engine.loading import load_tokenizer, materialise, resolve_device_dtype

    if args.threads:
        torch.set_num_threads(args.threads)
    device, dtype = resolve_device_dtype()
    source = SOURCE
    if args.smoke:
        from tests.tuning.engine.conftest import build_tiny_model

        # Removed when the interpreter exits.
        scratch = tempfile.TemporaryDirectory(prefix="dpo-throughput-smoke-")
        source = str(build_tiny_model(Path(scratch.name) / "tiny", seed=1))
    folder = materialise(source)
    rows = select_rows(args, load_tokenizer(folder))
    n = len(rows)
    load_before = os.getloadavg()
    print(f"{n} HH pairs, batch {args.batch_size}, lr {args.learning_rate}, max_length {args.max_length}, "
          f"{device}/{str(dtype).replace('torch.', '')}, gradient checkpointing {args.gradient_checkpointing}, "
          f"torch threads {torch.get_num_threads()}, load average {load_before[0]:.2f}", flush=True)

    results = {}
    for arm in (["trl", "ours"] if args.first == "trl" else ["ours", "trl"]):
        print(f"running {arm}...", flush=True)
        if arm == "trl":
            results[arm] = run_trl(args, rows, folder, device, dtype)
        else:
            results[arm] = run_ours(args, rows, source, device, dtype)
        print(f"  {arm}: {results[arm]['steps']} steps in {results[arm]['seconds']:.1f} s", flush=True)
    ours, trl = results["ours"], results["trl"]
    ours_rate, trl_rate = n / ours["seconds"], n / trl["seconds"]

    print("\nstep   ours loss   trl loss")
    for step, (a, b) in enumerate(zip(ours["losses"], trl["losses"], strict=False), start=1):
        print(f"{step:4d}   {a:9.4f}   {b:8.4f}")
    print(f"\nloss by quarter   ours {quarter_means(ours['losses'])}   trl {quarter_means(trl['losses'])}")
    print(f"median step       ours {statistics.median(ours['step_times']):.2f} s   "
          f"trl {statistics.median(trl['step_times']):.2f} s")
    print(f"samples/s         ours {ours_rate:.3f}   trl {trl_rate:.3f}   ratio {ours_rate / trl_rate:.2f}x")
    load_after = os.getloadavg()
    print(json.dumps({
        "ratio": round(ours_rate / trl_rate, 3),
        "ours_samples_per_s": round(ours_rate, 4),
        "trl_samples_per_s": round(trl_rate, 4),
        "seconds": round(ours["seconds"] + trl["seconds"], 1),
        "ours_seconds": round(ours["seconds"], 1),
        "trl_seconds": round(trl["seconds"], 1),
        "median_step_ratio": round(statistics.median(trl["step_times"]) / statistics.median(ours["step_times"]), 3),
        "pairs": n,
        "steps": ours["steps"],
        "trl_steps": trl["steps"],
        "batch_size": args.batch_size,
        "ours_loss_quarters": quarter_means(ours["losses"]),
        "trl_loss_quarters": quarter_means(trl["losses"]),
        "ours_losses": [round(x, 4) for x in ours["losses"]],
        "trl_losses": [round(x, 4) for x in trl["losses"]],
        "device": device,
        "threads": torch.get_num_threads(),
        "load_average": [round(load_before[0], 2), round(load_after[0], 2)],
    }))


if __name__ == "__main__":
    main()
