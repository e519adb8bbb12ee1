"""Builders for tuning tests: a tiny base model, a project with judged pairs, a frozen set."""

from __future__ import annotations

from prefs.models import Judgment, Prompt
from prefs.services.comparisons import CandidateSpec, comparison_create, prompt_get_or_create
from tuning.models import BaseModel


def tiny_base_model(path: str, name: str = "tiny-llama") -> BaseModel:
    return BaseModel.objects.get_or_create(name=name, defaults={"source": path})[0]


QUESTIONS = ("What time is it?", "Can you help me cook rice?", "Where is Paris?", "Write a haiku about the sea.")
POLITE = ("Of course! Happy to help.", "Thank you for asking. Here is a short answer.", "Sure! I would be glad to help.")
RUDE = ("Go away.", "That is a stupid question. Figure it out yourself.", "No.")


def judged_pairs(project, n: int = 12) -> None:
    """`n` comparisons (polite vs rude answer) with an imported verdict each: A (polite) wins."""
    for index in range(n):
        prompt = prompt_get_or_create(
            project=project,
            messages=[{"role": "user", "content": f"{QUESTIONS[index % len(QUESTIONS)]} ({index})"}],
            external_id=f"train-{index}",
        )
        comparison = comparison_create(
            project=project,
            prompt=prompt,
            a=CandidateSpec(POLITE[index % len(POLITE)], source="polite"),
            b=CandidateSpec(RUDE[index % len(RUDE)], source="rude"),
        )
        Judgment.objects.create(comparison=comparison, imported=True, choice="A")


def heldout_prompts(project, n: int = 3) -> list[Prompt]:
    questions = ["How do I boil an egg?", "Say something kind.", "What is two plus two?", "Name a colour."]
    return [
        prompt_get_or_create(
            project=project,
            messages=[{"role": "user", "content": questions[i % len(questions)] + f" #{i}"}],
            split=Prompt.Split.HELDOUT,
            external_id=f"heldout-{i}",
        )
        for i in range(n)
    ]


def frozen_set(project):
    from prefs.services.snapshots import preference_set_freeze

    return preference_set_freeze(project=project)
