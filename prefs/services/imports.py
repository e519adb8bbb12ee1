"""Importing a JSONL file (plain or gzipped) into a project: all or nothing.

Every line is checked (and what it refers to in the database), and every bad line is reported:
the first 100 with line number, field and reason, plus the total. The import reads the file
once, in batches, inside ONE transaction: each batch is checked, then written with bulk inserts
while no line so far was bad. The first bad line stops the writing (the rest of the file is
still checked, so the report is complete) and the transaction rolls back, so no one ever sees
a row of a rejected file. `import_check` runs the same checks without writing (the preview).
On PostgreSQL the batches go to the server through a CopyPipeline, which stores one batch while
the next is parsed.

Duplicates (same prompt and the same two responses in either order, `Comparison.pair_hash`;
for the prompts and candidates formats, the same prompt or the same text from the same source)
are counted and skipped, within the file as against the project.

Rows that carry a preference become comparisons with an imported judgment (`imported=True`, no
reviewer), which freezes count only when the rule includes imported labels. Such comparisons get
`required_judgments=0`, so reviewers are not asked to redo labels the data already has, unless
the import is told `queue_labelled=True` (to have humans check imported labels). Rows without a
preference become comparisons for review, needing `project.overlap` judgments.
"""

from __future__ import annotations

import contextlib
import gzip
import itertools
import json
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from django.conf import settings
from django.db import connection, transaction

from prefs.formats.detect import detect
from prefs.formats.jsonl import IMPORT_FORMATS, read_objects, read_records
from prefs.formats.records import (
    CandidateRecord,
    LineError,
    PairRecord,
    PromptRecord,
    Record,
)
from prefs.hashing import messages_hash, pair_hash_of_hashes, sha256_text
from prefs.models import Candidate, Choice, Comparison, Judgment, Project, Prompt
from prefs.services.bulk import BulkTable, CopyPipeline, collector_paused

# Errors listed in a rejection; the count covers all of them.
MAX_ERRORS_SHOWN = 100
# Records written per round of bulk inserts.
BATCH = 5000
PREVIEW_ROWS = 5
_CHOICES = {0: Choice.A, 1: Choice.B, "tie": Choice.TIE, "both_bad": Choice.BOTH_BAD}
# Plain strings, looked up once rather than per row.
_CHOICE_VALUES = {key: choice.value for key, choice in _CHOICES.items()}
_IMPORT_ORIGIN = Comparison.Origin.IMPORT.value

Progress = Callable[[str, int, int], None]


class ImportTooLarge(Exception):
    def __init__(self, limit: int):
        super().__init__(
            f"The file is larger than the import limit of {limit:,} bytes "
            "(PREFLOOP_IMPORT_MAX_BYTES; a gzipped file counts uncompressed too)."
        )
        self.limit = limit


class ImportRejected(Exception):
    """The file has errors; nothing was written."""

    def __init__(self, errors: list[dict], error_count: int, fmt: str):
        noun = "line has" if error_count == 1 else "lines have"
        super().__init__(f"Nothing imported: {error_count} {noun} errors.")
        self.errors = errors
        self.error_count = error_count
        self.format = fmt


@dataclass
class ImportCheck:
    """What the checks found: the format, the rows, a preview, and any errors."""

    format: str
    rows: int = 0
    errors: list[dict] = field(default_factory=list)
    error_count: int = 0
    preview: list[dict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error_count == 0


@dataclass
class ImportResult:
    format: str
    rows: int
    created: dict
    duplicates: int


class _Limited:
    """Counts the (uncompressed) bytes read and stops at the limit."""

    def __init__(self, inner, limit: int):
        self.inner = inner
        self.limit = limit
        self.count = 0

    def readline(self, size: int = -1) -> bytes:
        line = self.inner.readline(size)
        self.count += len(line)
        if self.count > self.limit:
            raise ImportTooLarge(self.limit)
        return line


def _size(stream: BinaryIO) -> int:
    here = stream.tell()
    stream.seek(0, 2)
    size = stream.tell()
    stream.seek(here)
    return size


def _open(stream: BinaryIO, limit: int) -> _Limited:
    """The file's lines from the start, gunzipped when it starts with gzip's magic bytes."""
    stream.seek(0)
    magic = stream.read(2)
    stream.seek(0)
    inner = gzip.GzipFile(fileobj=stream, mode="rb") if magic == b"\x1f\x8b" else stream
    return _Limited(inner, limit)


def _limit(max_bytes: int | None) -> int:
    return settings.PREFLOOP_IMPORT_MAX_BYTES if max_bytes is None else max_bytes


def import_detect(stream: BinaryIO, *, max_bytes: int | None = None) -> str | None:
    """The format of the file's first JSON object, or None."""
    try:
        for _, item in read_objects(_open(stream, _limit(max_bytes))):
            if isinstance(item, dict):
                return detect(item)
    except (OSError, EOFError, zlib.error):
        return None
    finally:
        stream.seek(0)
    return None


def _records(stream: BinaryIO, fmt: str, limit: int, progress: Progress | None, phase: str):
    total = _size(stream)
    lines = _open(stream, limit)
    for count, item in enumerate(read_records(lines, fmt), start=1):
        if progress is not None and count % 1000 == 0:
            progress(phase, min(stream.tell(), total), total)
        yield item
    if progress is not None:
        progress(phase, total, total)


def _preview(number: int, record: Record) -> dict:
    if isinstance(record, PairRecord):
        return {
            "line": number,
            "prompt": record.prompt,
            "responses": [
                {"text": record.a.text, "source": record.a.source},
                {"text": record.b.text, "source": record.b.source},
            ],
            "preference": record.preference,
        }
    if isinstance(record, PromptRecord):
        return {"line": number, "prompt": record.messages, "id": record.external_id}
    return {"line": number, "id": record.prompt_external_id, "text": record.text,
            "source": record.source}


class _Errors:
    """The first errors in line order, and how many there were in all."""

    def __init__(self) -> None:
        self.shown: list[LineError] = []
        self.count = 0

    def add(self, error: LineError) -> None:
        self.count += 1
        self.shown.append(error)
        if len(self.shown) > 4 * MAX_ERRORS_SHOWN:
            self._trim()

    def _trim(self) -> None:
        self.shown.sort(key=lambda e: (e.line is None, e.line or 0))
        del self.shown[MAX_ERRORS_SHOWN:]

    def result(self) -> list[dict]:
        self._trim()
        return [e.as_dict() for e in self.shown]


class _Checker:
    """The checks of every line, fed batch by batch: errors, counts, preview, and external ids."""

    def __init__(self, project: Project, fmt: str):
        self.project = project
        self.check = ImportCheck(format=fmt)
        self.errors = _Errors()
        # External ids: which prompt (by content hash) each names, and where it first appeared.
        self.id_owner: dict[str, tuple[str, int]] = {}
        self.candidate_ids: dict[str, list[int]] = {}

    def take(self, batch: list[tuple[int, Record | list[LineError]]]) -> list[Record]:
        """The batch's good records; its bad lines are noted."""
        records = []
        fresh_ids: dict[str, tuple[str, int]] = {}
        for number, item in batch:
            if isinstance(item, list):
                for error in item:
                    self.errors.add(error)
                continue
            self.check.rows += 1
            records.append(item)
            if len(self.check.preview) < PREVIEW_ROWS:
                self.check.preview.append(_preview(number, item))
            if isinstance(item, CandidateRecord):
                # Every line naming an id is remembered (ids only: a few bytes each), since each
                # is an error if the id turns out unknown.
                self.candidate_ids.setdefault(item.prompt_external_id, []).append(number)
                continue
            external_id = item.external_id
            if external_id:
                content = messages_hash(item.prompt if isinstance(item, PairRecord) else item.messages)
                owner = self.id_owner.setdefault(external_id, (content, number))
                if owner[0] != content:
                    self.errors.add(LineError(number, "id", f"{external_id!r} names a different prompt on line {owner[1]}"))
                elif owner[1] == number:
                    fresh_ids[external_id] = owner
        # Before the batch is written: an id the project already gives another prompt would
        # otherwise break the unique constraint halfway through.
        self._check_ids_against_project(fresh_ids)
        return records

    def _check_ids_against_project(self, owners: dict[str, tuple[str, int]]) -> None:
        for chunk in _chunks(list(owners), BATCH):
            for external_id, content in Prompt.objects.filter(
                project=self.project, external_id__in=chunk
            ).values_list("external_id", "content_hash"):
                if content != owners[external_id][0]:
                    self.errors.add(
                        LineError(
                            owners[external_id][1],
                            "id",
                            f"{external_id!r} already names a different prompt in this project",
                        )
                    )

    def finish(self) -> ImportCheck:
        for chunk in _chunks(list(self.candidate_ids), BATCH):
            known = set(
                Prompt.objects.filter(project=self.project, external_id__in=chunk).values_list(
                    "external_id", flat=True
                )
            )
            for external_id in chunk:
                if external_id not in known:
                    for line in self.candidate_ids[external_id]:
                        self.errors.add(
                            LineError(line, "id", f"no prompt with id {external_id!r} in this project")
                        )
        if self.check.rows == 0 and self.errors.count == 0:
            self.errors.add(LineError(None, "", "The file holds no rows."))
        self.check.errors = self.errors.result()
        self.check.error_count = self.errors.count
        return self.check


def _start(project: Project, stream: BinaryIO, fmt: str, max_bytes: int | None) -> tuple[_Checker, int]:
    if fmt not in IMPORT_FORMATS:
        raise ValueError(f"unknown import format {fmt!r}; one of {', '.join(IMPORT_FORMATS)}")
    limit = _limit(max_bytes)
    if _size(stream) > limit:
        raise ImportTooLarge(limit)
    resolved = fmt if fmt != "auto" else (import_detect(stream, max_bytes=limit) or "auto")
    return _Checker(project, resolved), limit


def _checked_batches(checker: _Checker, stream: BinaryIO, limit: int, progress: Progress | None,
                     phase: str) -> Iterator[list[Record]]:
    """The file's good records, batch by batch, as the checker sees every line."""
    try:
        for batch in _batched(_records(stream, checker.check.format, limit, progress, phase), BATCH):
            yield checker.take(batch)
    except (OSError, EOFError, zlib.error) as exc:
        checker.errors.add(LineError(None, "", f"The file is not valid gzip: {exc}"))


def import_check(
    *,
    project: Project,
    stream: BinaryIO,
    fmt: str = "auto",
    max_bytes: int | None = None,
    progress: Progress | None = None,
) -> ImportCheck:
    """Checks the whole file without writing anything (the preview before an import)."""
    checker, limit = _start(project, stream, fmt, max_bytes)
    try:
        for _ in _checked_batches(checker, stream, limit, progress, "checking"):
            pass
    finally:
        stream.seek(0)
    return checker.finish()


def _batched(items, size: int) -> Iterator[list]:
    # itertools.batched arrives in Python 3.12.
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False)


class _State:
    def __init__(self, project: Project, queue_labelled: bool):
        self.project = project
        self.queue_labelled = queue_labelled
        self.prompt_ids: dict[str, int] = {}
        self.seen: set = set()
        self.created = {"prompts": 0, "candidates": 0, "comparisons": 0, "judgments": 0}
        self.duplicates = 0
        # A project that held nothing when the import began has no rows to clash with but the
        # ones this import writes, which the sets and dicts here already track: the per-batch
        # duplicate lookups can be skipped (the common first import of a large file).
        self.had_prompts = Prompt.objects.filter(project=project).exists()
        self.had_comparisons = Comparison.objects.filter(project=project).exists()
        self.touched_prompts: set[int] = set()
        self.new_candidates: set[int] = set()
        self.prompts = BulkTable(
            Prompt, ("project_id", "messages", "split", "tags", "external_id", "content_hash")
        )
        self.candidates = BulkTable(Candidate, ("prompt_id", "text", "source", "text_hash"))
        self.comparisons = BulkTable(
            Comparison,
            ("project_id", "prompt_id", "candidate_a_id", "candidate_b_id", "origin",
             "required_judgments", "pair_hash"),
        )
        self.judgments = BulkTable(Judgment, ("comparison_id", "imported", "choice", "strength"))
        # Set while the rows go to PostgreSQL through a CopyPipeline.
        self.pipeline: CopyPipeline | None = None


def _prompt_ids_for(state: _State, wanted: list[tuple[str, PairRecord | PromptRecord]]) -> None:
    """Makes sure every (content hash, record) has a prompt id, creating missing prompts."""
    unknown = {h for h, _ in wanted if h not in state.prompt_ids}
    if unknown and state.had_prompts:
        state.prompt_ids.update(
            Prompt.objects.filter(project=state.project, content_hash__in=unknown).values_list(
                "content_hash", "id"
            )
        )
    fresh: dict[str, tuple] = {}
    for content, record in wanted:
        if content in state.prompt_ids or content in fresh:
            continue
        messages = record.prompt if isinstance(record, PairRecord) else record.messages
        fresh[content] = (
            state.project.pk, _dumps(messages), record.split, _dumps(record.tags) if record.tags else "[]",
            record.external_id, content,
        )
    if fresh:
        ids = state.prompts.insert(fresh.values(), pipeline=state.pipeline)
        state.prompt_ids.update(zip(fresh, ids, strict=True))
        state.created["prompts"] += len(fresh)


def _write_pairs(state: _State, records: list[PairRecord]) -> None:
    hashes = [messages_hash(r.prompt) for r in records]
    _prompt_ids_for(state, list(zip(hashes, records, strict=True)))
    keyed = []
    for content, record in zip(hashes, records, strict=True):
        hash_a, hash_b = sha256_text(record.a.text), sha256_text(record.b.text)
        keyed.append((pair_hash_of_hashes(content, hash_a, hash_b), hash_a, hash_b, record, content))
    existing = (
        set(
            Comparison.objects.filter(
                project=state.project, pair_hash__in=[k[0] for k in keyed]
            ).values_list("pair_hash", flat=True)
        )
        if state.had_comparisons
        else set()
    )
    kept = []
    for item in keyed:
        if item[0] in existing or item[0] in state.seen:
            state.duplicates += 1
            continue
        state.seen.add(item[0])
        kept.append(item)
    if not kept:
        return
    candidate_rows = []
    for _, hash_a, hash_b, record, content in kept:
        prompt_id = state.prompt_ids[content]
        candidate_rows.append((prompt_id, record.a.text, record.a.source, hash_a))
        candidate_rows.append((prompt_id, record.b.text, record.b.source, hash_b))
    candidate_ids = state.candidates.insert(candidate_rows, pipeline=state.pipeline)
    project_id, overlap, origin = state.project.pk, state.project.overlap, _IMPORT_ORIGIN
    comparison_rows = [
        (
            project_id,
            state.prompt_ids[content],
            candidate_ids[2 * index],
            candidate_ids[2 * index + 1],
            origin,
            0 if record.preference is not None and not state.queue_labelled else overlap,
            key,
        )
        for index, (key, _, _, record, content) in enumerate(kept)
    ]
    comparison_ids = state.comparisons.insert(comparison_rows, pipeline=state.pipeline)
    judgment_rows = [
        (comparison_id, True, _CHOICE_VALUES[record.preference], record.strength or 2)
        for comparison_id, (_, _, _, record, _) in zip(comparison_ids, kept, strict=True)
        if record.preference is not None
    ]
    judgment_count = len(state.judgments.insert(judgment_rows, pipeline=state.pipeline))
    state.created["candidates"] += len(candidate_ids)
    state.created["comparisons"] += len(comparison_ids)
    state.created["judgments"] += judgment_count


def _write_prompts(state: _State, records: list[PromptRecord]) -> None:
    hashes = [messages_hash(r.messages) for r in records]
    before = state.created["prompts"]
    unique = {}
    for content, record in zip(hashes, records, strict=True):
        unique.setdefault(content, record)
    _prompt_ids_for(state, list(unique.items()))
    state.duplicates += len(records) - (state.created["prompts"] - before)


def _write_candidates(state: _State, records: list[CandidateRecord]) -> None:
    ids = dict(
        Prompt.objects.filter(
            project=state.project, external_id__in={r.prompt_external_id for r in records}
        ).values_list("external_id", "id")
    )
    # An unknown id is the checker's error (reported when the file ends, and nothing kept).
    keyed = [(ids[r.prompt_external_id], sha256_text(r.text), r) for r in records
             if r.prompt_external_id in ids]
    existing = set(
        Candidate.objects.filter(prompt_id__in={k[0] for k in keyed}).values_list(
            "prompt_id", "text_hash", "source"
        )
    )
    fresh = []
    for prompt_id, text_hash, record in keyed:
        key = (prompt_id, text_hash, record.source)
        if key in existing or key in state.seen:
            state.duplicates += 1
            continue
        state.seen.add(key)
        fresh.append((prompt_id, record.text, record.source, text_hash))
    new_ids = state.candidates.insert(fresh, pipeline=state.pipeline)
    state.created["candidates"] += len(new_ids)
    state.touched_prompts.update(row[0] for row in fresh)
    state.new_candidates.update(new_ids)


def _pair_new_candidates(state: _State) -> None:
    """Each new candidate against every candidate of another source for the same prompt."""
    for chunk in _chunks(sorted(state.touched_prompts), BATCH // 4):
        rows = Candidate.objects.filter(prompt_id__in=chunk).order_by("prompt_id", "id")
        prompt_hashes = dict(Prompt.objects.filter(pk__in=chunk).values_list("id", "content_hash"))
        pairs = {}
        for prompt_id, group in itertools.groupby(
            rows.values_list("prompt_id", "id", "source", "text_hash"), key=lambda r: r[0]
        ):
            for first, second in itertools.combinations(list(group), 2):
                if first[1] not in state.new_candidates and second[1] not in state.new_candidates:
                    continue
                if first[2] == second[2] or first[3] == second[3]:
                    continue
                key = pair_hash_of_hashes(prompt_hashes[prompt_id], first[3], second[3])
                pairs.setdefault(key, (prompt_id, first[1], second[1]))
        existing = set(
            Comparison.objects.filter(project=state.project, pair_hash__in=list(pairs)).values_list(
                "pair_hash", flat=True
            )
        )
        made = state.comparisons.insert(
            (state.project.pk, prompt_id, a, b, Comparison.Origin.IMPORT.value,
             state.project.overlap, key)
            for key, (prompt_id, a, b) in pairs.items()
            if key not in existing
        )
        state.created["comparisons"] += len(made)


def import_run(
    *,
    project: Project,
    stream: BinaryIO,
    fmt: str = "auto",
    max_bytes: int | None = None,
    queue_labelled: bool = False,
    progress: Progress | None = None,
) -> ImportResult:
    """Checks and writes the file in one transaction; raises ImportRejected (and keeps nothing)
    when any line is bad, ImportTooLarge past the size limit.

    One pass: each batch is checked, then written while no line so far was bad; the first bad
    line stops the writing (the rest is only checked, so every error is reported), and the
    transaction rolls back. Nobody ever sees a row of a rejected file, and a good file is read
    and parsed once, not twice.
    """
    checker, limit = _start(project, stream, fmt, max_bytes)
    writers = {PairRecord: _write_pairs, PromptRecord: _write_prompts, CandidateRecord: _write_candidates}
    try:
        with collector_paused(), transaction.atomic():
            # Imports into one project take turns on its row: two overlapping files imported at
            # once would otherwise each miss the other's uncommitted rows and write both copies.
            Project.objects.select_for_update().filter(pk=project.pk).first()
            state = _State(project=project, queue_labelled=queue_labelled)
            with _pipeline() as state.pipeline:
                for records in _checked_batches(checker, stream, limit, progress, "importing"):
                    if checker.errors.count:
                        continue
                    by_kind: dict[type, list] = {}
                    for record in records:
                        by_kind.setdefault(type(record), []).append(record)
                    for kind, items in by_kind.items():
                        writers[kind](state, items)
            state.pipeline = None
            check = checker.finish()
            if not check.ok:
                raise ImportRejected(check.errors, check.error_count, check.format)
            if state.touched_prompts:
                _pair_new_candidates(state)
    finally:
        stream.seek(0)
    return ImportResult(
        format=check.format, rows=check.rows, created=state.created, duplicates=state.duplicates
    )


def _pipeline():
    """A CopyPipeline on PostgreSQL; elsewhere the writes go straight through."""
    return CopyPipeline() if connection.vendor == "postgresql" else contextlib.nullcontext()
