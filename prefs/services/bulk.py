"""Fast inserts of many plain rows, for imports and freezes that write 10^5-10^6 rows.

Django's bulk_create builds a model instance and prepares every value in Python, which caps it
at a few thousand rows/s here. These inserts take tuples of database-ready values instead:
PostgreSQL gets COPY (ids drawn from the table's sequence first, so callers still learn them),
SQLite gets one executemany (ids continue from the table's largest; safe because the caller
holds SQLite's write lock inside `transaction.atomic()`, which the IMMEDIATE transaction mode
in settings takes at BEGIN). Columns a caller does not give are filled once with the field's
default (`created_at` with now), so a field added later with a default (or a generated column)
needs no change here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime

from django.db import connection
from django.db.models import JSONField, Model
from django.utils import timezone


def _copy_field(value) -> str:
    """One value in PostgreSQL COPY text format."""
    if value is None:
        return "\\N"
    if value is True:
        return "t"
    if value is False:
        return "f"
    if isinstance(value, str):
        return value.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    # int() / float() first: psycopg's Int2, Int8 ... subclasses print their class name.
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        return repr(float(value))
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"no COPY text form for {type(value).__name__}")


class BulkTable:
    """Raw inserts into one model's table, giving values for `given` fields (attnames)."""

    def __init__(self, model: type[Model], given: Sequence[str]):
        meta = model._meta
        self.table = meta.db_table
        self.pk_column = meta.pk.column
        by_attname = {f.attname: f for f in meta.concrete_fields}
        unknown = set(given) - set(by_attname)
        if unknown:
            raise ValueError(f"{model.__name__} has no fields {sorted(unknown)}")
        now = timezone.now()
        self.fixed: list = []
        fixed_columns = []
        for f in meta.concrete_fields:
            # The database computes generated columns itself.
            if f is meta.pk or f.attname in given or getattr(f, "generated", False):
                continue
            if getattr(f, "auto_now_add", False) or getattr(f, "auto_now", False):
                value = now
            elif f.has_default() or f.null:
                value = f.get_default()
            else:
                raise ValueError(f"{model.__name__}.{f.name} has no default: give it a value")
            fixed_columns.append(f.column)
            if isinstance(f, JSONField):
                # As text: both databases take JSON text, and COPY needs no adapter per row.
                self.fixed.append(None if value is None else json.dumps(value))
            else:
                self.fixed.append(f.get_db_prep_save(value, connection))
        self.fixed = tuple(self.fixed)
        self.columns = [self.pk_column, *(by_attname[a].column for a in given), *fixed_columns]
        if connection.vendor == "postgresql":
            self._copy_suffix = "".join("\t" + _copy_field(v) for v in self.fixed) + "\n"

    def _ids(self, cursor, n: int) -> list[int]:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                [self.table, self.pk_column, n],
            )
            return [row[0] for row in cursor.fetchall()]
        if connection.vendor == "sqlite":
            cursor.execute(f'SELECT MAX("{self.pk_column}") FROM "{self.table}"')  # noqa: S608
            largest = cursor.fetchone()[0] or 0
            cursor.execute("SELECT seq FROM sqlite_sequence WHERE name = %s", [self.table])
            row = cursor.fetchone()
            start = max(largest, row[0] if row else 0) + 1
            return list(range(start, start + n))
        raise NotImplementedError(f"bulk inserts into {connection.vendor} are not supported")

    def insert(self, rows: Iterable[tuple]) -> list[int]:
        """Inserts rows (values in `given` order); returns their new ids, in order."""
        rows = list(rows)
        if not rows:
            return []
        if not connection.in_atomic_block:
            raise RuntimeError("bulk inserts must run inside transaction.atomic()")
        columns = ", ".join(f'"{c}"' for c in self.columns)
        with connection.cursor() as cursor:
            ids = self._ids(cursor, len(rows))
            fixed = self.fixed
            if connection.vendor == "postgresql":
                # COPY's text format, written here rather than by psycopg's write_row, which
                # adapts every value in Python and took most of an import's client time.
                suffix = self._copy_suffix
                text = "".join(
                    f"{pk}\t" + "\t".join(map(_copy_field, row)) + suffix
                    for pk, row in zip(ids, rows, strict=True)
                )
                with cursor.cursor.copy(f'COPY "{self.table}" ({columns}) FROM STDIN') as copy:
                    copy.write(text)
            else:
                marks = ", ".join(["%s"] * len(self.columns))
                cursor.executemany(
                    f'INSERT INTO "{self.table}" ({columns}) VALUES ({marks})',  # noqa: S608
                    [(pk, *row, *fixed) for pk, row in zip(ids, rows, strict=True)],
                )
        return ids
