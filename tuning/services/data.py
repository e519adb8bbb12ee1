"""Training rows from a frozen preference set, split by the prompts' train/held-out split."""

from __future__ import annotations

from prefs.formats import export as formats
from prefs.models import PreferenceSet, Prompt
from prefs.services.exports import export_pairs

ROW_FORMAT = "trl-conversational"


def preference_rows(preference_set: PreferenceSet, *, split: str | None = Prompt.Split.TRAIN) -> list[dict]:
    """The set's rows in TRL's conversational preference format, in set order.

    Rows are made by the export codec (`preference_set_rows`' own), so training reads exactly
    what an export of the set holds: decided pairs once, kept ties in both orders at half weight.
    `split` keeps pairs whose prompt is in that split (None: all): DPO trains on train prompts,
    and pairs on held-out prompts (in a set frozen with split "all") measure held-out accuracy.
    """
    pairs = export_pairs(preference_set)
    if split is not None:
        pairs = (pair for pair in pairs if pair.split == split)
    return list(formats.rows(pairs, ROW_FORMAT))
