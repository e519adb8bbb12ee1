"""Migrations must be safe to apply while the previous release still serves.

During a rolling deploy the new version's migrations run first (the compose file's `migrate`
service), and the old web processes and workers keep reading and writing until they are
replaced. So a migration may only *expand* the schema; the old code must keep working on it:

* no dropped or renamed column or table (the old code still selects it);
* no new NOT NULL column without a database default (the old code's INSERTs leave it out;
  Django's `default=` lives in Python only, `db_default=` puts it in the database);
* no column turned NOT NULL (the old code may still write NULL into it).

Removing something is the *contract* step of the next release, once no running code uses it:
such a migration goes into REVIEWED below with the release that stopped using it. See
docs/deploy.md, "Migrations while the old version serves".
"""

from __future__ import annotations

import re

import pytest
from django.db import migrations, models
from django.db.migrations.loader import MigrationLoader
from django.db.models.fields import NOT_PROVIDED

APPS = ("prefs", "tuning")
# Migrations from before the first release ran on empty databases only; the rule starts after.
BASELINE = {
    ("prefs", "0001_initial"),
    ("prefs", "0002_initial"),
    ("prefs", "0003_preference_sets"),
    ("prefs", "0004_review_queue_counters"),
    ("tuning", "0001_initial"),
    ("tuning", "0002_jobs_evaluations_lineage"),
}
# (app, migration) -> why it is safe anyway (e.g. "contract step: release 1.4 stopped reading
# Comparison.legacy_field").
REVIEWED: dict[tuple[str, str], str] = {}

_DESTRUCTIVE = (
    migrations.RemoveField,
    migrations.DeleteModel,
    migrations.RenameField,
    migrations.RenameModel,
    migrations.AlterModelTable,
)
_DESTRUCTIVE_SQL = re.compile(r"\b(DROP\s+(COLUMN|TABLE)|RENAME\s+(COLUMN|TO)|SET\s+NOT\s+NULL)\b", re.IGNORECASE)


def _has_db_default(field: models.Field) -> bool:
    return getattr(field, "db_default", NOT_PROVIDED) is not NOT_PROVIDED


def migration_problems(app: str, migration, state_before) -> list[str]:
    """What in `migration` would break the release before it; [] when it only expands."""
    problems = []
    created = {op.name_lower for op in migration.operations if isinstance(op, migrations.CreateModel)}
    for op in migration.operations:
        label = f"{app}.{migration.name}: {op.describe()}"
        if isinstance(op, _DESTRUCTIVE):
            problems.append(f"{label}: drops or renames what the running release still uses")
        elif isinstance(op, migrations.AddField):
            field = op.field
            fresh_table = op.model_name_lower in created
            if not (fresh_table or field.many_to_many or field.null or _has_db_default(field) or field.generated):
                problems.append(
                    f"{label}: a NOT NULL column without a database default breaks the running "
                    "release's INSERTs; use db_default=..., or null=True"
                )
        elif isinstance(op, migrations.AlterField):
            model = state_before.models.get((app, op.model_name_lower))
            old = model.fields.get(op.name) if model is not None else None
            if old is not None:
                if old.null and not op.field.null:
                    problems.append(f"{label}: makes a column NOT NULL while the running release may write NULL")
                if (old.db_column or op.name) != (op.field.db_column or op.name):
                    problems.append(f"{label}: renames a column the running release still uses")
        elif isinstance(op, migrations.RunSQL):
            sql = " ".join(s if isinstance(s, str) else str(s) for s in (op.sql if isinstance(op.sql, list | tuple) else [op.sql]))
            if _DESTRUCTIVE_SQL.search(sql):
                problems.append(f"{label}: raw SQL drops, renames or tightens a column")
    return problems


def test_every_migration_after_the_baseline_only_expands_the_schema():
    loader = MigrationLoader(None, ignore_no_migrations=True)
    problems = []
    for (app, name), migration in sorted(loader.disk_migrations.items()):
        if app not in APPS or (app, name) in BASELINE or (app, name) in REVIEWED:
            continue
        before = loader.project_state((app, name), at_end=False)
        problems += migration_problems(app, migration, before)
    assert not problems, "unsafe while the old version serves (see docs/deploy.md):\n" + "\n".join(problems)


def test_the_baseline_and_reviewed_lists_name_real_migrations():
    loader = MigrationLoader(None, ignore_no_migrations=True)
    assert set(BASELINE) | set(REVIEWED) <= set(loader.disk_migrations)


# -- the lint itself, on migrations written to be wrong --------------------------------------


@pytest.fixture
def state():
    loader = MigrationLoader(None, ignore_no_migrations=True)
    return loader.project_state()


def _migration(*operations):
    migration = migrations.Migration("9999_example", "prefs")
    migration.operations = list(operations)
    return migration


def test_the_lint_catches_drops_renames_and_not_null_columns(state):
    bad = _migration(
        migrations.RemoveField("comparison", "gold_choice"),
        migrations.RenameField("prompt", "tags", "labels"),
        migrations.AddField("prompt", "weight", models.IntegerField(default=1)),
        migrations.AlterField("judgment", "left_is_a", models.BooleanField(default=False)),
        migrations.RunSQL("ALTER TABLE prefs_prompt DROP COLUMN tags"),
        migrations.DeleteModel("assignment"),
    )
    problems = migration_problems("prefs", bad, state)
    assert len(problems) == 6, problems
    assert "NOT NULL column without a database default" in problems[2]
    assert "makes a column NOT NULL" in problems[3]


def test_the_lint_lets_expanding_migrations_through(state):
    good = _migration(
        migrations.AddField("prompt", "weight", models.IntegerField(default=1, db_default=1)),
        migrations.AddField("prompt", "note", models.TextField(null=True)),
        migrations.CreateModel("Audit", [("id", models.BigAutoField(primary_key=True)), ("what", models.TextField())]),
        migrations.AddField("audit", "who", models.TextField()),
        migrations.AlterField("judgment", "rationale", models.TextField(blank=True, default="", help_text="why")),
        migrations.AddIndex("prompt", models.Index(fields=["split"], name="prompt_split_example")),
    )
    assert migration_problems("prefs", good, state) == []
