"""Prefloop's own line: everything a comparison holds, including sources and verdicts.

    {"prompt": [{"role": "user", "content": "…"}],
     "responses": [{"text": "…", "source": "label"}, {"text": "…", "source": "label"}],
     "preference": 0 | 1 | "tie" | "both_bad" | null, "split": "train" | "heldout",
     "id": "optional external id of the prompt", "strength": 1-3 (optional), "tags": [...]}

A row with a preference becomes a comparison with an imported judgment; one with null (or no
preference key) becomes a comparison for reviewers. The export writes the winner first with
preference 0, and `weight` (mean strength / 3), which maps back to a strength on import.
"""

from __future__ import annotations

from collections.abc import Iterator

from prefs.formats.records import (
    DEFAULT_SOURCE,
    PREFERENCES,
    ExportPair,
    PairRecord,
    Problems,
    Response,
    _type_name,
    check_responses,
    id_field,
    label_field,
    messages_field,
    split_field,
    strength_from,
    tags_field,
    text_field,
)

NAME = "native"


def _response(value, name: str, problems: Problems) -> Response | None:
    if isinstance(value, str):
        return Response(value)
    if not isinstance(value, dict):
        problems.add(name, f"must be an object with text and source, not {_type_name(value)}")
        return None
    text = text_field(value, "text", problems, name=f"{name}.text", allow_empty=True)
    source = label_field(value.get("source") or DEFAULT_SOURCE, f"{name}.source", problems)
    return Response(text, source) if text is not None and source is not None else None


def parse(obj: dict) -> PairRecord:
    problems = Problems()
    prompt = None
    if "prompt" not in obj:
        problems.add("prompt", "is missing")
    else:
        prompt = messages_field(obj["prompt"], "prompt", problems)
    responses: list[Response | None] = [None, None]
    value = obj.get("responses")
    if value is None:
        problems.add("responses", "is missing")
    elif not isinstance(value, list) or len(value) != 2:
        found = f"{len(value)} items" if isinstance(value, list) else _type_name(value)
        problems.add("responses", f"must be a list of exactly two responses, not {found}")
    else:
        responses = [_response(item, f"responses[{i}]", problems) for i, item in enumerate(value)]
    preference = obj.get("preference")
    if isinstance(preference, bool) or preference not in PREFERENCES:
        problems.add("preference", f'must be 0, 1, "tie", "both_bad" or null, not {preference!r}')
    split = split_field(obj, problems)
    external_id = id_field(obj, problems)
    tags = tags_field(obj, problems)
    strength = strength_from(obj, problems)
    problems.raise_if_any()
    check_responses(responses[0].text, responses[1].text, ("responses[0].text", "responses[1].text"),
                    problems)
    problems.raise_if_any()
    return PairRecord(
        prompt=prompt,
        a=responses[0],
        b=responses[1],
        preference=preference,
        split=split,
        external_id=external_id,
        strength=strength if preference is not None else None,
        tags=tags,
    )


def rows(pair: ExportPair) -> Iterator[dict]:
    row = {
        "prompt": pair.prompt,
        "responses": [
            {"text": pair.chosen, "source": pair.chosen_source},
            {"text": pair.rejected, "source": pair.rejected_source},
        ],
        "preference": 0 if pair.kind == "preferred" else pair.kind,
        "split": pair.split,
        "weight": pair.weight,
    }
    if pair.external_id:
        row["id"] = pair.external_id
    yield row
