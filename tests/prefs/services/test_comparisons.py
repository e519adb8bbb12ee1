"""comparison_create stores what a model wrote, even bytes PostgreSQL text cannot hold."""

from __future__ import annotations

import pytest

from prefs.models import Candidate
from prefs.services.comparisons import CandidateSpec, comparison_create, prompt_get_or_create

pytestmark = pytest.mark.django_db


def test_a_nul_byte_in_a_model_answer_is_dropped_not_a_failed_job(project):
    # Tiny random models (and, rarely, real ones) emit byte-fallback tokens such as <0x00>.
    prompt = prompt_get_or_create(project=project, messages=[{"role": "user", "content": "hi"}])
    comparison = comparison_create(
        project=project, prompt=prompt, a=CandidateSpec("he\x00llo", source="m"), b=CandidateSpec("bye", source="m")
    )
    stored = Candidate.objects.get(pk=comparison.candidate_a_id)
    assert stored.text == "hello"
    twin = comparison_create(project=project, prompt=prompt, a=CandidateSpec("hello", source="m"), b=CandidateSpec("bye", source="m"))
    assert Candidate.objects.get(pk=twin.candidate_a_id).text_hash == stored.text_hash
    assert twin.pair_hash == comparison.pair_hash
