"""prefs.sql: plain statements for the review path, prepared on PostgreSQL."""

from __future__ import annotations

import threading

import pytest
from django.db import DatabaseError, connection

from prefs.models import Project
from prefs.sql import columns_of, fetch_all, fetch_instance, fetch_one, is_deadlock

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


@pytest.mark.django_db(transaction=True)
def test_a_real_deadlock_is_recognised_and_other_errors_are_not(project, other_project):
    if connection.vendor != "postgresql":
        pytest.skip("deadlock detection is PostgreSQL's")
    from django.db import connections, transaction

    rows = [project.pk, other_project.pk]
    both_hold_one = threading.Barrier(2)
    raised: list[Exception] = []

    def lock_in_order(first: int, second: int) -> None:
        try:
            with transaction.atomic():
                fetch_one("SELECT id FROM prefs_project WHERE id = %s FOR UPDATE", [first])
                both_hold_one.wait(5)
                fetch_one("SELECT id FROM prefs_project WHERE id = %s FOR UPDATE", [second])
        except DatabaseError as exc:
            raised.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=lock_in_order, args=order) for order in (rows, rows[::-1])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(raised) == 1 and is_deadlock(raised[0])
    with pytest.raises(DatabaseError) as caught:
        fetch_one("SELECT 1/0", [])
    assert not is_deadlock(caught.value)
