"""Reading a frozen preference set out: rows for trainers and export files in every format.

Pairs stream from the database in chunks (libpq's chunked mode on PostgreSQL, `.iterator()`
elsewhere), in set order, and are serialised as they come, so memory stays flat however large
the set is.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import psycopg
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, TextField
from django.db.models.functions import Cast

from prefs.formats import export as formats
from prefs.formats.records import ExportPair
from prefs.models import PreferencePair, PreferenceSet

EXPORT_FORMATS = formats.EXPORT_FORMATS
# Pairs fetched per round trip to the database.
CHUNK_SIZE = 2000
CONTENT_TYPES = {fmt: "application/jsonl; charset=utf-8" for fmt in formats.JSONL_FORMATS}
CONTENT_TYPES["parquet"] = "application/vnd.apache.parquet"


class ExportError(Exception):
    pass


# What each pair's row holds for the readers below: ExportPair's fields, in its order.
_PAIR_COLUMNS = (
    "messages_text",
    "chosen__text",
    "rejected__text",
    "kind",
    "weight",
    "chosen__source",
    "rejected__source",
    "prompt__split",
    "prompt__external_id",
)
# What the `trl` export reads: formats.trl_stream's rows.
_TRL_COLUMNS = ("messages_text", "chosen__text", "rejected__text", "kind", "weight")


def _raw_pairs(
    preference_set: PreferenceSet, chunk_size: int, *, exclusive: bool, columns: tuple[str, ...] = _PAIR_COLUMNS
) -> Iterator[tuple]:
    rows = (
        PreferencePair.objects.filter(preference_set=preference_set)
        .order_by("id")
        # The prompt comes as JSON text on every database, parsed (if need be) by the reader.
        .annotate(messages_text=Cast("prompt__messages", output_field=TextField()))
        .values_list(*columns)
    )
    if connection.vendor != "postgresql" or not exclusive:
        yield from rows.iterator(chunk_size=chunk_size)
        return
    # On PostgreSQL an export streams the rows in chunks over one plain query (libpq's chunked
    # mode): the server keeps producing while this process serialises, and neither side holds
    # more than a chunk. A DECLARE/FETCH cursor would stop the server at every round trip. The
    # connection can run nothing else meanwhile, hence `exclusive`.
    sql, params = rows.query.sql_with_params()
    with transaction.atomic(), connection.cursor() as cursor:
        # Walk the (preference_set, id) index with a nested loop, no sort and no parallel
        # workers: rows flow from the first one on, and the server never sorts (or spills to
        # disk) the whole joined set first. For this transaction only.
        cursor.execute("SET LOCAL enable_sort = off; SET LOCAL max_parallel_workers_per_gather = 0")
        # Results in binary: the weight arrives as eight bytes, not text to parse. Django's own
        # cursors bind parameters client-side, which psycopg allows only for text results, so
        # this one binds server-side (never prepared: the query runs once).
        with psycopg.Cursor(connection.connection) as raw:
            yield from raw.stream(sql, params, size=chunk_size, binary=True)


def export_pairs(
    preference_set: PreferenceSet, *, chunk_size: int = CHUNK_SIZE, exclusive: bool = False
) -> Iterator[ExportPair]:
    """The set's pairs, in set order, with their texts.

    `exclusive=True` is faster on PostgreSQL but keeps the database connection busy until the
    iterator is exhausted or closed: no other query may run on it in between.
    """
    loads = json.loads
    raw = _raw_pairs(preference_set, chunk_size, exclusive=exclusive)
    for messages, chosen, rejected, kind, weight, c_source, r_source, split, external_id in raw:
        yield ExportPair(loads(messages), chosen, rejected, kind, float(weight), c_source, r_source,
                         split, external_id)


def preference_set_rows(
    preference_set: PreferenceSet, *, fmt: str = "trl-conversational"
) -> Iterator[dict]:
    """The set's training rows in `fmt` (any JSONL export format), streamed.

    The default gives TRL conversational preference rows:
    {"prompt": [messages], "chosen": [{"role": "assistant", "content": …}],
     "rejected": [...], "weight": float}. Decided pairs give one row, kept ties two (both
    orders, half weight each), kept both-bad pairs none (they only show in kto and native).
    Other queries may run on the connection while the rows are read (a server-side cursor).
    """
    if fmt not in formats.ROWS:
        raise ExportError(f"unknown format {fmt!r}; one of {', '.join(EXPORT_FORMATS)}")
    return formats.rows(export_pairs(preference_set), fmt)


def export_metadata(preference_set: PreferenceSet, fmt: str) -> dict:
    """What every export carries about the version it came from (header, sidecar, schema)."""
    return {
        "preference_set": preference_set.pk,
        "project": preference_set.project_id,
        "version": preference_set.version,
        "sha256": preference_set.sha256,
        "pairs": preference_set.pair_count,
        "rule": preference_set.rule,
        "format": fmt,
        "created_at": preference_set.created_at.isoformat(),
    }


def export_filename(preference_set: PreferenceSet, fmt: str) -> str:
    extension = "parquet" if fmt == "parquet" else "jsonl"
    return f"project{preference_set.project_id}-v{preference_set.version}-{fmt}.{extension}"


def export_headers(preference_set: PreferenceSet, fmt: str) -> dict[str, str]:
    """HTTP headers naming the version: the JSONL stays plain rows that `datasets` loads."""
    meta = export_metadata(preference_set, fmt)
    return {
        "Content-Type": CONTENT_TYPES[fmt],
        "Content-Disposition": f'attachment; filename="{export_filename(preference_set, fmt)}"',
        "X-Prefloop-Set": str(preference_set.pk),
        "X-Prefloop-Version": str(preference_set.version),
        "X-Prefloop-Sha256": preference_set.sha256,
        "X-Prefloop-Pairs": str(preference_set.pair_count),
        "X-Prefloop-Format": fmt,
        "X-Prefloop-Rule": json.dumps(meta["rule"], sort_keys=True, separators=(",", ":")),
    }


def _counted(pairs: Iterator, progress: Callable[[int], None]) -> Iterator:
    done = 0
    for done, pair in enumerate(pairs, start=1):  # noqa: B007
        if done % 1000 == 0:
            progress(done)
        yield pair
    progress(done)


def preference_set_export(
    preference_set: PreferenceSet, *, fmt: str, progress: Callable[[int], None] | None = None
) -> Iterator[bytes]:
    """The bytes of the export file; the endpoint and the command both send exactly these.

    `progress`, if given, hears how many pairs have been read so far.
    """
    if fmt not in EXPORT_FORMATS:
        raise ExportError(f"unknown format {fmt!r}; one of {', '.join(EXPORT_FORMATS)}")
    if fmt == "trl":
        # The most used format reads only the columns it writes, as plain tuples.
        rows = _raw_pairs(preference_set, CHUNK_SIZE, exclusive=True, columns=_TRL_COLUMNS)
        if progress is not None:
            rows = _counted(rows, progress)
        return formats.trl_stream(rows)
    pairs = export_pairs(preference_set, exclusive=True)
    if progress is not None:
        pairs = _counted(pairs, progress)
    return formats.stream(pairs, fmt, metadata=export_metadata(preference_set, fmt))


def _sample(row: tuple) -> dict:
    messages, chosen, rejected, kind, weight, agreement, votes, comparison_id = row
    return {
        "prompt": messages,
        "chosen": chosen,
        "rejected": rejected,
        "kind": kind,
        "weight": weight,
        "agreement": agreement,
        "votes": votes,
        "comparison": comparison_id,
    }


_SAMPLE_COLUMNS = (
    "prompt__messages", "chosen__text", "rejected__text", "kind", "weight", "agreement", "votes",
    "comparison_id",
)


def preference_set_samples(preference_set: PreferenceSet, *, limit: int = 10) -> list[dict]:
    """The set's first pairs, for a page to show."""
    rows = PreferencePair.objects.filter(preference_set=preference_set).order_by("id")
    return [_sample(r) for r in rows.values_list(*_SAMPLE_COLUMNS)[:limit]]


def preference_set_diff_samples(preference_set: PreferenceSet, *, limit: int = 5) -> dict:
    """A few pairs added, removed and flipped against the previous version."""
    previous = preference_set.previous
    if previous is None:
        return {}
    ours = PreferencePair.objects.filter(preference_set=preference_set)
    theirs = PreferencePair.objects.filter(preference_set=previous)
    changed = theirs.filter(comparison_id=OuterRef("comparison_id")).exclude(
        kind=OuterRef("kind"), chosen_id=OuterRef("chosen_id")
    )
    return {
        "added": [
            _sample(r)
            for r in ours.exclude(comparison_id__in=theirs.values("comparison_id"))
            .order_by("id").values_list(*_SAMPLE_COLUMNS)[:limit]
        ],
        "removed": [
            _sample(r)
            for r in theirs.exclude(comparison_id__in=ours.values("comparison_id"))
            .order_by("id").values_list(*_SAMPLE_COLUMNS)[:limit]
        ],
        "flipped": [
            _sample(r)
            for r in ours.filter(Exists(changed)).order_by("id").values_list(*_SAMPLE_COLUMNS)[:limit]
        ],
    }
