"""Candidate outputs for prompts already in the project: {"id": "prompt's external id",
"text": "…", "source": "label"}.

On import each new candidate is paired with every candidate of another source for the same
prompt, and those pairs become comparisons for reviewers.
"""

from __future__ import annotations

from prefs.formats.records import (
    DEFAULT_SOURCE,
    CandidateRecord,
    Problems,
    id_field,
    label_field,
    text_field,
)

NAME = "candidates"


def parse(obj: dict) -> CandidateRecord:
    problems = Problems()
    external_id = id_field(obj, problems, required=True)
    text = text_field(obj, "text", problems)
    source = label_field(obj.get("source") or DEFAULT_SOURCE, "source", problems)
    problems.raise_if_any()
    return CandidateRecord(prompt_external_id=external_id, text=text, source=source)
