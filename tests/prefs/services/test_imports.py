"""Importing files: checked whole first, written in one transaction, duplicates skipped."""

from __future__ import annotations

import gc
import gzip
import io
import json
from pathlib import Path

import pytest

from prefs.formats import hh
from prefs.models import Candidate, Comparison, Judgment, Prompt
from prefs.services.assignment import comparison_next_for
from prefs.services.imports import (
    ImportRejected,
    ImportTooLarge,
    import_check,
    import_run,
)

HH_FILE = Path("/work/shared/data/hh-rlhf-harmless-base-test.jsonl.gz")


def jsonl(rows) -> io.BytesIO:
    return io.BytesIO("".join(json.dumps(r) + "\n" for r in rows).encode())


def native(i: int, preference=0, **extra) -> dict:
    return {
        "prompt": [{"role": "user", "content": f"Question {i}?"}],
        "responses": [{"text": f"Answer {i} one", "source": "v1"}, {"text": f"Answer {i} two", "source": "v2"}],
        "preference": preference,
        **extra,
    }


def test_the_real_hh_file_imports_with_prompts_and_replies_matching_the_transcripts(project, reviewer):
    if not HH_FILE.exists():
        pytest.skip("the shared HH file is not on this machine")
    with HH_FILE.open("rb") as stream:
        result = import_run(project=project, stream=stream)

    originals = [json.loads(line) for line in gzip.decompress(HH_FILE.read_bytes()).splitlines()]
    assert result.format == "hh"
    assert result.created["comparisons"] == len(originals) - result.duplicates == 2312
    assert result.created["judgments"] == 2312
    comparisons = Comparison.objects.filter(project=project).select_related(
        "prompt", "candidate_a", "candidate_b"
    ).order_by("id")
    for original, comparison in zip(originals, comparisons, strict=True):
        assert hh.render_transcript(comparison.prompt.messages, comparison.candidate_a.text) == original["chosen"]
        assert hh.render_transcript(comparison.prompt.messages, comparison.candidate_b.text) == original["rejected"]
    # Imported labels stay apart from human ones and are not queued for reviewers.
    assert set(Judgment.objects.values_list("imported", "reviewer", "choice").distinct()) == {(True, None, "A")}
    assert comparison_next_for(reviewer=reviewer, project=project) is None


def test_one_bad_line_in_ten_thousand_rejects_the_whole_file_and_writes_nothing(project):
    rows = [native(i) for i in range(10_000)]
    rows[7_776]["responses"][1]["text"] = ""
    rows[7_776]["responses"][0]["text"] = " "

    with pytest.raises(ImportRejected) as caught:
        import_run(project=project, stream=jsonl(rows))

    assert caught.value.error_count == 1
    assert caught.value.errors == [
        {"line": 7_777, "field": "responses[0].text", "message": "responses[0].text and responses[1].text are both empty"}
    ]
    assert not Prompt.objects.exists() and not Comparison.objects.exists()
    # The import pauses the garbage collector; a rejected file must not leave it off.
    assert gc.isenabled()


def test_every_kind_of_bad_line_is_reported_at_once(project):
    good = json.dumps(native(1)).encode()
    lines = [
        good,
        b"\xc3\x28 broken utf-8",
        b'"just a string"',
        json.dumps({"prompt": "q", "responses": [{"text": "a"}]}).encode(),
        json.dumps({"prompt": [{"role": "user", "content": ""}], "responses": ["a", "b"]}).encode(),
        json.dumps({"prompt": [{"role": "wizard", "content": "q"}], "responses": ["a", "b"]}).encode(),
        json.dumps(native(2, preference="maybe")).encode(),
        json.dumps({"prompt": "q", "responses": ["a", "b"], "pad": "x" * 2_000_000}).encode(),
        good,
    ]
    with pytest.raises(ImportRejected) as caught:
        import_run(project=project, stream=io.BytesIO(b"\n".join(lines)), fmt="native")

    by_line = {e["line"]: e for e in caught.value.errors}
    assert sorted(by_line) == [2, 3, 4, 5, 6, 7, 8]
    assert "UTF-8" in by_line[2]["message"]
    assert "JSON object" in by_line[3]["message"]
    assert by_line[4]["field"] == "responses"
    assert (by_line[5]["field"], by_line[5]["message"]) == ("prompt[0].content", "is empty")
    assert by_line[6]["field"] == "prompt[0].role"
    assert by_line[7]["field"] == "preference"
    assert "longer than" in by_line[8]["message"]
    assert not Comparison.objects.exists()


def test_only_the_first_hundred_errors_are_listed_but_all_are_counted(project):
    rows = [{"prompt": "q", "responses": []}] * 250
    check = import_check(project=project, stream=jsonl(rows), fmt="native")
    assert check.error_count == 250
    assert [e["line"] for e in check.errors] == list(range(1, 101))


def test_duplicates_are_counted_and_skipped_within_the_file_and_against_the_project(project):
    first = import_run(project=project, stream=jsonl([native(1), native(2)]))
    swapped = native(2)
    swapped["responses"].reverse()
    second = import_run(project=project, stream=jsonl([native(1), swapped, native(3), native(3)]))

    assert (first.created["comparisons"], first.duplicates) == (2, 0)
    assert (second.created["comparisons"], second.duplicates) == (1, 3)
    assert Comparison.objects.count() == 3
    assert Prompt.objects.count() == 3


def test_rows_without_a_preference_go_to_reviewers(project, reviewer):
    project.overlap = 2
    project.save()
    result = import_run(project=project, stream=jsonl([native(1, preference=None)]))

    comparison = Comparison.objects.get()
    assert result.created["judgments"] == 0
    assert comparison.required_judgments == 2
    assert comparison_next_for(reviewer=reviewer, project=project).comparison == comparison


def test_labelled_rows_can_be_queued_for_human_review_too(project, reviewer):
    import_run(project=project, stream=jsonl([native(1, preference=1, strength=3)]), queue_labelled=True)

    judgment = Judgment.objects.get()
    assert (judgment.choice, judgment.strength, judgment.imported) == ("B", 3, True)
    assert comparison_next_for(reviewer=reviewer, project=project) is not None


def test_gzipped_files_are_accepted(project):
    data = gzip.compress("".join(json.dumps(native(i)) + "\n" for i in range(3)).encode())
    assert import_run(project=project, stream=io.BytesIO(data)).created["comparisons"] == 3


def test_a_broken_gzip_file_is_rejected(project):
    data = gzip.compress(b'{"prompt": "q", "responses": ["a", "b"]}\n' * 50)[:-30]
    with pytest.raises(ImportRejected) as caught:
        import_run(project=project, stream=io.BytesIO(data))
    assert "gzip" in caught.value.errors[-1]["message"]
    assert not Comparison.objects.exists()


def test_files_over_the_limit_are_refused_compressed_or_not(project, settings):
    settings.PREFLOOP_IMPORT_MAX_BYTES = 5_000
    plain = jsonl([native(i) for i in range(100)])
    with pytest.raises(ImportTooLarge):
        import_run(project=project, stream=plain)
    # Compressed it fits, but it unpacks past the limit.
    packed = io.BytesIO(gzip.compress(plain.getvalue()))
    assert len(packed.getvalue()) < 5_000
    with pytest.raises(ImportTooLarge):
        import_run(project=project, stream=packed)
    assert not Comparison.objects.exists()


def test_an_external_id_cannot_name_two_prompts(project):
    Prompt.objects.create(project=project, messages=[{"role": "user", "content": "old"}],
                          external_id="taken", content_hash="x" * 64)
    rows = [native(1, id="a"), native(2, id="a"), native(3, id="taken")]
    with pytest.raises(ImportRejected) as caught:
        import_run(project=project, stream=jsonl(rows))
    assert [(e["line"], e["field"]) for e in caught.value.errors] == [(2, "id"), (3, "id")]


def test_prompts_then_candidates_from_two_sources_become_comparisons(project):
    prompts = [{"prompt": f"Prompt {i}", "id": f"p{i}"} for i in range(2)]
    made = import_run(project=project, stream=jsonl(prompts + [prompts[0]]))
    outputs = [
        {"id": "p0", "text": "from v1", "source": "v1"},
        {"id": "p0", "text": "from v2", "source": "v2"},
        {"id": "p1", "text": "only v1", "source": "v1"},
        {"id": "p1", "text": "only v1", "source": "v1"},
    ]
    result = import_run(project=project, stream=jsonl(outputs))

    assert (made.format, made.created["prompts"], made.duplicates) == ("prompts", 2, 1)
    assert result.format == "candidates"
    assert (result.created["candidates"], result.duplicates, result.created["comparisons"]) == (3, 1, 1)
    comparison = Comparison.objects.get()
    assert {comparison.candidate_a.source, comparison.candidate_b.source} == {"v1", "v2"}
    assert comparison.required_judgments == project.overlap


def test_candidates_for_unknown_prompts_are_refused_by_line(project):
    with pytest.raises(ImportRejected) as caught:
        import_run(project=project, stream=jsonl([{"id": "nope", "text": "x", "source": "v1"}]))
    assert caught.value.errors == [{"line": 1, "field": "id", "message": "no prompt with id 'nope' in this project"}]
    assert not Candidate.objects.exists()


def test_an_empty_file_is_refused(project):
    with pytest.raises(ImportRejected) as caught:
        import_run(project=project, stream=io.BytesIO(b"\n\n"))
    assert caught.value.errors == [{"line": None, "field": "", "message": "The file holds no rows."}]


@pytest.mark.django_db(transaction=True)
def test_two_overlapping_imports_at_once_never_double_a_pair():
    import threading

    from django.db import connection

    from prefs.models import Project

    project = Project.objects.create(name="Concurrent")
    results, failures = [], []

    def run(rows):
        try:
            results.append(import_run(project=project, stream=jsonl(rows)))
        except Exception as exc:  # noqa: BLE001 - reported below
            failures.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=([native(i) for i in range(k, k + 300)],)) for k in (0, 100)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []
    assert Comparison.objects.filter(project=project).count() == 400
    assert sorted(r.duplicates for r in results) == [0, 200]


def test_every_line_naming_an_unknown_prompt_is_counted(project):
    rows = [{"id": "nope", "text": f"answer {i}", "source": "v1"} for i in range(150)]
    with pytest.raises(ImportRejected) as caught:
        import_run(project=project, stream=jsonl(rows))
    assert caught.value.error_count == 150
    assert len(caught.value.errors) == 100


def test_awkward_text_is_stored_exactly(project):
    awkward = "tab\there \\N back\\slash\r\nnew line \\t ünïcødé ✓ \U0001f600"
    row = native(1)
    row["prompt"][0]["content"] = awkward
    row["responses"][0]["text"] = awkward + " one"
    import_run(project=project, stream=jsonl([row]))
    comparison = Comparison.objects.select_related("prompt", "candidate_a").get()
    assert comparison.prompt.messages[0]["content"] == awkward
    assert comparison.candidate_a.text == awkward + " one"


def test_text_the_database_cannot_hold_is_a_line_error(project):
    row = native(2)
    row["responses"][1]["text"] = "nul \u0000 byte"
    with pytest.raises(ImportRejected) as caught:
        import_run(project=project, stream=jsonl([native(1), row]))
    assert [(e["line"], e["field"]) for e in caught.value.errors] == [(2, "responses[1].text")]
    assert not Comparison.objects.exists()
