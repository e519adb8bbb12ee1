"""``python -m tuning.engine {generate,dpo,reward-model,rejection-sample,evaluate} ...``

The engine from a shell, with no database: inputs are JSON / JSONL files, the result is one JSON
document on stdout (or in ``--output``), progress bars go to stderr. Every setting of a config
dataclass is a flag (``--learning-rate``, ``--lora-r``...). Exit status: 0 done, 2 bad input,
3 training diverged, 130 stopped (Ctrl-C asks the engine to stop cleanly at the end of a step).

``dpo`` also runs as several processes, one per card, under a launcher:
``accelerate launch --num_processes N -m tuning.engine dpo ...`` (``torchrun --nproc_per_node N``
too). Only rank 0 draws progress bars, prints errors and writes the result.

For a program that runs the engine as a child (the Celery worker does, see
tuning/services/launcher.py): ``--config FILE`` takes the settings as one JSON object,
``--progress-jsonl FILE`` appends every progress event as one JSON line (rank 0 only), and
``--die-with-parent`` ends the engine, every rank included, when that program dies.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import signal
import sys
import typing
from pathlib import Path
from typing import Any

from tuning.engine.distributed import (
    die_with_parent,
    is_main_process,
    launch,
    launched_world_size,
    leave,
)
from tuning.engine.errors import BadInput, Cancelled, EngineError, TrainingDiverged
from tuning.engine.sources import DEFAULT_SOURCE

# -- reading inputs ----------------------------------------------------------------------------


def read_records(path: str) -> list:
    """A JSON list, or JSON Lines (one value per line), from a file ("-" = stdin)."""
    text = sys.stdin.read() if path == "-" else _read_text(path)
    stripped = text.strip()
    if not stripped:
        return []
    if stripped.startswith("["):
        try:
            value = json.loads(stripped)
        except json.JSONDecodeError as error:
            raise BadInput(f"{path}: not valid JSON ({error})") from error
        return value
    records = []
    for number, line in enumerate(stripped.splitlines(), start=1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise BadInput(f"{path}, line {number}: not valid JSON ({error})") from error
    return records


def _read_text(path: str) -> str:
    file = Path(path)
    if not file.is_file():
        raise BadInput(f"input file {path} does not exist")
    return file.read_text()


def read_prompts(path: str) -> list[list[dict]]:
    """Prompts as conversations: each record is a message list, a string, or has "prompt"/"messages"."""
    prompts = []
    for record in read_records(path):
        if isinstance(record, dict):
            record = record.get("prompt", record.get("messages"))
        if isinstance(record, str):
            record = [{"role": "user", "content": record}]
        prompts.append(record)
    return prompts


# -- config flags from dataclasses -------------------------------------------------------------


def _flag_type(annotation: Any, default: Any):
    text = str(annotation)
    if isinstance(default, bool) or "bool" in text:
        return _boolean
    if isinstance(default, int) or text.startswith("int"):
        return int
    if isinstance(default, float) or text.startswith("float"):
        return float
    return str


def _boolean(value: str) -> bool:
    lowered = value.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def add_config_flags(parser: argparse.ArgumentParser, config_class: type, *, skip: tuple[str, ...] = ()) -> None:
    """One ``--name`` flag per dataclass field (defaults stay the dataclass's)."""
    hints = typing.get_type_hints(config_class)
    group = parser.add_argument_group(f"{config_class.__name__} settings")
    group.add_argument(
        "--config",
        dest="config_file",
        help="a JSON object of these settings (lora as a nested object); the flags below override it",
    )
    for item in dataclasses.fields(config_class):
        if item.name in skip or item.name == "lora":
            continue
        default = item.default if item.default is not dataclasses.MISSING else None
        group.add_argument(
            f"--{item.name.replace('_', '-')}",
            dest=f"cfg_{item.name}",
            type=_flag_type(hints[item.name], default),
            default=None,
            help=f"default: {default}",
        )
    if any(f.name == "lora" for f in dataclasses.fields(config_class)):
        group.add_argument("--lora-r", dest="lora_r", type=int, help="LoRA rank of a fresh adapter")
        group.add_argument("--lora-alpha", dest="lora_alpha", type=int)
        group.add_argument("--lora-dropout", dest="lora_dropout", type=float)
        group.add_argument("--lora-targets", dest="lora_target_modules", help="comma-separated module names")
        group.add_argument("--lora-layers", dest="lora_layers", help="all | last_third | START:END")


def _config_file(path: str | None) -> dict:
    if not path:
        return {}
    try:
        value = json.loads(_read_text(path))
    except json.JSONDecodeError as error:
        raise BadInput(f"{path}: not valid JSON ({error})") from error
    if not isinstance(value, dict):
        raise BadInput(f"{path}: the settings must be one JSON object, got {type(value).__name__}")
    return value


def config_from_args(args: argparse.Namespace) -> dict:
    config = _config_file(getattr(args, "config_file", None))
    flags = {key[4:]: value for key, value in vars(args).items() if key.startswith("cfg_") and value is not None}
    config.update(flags)
    lora = dict(config.get("lora") or {})
    for key in ("r", "alpha", "dropout"):
        if getattr(args, f"lora_{key}", None) is not None:
            lora[key] = getattr(args, f"lora_{key}")
    if getattr(args, "lora_target_modules", None):
        lora["target_modules"] = [m.strip() for m in args.lora_target_modules.split(",") if m.strip()]
    if getattr(args, "lora_layers", None):
        layers = args.lora_layers
        if ":" in layers:
            start, end = layers.split(":", 1)
            layers = [int(start), int(end)]
        lora["layers"] = layers
    if lora:
        config["lora"] = lora
    return config


# -- progress bars -----------------------------------------------------------------------------


class ProgressStream:
    """Progress events as JSON Lines in a file, for a program that watches the engine run.

    Each event is written and flushed whole, one line each, so a reader that stops at the last
    newline never sees half an event. The callback never asks to stop; a watcher that wants the
    engine to stop sends SIGINT, which the progress bars turn into a stop at the end of a step.
    """

    def __init__(self, path: str):
        self.file = open(path, "a", encoding="utf-8")  # noqa: SIM115  (closed by close())

    def __call__(self, event: dict) -> None:
        self.file.write(json.dumps(event, ensure_ascii=False, default=str) + "\n")
        self.file.flush()

    def close(self) -> None:
        self.file.close()


def _both(stream: ProgressStream, bars: ProgressBars):
    def progress(event: dict) -> bool:
        stream(event)
        return bars(event)

    return progress


class ProgressBars:
    """One tqdm bar per phase on stderr; Ctrl-C asks the engine to stop at the next event."""

    SHOWN = ("loss", "rewards/accuracies", "rewards/margins", "accuracy", "tokens_per_s")

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self.bars: dict[str, Any] = {}
        self.stop = False

    def request_stop(self, signum, frame) -> None:
        if self.stop:
            raise KeyboardInterrupt
        self.stop = True
        sys.stderr.write("\nstopping at the end of this step (Ctrl-C again to abort at once)\n")

    def __call__(self, event: dict) -> bool:
        if self.enabled:
            from tqdm import tqdm

            phase = event.get("phase", "work")
            bar = self.bars.get(phase)
            if bar is None:
                for other in self.bars.values():
                    other.close()
                bar = self.bars[phase] = tqdm(total=event.get("total_steps"), desc=phase, file=sys.stderr)
            if event.get("step") is not None:
                bar.n = event["step"]
            shown = {k.split("/")[-1]: f"{v:.4g}" for k, v in event.items() if k in self.SHOWN and isinstance(v, float)}
            if shown:
                bar.set_postfix(shown, refresh=False)
            bar.refresh()
            if event.get("message") and phase not in ("prepare", "generate", "score"):
                tqdm.write(event["message"], file=sys.stderr)
        return self.stop

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


# -- commands ----------------------------------------------------------------------------------


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", default=DEFAULT_SOURCE, help=f"base model (default {DEFAULT_SOURCE})")
    parser.add_argument("--cache-dir", help="where dequantised GGUF models are cached")
    parser.add_argument(
        "--device", help="cpu, cuda, cuda:1, or auto (one model over all cards) (default: cuda if present)"
    )
    parser.add_argument("--dtype", help="float32, bfloat16... (default: bf16 on CUDA, fp32 on CPU)")
    parser.add_argument("--output", help="write the JSON result here instead of stdout")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument(
        "--progress-jsonl", help="append each progress event to this file as one JSON line (rank 0 only)"
    )
    parser.add_argument(
        "--die-with-parent",
        action="store_true",
        help="end (SIGKILL) when the process that started this one dies (Linux); for job runners",
    )


def _runtime(args) -> dict:
    return {"cache_dir": args.cache_dir, "device": args.device, "dtype": args.dtype}


def cmd_generate(args, progress) -> Any:
    from tuning.engine.generation import generate

    return generate(
        source=args.source,
        adapter=args.adapter,
        prompts=read_prompts(args.prompts),
        n=args.n,
        temperature=args.temperature,
        top_p=args.top_p,
        max_new_tokens=args.max_new_tokens,
        seed=args.seed,
        batch_size=args.batch_size,
        system_prompt=args.system_prompt,
        progress=progress,
        **_runtime(args),
    )


def cmd_dpo(args, progress) -> Any:
    from tuning.engine.dpo import train_dpo

    return train_dpo(
        source=args.source,
        adapter=args.adapter,
        rows=read_records(args.rows),
        output_dir=args.output_dir,
        config=config_from_args(args),
        progress=progress,
        resume_from=args.resume_from,
        checkpoint_dir=args.checkpoint_dir,
        **_runtime(args),
    )


def cmd_reward_model(args, progress) -> Any:
    from tuning.engine.reward import train_reward_model

    return train_reward_model(
        source=args.source,
        rows=read_records(args.rows),
        output_dir=args.output_dir,
        config=config_from_args(args),
        progress=progress,
        **_runtime(args),
    )


def _reward_from_args(args) -> dict:
    if args.reward_model and args.implicit_adapter:
        raise BadInput("choose one reward: --reward-model or --implicit-adapter")
    if args.reward_model:
        return {"kind": "model", "path": args.reward_model}
    if args.implicit_adapter:
        return {"kind": "implicit", "adapter": args.implicit_adapter, "parent": args.implicit_parent, "beta": args.beta}
    raise BadInput("a reward is needed: --reward-model PATH or --implicit-adapter PATH [--implicit-parent PATH]")


def cmd_rejection_sample(args, progress) -> Any:
    from tuning.engine.rejection import rejection_sample

    return rejection_sample(
        source=args.source,
        adapter=args.adapter,
        prompts=read_prompts(args.prompts),
        reward=_reward_from_args(args),
        config=config_from_args(args),
        output_dir=args.output_dir,
        progress=progress,
        **_runtime(args),
    )


def cmd_evaluate(args, progress) -> Any:
    from tuning.engine import evaluation

    if not (args.rows or args.prompts or args.drift):
        raise BadInput("nothing to evaluate: give --rows (accuracy), --prompts (before/after) and/or --drift")
    result: dict[str, Any] = {}
    if args.rows:
        result["preference_accuracy"] = evaluation.preference_accuracy(
            source=args.source,
            adapter=args.adapter,
            parent_adapter=args.parent,
            rows=read_records(args.rows),
            beta=args.beta,
            progress=progress,
            **_runtime(args),
        )
    if args.prompts:
        result["before_after"] = evaluation.before_after(
            source=args.source,
            before_adapter=args.parent,
            after_adapter=args.adapter,
            prompts=read_prompts(args.prompts),
            seed=args.seed,
            max_new_tokens=args.max_new_tokens,
            system_prompt=args.system_prompt,
            progress=progress,
            **_runtime(args),
        )
    if args.drift:
        result["drift_kl"] = evaluation.drift_kl(
            source=args.source, adapter=args.adapter, parent_adapter=args.parent, seed=args.seed, progress=progress, **_runtime(args)
        )
    return result


def build_parser() -> argparse.ArgumentParser:
    from tuning.engine.dpo import DPOConfig
    from tuning.engine.rejection import RejectionConfig
    from tuning.engine.reward import RewardConfig

    parser = argparse.ArgumentParser(prog="python -m tuning.engine", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    generate = commands.add_parser("generate", help="sample responses to prompts")
    _common(generate)
    generate.add_argument("--prompts", required=True, help="JSON/JSONL file of prompts")
    generate.add_argument("--adapter")
    generate.add_argument("-n", type=int, default=1, help="samples per prompt")
    generate.add_argument("--temperature", type=float, default=0.7)
    generate.add_argument("--top-p", type=float, default=0.95)
    generate.add_argument("--max-new-tokens", type=int, default=128)
    generate.add_argument("--seed", type=int, default=0)
    generate.add_argument("--batch-size", type=int, default=16)
    generate.add_argument("--system-prompt")
    generate.set_defaults(handler=cmd_generate)

    dpo = commands.add_parser("dpo", help="train an adapter with DPO")
    _common(dpo)
    dpo.add_argument("--rows", required=True, help="JSON/JSONL file of trl-conversational rows")
    dpo.add_argument("--adapter", help="existing adapter to continue from (default: a fresh one)")
    dpo.add_argument("--output-dir", required=True)
    dpo.add_argument("--checkpoint-dir")
    dpo.add_argument("--resume-from", help="a checkpoint folder of this same run")
    dpo.add_argument(
        "--processes",
        type=int,
        default=1,
        help="train data-parallel in this many processes on this host, one per card (default 1)",
    )
    add_config_flags(dpo, DPOConfig)
    dpo.set_defaults(handler=cmd_dpo)

    reward_model = commands.add_parser("reward-model", help="train a reward model")
    _common(reward_model)
    reward_model.add_argument("--rows", required=True)
    reward_model.add_argument("--output-dir", required=True)
    add_config_flags(reward_model, RewardConfig)
    reward_model.set_defaults(handler=cmd_reward_model)

    rejection = commands.add_parser("rejection-sample", help="best-of-N, then SFT or pairs")
    _common(rejection)
    rejection.add_argument("--prompts", required=True)
    rejection.add_argument("--adapter", help="policy adapter (default: the bare base)")
    rejection.add_argument("--reward-model", help="reward model folder")
    rejection.add_argument("--implicit-adapter", help="score with this adapter's implicit reward")
    rejection.add_argument("--implicit-parent", help="... against this parent (default: the base)")
    rejection.add_argument("--beta", type=float, default=0.1)
    rejection.add_argument("--output-dir", help="new adapter folder (mode sft)")
    add_config_flags(rejection, RejectionConfig)
    rejection.set_defaults(handler=cmd_rejection_sample)

    evaluate = commands.add_parser("evaluate", help="accuracy, before/after outputs, drift")
    _common(evaluate)
    evaluate.add_argument("--adapter", help="the adapter to evaluate (the 'after' side)")
    evaluate.add_argument("--parent", help="its parent (the 'before' side; default: the base)")
    evaluate.add_argument("--rows", help="held-out preference rows: implicit-reward accuracy")
    evaluate.add_argument("--prompts", help="prompts: before/after outputs")
    evaluate.add_argument("--drift", action="store_true", help="KL drift on everyday prompts")
    evaluate.add_argument("--beta", type=float, default=0.1)
    evaluate.add_argument("--seed", type=int, default=0)
    evaluate.add_argument("--max-new-tokens", type=int, default=128)
    evaluate.add_argument("--system-prompt", help="system prompt for the before side (baseline)")
    evaluate.set_defaults(handler=cmd_evaluate)
    return parser


def _without_processes(argv: list[str]) -> list[str]:
    """The command line minus ``--processes N``: each rank is one of the processes."""
    kept, skip = [], False
    for item in argv:
        if skip:
            skip = False
        elif item == "--processes":
            skip = True
        elif not item.startswith("--processes="):
            kept.append(item)
    return kept


# Seconds a rank other than 0 waits before reporting an error itself (see _say).
RANK_ERROR_GRACE_S = 5.0


def _say(main_process: bool, text: str) -> None:
    """Report an error once: rank 0 speaks for all ranks, which meet the same error together.

    Another rank waits first; when rank 0 failed the same way the launcher stops this rank
    meanwhile, and only an error of this rank alone is printed, naming the rank.
    """
    if main_process:
        print(text, file=sys.stderr)
        return
    import os
    import time

    time.sleep(RANK_ERROR_GRACE_S)
    print(f"rank {os.environ.get('RANK')}: {text}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.die_with_parent:
        die_with_parent()
    if getattr(args, "processes", 1) != 1 and launched_world_size() == 1:
        if args.processes < 1:
            print(f"error: bad input: --processes must be >= 1, got {args.processes}", file=sys.stderr)
            return 2
        return launch(_without_processes(sys.argv[1:] if argv is None else argv), args.processes)
    # Under a launcher every rank runs this; rank 0 alone speaks (the others' errors are the same).
    main_process = is_main_process()
    bars = ProgressBars(enabled=not args.quiet and main_process)
    stream = ProgressStream(args.progress_jsonl) if args.progress_jsonl and main_process else None
    progress = _both(stream, bars) if stream is not None else bars
    previous = signal.signal(signal.SIGINT, bars.request_stop)
    together = False
    try:
        import warnings

        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        if not main_process:
            hf_logging.set_verbosity_error()
        # PEFT still reads a transformers attribute that transformers 5 deprecated; not ours to fix.
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        result = args.handler(args, progress)
        together = True
    except BadInput as error:
        _say(main_process, f"error: bad input: {error}")
        return 2
    except TrainingDiverged as error:
        # Every rank stops at the same step on a divergence or a cancel (the engine agrees on
        # both), so all of them reach leave() as after a finished run.
        together = True
        _say(main_process, f"error: training diverged: {error}")
        return 3
    except Cancelled as error:
        together = True
        _say(main_process, f"stopped: {error}")
        return 130
    except EngineError as error:
        _say(main_process, f"error: {error}")
        return 1
    finally:
        bars.close()
        if stream is not None:
            stream.close()
        signal.signal(signal.SIGINT, previous)
        leave(together=together)
    if not main_process:
        return 0
    if isinstance(result, dict) and result.get("warning"):
        # Also in the JSON; said on stderr so that a person at the shell sees it.
        print(f"warning: {result['warning']}", file=sys.stderr)
    text = json.dumps(result, indent=2, ensure_ascii=False, default=str)
    if args.output:
        Path(args.output).write_text(text + "\n")
    else:
        print(text)
    return 0
