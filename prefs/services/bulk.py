"""Fast inserts of many plain rows, for imports and freezes that write 10^5-10^6 rows.

Django's bulk_create builds a model instance and prepares every value in Python, which caps it
at a few thousand rows/s here. These inserts take tuples of database-ready values instead:
PostgreSQL gets COPY (ids drawn from the table's sequence first, so callers still learn them),
SQLite gets one executemany (ids continue from the table's largest; safe because the caller
holds SQLite's write lock inside `transaction.atomic()`, which the IMMEDIATE transaction mode
in settings takes at BEGIN). Columns a caller does not give are filled once with the field's
default (`created_at` with now), so a field added later with a default (or a generated column)
needs no change here.

On PostgreSQL a `CopyPipeline` lets the caller go on preparing rows while the server stores the
previous ones: the COPYs run on a background thread over the transaction's connection, and ids
come from a second, autocommit connection (sequences are not transactional), so neither side
waits for the other. With two cores that about halves an import's time.
"""

from __future__ import annotations

import contextlib
import gc
import json
import queue
import threading
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime

from django.db import connection
from django.db.models import JSONField, Model
from django.utils import timezone

_collector_lock = threading.Lock()
_collector_pauses = 0
_collector_was_enabled = False


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off for the block, back as it was after the last block.

    Bulk work keeps thousands of fresh dicts and lists alive at once (a batch of parsed rows),
    so the collector runs a pass every few hundred of them, and every tenth of those passes
    scans everything the process holds, Django included: about a quarter of an import's CPU.
    The rows are plain JSON values with no reference cycles, so reference counting frees them
    anyway (a 100,000-row import leaves about a hundred objects for the collector). Other
    threads' cyclic garbage waits for the block's end. Blocks may overlap across threads: the
    collector comes back when the last one ends, and only if it was on when the first began.
    """
    global _collector_pauses, _collector_was_enabled
    with _collector_lock:
        if _collector_pauses == 0:
            _collector_was_enabled = gc.isenabled()
            gc.disable()
        _collector_pauses += 1
    try:
        yield
    finally:
        with _collector_lock:
            _collector_pauses -= 1
            if _collector_pauses == 0 and _collector_was_enabled:
                gc.enable()


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


def _sequence_of(cursor, table: str, pk_column: str) -> str:
    cursor.execute("SELECT pg_get_serial_sequence(%s, %s)", [table, pk_column])
    return cursor.fetchone()[0]


def _ids_from_sequence(cursor, sequence: str, n: int) -> list[int]:
    # The sequence is named, not looked up in the query: pg_get_serial_sequence() inside
    # nextval() runs once per row, which made drawing 10,000 ids ten times slower.
    cursor.execute("SELECT nextval(%s::regclass) FROM generate_series(1, %s)", [sequence, n])
    return [row[0] for row in cursor.fetchall()]


_ESCAPES = (("\\", "\\\\"), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t"))


def _column_text(values: tuple) -> list[str]:
    """One column's values in COPY text format."""
    kinds = set(map(type, values))
    if kinds == {str}:
        # All the column's escapes in four passes over one joined string. NUL cannot be in a
        # PostgreSQL text value, so it safely separates them (a value holding one is done one
        # by one, and refused by the server).
        joined = "\0".join(values)
        if joined.count("\0") == len(values) - 1:
            for old, new in _ESCAPES:
                joined = joined.replace(old, new)
            return joined.split("\0")
    elif kinds == {int}:
        return list(map(str, values))
    return list(map(_copy_field, values))


class CopyPipeline:
    """COPYs into PostgreSQL on a background thread, in order, inside the caller's transaction.

    Use as a context manager inside `transaction.atomic()`. While it is open the transaction's
    connection is shared: queries the caller makes meanwhile wait for the COPY in progress
    (psycopg's connection lock), and see every COPY queued before them only after `drain()`.
    A COPY that fails stops the pipeline; its error is raised (as Django's database error) by
    the next `put`, `drain` or the exit, so the transaction rolls back.
    """

    # COPY texts waiting at most: bounds memory (a batch of rows is a few MB).
    DEPTH = 4
    ID_BLOCK = 65_536

    def __init__(self) -> None:
        if connection.vendor != "postgresql":
            raise NotImplementedError("CopyPipeline needs PostgreSQL")
        if not connection.in_atomic_block:
            raise RuntimeError("a CopyPipeline must run inside transaction.atomic()")
        self._queue: queue.Queue = queue.Queue(maxsize=self.DEPTH)
        self._error: BaseException | None = None
        self._failed = threading.Event()
        self._ids_connection = None
        self._id_pools: dict[str, list[int]] = {}
        self._sequences: dict[str, str] = {}
        self._drawn: dict[str, int] = {}
        self._thread: threading.Thread | None = None

    def __enter__(self) -> CopyPipeline:
        with connection.cursor() as cursor:
            # Foreign keys checked at the end of each COPY rather than all at COMMIT: the
            # checks then overlap with the caller's work instead of following it (for an import
            # they are about half the server's time). Until the pipeline closes.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        self._raw = connection.connection
        self._ids_connection = connection.get_new_connection(connection.get_connection_params())
        self._ids_connection.autocommit = True
        self._thread = threading.Thread(target=self._run, name="prefloop-copy", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            self._stop()
        finally:
            self._ids_connection.close()
        if exc_type is None:
            self._raise_failure()
            with connection.cursor() as cursor:
                # Back to the schema's own timing (Django's foreign keys are INITIALLY
                # DEFERRED) for whatever else the surrounding transaction does.
                cursor.execute("SET CONSTRAINTS ALL DEFERRED")

    def ids(self, table: str, pk_column: str, n: int) -> list[int]:
        # Drawn in blocks that double with each round trip, up to ID_BLOCK: a big import waits
        # for few of them, a small one draws no more than it needs. Ids left over at the end are
        # gaps in the sequence, as after any rolled-back insert.
        pool = self._id_pools.setdefault(table, [])
        if len(pool) < n:
            with self._ids_connection.cursor() as cursor:
                if table not in self._sequences:
                    self._sequences[table] = _sequence_of(cursor, table, pk_column)
                drawn = self._drawn.get(table, 0)
                block = max(n - len(pool), min(drawn, self.ID_BLOCK))
                pool.extend(_ids_from_sequence(cursor, self._sequences[table], block))
                self._drawn[table] = drawn + block
        taken = pool[:n]
        del pool[:n]
        return taken

    def put(self, sql: str, text: str) -> None:
        """Queues one COPY ... FROM STDIN with its data in COPY text format."""
        self._raise_failure()
        while True:
            try:
                self._queue.put((sql, text), timeout=0.5)
                return
            except queue.Full:
                self._raise_failure()

    def drain(self) -> None:
        """Waits until every queued COPY is done; raises the first failure."""
        self._queue.join()
        self._raise_failure()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                if self._failed.is_set():
                    continue
                sql, text = item
                with self._raw.cursor() as cursor, cursor.copy(sql) as copy:
                    copy.write(text)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
                self._error = exc
                self._failed.set()
            finally:
                self._queue.task_done()

    def _stop(self) -> None:
        if self._thread is None:
            return
        self._queue.put(None)
        self._thread.join()
        self._thread = None

    def _raise_failure(self) -> None:
        if self._failed.is_set() and self._error is not None:
            error, self._error = self._error, None
            # As Django's own exceptions, and the connection marked for rollback.
            with connection.wrap_database_errors:
                raise error


class BulkTable:
    """Raw inserts into one model's table, giving values for `given` fields (attnames)."""

    def __init__(self, model: type[Model], given: Sequence[str]):
        meta = model._meta
        self.table = meta.db_table
        self.pk_column = meta.pk.column
        self._sequence: str | None = None
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
            if self._sequence is None:
                self._sequence = _sequence_of(cursor, self.table, self.pk_column)
            return _ids_from_sequence(cursor, self._sequence, n)
        if connection.vendor == "sqlite":
            cursor.execute(f'SELECT MAX("{self.pk_column}") FROM "{self.table}"')  # noqa: S608
            largest = cursor.fetchone()[0] or 0
            cursor.execute("SELECT seq FROM sqlite_sequence WHERE name = %s", [self.table])
            row = cursor.fetchone()
            start = max(largest, row[0] if row else 0) + 1
            return list(range(start, start + n))
        raise NotImplementedError(f"bulk inserts into {connection.vendor} are not supported")

    def _copy_text(self, ids: list[int], rows: list[tuple]) -> str:
        # COPY's text format, written here rather than by psycopg's write_row, which adapts
        # every value in Python and took most of an import's client time. Built column by
        # column, so the per-value work runs in C (str methods, map) rather than in a Python
        # call per value.
        columns = [list(map(str, ids)), *map(_column_text, zip(*rows, strict=True))]
        # The suffix (fixed columns, newline) ends every line.
        suffix = self._copy_suffix
        return suffix.join(map("\t".join, zip(*columns, strict=True))) + suffix

    def insert(self, rows: Iterable[tuple], *, pipeline: CopyPipeline | None = None) -> list[int]:
        """Inserts rows (values in `given` order); returns their new ids, in order.

        With a `pipeline` the rows are queued and stored later, in order (see CopyPipeline)."""
        rows = list(rows)
        if not rows:
            return []
        if not connection.in_atomic_block:
            raise RuntimeError("bulk inserts must run inside transaction.atomic()")
        columns = ", ".join(f'"{c}"' for c in self.columns)
        copy_sql = f'COPY "{self.table}" ({columns}) FROM STDIN'
        if pipeline is not None:
            ids = pipeline.ids(self.table, self.pk_column, len(rows))
            pipeline.put(copy_sql, self._copy_text(ids, rows))
            return ids
        with connection.cursor() as cursor:
            ids = self._ids(cursor, len(rows))
            fixed = self.fixed
            if connection.vendor == "postgresql":
                with cursor.cursor.copy(copy_sql) as copy:
                    copy.write(self._copy_text(ids, rows))
            else:
                marks = ", ".join(["%s"] * len(self.columns))
                cursor.executemany(
                    f'INSERT INTO "{self.table}" ({columns}) VALUES ({marks})',  # noqa: S608
                    [(pk, *row, *fixed) for pk, row in zip(ids, rows, strict=True)],
                )
        return ids
