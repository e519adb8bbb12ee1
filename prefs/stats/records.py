"""The plain record every statistic reads: one human verdict, flattened out of the database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

# Canonical choices (prefs.models.Choice values), repeated here so this package stays free of
# Django: A and B name candidates, never screen sides.
A = "A"
B = "B"
TIE = "tie"
BOTH_BAD = "both_bad"
CHOICES = (A, B, TIE, BOTH_BAD)


@dataclass(frozen=True, slots=True)
class Verdict:
    """One judgment with what the statistics need to know about its comparison."""

    comparison_id: int
    reviewer_id: int | None
    choice: str
    # Which candidate was on the left; None for imported labels (no screen was involved).
    left_is_a: bool | None = None
    ms_on_task: int | None = None
    # Lengths of the two candidates' texts, in characters.
    len_a: int = 0
    len_b: int = 0
    # Ranking sources of the two candidates (source label, or adapter name when set).
    source_a: str = ""
    source_b: str = ""
    # The known answer when an admin marked the comparison as gold, else "".
    gold_choice: str = ""
    created_at: datetime | None = None

    @property
    def picked_left(self) -> bool | None:
        """True if the verdict went to the left side, False if right, None otherwise."""
        if self.left_is_a is None or self.choice not in (A, B):
            return None
        return (self.choice == A) == self.left_is_a
