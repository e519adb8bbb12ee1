"""KTO rows (TRL's unpaired preference format, conversational):

    {"prompt": [messages], "completion": [{"role": "assistant", "content": "…"}],
     "label": true | false, "weight": w}

A decided pair gives its winner as desirable and its loser as undesirable; a kept both-bad pair
gives both as undesirable (KTO negatives). A tie says nothing about either response on its own,
so it gives no KTO rows.
"""

from __future__ import annotations

from collections.abc import Iterator

from prefs.formats.records import ExportPair

NAME = "kto"


def _row(pair: ExportPair, text: str, label: bool) -> dict:
    return {
        "prompt": pair.prompt,
        "completion": [{"role": "assistant", "content": text}],
        "label": label,
        "weight": pair.weight,
    }


def rows(pair: ExportPair) -> Iterator[dict]:
    if pair.kind == "preferred":
        yield _row(pair, pair.chosen, True)
        yield _row(pair, pair.rejected, False)
    elif pair.kind == "both_bad":
        yield _row(pair, pair.chosen, False)
        yield _row(pair, pair.rejected, False)
