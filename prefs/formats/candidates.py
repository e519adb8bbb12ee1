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
    text_field,
)

NAME = "candidates"


def parse(obj: dict) -> CandidateRecord:
    problems = Problems()
    external_id = id_field(obj, problems, required=True)
    text = text_field(obj, "text", problems)
    source = obj.get("source") or DEFAULT_SOURCE
    if not isinstance(source, str) or len(source) > 200:
        problems.add("source", "must be text of at most 200 characters")
    problems.raise_if_any()
    return CandidateRecord(prompt_external_id=external_id, text=text, source=source)
