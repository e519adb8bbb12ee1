"""Reading sets out: training rows, export bytes and metadata, samples and diff samples."""

from __future__ import annotations

import io
import json

import pytest

from prefs.formats import export as formats
from prefs.models import PreferenceSet, Project
from prefs.services.exports import (
    ExportError,
    export_headers,
    export_pairs,
    preference_set_diff_samples,
    preference_set_export,
    preference_set_rows,
    preference_set_samples,
)
from prefs.services.imports import import_run
from prefs.services.snapshots import FreezeRule, preference_set_freeze

pytestmark = pytest.mark.django_db


def _import(project, rows) -> None:
    import_run(project=project, stream=io.BytesIO("".join(json.dumps(r) + "\n" for r in rows).encode()))


def _row(i: int, preference=0) -> dict:
    return {
        "prompt": [{"role": "user", "content": f"Question {i}?"}],
        "responses": [{"text": f"Yes {i}", "source": "a"}, {"text": f"No {i}", "source": "b"}],
        "preference": preference,
    }


def test_rows_can_be_read_while_other_queries_run(project):
    _import(project, [_row(i) for i in range(30)])
    frozen = preference_set_freeze(project=project)
    seen = 0
    # A trainer writing progress between rows must not find the connection busy.
    for row in preference_set_rows(frozen):
        seen += 1
        assert Project.objects.filter(pk=project.pk).exists()
        assert row["chosen"][0]["content"].startswith("Yes")
    assert seen == 30


def test_rows_in_another_format_and_unknown_formats(project):
    _import(project, [_row(0, preference=1)])
    frozen = preference_set_freeze(project=project)
    (row,) = preference_set_rows(frozen, fmt="trl")
    assert (row["chosen"], row["rejected"]) == (" No 0", " Yes 0")
    with pytest.raises(ExportError):
        list(preference_set_rows(frozen, fmt="csv"))
    with pytest.raises(ExportError):
        preference_set_export(frozen, fmt="csv")


def test_headers_name_the_version_and_its_rule(project):
    _import(project, [_row(0)])
    frozen = preference_set_freeze(project=project)
    headers = export_headers(frozen, "parquet")
    assert headers["X-Prefloop-Sha256"] == frozen.sha256
    assert json.loads(headers["X-Prefloop-Rule"]) == frozen.rule
    assert headers["Content-Type"] == "application/vnd.apache.parquet"
    assert headers["Content-Disposition"].endswith('-v1-parquet.parquet"')


def test_samples_and_diff_samples_show_the_pairs(project):
    _import(project, [_row(0), _row(1)])
    first = preference_set_freeze(project=project)
    assert [s["chosen"] for s in preference_set_samples(first)] == ["Yes 0", "Yes 1"]
    assert preference_set_diff_samples(first) == {}
    _import(project, [_row(2)])
    second = preference_set_freeze(project=project)
    diff = preference_set_diff_samples(second)
    assert [s["chosen"] for s in diff["added"]] == ["Yes 2"]
    assert diff["removed"] == diff["flipped"] == []
    assert PreferenceSet.objects.count() == 2


def test_the_trl_export_equals_the_general_path_byte_for_byte(project, monkeypatch):
    # The trl export reads its own columns into formats.trl_stream; the general path builds
    # ExportPairs. Prompts PostgreSQL and SQLite write differently as JSON text, ties (two
    # rows), both-bad pairs (none), every strength, and one prompt shared by two comparisons.
    contents = ['She said "hi"', "back\\slash \\u0041 \\/", "lines\nand\ttabs \x01 \x7f",
                "Grüße ✓ \u2028 \U0001f600", "plain"]
    rows = []
    for i, content in enumerate(contents):
        for preference, strength in ((0, 1), (1, 2), ("tie", 3), ("both_bad", 2)):
            row = _row(i, preference)
            row["prompt"][0]["content"] = content
            row["responses"][0]["text"] += f' "{preference}"\n'
            row["strength"] = strength
            rows.append(row)
    rows.append({
        "prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                   {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "Again?"}],
        "responses": [{"text": "Yes", "source": "a"}, {"text": "No", "source": "b"}],
        "preference": 0,
    })
    _import(project, rows)
    frozen = preference_set_freeze(
        project=project, rule=FreezeRule(include_ties=True, include_both_bad=True)
    )
    assert frozen.pair_count == len(rows)
    done = []
    parsed = []
    loads = formats.json.loads
    monkeypatch.setattr(formats.json, "loads", lambda text: parsed.append(text) or loads(text))
    data = b"".join(preference_set_export(frozen, fmt="trl", progress=done.append))
    monkeypatch.undo()
    # The database writes a plain one-turn prompt as the fast path expects: it is not parsed.
    assert parsed and not any('"plain"' in text for text in parsed)
    assert data == b"".join(formats.stream(export_pairs(frozen), "trl"))
    lines = [json.loads(line) for line in data.decode().split("\n")[:-1]]
    # Per prompt: a decided pair each way (one row each), a tie (two rows), both-bad (none).
    assert len(lines) == 4 * len(contents) + 1
    assert done[-1] == len(rows)
