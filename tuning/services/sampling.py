"""Jobs that sample answers: comparisons for reviewers (generate) and rejection sampling."""

from __future__ import annotations

import shutil
from pathlib import Path

from django.conf import settings

from prefs.models import Comparison, Prompt
from prefs.services.comparisons import CandidateSpec, comparison_create
from tuning.engine.errors import BadInput
from tuning.models import Adapter, Job
from tuning.services.adapters import adapter_local_dir
from tuning.services.progress import JobReporter
from tuning.services.runner import Outcome


def model_label(adapter: Adapter | None, base_name: str) -> str:
    """Provenance label of a candidate (kept from reviewers)."""
    return adapter.name if adapter is not None else f"base:{base_name}"


def job_prompts(job: Job) -> list[Prompt]:
    params = job.params
    prompts = Prompt.objects.filter(project=job.project).order_by("id")
    if params.get("prompt_ids"):
        prompts = prompts.filter(pk__in=params["prompt_ids"])
    elif params.get("split", "train") != "all":
        prompts = prompts.filter(split=params["split"])
    chosen = list(prompts[: params["max_prompts"]])
    if not chosen:
        raise BadInput(f"project {job.project.name} has no prompts for this job (split {params.get('split')!r})")
    return chosen


def _texts(samples: list[list[dict]]) -> list[list[str]]:
    return [[sample["text"] if isinstance(sample, dict) else str(sample) for sample in row] for row in samples]


def pair_indices(count: int, pairing: str, scores: list[float] | None = None) -> list[tuple[int, int]]:
    """Which of a prompt's ``count`` answers face each other.

    "all": every two, in order. "reward_gap": best against worst by ``scores``, then second best
    against second worst, and so on inwards (each answer in at most one comparison).
    """
    if pairing == "reward_gap":
        if scores is None or len(scores) != count:
            raise BadInput("pairing by reward gap needs one score per answer")
        order = sorted(range(count), key=lambda i: (-scores[i], i))
        return [(order[k], order[count - 1 - k]) for k in range(count // 2)]
    return [(i, j) for i in range(count) for j in range(i + 1, count)]


def _reward_scores(job: Job, messages: list, texts: list[list[str]]) -> list[list[float]]:
    """The input adapter's implicit reward (against its parent) of every answer, up to a constant per prompt."""
    from tuning.engine.reward import implicit_rewards

    adapter = job.input_adapter
    rows = [
        {"prompt": prompt, "chosen": answer, "rejected": answers[0]}
        for prompt, answers in zip(messages, texts, strict=True)
        for answer in answers
    ]
    rewards = implicit_rewards(
        source=job.base_model.source,
        adapter=adapter_local_dir(adapter),
        parent_adapter=adapter_local_dir(adapter.parent),
        rows=rows,
        beta=(adapter.metadata.get("hyperparameters") or {}).get("beta") or 0.1,
        cache_dir=settings.PREFLOOP_MODEL_CACHE,
    )
    margins = iter(r["margin"] for r in rewards)
    return [[next(margins) for _ in answers] for answers in texts]


def run_generate(*, job: Job, reporter: JobReporter, workdir: Path) -> Outcome:
    from tuning.engine.generation import generate

    params = job.params
    prompts = job_prompts(job)
    messages = [p.messages for p in prompts]
    source = job.base_model.source
    sampling = {
        "temperature": params["temperature"],
        "top_p": params["top_p"],
        "max_new_tokens": params["max_new_tokens"],
    }
    a_adapter = job.input_adapter
    same = params["opponent"] == "same"
    reporter.log(f"answering {len(prompts)} prompts with {model_label(a_adapter, job.base_model.name)}")
    a_samples = _texts(
        generate(
            source=source,
            adapter=adapter_local_dir(a_adapter),
            prompts=messages,
            n=params.get("samples", 2) if same else 1,
            seed=params["seed"],
            cache_dir=settings.PREFLOOP_MODEL_CACHE,
            progress=reporter.callback_for(0.0, 1.0 if same else 0.5),
            **sampling,
        )
    )
    # (prompt, A's text, B's text, A's sample number, B's sample number), one per comparison.
    if same:
        b_adapter = a_adapter
        pairing = params.get("pairing", "all")
        scores = None
        if pairing == "reward_gap":
            reporter.log("scoring the answers by the adapter's implicit reward, to pair by reward gap")
            scores = _reward_scores(job, messages, a_samples)
        matches = [
            (prompt, row[i], row[j], i, j)
            for index, (prompt, row) in enumerate(zip(prompts, a_samples, strict=True))
            for i, j in pair_indices(len(row), pairing, scores[index] if scores else None)
        ]
    else:
        b_adapter = Adapter.objects.get(pk=params["adapter_b"]) if params["opponent"] == "adapter" else None
        reporter.log(f"answering with {model_label(b_adapter, job.base_model.name)}")
        b_texts = [
            row[0]
            for row in _texts(
                generate(
                    source=source,
                    adapter=adapter_local_dir(b_adapter),
                    prompts=messages,
                    n=1,
                    seed=params["seed"] + 1,
                    cache_dir=settings.PREFLOOP_MODEL_CACHE,
                    progress=reporter.callback_for(0.5, 1.0),
                    **sampling,
                )
            )
        ]
        matches = [
            (prompt, row[0], b_text, 0, 0) for prompt, row, b_text in zip(prompts, a_samples, b_texts, strict=True)
        ]

    base_name = job.base_model.name
    identical = sum(1 for _, a, b, _, _ in matches if a.strip() == b.strip())

    def create_comparisons(_adapter) -> None:
        for prompt, a_text, b_text, a_number, b_number in matches:
            if a_text.strip() == b_text.strip():
                continue
            comparison_create(
                project=job.project,
                prompt=prompt,
                a=CandidateSpec(
                    a_text,
                    source=model_label(a_adapter, base_name),
                    adapter_id=a_adapter.pk if a_adapter else None,
                    sampling={**sampling, "seed": params["seed"], "sample": a_number, "job": job.pk},
                ),
                b=CandidateSpec(
                    b_text,
                    source=model_label(b_adapter, base_name),
                    adapter_id=b_adapter.pk if b_adapter else None,
                    sampling={**sampling, "seed": params["seed"] + (0 if same else 1), "sample": b_number, "job": job.pk},
                ),
                origin=Comparison.Origin.SAMPLING,
                required_judgments=params["required_judgments"],
            )

    return Outcome(
        result={"prompts": len(prompts), "comparisons": len(matches) - identical, "identical": identical},
        on_success=create_comparisons,
    )


# Progress bar shares of rejection sampling's phases (sampling, scoring, then SFT in mode sft).
REJECTION_PHASES = {"generate": (0.0, 0.4), "score": (0.4, 0.55), "prepare": (0.55, 0.6), "train": (0.6, 1.0)}


def run_rejection_sampling(*, job: Job, reporter: JobReporter, workdir: Path) -> Outcome:
    from tuning.engine.rejection import rejection_sample

    params = job.params
    prompts = job_prompts(job)
    if params["reward"] == "implicit":
        scorer = Adapter.objects.get(pk=params["reward_adapter"] or job.input_adapter_id)
        reward = {
            "kind": "implicit",
            "adapter": str(adapter_local_dir(scorer)),
            "parent": str(adapter_local_dir(scorer.parent)) if scorer.parent_id else None,
            "beta": params["reward_beta"],
        }
    else:
        scorer = Adapter.objects.get(pk=params["reward_adapter"])
        reward = {"kind": "model", "path": str(adapter_local_dir(scorer))}
    mode = params["mode"]
    output = workdir / f"output-{job.attempts}" if mode == "sft" else None
    if output is not None and output.exists():
        shutil.rmtree(output, ignore_errors=True)
    config = {
        "n": params["n"],
        "mode": mode,
        "temperature": params["temperature"],
        "top_p": params["top_p"],
        "max_new_tokens": params["max_new_tokens"],
        "seed": params["seed"],
        "learning_rate": params["learning_rate"],
        "epochs": params["epochs"],
        "sft_batch_size": params["batch_size"],
        "max_length": params["max_length"],
        "lora": {"r": params["lora_r"]},
    }
    reporter.log(f"best of {params['n']} on {len(prompts)} prompts, scored by {scorer.name} ({params['reward']})")
    result = rejection_sample(
        source=job.base_model.source,
        adapter=adapter_local_dir(job.input_adapter),
        prompts=[p.messages for p in prompts],
        reward=reward,
        config=config,
        output_dir=output,
        cache_dir=settings.PREFLOOP_MODEL_CACHE,
        progress=reporter.callback_for(0.0, 1.0, REJECTION_PHASES),
    )
    summary = {
        "mode": mode,
        "prompts": len(prompts),
        "samples": sum(len(group) for group in result.get("samples", [])),
        "kept": len(result.get("kept", [])),
        "reward_stats": result.get("reward_stats", {}),
        "metrics": result.get("metrics", {}),
    }
    if mode == "sft":
        return Outcome(result=summary, adapter_dir=Path(result["output_dir"]))

    pairs = result.get("pairs") or []
    label = model_label(job.input_adapter, job.base_model.name)
    summary["comparisons"] = len(pairs)

    def create_comparisons(_adapter) -> None:
        # Best vs worst answer per prompt, for reviewers to confirm: the reward's opinion is
        # kept in the candidates' provenance, never shown.
        for pair in pairs:
            comparison_create(
                project=job.project,
                prompt=prompts[pair["prompt_index"]],
                a=CandidateSpec(
                    pair["chosen_text"], source=label, adapter_id=job.input_adapter_id,
                    sampling={"job": job.pk, "reward": pair["chosen_reward"]},
                ),
                b=CandidateSpec(
                    pair["rejected_text"], source=label, adapter_id=job.input_adapter_id,
                    sampling={"job": job.pk, "reward": pair["rejected_reward"]},
                ),
                origin=Comparison.Origin.SAMPLING,
            )

    return Outcome(result=summary, on_success=create_comparisons)
