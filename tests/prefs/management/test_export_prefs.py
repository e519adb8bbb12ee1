"""`export_prefs`: the same bytes as the endpoint, and a sidecar naming the version."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from prefs.services.imports import import_run
from prefs.services.snapshots import FreezeRule, preference_set_freeze

pytestmark = pytest.mark.django_db


@pytest.fixture
def frozen(project):
    rows = [
        {"prompt": f"Question {i}?", "responses": [f"yes {i}", f"no {i}"], "preference": "tie" if i == 2 else 0}
        for i in range(5)
    ]
    import_run(project=project, stream=io.BytesIO("".join(json.dumps(r) + "\n" for r in rows).encode()))
    return preference_set_freeze(project=project, rule=FreezeRule(include_ties=True))


@pytest.mark.parametrize("fmt", ["trl", "kto", "parquet"])
def test_the_file_holds_the_same_bytes_as_the_endpoint(fmt, frozen, admin_user, tmp_path):
    path = tmp_path / f"out.{fmt}"
    call_command("export_prefs", str(frozen.pk), "--format", fmt, "-o", str(path), stderr=io.StringIO())
    client = APIClient()
    client.force_authenticate(admin_user)
    response = client.get(f"/api/v1/preference-sets/{frozen.pk}/export/?format={fmt}")
    assert path.read_bytes() == b"".join(response.streaming_content)
    meta = json.loads((tmp_path / f"out.{fmt}.meta.json").read_text())
    assert (meta["sha256"], meta["version"], meta["rule"], meta["format"]) == (
        frozen.sha256, 1, frozen.rule, fmt,
    )


def test_without_a_file_the_rows_go_to_stdout(frozen, capsysbinary):
    call_command("export_prefs", str(frozen.pk), "--format", "trl-conversational")
    rows = [json.loads(line) for line in capsysbinary.readouterr().out.splitlines()]
    # Four decided pairs, and the kept tie in both orders.
    assert len(rows) == 6
    assert rows[0]["chosen"] == [{"role": "assistant", "content": "yes 0"}]


def test_an_unknown_set_is_a_clear_error():
    with pytest.raises(CommandError, match="No preference set with id 42"):
        call_command("export_prefs", "42", "--format", "trl")
