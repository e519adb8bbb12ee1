"""Plain SQL for the statements every review request runs, prepared once per connection.

Django's PostgreSQL backend binds parameters on the client and never prepares, so PostgreSQL
parses and plans each statement anew; for the handful of statements on the review path that is
a large share of the database's work. Here they go through a server-binding psycopg cursor
with `prepare=True`: planned on first use, then only executed. Errors come out as Django's
database exceptions, as from any ORM query. Other databases run the same SQL plainly.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

from django.db import connection

Params = Sequence[Any] | Mapping[str, Any]


def fetch_all(sql: str, params: Params) -> list[tuple]:
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()
    import psycopg

    # What Django's own cursor() does first: the same checks as before any ORM query.
    connection.validate_thread_sharing()
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        prepare = connection.connection.prepare_threshold is not None

        def execute(sql, params, many, context):
            return cursor.execute(sql, params, prepare=prepare)

        # Hooks installed with connection.execute_wrapper() see these statements too.
        for wrapper in reversed(connection.execute_wrappers):
            execute = functools.partial(wrapper, execute)
        execute(sql, params, False, {"connection": connection, "cursor": cursor})
        return cursor.fetchall() if cursor.description else []


def fetch_one(sql: str, params: Params) -> tuple | None:
    rows = fetch_all(sql, params)
    return rows[0] if rows else None


def is_deadlock(exc: Exception) -> bool:
    """Whether PostgreSQL ended this statement's transaction to break a deadlock (and rolled it
    back whole, so running the same work again is safe)."""
    return getattr(exc.__cause__, "sqlstate", None) == "40P01"


def columns_of(model, alias: str) -> str:
    """The model's columns, qualified by `alias`, in the order `fetch_instance` expects."""
    quote = connection.ops.quote_name
    return ", ".join(f"{alias}.{quote(field.column)}" for field in model._meta.concrete_fields)


def fetch_instance(model, sql: str, params: Params):
    """The model instance the query's one row describes (columns as `columns_of` lists them)."""
    if connection.vendor != "postgresql":
        # RawQuerySet converts column values as the ORM does (SQLite's booleans included).
        return next(iter(model.objects.raw(sql, params)), None)
    row = fetch_one(sql, params)
    if row is None:
        return None
    return model.from_db(connection.alias, [field.attname for field in model._meta.concrete_fields], row)
