"""prefs.sql: plain statements for the review path, prepared on PostgreSQL."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection

from prefs.models import Project
from prefs.sql import columns_of, fetch_all, fetch_instance, fetch_one

pytestmark = pytest.mark.django_db

_PROJECT_SQL = "SELECT {columns} FROM prefs_project p WHERE p.id = %s"


def test_rows_come_back_as_tuples(project):
    assert fetch_all("SELECT id, name FROM prefs_project WHERE id = %s", [project.pk]) == [(project.pk, project.name)]
    assert fetch_one("SELECT name FROM prefs_project WHERE id = %s", [-1]) is None


def test_an_instance_matches_what_the_orm_reads(project):
    sql = _PROJECT_SQL.format(columns=columns_of(Project, "p"))
    read = fetch_instance(Project, sql, [project.pk])
    expected = Project.objects.get(pk=project.pk)
    assert read == expected
    for field in Project._meta.concrete_fields:
        assert getattr(read, field.attname) == getattr(expected, field.attname), field.name
    assert read.created_at.tzinfo is not None
    assert fetch_instance(Project, sql, [-1]) is None


def test_database_errors_are_djangos_own():
    with pytest.raises(DatabaseError, match="no_such_table"):
        fetch_all("SELECT * FROM no_such_table WHERE id = %s", [1])


def test_execute_wrappers_see_the_statements(project):
    seen = []

    def spy(execute, sql, params, many, context):
        seen.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(spy):
        fetch_one("SELECT name FROM prefs_project WHERE id = %s", [project.pk])
    assert seen == ["SELECT name FROM prefs_project WHERE id = %s"]


def test_postgresql_prepares_each_statement_once_per_connection(project):
    if connection.vendor != "postgresql":
        pytest.skip("prepared statements are PostgreSQL's (CI runs this on PostgreSQL)")
    sql = "SELECT name FROM prefs_project WHERE id = %s AND name <> 'prepared-check'"
    for _ in range(3):
        assert fetch_one(sql, [project.pk]) == (project.name,)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s",
            ["%name <> 'prepared-check'%"],
        )
        assert cursor.fetchone()[0] == 1
