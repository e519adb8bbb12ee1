"""Bulk inserts: exact values whatever the text holds, and PostgreSQL's COPY pipeline."""

from __future__ import annotations

import gc
import threading

import pytest
from django.db import IntegrityError, connection, transaction

from prefs.models import Candidate, Prompt
from prefs.services.bulk import BulkTable, CopyPipeline, _column_text, collector_paused

AWKWARD = ["tab\there", "new\nline", "back\\slash \\N", "cr\rlf\r\n", "", "ünïcode ✓", "\\."]


def test_text_columns_are_escaped_for_copy_exactly_as_one_value_at_a_time():
    assert _column_text(("a\tb", "c\nd", "e\\f", "g\rh")) == ["a\\tb", "c\\nd", "e\\\\f", "g\\rh"]
    assert _column_text((1, 20, 300)) == ["1", "20", "300"]
    # Mixed, null and boolean columns take the value-by-value path.
    assert _column_text((True, False)) == ["t", "f"]
    assert _column_text(("x", None)) == ["x", "\\N"]


def test_a_value_holding_nul_does_not_shift_its_neighbours():
    # Joined on NUL for speed; a NUL inside a value must not split it into two.
    assert _column_text(("a\0b", "c")) == ["a\0b", "c"]


def _prompt(project) -> Prompt:
    return Prompt.objects.create(project=project, messages=[{"role": "user", "content": "q"}],
                                 content_hash="h" * 64)


@pytest.mark.django_db(transaction=True)
def test_inserted_rows_read_back_exactly_and_ids_are_returned_in_order(project):
    prompt = _prompt(project)
    table = BulkTable(Candidate, ("prompt_id", "text", "source", "text_hash"))
    with transaction.atomic():
        ids = table.insert((prompt.pk, text, "v1", f"{i:064d}") for i, text in enumerate(AWKWARD))
    stored = dict(Candidate.objects.filter(pk__in=ids).values_list("pk", "text"))
    assert [stored[pk] for pk in ids] == AWKWARD
    assert Candidate.objects.get(pk=ids[0]).sampling == {}


pg_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="CopyPipeline is PostgreSQL's")


@pg_only
@pytest.mark.django_db(transaction=True)
def test_the_pipeline_stores_every_queued_row_in_order_by_the_time_it_closes(project):
    prompt = _prompt(project)
    table = BulkTable(Candidate, ("prompt_id", "text", "source", "text_hash"))
    with transaction.atomic(), CopyPipeline() as pipeline:
        first = table.insert([(prompt.pk, t, "v1", "a" * 64) for t in AWKWARD], pipeline=pipeline)
        second = table.insert([(prompt.pk, "later", "v2", "b" * 64)] * 3, pipeline=pipeline)
    assert len(set(first + second)) == len(AWKWARD) + 3
    stored = dict(Candidate.objects.values_list("pk", "text"))
    assert [stored[pk] for pk in first] == AWKWARD
    assert [stored[pk] for pk in second] == ["later"] * 3
    assert not [t for t in threading.enumerate() if t.name == "prefloop-copy"]


@pg_only
@pytest.mark.django_db(transaction=True)
def test_a_failing_copy_raises_in_the_callers_thread_and_nothing_is_kept(project):
    prompt = _prompt(project)
    table = BulkTable(Candidate, ("prompt_id", "text", "source", "text_hash"))
    with pytest.raises(IntegrityError), transaction.atomic(), CopyPipeline() as pipeline:
        table.insert([(prompt.pk, "fine", "v1", "a" * 64)], pipeline=pipeline)
        # No such prompt: the foreign key fails at the end of this COPY, not at COMMIT.
        table.insert([(prompt.pk + 10_000, "orphan", "v1", "b" * 64)], pipeline=pipeline)
        pipeline.drain()
    assert not Candidate.objects.exists()
    assert not [t for t in threading.enumerate() if t.name == "prefloop-copy"]


@pg_only
@pytest.mark.django_db(transaction=True)
def test_an_error_in_the_caller_stops_the_pipeline_and_rolls_everything_back(project):
    prompt = _prompt(project)
    table = BulkTable(Candidate, ("prompt_id", "text", "source", "text_hash"))
    with pytest.raises(ValueError, match="bad line"), transaction.atomic(), CopyPipeline() as pipeline:
        table.insert([(prompt.pk, "queued", "v1", "a" * 64)] * 100, pipeline=pipeline)
        raise ValueError("bad line")
    assert not Candidate.objects.exists()
    # The connection is usable again afterwards.
    assert Prompt.objects.count() == 1


@pg_only
@pytest.mark.django_db(transaction=True)
def test_foreign_keys_are_deferred_again_after_the_pipeline(project):
    with transaction.atomic():
        with CopyPipeline():
            pass
        with connection.cursor() as cursor:
            # A deferred foreign key lets a child come before its parent within a transaction.
            cursor.execute(
                "INSERT INTO prefs_candidate (prompt_id, text, source, text_hash, sampling, created_at) "
                "VALUES (987654, 'x', 'v1', %s, '{}', now())",
                ["c" * 64],
            )
            cursor.execute(
                "INSERT INTO prefs_prompt (id, project_id, messages, split, tags, external_id, content_hash, "
                "created_at) VALUES (987654, %s, '[]', 'train', '[]', '', %s, now())",
                [project.pk, "d" * 64],
            )
    assert Candidate.objects.filter(prompt_id=987654).exists()


def test_the_collector_is_off_inside_a_paused_block_and_on_again_after_it_even_after_an_error():
    assert gc.isenabled()
    with pytest.raises(RuntimeError), collector_paused():
        assert not gc.isenabled()
        raise RuntimeError("boom")
    assert gc.isenabled()


def test_a_paused_block_leaves_a_collector_that_was_already_off_off():
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_the_collector_comes_back_only_when_the_last_of_overlapping_blocks_ends():
    second_in, second_may_end = threading.Event(), threading.Event()

    def second():
        with collector_paused():
            second_in.set()
            second_may_end.wait(5)

    other = threading.Thread(target=second)
    with collector_paused():
        other.start()
        assert second_in.wait(5)
    # The first block has ended while the other thread's block still runs.
    assert not gc.isenabled()
    second_may_end.set()
    other.join(5)
    assert gc.isenabled()
