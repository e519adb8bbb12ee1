"""Reading sets out: training rows, export bytes and metadata, samples and diff samples."""

from __future__ import annotations

import io
import json

import pytest

from prefs.models import PreferenceSet, Project
from prefs.services.exports import (
    ExportError,
    export_headers,
    preference_set_diff_samples,
    preference_set_export,
    preference_set_rows,
    preference_set_samples,
)
from prefs.services.imports import import_run
from prefs.services.snapshots import preference_set_freeze

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
