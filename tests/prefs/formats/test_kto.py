"""KTO rows: winners desirable, losers and both-bad pairs undesirable, ties silent."""

from __future__ import annotations

from prefs.formats import kto
from prefs.formats.records import ExportPair

PROMPT = [{"role": "user", "content": "Hi"}]


def labels(kind: str) -> list[tuple[str, bool]]:
    pair = ExportPair(prompt=PROMPT, chosen="good", rejected="bad", kind=kind)
    return [(r["completion"][0]["content"], r["label"]) for r in kto.rows(pair)]


def test_each_kind_of_pair_gives_its_kto_rows():
    assert labels("preferred") == [("good", True), ("bad", False)]
    assert labels("both_bad") == [("good", False), ("bad", False)]
    assert labels("tie") == []


def test_rows_pass_trls_format_check():
    from trl.data_utils import is_conversational

    (row, _) = kto.rows(ExportPair(prompt=PROMPT, chosen="good", rejected="bad"))
    assert is_conversational(row)
    assert set(row) == {"prompt", "completion", "label", "weight"}
