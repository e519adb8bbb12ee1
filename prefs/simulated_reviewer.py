"""The demo's simulated reviewer: a written-down rule that judges as the demo's guideline asks.

The demo project asks for brief answers (see ``prefs.services.demo.DEMO_GUIDELINES``); the default
model, left alone, writes 100-200 words to most everyday questions. This rule stands in for a
person who follows that guideline, so that the demo ships labelled on-policy pairs and
``benchmarks/efficacy.py`` can judge before/after pairs without people. Its verdicts are stored as
imported labels (``Judgment.imported``), never as a human's.

The rule, in order:

1. An answer of fewer than ``MIN_WORDS`` words is no answer: it loses (both bad if both are).
2. An answer within ``WORD_LIMIT`` words beats one over it.
3. Otherwise the answer with at least ``CLEARLY_SHORTER`` fewer words wins.
4. Otherwise it is a tie.

Words are runs of non-space characters, so Markdown marks and code count as the reader sees them.
"""

from __future__ import annotations

import re

from prefs.models import Choice

WORD_LIMIT = 60
MIN_WORDS = 3
# A quarter fewer words is a difference a reader notices at a glance.
CLEARLY_SHORTER = 0.25

_WORD = re.compile(r"\S+")


def word_count(text: str) -> int:
    return len(_WORD.findall(text))


def simulated_verdict(a_text: str, b_text: str) -> str:
    """The rule's verdict on A against B, in canonical terms (a ``prefs.models.Choice`` value)."""
    a_words, b_words = word_count(a_text), word_count(b_text)
    a_empty, b_empty = a_words < MIN_WORDS, b_words < MIN_WORDS
    if a_empty or b_empty:
        if a_empty and b_empty:
            return Choice.BOTH_BAD
        return Choice.B if a_empty else Choice.A
    a_within, b_within = a_words <= WORD_LIMIT, b_words <= WORD_LIMIT
    if a_within != b_within:
        return Choice.A if a_within else Choice.B
    shorter, longer = sorted((a_words, b_words))
    if shorter <= (1 - CLEARLY_SHORTER) * longer:
        return Choice.A if a_words < b_words else Choice.B
    return Choice.TIE
