"""Small builders for test data, going through the same services the product uses."""

from __future__ import annotations

from prefs.services.comparisons import CandidateSpec, comparison_create, prompt_get_or_create

# Provenance strings a reviewer must never be able to see.
SECRET_SOURCES = ("adapter-secret-alpha", "adapter-secret-beta")


def make_comparisons(project, n: int, *, prefix: str = "q", required: int | None = None, **extra):
    made = []
    for i in range(n):
        prompt = prompt_get_or_create(
            project=project, messages=[{"role": "user", "content": f"{prefix} question {i}?"}]
        )
        made.append(
            comparison_create(
                project=project,
                prompt=prompt,
                a=CandidateSpec(f"{prefix} answer {i} one", source=SECRET_SOURCES[0]),
                b=CandidateSpec(f"{prefix} answer {i} two", source=SECRET_SOURCES[1]),
                required_judgments=required,
                **extra,
            )
        )
    return made


def make_reviewers(django_user_model, project, n: int, *, prefix: str = "rev"):
    users = [
        django_user_model.objects.create_user(f"{prefix}{i}", password="pw-pw-pw-pw")
        for i in range(n)
    ]
    project.reviewers.add(*users)
    return users
