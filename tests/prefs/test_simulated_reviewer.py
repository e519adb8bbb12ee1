"""The demo's simulated reviewer follows the demo's written guideline: brief answers win."""

from __future__ import annotations

from prefs.simulated_reviewer import WORD_LIMIT, simulated_verdict, word_count


def _words(n: int) -> str:
    return " ".join(["word"] * n)


def test_an_answer_within_the_limit_beats_one_over_it_whichever_side_it_is_on():
    short, long = _words(WORD_LIMIT), _words(WORD_LIMIT + 1)
    assert simulated_verdict(short, long) == "A"
    assert simulated_verdict(long, short) == "B"


def test_when_both_are_long_the_clearly_shorter_one_wins_and_a_small_difference_is_a_tie():
    assert simulated_verdict(_words(100), _words(200)) == "A"
    assert simulated_verdict(_words(200), _words(150)) == "B"
    assert simulated_verdict(_words(180), _words(200)) == "tie"
    assert simulated_verdict(_words(40), _words(45)) == "tie"


def test_an_empty_or_near_empty_answer_is_no_answer():
    assert simulated_verdict("", _words(300)) == "B"
    assert simulated_verdict("Ok.", _words(30)) == "B"
    assert simulated_verdict("", " ") == "both_bad"


def test_words_are_what_a_reader_sees_markdown_and_code_included():
    assert word_count("**Bold** claim:\n\n- one `x = 1`") == 7
