"""`import_prefs`: the endpoint's rules from a shell, errors listed by line, exit status 1."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from prefs.models import Comparison

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[3]


def _rows(n: int) -> str:
    return "".join(
        json.dumps({"prompt": f"Q{i}?", "responses": [f"yes {i}", f"no {i}"], "preference": 0}) + "\n"
        for i in range(n)
    )


def test_a_good_gzipped_file_imports_and_reports_counts(project, tmp_path):
    path = tmp_path / "rows.jsonl.gz"
    path.write_bytes(gzip.compress(_rows(3).encode()))
    out, err = StringIO(), StringIO()
    call_command("import_prefs", str(project.pk), str(path), stdout=out, stderr=err)
    assert "Imported 3 native rows" in out.getvalue()
    assert "3 comparisons" in out.getvalue() and "0 duplicates" in out.getvalue()
    assert Comparison.objects.count() == 3


def test_a_bad_file_lists_its_lines_and_writes_nothing(project, tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text(_rows(4) + "[1]\n" + '{"prompt": "q", "responses": ["a"]}\n')
    err = StringIO()
    with pytest.raises(CommandError, match="2 lines have errors") as caught:
        call_command("import_prefs", str(project.pk), str(path), "--no-progress", stderr=err)
    assert caught.value.returncode == 1
    lines = err.getvalue().splitlines()
    assert lines[0] == f"{path}: line 5: must be a JSON object, not a list"
    assert lines[1].startswith(f"{path}: line 6: responses:")
    assert not Comparison.objects.exists()


def test_a_missing_project_or_file_is_a_clear_error(project, tmp_path):
    with pytest.raises(CommandError, match="No project with id 999"):
        call_command("import_prefs", "999", str(tmp_path / "x.jsonl"))
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("import_prefs", str(project.pk), str(tmp_path / "missing.jsonl"))


def test_the_command_line_exits_1_on_a_bad_file(tmp_path):
    # A real process (own SQLite database, migrated), to see the exit status a shell sees.
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}", "PATH": "/usr/bin:/bin",
           "PREFLOOP_VAR_DIR": str(tmp_path)}
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    subprocess.run(
        [*manage, "shell", "-c", "from prefs.models import Project; Project.objects.create(name='p')"],
        cwd=ROOT, env=env, check=True,
    )
    path = tmp_path / "bad.jsonl"
    path.write_text(_rows(2) + "oops\n")
    done = subprocess.run([*manage, "import_prefs", "1", str(path)], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    assert done.returncode == 1
    assert "line 3: is not valid JSON" in done.stderr


def test_a_4301_digit_number_is_a_line_error_not_a_traceback(project, tmp_path):
    path = tmp_path / "long.jsonl"
    path.write_bytes(b'{"prompt": "Q?", "responses": ["a", "b"], "preference": ' + b"9" * 4301 + b"}\n")
    err = StringIO()
    with pytest.raises(CommandError, match="Nothing imported: 1 line has errors"):
        call_command("import_prefs", str(project.pk), str(path), "--no-progress", stderr=err)
    assert "line 1:" in err.getvalue() and "4300 digits" in err.getvalue()
